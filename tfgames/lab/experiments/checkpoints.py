"""Snapshots of a training run and the checkpoints a run resumes from.

- :class:`Snapshot`: the state of a run at one step, on fixed evaluation noise.
- :class:`Checkpoints`: the model at every snapshot step (``step_<k>.keras``), its samples
  (``step_<k>.npy``) and ``state.json`` (the run's identity and the snapshots' numbers), each
  written atomically, ``state.json`` last; a damaged checkpoint falls back to the previous one.
"""

from __future__ import annotations

import json
import logging
import math
import warnings
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from tfgames.atomic import write_atomically
from tfgames.lab.experiments.gan import MLPGAN, GanConfig
from tfgames.lab.experiments.records import jsonable

__all__ = ["Checkpoints", "Snapshot"]

log = logging.getLogger("tfgames.lab.experiments")


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



_DAMAGED = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)


def _without_names(config: Any) -> Any:
    """A serialized Keras object without its ``name`` entries (counters like ``sgd_2``)."""
    if isinstance(config, Mapping):
        return {k: _without_names(v) for k, v in config.items() if k != "name"}
    if isinstance(config, (list, tuple)):
        return [_without_names(v) for v in config]
    return config


class Checkpoints:
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
        write_atomically(self.folder / f"{name}.keras", model.save)
        write_atomically(self.folder / f"{name}.npy", lambda tmp: np.save(tmp, shot.samples))
        self.saved.append(jsonable({
            "step": shot.step, "losses": shot.losses, "train_losses": shot.train_losses,
            "wall_time_s": shot.wall_time_s, "train_logs": shot.train_logs,
        }))
        text = json.dumps({**self.identity, "snapshots": self.saved}, indent=1) + "\n"
        write_atomically(self.state_path, lambda tmp: tmp.write_text(text))

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
