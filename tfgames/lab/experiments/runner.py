"""The shared machinery of the experiments: the seed's GAN, training with snapshots, records.

- :class:`MLPGAN`: the GAN of the SGA notebook as a :class:`tfgames.GameModel`: ReLU MLPs with
  Sonnet-1 initialisation, real data and noise drawn inside the train step, the seed's sigmoid
  cross-entropy losses.
- :func:`train_with_snapshots`: ``fit`` in segments on a dummy step data set, taking a snapshot
  (evaluation losses and generated samples on fixed noise) before training and at regular
  steps, with a progress bar over all steps.
- :class:`RunRecord`: the experiment's metrics, written to ``metrics.json`` after every
  snapshot, so that an interrupted run leaves its partial results.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import sys
import time
import warnings
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

import tfgames
from tfgames import datasets
from tfgames.atomic import FolderLock, write_atomically
from tfgames.lab import models, samplers
from tfgames.model import GameModel

__all__ = [
    "MLPGAN",
    "GanConfig",
    "RunRecord",
    "Snapshot",
    "gan_losses",
    "jsonable",
    "mlp",
    "train_with_snapshots",
]

log = logging.getLogger("tfgames.lab.experiments")


@dataclass(frozen=True)
class GanConfig:
    """Size and schedule of one GAN training run.

    Attributes:
        target: ``"grid"`` (4x4 mixture, x_dim 2) or ``"gaussian"`` (N(0, I_x_dim)).
        x_dim: data dimension.
        depth: hidden layers of both MLPs.
        width: units per hidden layer.
        z_dim: generator noise dimension.
        batch_size: real and generated samples per step.
        learning_rate: the optimizers' step size.
        steps: training steps.
        snapshot_every: steps between snapshots (a last one is taken at ``steps``).
        eval_batches: batches of ``batch_size`` generated (and real) samples per snapshot.
        std: standard deviation of each grid component (``target="grid"``).
    """

    target: str = "grid"
    x_dim: int = 2
    depth: int = 6
    width: int = 384
    z_dim: int = 64
    batch_size: int = 256
    learning_rate: float = 1e-4
    steps: int = 10_000
    snapshot_every: int = 2_000
    eval_batches: int = 10
    std: float = 0.02

    def __post_init__(self) -> None:
        if self.target not in ("grid", "gaussian"):
            raise ValueError(
                f"GanConfig.target must be 'grid' or 'gaussian'. Received: {self.target!r}"
            )
        for name in ("x_dim", "depth", "width", "z_dim", "batch_size", "steps",
                     "snapshot_every", "eval_batches"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"GanConfig.{name} must be an integer >= 1. Received: {name}={value!r}"
                )
        if not self.learning_rate > 0:
            raise ValueError(
                f"GanConfig.learning_rate must be > 0. Received: {self.learning_rate!r}"
            )

    def snapshot_steps(self) -> list[int]:
        """0, snapshot_every, 2 snapshot_every, ..., and ``steps``."""
        return sorted(set(range(0, self.steps, self.snapshot_every)) | {self.steps})


def preset_config(presets: Mapping[str, GanConfig], preset: str,
                  steps: int | None) -> GanConfig:
    """The preset's :class:`GanConfig`, with ``steps`` instead of its own when given
    (snapshots keep their spacing, capped at ``steps``).
    """
    if preset not in presets:
        raise ValueError(f"Unknown preset {preset!r}; choose from {sorted(presets)}.")
    config = presets[preset]
    if steps is not None:
        config = dataclasses.replace(config, steps=steps,
                                     snapshot_every=min(config.snapshot_every, steps))
    return config


def mlp(in_dim: int, depth: int, width: int, out_dim: int, *, name: str) -> keras.Sequential:
    """The seed's MLP: ``depth`` ReLU layers of ``width`` units and a linear output layer
    (:func:`tfgames.lab.models.mlp` with Sonnet 1's initialisation, as the seed).
    """
    return models.mlp(in_dim, [width] * depth, out_dim, name=name)


def gan_losses(discriminator: Callable, generator: Callable, x_real: tf.Tensor,
               z: tf.Tensor, training: bool = False) -> dict[str, tf.Tensor]:
    """The seed's GAN losses with logits D(.) (sigmoid cross-entropy, non-saturating G).

    L_D = -mean log sigma(D(x)) - mean log(1 - sigma(D(G(z)))),
    L_G = -mean log sigma(D(G(z))).
    At the equilibrium D = 1/2 everywhere: L_D = 2 ln 2, L_G = ln 2.
    """
    real = discriminator(x_real, training=training)
    fake = discriminator(generator(z, training=training), training=training)
    return tfgames.losses.gan_losses(real, fake)


@keras.saving.register_keras_serializable(package="tfgames.lab.experiments")
class MLPGAN(GameModel):
    """The SGA notebook's GAN: MLP generator and discriminator, data sampled in the step.

    Players, in the seed's order ``xs = disc_vars + gen_vars``: ``discriminator`` minimises
    L_D and ``generator`` minimises L_G (:func:`gan_losses`). Each train step draws
    ``batch_size`` real samples (:func:`tfgames.lab.samplers.grid_batch` or
    :func:`tfgames.lab.samplers.gaussian_batch`) and z ~ N(0, I_z_dim) from the model's noise
    stream, so ``fit`` needs only a dummy data set (:func:`tfgames.datasets.step_dataset`).

    Args:
        config: the sizes (:class:`GanConfig`; the schedule fields are not used here).
        seed: seed of the noise stream.
    """

    def __init__(self, config: GanConfig | Mapping[str, Any] = GanConfig(), **kwargs) -> None:
        super().__init__(**kwargs)
        self.config = config if isinstance(config, GanConfig) else GanConfig(**config)
        c = self.config
        self.discriminator = mlp(c.x_dim, c.depth, c.width, 1, name="discriminator")
        self.generator = mlp(c.z_dim, c.depth, c.width, c.x_dim, name="generator")

    def players(self) -> dict[str, keras.Model]:
        return {"discriminator": self.discriminator, "generator": self.generator}

    def sample_real(self, n: int, seed: keras.random.SeedGenerator | int | None) -> tf.Tensor:
        """``n`` samples of the target distribution."""
        c = self.config
        if c.target == "grid":
            return samplers.grid_batch(n, seed, std=c.std)
        return samplers.gaussian_batch(n, c.x_dim, seed)

    def replica_batch_size(self, data: Any) -> int:
        """Every replica draws ``batch_size`` samples in the step (the data set is a dummy):
        equal shares under a strategy.
        """
        return self.config.batch_size

    def compute_losses(self, data: Any, training: bool = False) -> dict[str, tf.Tensor]:
        c = self.config
        x_real = self.sample_real(c.batch_size, self.seed_generator)
        z = keras.random.normal((c.batch_size, c.z_dim), seed=self.seed_generator)
        return gan_losses(self.discriminator, self.generator, x_real, z, training)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "config": asdict(self.config)}


@dataclass
class Snapshot:
    """The state of a run at one step, on fixed evaluation noise.

    Attributes:
        step: training steps done.
        losses: (L_D, L_G) averaged over the evaluation batches.
        train_losses: mean training losses over the steps since the previous snapshot (None
            at step 0).
        samples: generated samples, shape ``(eval_batches * batch_size, x_dim)``.
        wall_time_s: seconds since the start of training.
        train_logs: every training metric averaged since the previous snapshot (the
            losses and the optimizer's diagnostics, e.g. SGA's ``sga_lambda``); empty at
            step 0.
    """

    step: int
    losses: tuple[float, float]
    train_losses: tuple[float, float] | None
    samples: np.ndarray
    wall_time_s: float
    train_logs: dict[str, float] = field(default_factory=dict)


class _Progress(keras.callbacks.Callback):
    """A ``keras.utils.Progbar`` over all steps of a run, across ``fit`` segments."""

    def __init__(self, bar: keras.utils.Progbar | None) -> None:
        super().__init__()
        self.bar = bar
        self.offset = 0

    def on_train_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        if self.bar is not None:
            values = [(k, float(v)) for k, v in (logs or {}).items()
                      if k in ("discriminator_loss", "generator_loss", "sga_lambda")]
            self.bar.update(self.offset + batch + 1, values=values)


def _evaluate(model: MLPGAN, x_real: tf.Tensor, z: tf.Tensor, n_batches: int
              ) -> tuple[tuple[float, float], np.ndarray]:
    samples = model.generator(z, training=False)
    d_losses, g_losses = [], []
    for x_b, z_b in zip(tf.split(x_real, n_batches), tf.split(z, n_batches)):
        losses = gan_losses(model.discriminator, model.generator, x_b, z_b)
        d_losses.append(float(losses["discriminator"]))
        g_losses.append(float(losses["generator"]))
    return (float(np.mean(d_losses)), float(np.mean(g_losses))), samples.numpy()


def train_with_snapshots(
    optimizer: keras.optimizers.Optimizer,
    config: GanConfig,
    *,
    seed: int = 0,
    on_snapshot: Callable[[Snapshot, MLPGAN], None] | None = None,
    verbose: int = 1,
    jit_compile: bool = False,
    checkpoint_dir: str | os.PathLike[str] | None = None,
) -> tuple[MLPGAN, list[Snapshot]]:
    """Train :class:`MLPGAN` with ``optimizer`` for ``config.steps`` steps, with snapshots.

    Seeds Keras (``keras.utils.set_random_seed(seed)``), so that runs with the same seed start
    from the same weights whatever the optimizer. Snapshots are taken at
    ``config.snapshot_steps()`` (step 0 is before the first update; step k after k updates)
    on evaluation data drawn once: ``eval_batches`` batches of real samples and of z, the
    same for every snapshot (the seed's ``ztest``). Training runs in ``fit`` calls of
    ``snapshot_every`` steps on :func:`tfgames.datasets.step_dataset`; the train step is
    traced once.

    Args:
        optimizer: a fresh Keras or tfgames optimizer (see
            :func:`tfgames.lab.experiments.registry.make_optimizer`).
        config: sizes and schedule.
        seed: weights, training noise and evaluation noise seed.
        on_snapshot: called with each :class:`Snapshot` and the model as soon as the
            snapshot is taken (e.g. to draw more samples from ``model.generator``).
        verbose: 1 for a progress bar updated in place, 2 for one line per snapshot
            segment, 0 for none.
        jit_compile: compile the train step with XLA.
        checkpoint_dir: where to save the model (weights, every optimizer's state, the noise
            stream) and the snapshot at every snapshot step, and to resume from. If the folder
            holds the checkpoints of an interrupted run with the same ``config``, ``seed``
            and optimizer, training continues after the last one exactly as if it had not
            been interrupted: the saved snapshots are replayed through ``on_snapshot`` (each
            with the model as it was at that step) and the wall time goes on from the saved
            value. A checkpoint of a different run is an error.

    Returns:
        ``(model, snapshots)``.

    Raises:
        ValueError: ``checkpoint_dir`` holds the checkpoints of a different run.
    """
    keras.utils.set_random_seed(seed)
    model = MLPGAN(config, seed=seed)
    # The experiments record divergence (non-finite losses are stored as null and flagged)
    # instead of stopping at it.
    model.check_finite = False
    model.compile(optimizer=optimizer, jit_compile=jit_compile)
    n_eval = config.eval_batches * config.batch_size
    x_eval = model.sample_real(n_eval, seed + 10_007)
    z_eval = keras.random.normal((n_eval, config.z_dim), seed=seed + 20_011)
    checkpoints = None if checkpoint_dir is None else _Checkpoints(
        Path(checkpoint_dir), config, seed, optimizer)

    snapshots: list[Snapshot] = []
    start = time.perf_counter()

    def record(shot: Snapshot, at: MLPGAN) -> None:
        snapshots.append(shot)
        if on_snapshot is not None:
            on_snapshot(shot, at)

    def snap(step: int, logs: dict[str, float]) -> None:
        losses, samples = _evaluate(model, x_eval, z_eval, config.eval_batches)
        train_losses = ((logs["discriminator_loss"], logs["generator_loss"]) if logs
                        else None)
        shot = Snapshot(step, losses, train_losses, samples, time.perf_counter() - start,
                        logs)
        if checkpoints is not None:
            checkpoints.save(model, shot)
        record(shot, model)

    steps = config.snapshot_steps()
    restored = None
    if checkpoints is not None and checkpoints.saved:
        for shot, at in checkpoints.restore():
            record(shot, at)
            restored = at
    if restored is not None:
        model = restored
        model.check_finite = False
        model.jit_compile = jit_compile
        start -= snapshots[-1].wall_time_s
        log.info("resumed from %s at step %d", checkpoints.folder, snapshots[-1].step)
    else:
        snap(0, {})
    bar = None
    if verbose:
        bar = keras.utils.Progbar(
            config.steps, verbose=1 if verbose == 1 else 2,
            stateful_metrics=["discriminator_loss", "generator_loss", "sga_lambda"],
        )
    progress = _Progress(bar)
    for begin, end in zip(steps[:-1], steps[1:]):
        if begin < snapshots[-1].step:
            continue
        progress.offset = begin
        history = model.fit(datasets.step_dataset(end - begin), epochs=1, verbose=0, shuffle=False,
                            callbacks=[progress])
        snap(end, {k: float(v[-1]) for k, v in history.history.items()})
    return model, snapshots


def _write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """``write(tmp)`` to a unique temporary name beside ``path`` (same suffix), fsync, then
    rename it to ``path`` (:func:`tfgames.atomic.write_atomically`): a reader never sees a
    half-written file, and concurrent writers never share a temporary file.
    """
    write_atomically(path, write)


_DAMAGED = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)


def _without_names(config: Any) -> Any:
    """A serialized Keras object without its ``name`` entries (counters like ``sgd_2``)."""
    if isinstance(config, Mapping):
        return {k: _without_names(v) for k, v in config.items() if k != "name"}
    if isinstance(config, (list, tuple)):
        return [_without_names(v) for v in config]
    return config


class _Checkpoints:
    """The snapshots of one run and the model at each: ``step_<k>.keras``, ``step_<k>.npy``
    (samples) and ``state.json`` (the run's identity and the snapshots' numbers), every file
    written to a temporary name first, ``state.json`` last.
    """

    def __init__(self, folder: Path, config: GanConfig, seed: int,
                 optimizer: keras.optimizers.Optimizer) -> None:
        self.folder = folder
        self.identity = jsonable({
            "config": asdict(config), "seed": seed,
            "optimizer": _without_names(keras.saving.serialize_keras_object(optimizer)),
        })
        self.state_path = folder / "state.json"
        self.saved: list[dict[str, Any]] = []
        self.damaged: list[str] = []
        if self.state_path.exists():
            try:
                state = json.loads(self.state_path.read_text())
                state["snapshots"]
            except (ValueError, KeyError, TypeError) as error:
                raise ValueError(
                    f"The checkpoint index {self.state_path} is damaged ({error}); it is only "
                    "replaced atomically, so something else wrote it. Delete the folder "
                    f"{folder} to start this run over."
                ) from None
            theirs = {k: state.get(k) for k in self.identity}
            if theirs != self.identity:
                differ = sorted(k for k in self.identity if theirs[k] != self.identity[k])
                raise ValueError(
                    f"The checkpoints in {folder} are of a different run (their {differ} "
                    f"differ from this run's): theirs {[theirs[k] for k in differ]}, this "
                    f"run's {[self.identity[k] for k in differ]}. Delete the folder or "
                    "choose another output folder."
                )
            self.saved = state["snapshots"]

    def save(self, model: MLPGAN, shot: Snapshot) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"step_{shot.step}"
        if not all(np.all(np.isfinite(v.numpy())) for v in model.weights):
            log.warning("step %d: weights are not finite; no checkpoint written (a resumed "
                        "run restarts from the last finite one)", shot.step)
            return
        _write_atomically(self.folder / f"{name}.keras", model.save)
        _write_atomically(self.folder / f"{name}.npy", lambda tmp: np.save(tmp, shot.samples))
        self.saved.append(jsonable({
            "step": shot.step, "losses": shot.losses, "train_losses": shot.train_losses,
            "wall_time_s": shot.wall_time_s, "train_logs": shot.train_logs,
        }))
        text = json.dumps({**self.identity, "snapshots": self.saved}, indent=1) + "\n"
        _write_atomically(self.state_path, lambda tmp: tmp.write_text(text))

    def restore(self) -> Iterator[tuple[Snapshot, MLPGAN]]:
        """Every saved snapshot with the model at its step (the last one ready to train on)."""
        def number(value: Any) -> float:
            return math.nan if value is None else float(value)

        for index, row in enumerate(self.saved):
            name = f"step_{row['step']}"
            path = self.folder / f"{name}.keras"
            try:
                at = keras.models.load_model(path)
                path = self.folder / f"{name}.npy"
                samples = np.load(path)
            except _DAMAGED as error:
                # Fall back to the last good checkpoint: the run continues from there.
                previous = "none: starting over" if index == 0 else self.saved[index - 1]["step"]
                message = (f"checkpoint {path} is damaged or missing ({type(error).__name__}: "
                           f"{str(error)[:200]}); resuming from the previous good checkpoint "
                           f"({previous})")
                log.warning(message)
                warnings.warn(message, RuntimeWarning, stacklevel=2)
                self.damaged.append(str(path))
                del self.saved[index:]
                return
            train = row["train_losses"]
            yield Snapshot(
                row["step"], tuple(number(v) for v in row["losses"]),
                None if train is None else tuple(number(v) for v in train),
                samples, row["wall_time_s"],
                {k: number(v) for k, v in row["train_logs"].items()},
            ), at


def jsonable(value: Any) -> Any:
    """``value`` with NumPy scalars/arrays as Python objects and non-finite floats as None."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


_LOCKS: dict[str, FolderLock] = {}


def _check_folder(folder: Path) -> None:
    """``folder`` must be a folder or creatable as one."""
    for parent in [folder, *folder.parents]:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(
                    f"Output folder {str(folder)!r} cannot be used: {str(parent)!r} is a "
                    "file, not a folder. Choose another output folder."
                )
            break
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(
            f"Output folder {str(folder)!r} cannot be created ({error.strerror}). Choose "
            "another output folder."
        ) from None


def _lock(folder: Path) -> FolderLock:
    """This process's lock on ``folder``, held until the process ends (the kernel releases it
    then, also on a crash).
    """
    key = str(folder.resolve())
    if key in _LOCKS:  # the same process writes the folder again (e.g. tests, notebooks)
        _LOCKS.pop(key).release()
    lock = FolderLock(folder).acquire()
    _LOCKS[key] = lock
    return lock


@dataclass
class RunRecord:
    """An experiment's metrics, rewritten atomically to ``path`` at every :meth:`save`.

    Non-finite floats are stored as ``null`` (strict JSON); every record that can hold one
    also says whether its values are finite.
    """

    path: Path
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def start(cls, out: str | os.PathLike[str], experiment: str, **meta: Any) -> RunRecord:
        """A record for ``experiment`` in the folder ``out`` (created), with run metadata.

        Before writing anything it takes the folder's lock (:class:`tfgames.atomic.FolderLock`:
        a second run into the folder is refused at once, naming the holder; a crashed run's
        lock is free) and, when the folder holds the checkpoints of a run (``--resume``),
        checks that they are this run's: a different run is refused before ``metrics.json``
        is touched.

        Raises:
            tfgames.atomic.FolderLocked: another live run writes into ``out``.
            ValueError: ``out`` is not a usable folder, or holds a different run's
                checkpoints.
        """
        folder = Path(out)
        _check_folder(folder)
        _lock(folder)
        path = folder / "metrics.json"
        if (folder / "checkpoints").is_dir() and path.exists():
            try:
                theirs = json.loads(path.read_text())
            except ValueError as error:
                raise ValueError(
                    f"{path} is damaged ({error}) and {folder / 'checkpoints'} holds "
                    "checkpoints: this cannot be checked to be the same run. Delete the "
                    "folder or choose another output folder."
                ) from None
            ours = jsonable({"experiment": experiment,
                             **{k: v for k, v in meta.items() if k != "command"}})
            differ = sorted(k for k in ours if theirs.get(k) != ours[k])
            if differ:
                raise ValueError(
                    f"Output folder {str(folder)!r} holds the checkpoints and metrics of a "
                    f"different run (its {differ} differ: theirs "
                    f"{[theirs.get(k) for k in differ]}, this run's "
                    f"{[ours[k] for k in differ]}). Nothing was written. Resume with the "
                    "same settings, or choose another output folder."
                )
        data = {
            "experiment": experiment,
            **meta,
            "versions": {"tfgames": tfgames.__version__, "tensorflow": tf.__version__,
                         "keras": keras.__version__, "python": sys.version.split()[0]},
            "devices": [d.device_type for d in tf.config.list_logical_devices()],
            "runs": {},
        }
        record = cls(folder / "metrics.json", data)
        record.save()
        return record

    def save(self) -> None:
        """Write the record (to a temporary file first, then rename)."""
        text = json.dumps(jsonable(self.data), indent=1, allow_nan=False) + "\n"
        _write_atomically(self.path, lambda tmp: tmp.write_text(text))
