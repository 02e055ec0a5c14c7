"""An experiment's record: ``metrics.json`` in its output folder, rewritten atomically.

- :class:`RunRecord`: the metrics, written to ``metrics.json`` after every snapshot, so that an
  interrupted run leaves its partial results; :meth:`RunRecord.start` takes the folder's lock
  and refuses a folder that holds a different run's checkpoints.
- :func:`jsonable`: NumPy values as Python ones and non-finite floats as ``null``.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

import tfgames
from tfgames.atomic import FolderLock, write_atomically

__all__ = ["RunRecord", "jsonable"]


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
        write_atomically(self.path, lambda tmp: tmp.write_text(text))
