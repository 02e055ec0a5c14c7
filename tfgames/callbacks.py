"""Callbacks for game training."""

from __future__ import annotations

import math
from typing import Sequence

import keras

__all__ = ["TerminateOnDivergence", "TrainingDiverged"]


class TrainingDiverged(RuntimeError):
    """Raised by :class:`TerminateOnDivergence`; the message names step, player and quantity."""


class TerminateOnDivergence(keras.callbacks.Callback):
    """Stop training at the first step whose logged quantities are NaN, infinite or too large.

    After every training step, each logged quantity q (each player's ``<player>_loss`` and the
    optimizer's diagnostics such as ``xi_norm``) is checked: training stops with
    :class:`TrainingDiverged` when q is not finite or |q| > ``threshold``. The message names the
    global step (counted from the start of this ``fit`` call, 1-based), the epoch and batch, the
    player (for a loss) and the quantity. The exception is raised inside the step's callbacks,
    so callbacks listed after this one (e.g. ``keras.callbacks.ModelCheckpoint``) do not save
    the diverged state: put this callback first and the last good checkpoint stays intact.
    Logged values are running means over the epoch, so a single NaN step shows at once.

    Args:
      threshold: largest accepted absolute value.
      monitor: names of the logged quantities to check; default all.
    """

    def __init__(self, threshold: float = 1e6, monitor: Sequence[str] | None = None) -> None:
        super().__init__()
        if not threshold > 0:
            raise ValueError(
                f"Argument `threshold` must be > 0. Received: threshold={threshold!r}."
            )
        self.threshold = float(threshold)
        self.monitor = None if monitor is None else list(monitor)
        self._epoch = 0
        self._step = 0

    def on_train_begin(self, logs=None) -> None:
        self._step = 0

    def on_epoch_begin(self, epoch, logs=None) -> None:
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None) -> None:
        self._step += 1
        for name, value in (logs or {}).items():
            if self.monitor is not None and name not in self.monitor:
                continue
            value = float(value)
            if math.isfinite(value) and abs(value) <= self.threshold:
                continue
            what = f"player {name[: -len('_loss')]!r}'s loss" if name.endswith("_loss") else name
            self.model.stop_training = True
            raise TrainingDiverged(
                f"Training diverged at step {self._step} (epoch {self._epoch + 1}, batch "
                f"{batch + 1}): {what} ({name}) = {value}, "
                + ("not finite" if not math.isfinite(value) else f"|value| > {self.threshold}")
                + ". Training stopped before any later callback of this step ran, so "
                "checkpoints written by callbacks listed after this one hold the last good "
                "state. Lower the learning rate, or use a game optimizer (tfgames.SGA, "
                "tfgames.Consensus) if the dynamics cycle."
            )
