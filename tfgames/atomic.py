"""Crash-safe files: atomic replacement, durable writes and one-writer folder locks.

POSIX gives three guarantees that the helpers here build on:

- ``os.replace(tmp, path)`` within one file system is atomic: a reader (or a process started
  after a crash) sees the old file or the new one, never a mix;
- ``os.fsync`` on a file makes its bytes durable, and ``fsync`` on the folder makes the rename
  durable, so that after a power cut the name points to complete bytes;
- an ``fcntl.flock`` lock is released by the kernel when its holder dies, even by ``kill -9``.

:func:`write_atomically` writes to a unique temporary name in the target's folder, fsyncs it,
renames it over the target and fsyncs the folder. :class:`FolderLock` holds an exclusive lock
on ``<folder>/.lock`` (holding the holder's pid, host and start time) for as long as a run
writes into the folder.

Fault injection (for tests): when the environment variable ``TFGAMES_FAULT_AT`` is an integer
k, the k-th :func:`fault_point` reached by the process ends it at once with ``os._exit(17)``
(no cleanup, like ``kill -9``); ``TFGAMES_FAULT_LOG`` names a file to which every point reached
is appended. The points sit inside every write of :func:`write_atomically` (after half the
bytes, before the fsync, before and after the rename).
"""

from __future__ import annotations

import datetime
import errno
import fcntl
import json
import os
import socket
import uuid
from collections.abc import Callable
from pathlib import Path

__all__ = ["FolderLock", "FolderLocked", "fault_point", "fsync_folder", "write_atomically"]

_FAULTS_SEEN = [0]


def fault_point(name: str) -> None:
    """A place where a test may kill the process (see the module docstring); else nothing."""
    target = os.environ.get("TFGAMES_FAULT_AT")
    if not target:
        return
    _FAULTS_SEEN[0] += 1
    log = os.environ.get("TFGAMES_FAULT_LOG")
    if log:
        with open(log, "a") as f:
            f.write(f"{_FAULTS_SEEN[0]} {name}\n")
    if _FAULTS_SEEN[0] == int(target):
        os._exit(17)


def fsync_folder(folder: str | os.PathLike[str]) -> None:
    """Make the renames and creations in ``folder`` durable (no-op where unsupported)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def temporary_name(path: Path) -> Path:
    """A unique temporary name beside ``path`` with the same suffix (several writers of one
    path never share a temporary file).
    """
    suffix = "".join(path.suffixes[-2:]) if path.name.endswith(".weights.h5") else path.suffix
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp{suffix}")


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: str | os.PathLike[str], write: Callable[[Path], None]) -> None:
    """``write(tmp)`` to a unique temporary name beside ``path``, fsync it, rename it to
    ``path`` (atomic) and fsync the folder: after a crash at any instant ``path`` holds its old
    complete content or its new complete content. A failed ``write`` leaves no temporary file.
    """
    path = Path(path)
    tmp = temporary_name(path)
    try:
        write(tmp)
        if os.environ.get("TFGAMES_FAULT_AT"):
            fault_point(f"written {path.name}")
            size = tmp.stat().st_size
            if _FAULTS_SEEN[0] + 1 == int(os.environ["TFGAMES_FAULT_AT"]):
                # A death in the middle of the write: the temporary file holds half the bytes.
                with open(tmp, "r+b") as f:
                    f.truncate(size // 2)
            fault_point(f"half-written {path.name}")
        _fsync_file(tmp)
        fault_point(f"fsynced {path.name}")
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    fault_point(f"renamed {path.name}")
    fsync_folder(path.parent)


class FolderLocked(RuntimeError):
    """Raised by :class:`FolderLock` when another live process holds the folder."""


class FolderLock:
    """An exclusive lock on ``folder`` for one run: ``<folder>/.lock`` locked with ``flock``.

    The lock file holds the holder's pid, host and start time (JSON). A second process that
    asks for the lock is refused at once with :class:`FolderLocked` naming the holder. A
    crashed holder's lock is released by the kernel (``flock`` locks die with their process),
    so the next run takes it over safely: the stale file is only rewritten once the new run
    holds the lock. Use as a context manager or call :meth:`acquire` / :meth:`release`.
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.path = self.folder / ".lock"
        self._fd: int | None = None

    def holder(self) -> dict:
        """What the lock file says about its holder (may be a crashed run's)."""
        try:
            return json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            return {}

    def acquire(self) -> FolderLock:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(fd)
            if error.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            who = self.holder()
            raise FolderLocked(
                f"Output folder {str(self.folder)!r} is in use by another run (pid "
                f"{who.get('pid', '?')} on host {who.get('host', '?')}, started "
                f"{who.get('started', '?')}; lock file {self.path}). Wait for it to finish, "
                "or choose another output folder."
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({
            "pid": os.getpid(), "host": socket.gethostname(),
            "started": datetime.datetime.now(datetime.timezone.utc).isoformat(
                timespec="seconds"),
        }).encode())
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, 0)
            except OSError:
                pass
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
