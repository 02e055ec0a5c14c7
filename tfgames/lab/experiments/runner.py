"""The experiments' training loop: ``fit`` in segments with snapshots, checkpoints and resume.

:func:`train_with_snapshots` trains :class:`~tfgames.lab.experiments.gan.MLPGAN` on a dummy
step data set, taking a snapshot (evaluation losses and generated samples on fixed noise)
before training and at regular steps, with a progress bar over all steps, and with
``checkpoint_dir`` resumes an interrupted run exactly. Every optimizer trains under
:func:`tfgames.repeatability.fixed_sum_order` (see :func:`train_with_snapshots`).

The pieces it is built from live beside it: the GAN and the run sizes in
:mod:`tfgames.lab.experiments.gan`, the snapshots and checkpoints in
:mod:`tfgames.lab.experiments.checkpoints`, the ``metrics.json`` record in
:mod:`tfgames.lab.experiments.records`; their names are importable from here too.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tfgames import datasets, repeatability
from tfgames.lab.experiments import registry
from tfgames.lab.experiments.checkpoints import Checkpoints, Snapshot
from tfgames.lab.experiments.gan import MLPGAN, GanConfig, gan_losses, mlp, preset_config
from tfgames.lab.experiments.records import RunRecord, jsonable

__all__ = [
    "MLPGAN",
    "GanConfig",
    "RunOptions",
    "RunRecord",
    "Snapshot",
    "gan_losses",
    "jsonable",
    "mlp",
    "preset_config",
    "start_experiment",
    "train_recorded",
    "train_with_snapshots",
]

log = logging.getLogger("tfgames.lab.experiments")


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
    from the same weights whatever the optimizer. Every optimizer trains under
    :func:`tfgames.repeatability.fixed_sum_order` (the gradient tape's sums added in a fixed
    order, Grappler's arithmetic optimizer off): otherwise the ``AddN`` nodes of a step can
    sum in an order that depends on thread scheduling, and two runs of the same settings could
    differ in the last bit, and then diverge (an interrupted extragradient run once resumed
    one bit apart in CI; docs/scaling.md). Snapshots are taken at
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
    with repeatability.fixed_sum_order():
        return _train(optimizer, config, seed=seed, on_snapshot=on_snapshot, verbose=verbose,
                      jit_compile=jit_compile, checkpoint_dir=checkpoint_dir)


def _train(optimizer, config, *, seed=0, on_snapshot=None, verbose=1, jit_compile=False,
           checkpoint_dir=None):
    """:func:`train_with_snapshots` in the summation-order setting in force (same arguments)."""
    keras.utils.set_random_seed(seed)
    model = MLPGAN(config, seed=seed)
    # The experiments record divergence (non-finite losses are stored as null and flagged)
    # instead of stopping at it.
    model.check_finite = False
    model.compile(optimizer=optimizer, jit_compile=jit_compile)
    n_eval = config.eval_batches * config.batch_size
    x_eval = model.sample_real(n_eval, seed + 10_007)
    z_eval = keras.random.normal((n_eval, config.z_dim), seed=seed + 20_011)
    checkpoints = None if checkpoint_dir is None else Checkpoints(
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


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunOptions:
    """The keyword arguments of every experiment's ``run(out, **options)``.

    :func:`tfgames.lab.experiments.mog.run`, :func:`tfgames.lab.experiments.thresholds.run`
    and :func:`tfgames.lab.experiments.gaussian75.run` (and ``tfgames run <experiment>``) take
    the same keywords, declared once here; an unknown keyword raises ``TypeError``.

    Attributes:
        preset: ``"paper"``, ``"quick"`` or ``"smoke"`` (the experiment's ``PRESETS``).
        optimizers: registry names (list or comma-separated); None for the preset's default.
        steps: training steps instead of the preset's (snapshots keep their spacing, capped
            at ``steps``).
        seed: seed of weights, data and noise.
        verbose: progress display (1 bar, 2 lines, 0 none).
        command: the command line, stored in the metrics.
        resume: save the model and the snapshot at every snapshot step in
            ``out/checkpoints/<run>`` and, if the folder holds those of an interrupted run of
            the same settings, continue it exactly (see :func:`train_with_snapshots`).
    """

    preset: str = "quick"
    optimizers: Sequence[str] | str | None = None
    steps: int | None = None
    seed: int = 0
    verbose: int = 1
    command: str | None = None
    resume: bool = False


def start_experiment(
    experiment: str,
    out: str | os.PathLike[str],
    presets: Mapping[str, GanConfig],
    default_optimizers: Mapping[str, Sequence[str]],
    options: RunOptions,
    **meta: Any,
) -> tuple[GanConfig, list[str], RunRecord]:
    """The set-up every experiment's ``run`` begins with.

    Args:
        experiment: the experiment's name (stored in the record).
        out: the output folder (created and locked by :meth:`RunRecord.start`).
        presets: the experiment's ``PRESETS``.
        default_optimizers: the experiment's ``DEFAULT_OPTIMIZERS`` (preset -> names).
        options: the run's :class:`RunOptions`: ``preset``, ``optimizers`` (``None`` for the
            preset's default), ``steps`` (:func:`preset_config`), ``seed`` and ``command``
            (both stored) are used here.
        **meta: more run metadata, stored after ``config`` and ``optimizers``.

    Returns:
        ``(config, names, record)``: the preset's :class:`GanConfig`, the resolved optimizer
        names and the started :class:`RunRecord`.
    """
    config = preset_config(presets, options.preset, options.steps)
    names = registry.resolve_optimizer_names(
        default_optimizers[options.preset] if options.optimizers is None else options.optimizers)
    record = RunRecord.start(out, experiment, preset=options.preset, seed=options.seed,
                             command=options.command, config=dataclasses.asdict(config),
                             optimizers=names, **meta)
    return config, names, record


def train_recorded(
    record: RunRecord,
    key: str,
    optimizer: str,
    config: GanConfig,
    *,
    seed: int,
    on_snapshot: Callable[[dict[str, Any], Snapshot, MLPGAN], None],
    verbose: int = 1,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    final: Callable[[dict[str, Any]], Mapping[str, Any]] | None = None,
) -> tuple[dict[str, Any], list[Snapshot]]:
    """Train with the registry's ``optimizer``, recording into ``record.data["runs"][key]``.

    The entry (optimizer, description, learning rate, seed, ``status`` "running", an empty
    ``snapshots`` list) is saved before training; ``on_snapshot(entry, shot, model)`` records
    every snapshot of :func:`train_with_snapshots`; at the end the entry gets the items of
    ``final(entry)``, ``wall_time_s``, ``seconds_per_step`` and ``status`` "done", and is saved.

    Returns:
        ``(entry, snapshots)``.
    """
    entry: dict[str, Any] = {
        "optimizer": optimizer,
        "description": registry.OPTIMIZERS[optimizer].description,
        "learning_rate": config.learning_rate,
        "seed": seed,
        "status": "running",
        "snapshots": [],
    }
    record.data["runs"][key] = entry
    record.save()
    _, shots = train_with_snapshots(
        registry.make_optimizer(optimizer, config.learning_rate), config, seed=seed,
        on_snapshot=lambda shot, model: on_snapshot(entry, shot, model), verbose=verbose,
        checkpoint_dir=checkpoint_dir,
    )
    if final is not None:
        entry.update(final(entry))
    entry["wall_time_s"] = shots[-1].wall_time_s
    entry["seconds_per_step"] = shots[-1].wall_time_s / config.steps
    entry["status"] = "done"
    record.save()
    return entry, shots
