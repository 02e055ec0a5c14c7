"""Callbacks for game training."""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path

import keras

from tfgames.atomic import fault_point, fsync_folder, write_atomically

__all__ = ["BackupAndRestore", "TerminateOnDivergence", "TrainingDiverged"]


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
        self._last_batch = -1

    def on_train_begin(self, logs=None) -> None:
        self._step = 0
        self._last_batch = -1

    def on_epoch_begin(self, epoch, logs=None) -> None:
        self._epoch = epoch
        self._last_batch = -1

    def on_train_batch_end(self, batch, logs=None) -> None:
        # Under steps_per_execution = k Keras calls this once per k steps with the index of
        # the last batch run: count the steps run, not the calls.
        first = self._step + 1
        self._step += batch - self._last_batch
        self._last_batch = batch
        logs = logs or {}
        # The players' losses first: a NaN loss makes every diagnostic NaN too, and the
        # player is what the user needs to know.
        names = [n for n in logs if n.endswith("_loss")] + [
            n for n in logs if not n.endswith("_loss")]
        for name in names:
            if self.monitor is not None and name not in self.monitor:
                continue
            value = float(logs[name])
            if math.isfinite(value) and abs(value) <= self.threshold:
                continue
            what = f"player {name[: -len('_loss')]!r}'s loss" if name.endswith("_loss") else name
            where = (f"step {self._step}" if first == self._step else
                     f"one of steps {first}-{self._step} (one execution of "
                     f"steps_per_execution={self._step - first + 1} steps; the logged values "
                     "are only seen at its end)")
            self.model.stop_training = True
            raise TrainingDiverged(
                f"Training diverged at {where} (epoch {self._epoch + 1}, batch "
                f"{batch + 1}): {what} ({name}) = {value}, "
                + ("not finite" if not math.isfinite(value) else f"|value| > {self.threshold}")
                + ". Training stopped before any later callback of this step ran, so "
                "checkpoints written by callbacks listed after this one hold the last good "
                "state. Lower the learning rate, or use a game optimizer (tfgames.SGA, "
                "tfgames.Consensus) if the dynamics cycle."
            )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class BackupAndRestore(keras.callbacks.Callback):
    """Back up the training state at every epoch end and resume from it: safe to kill anywhere.

    The callback to use with :class:`tfgames.GameModel` (``keras.callbacks.BackupAndRestore``
    can leave a half-written ``latest.weights.h5`` that no restart can open, and a death
    between its weights write and its metadata write resumes from the wrong epoch). Each backup
    is one atomic unit:

    1. the model's weights (with every optimizer's state and the noise stream of
       ``seed_generator``) go to ``epoch-<k>.weights.h5`` through a unique temporary file,
       fsync and an atomic rename;
    2. then ``backup.json`` -- the epoch and the name and SHA-256 of that weights file -- is
       replaced atomically the same way. It is the commit point: until it is renamed, a restart
       resumes from the previous backup, whose files are deleted only afterwards.

    At the start of ``fit`` the backup named by ``backup.json`` is checked against its hash and
    loaded, and training goes on from its epoch: a run killed at any instant (``kill -9``, power
    loss after the fsyncs) and restarted ends bitwise equal to an uninterrupted run, given a
    deterministic input pipeline. Temporary and orphaned files of a dead run are removed. A
    damaged backup raises an error naming the file. Keras' mid-epoch ``save_freq`` is not
    offered: Keras resumes at epoch boundaries only, so a mid-epoch backup cannot resume
    exactly.

    Args:
      backup_dir: folder of the backups, used by this run only.
      delete_checkpoint: delete the backups when ``fit`` finishes.
    """

    MANIFEST = "backup.json"

    def __init__(self, backup_dir: str | os.PathLike[str], *,
                 delete_checkpoint: bool = True) -> None:
        super().__init__()
        if not backup_dir or not isinstance(backup_dir, (str, os.PathLike)):
            raise ValueError(
                "Argument `backup_dir` must be a non-empty folder path. Received: "
                f"backup_dir={backup_dir!r}."
            )
        self.backup_dir = Path(backup_dir)
        if self.backup_dir.exists() and not self.backup_dir.is_dir():
            raise ValueError(
                f"Argument `backup_dir` must be a folder, but {str(self.backup_dir)!r} is a "
                "file. Pass a folder path (it is created if missing)."
            )
        self.delete_checkpoint = bool(delete_checkpoint)

    @property
    def manifest_path(self) -> Path:
        return self.backup_dir / self.MANIFEST

    def _manifest(self) -> dict | None:
        if not self.manifest_path.exists():
            return None
        try:
            manifest = json.loads(self.manifest_path.read_text())
            return {"epoch": int(manifest["epoch"]), "weights": str(manifest["weights"]),
                    "sha256": str(manifest["sha256"])}
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(
                f"The backup manifest {self.manifest_path} is damaged ({error}); it is only "
                "ever replaced atomically, so something else wrote it. Delete the folder "
                f"{self.backup_dir} to start over."
            ) from None

    def _clean(self, keep: str | None) -> None:
        """Remove temporary files and weights files that no manifest names."""
        for path in self.backup_dir.iterdir():
            if path.name in (self.MANIFEST, keep):
                continue
            if path.name.startswith(".") or path.name.endswith(".weights.h5"):
                try:
                    path.unlink()
                except OSError:
                    pass

    def on_train_begin(self, logs=None) -> None:
        if not self.backup_dir.is_dir():
            return
        manifest = self._manifest()
        self._clean(manifest and manifest["weights"])
        if manifest is None:
            return
        weights = self.backup_dir / manifest["weights"]
        if not weights.is_file() or _sha256(weights) != manifest["sha256"]:
            raise ValueError(
                f"The backup weights file {weights} named by {self.manifest_path} is missing "
                "or damaged (its SHA-256 differs from the manifest's). Delete the folder "
                f"{self.backup_dir} to start over."
            )
        model = self.model
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        model.load_weights(weights)
        model._initial_epoch = manifest["epoch"]

    def on_epoch_end(self, epoch, logs=None) -> None:
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        name = f"epoch-{epoch + 1}.weights.h5"
        path = self.backup_dir / name
        write_atomically(path, lambda tmp: self.model.save_weights(tmp, overwrite=True))
        text = json.dumps({"epoch": epoch + 1, "weights": name, "sha256": _sha256(path)})
        write_atomically(self.manifest_path, lambda tmp: tmp.write_text(text))
        fault_point("backup committed")
        self._clean(keep=name)

    def on_train_end(self, logs=None) -> None:
        if self.delete_checkpoint and self.backup_dir.is_dir():
            # The manifest first: a death during the deletion leaves no backup that names
            # deleted files.
            self.manifest_path.unlink(missing_ok=True)
            fsync_folder(self.backup_dir)
            fault_point("backup manifest deleted")
            self._clean(keep=None)
            try:
                self.backup_dir.rmdir()
            except OSError:
                pass
