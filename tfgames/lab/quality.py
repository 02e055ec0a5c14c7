"""Offline sample-quality metrics from the features of an extractor you supply.

Every metric compares real samples with generated ones through a feature map phi (a Keras model
or any callable, e.g. a loaded InceptionV3, or the offline MNIST classifier's penultimate layer,
:func:`mnist_feature_extractor`). Nothing is downloaded: the extractor is a model in memory or
a file on disk.

- FID (Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
  Equilibrium", NeurIPS 2017): ||mu_r - mu_g||^2 + tr(S_r + S_g - 2 (S_r S_g)^{1/2}) of the
  feature means and covariances. Streamed: :class:`FeatureStatistics` keeps running sums
  (float64, shifted by the first batch's mean), never the samples.
- KID (Binkowski et al., "Demystifying MMD GANs", ICLR 2018): the unbiased MMD^2 estimate with
  the cubic polynomial kernel k(x, y) = (x^T y / d + 1)^3, averaged over random subsets.
- Inception Score's formula (Salimans et al., "Improved Techniques for Training GANs",
  NeurIPS 2016): exp(E_x KL(p(y|x) || p(y))) from class probabilities, over splits; streamed
  by :class:`InceptionScoreAccumulator` (running sums of sum_y p log p and of p).
- Improved precision and recall (Kynkaanniemi et al., "Improved Precision and Recall Metric
  for Assessing Generative Models", NeurIPS 2019): k-NN balls around each feature vector.
- Density and coverage (Naeem et al., "Reliable Fidelity and Diversity Metrics for Generative
  Models", ICML 2020).

Memory: FID and IS keep O(d^2) and O(classes) numbers whatever the sample count. KID, precision
/recall and density/coverage need the feature matrices (N x d float64 each); their distances
are computed in row blocks of ``block_size`` rows, so the extra memory is
``block_size * max(N_real, N_fake)`` float64 numbers (8 * 1024 * 10,000 bytes = 82 MB for the
defaults and 10,000 samples).

InceptionV3 recipe (offline): place Keras' ImageNet weights file on disk (e.g.
``inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5`` downloaded once elsewhere), then

    base = keras.applications.InceptionV3(weights="/path/to/..._notop.h5", include_top=False,
                                          pooling="avg", input_shape=(299, 299, 3))
    def phi(x):  # x in [0, 1], shape (N, H, W, 3)
        x = keras.ops.image.resize(x * 255.0, (299, 299))
        return base(keras.applications.inception_v3.preprocess_input(x), training=False)

and pass ``phi`` as the extractor (2048 pool features). The numbers are then comparable with
each other but not exactly with the TF1 ``pool_3`` features of the original FID code (a
different graph and resize).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

__all__ = [
    "FeatureStatistics",
    "InceptionScoreAccumulator",
    "density_coverage",
    "extract_features",
    "feature_statistics",
    "fid",
    "frechet_distance",
    "inception_score",
    "kid",
    "load_extractor",
    "mmd2_unbiased",
    "mnist_feature_extractor",
    "precision_recall",
    "trace_sqrt_product",
]

Extractor = Callable[[Any], Any]


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"Argument `{name}` must be an integer >= 1. Received: {name}={value!r}.")
    return int(value)


def _features_2d(name: str, x: Any, min_rows: int = 1) -> np.ndarray:
    array = np.asarray(keras.ops.convert_to_numpy(x) if not isinstance(x, np.ndarray) else x,
                       dtype=np.float64)
    if array.ndim != 2 or array.shape[0] < min_rows or array.shape[1] < 1:
        raise ValueError(
            f"Argument `{name}` must be a 2-D feature matrix (N, d) with N >= {min_rows}. "
            f"Received: shape {array.shape}."
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"Argument `{name}` must be finite. Received non-finite features.")
    return array


# -- Extractors --------------------------------------------------------------------------------

def load_extractor(extractor: Any, *, layer: str | None = None) -> Extractor:
    """A feature map from a Keras model, a callable or a saved model file.

    Args:
      extractor: a ``keras.Model``, any callable mapping a batch to (N, d) features, or the
        path of a ``.keras`` / ``.h5`` model file (loaded with ``keras.models.load_model``,
        ``compile=False``).
      layer: for a model, the name of the layer whose output is the feature (a sub-model from
        the model's inputs to that layer's output); default: the model's output.

    Returns:
      A callable ``phi(batch) -> (N, d)`` tensor.
    """
    if isinstance(extractor, (str, os.PathLike)):
        path = os.fspath(extractor)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"Extractor file not found: {path!r}. Pass an existing .keras or .h5 model file, "
                "a keras.Model or a callable."
            )
        extractor = keras.models.load_model(path, compile=False)
    if layer is not None:
        if not isinstance(extractor, keras.Model):
            raise TypeError(
                f"Argument `layer` needs a keras.Model extractor. Received: {type(extractor)}."
            )
        names = [l.name for l in extractor.layers]
        if layer not in names:
            raise ValueError(f"Argument `layer` must be one of {names}. Received: {layer!r}.")
        extractor = keras.Model(extractor.inputs, extractor.get_layer(layer).output)
    if not callable(extractor):
        raise TypeError(
            "Argument `extractor` must be a keras.Model, a callable or a model file path. "
            f"Received: an object of type {type(extractor).__name__}."
        )
    return extractor


def mnist_feature_extractor(cache_dir: str | os.PathLike | None = None, *, data: Any = None,
                            epochs: int = 10) -> keras.Model:
    """The offline MNIST classifier's penultimate layer (64 ReLU features) as an extractor.

    The classifier is :func:`tfgames.lab.mnist.mnist_classifier` (trained once on offline
    digits and cached; same ``cache_dir``, ``data`` and ``epochs`` arguments). The features are
    the output of its last hidden ``Dense(64, relu)`` layer, for images in [0, 1] of shape
    (N, 28, 28, 1).
    """
    from tfgames.lab import mnist

    classifier = mnist.mnist_classifier(cache_dir=cache_dir, data=data, epochs=epochs)
    dense = [l for l in classifier.layers if isinstance(l, keras.layers.Dense)]
    return keras.Model(classifier.inputs, dense[-2].output, name="mnist_penultimate")


def _batches(samples: Any, batch_size: int) -> Iterable[Any]:
    """Batches from an array (sliced), a tf.data.Dataset or any iterable of batches."""
    if isinstance(samples, (np.ndarray, tf.Tensor)) or hasattr(samples, "__array__"):
        array = samples
        n = int(array.shape[0])
        for start in range(0, n, batch_size):
            yield array[start:start + batch_size]
        return
    yield from samples


class _Compiled:
    """phi(batch) in one tf.function, with the per-batch sums of features and outer products
    computed in-graph in float64.
    """

    def __init__(self, extractor: Extractor) -> None:
        self.extractor = extractor

        @tf.function(reduce_retracing=True)
        def features(batch):
            return tf.cast(extractor(batch), tf.float64)

        self.features = features

    def __call__(self, batch: Any) -> np.ndarray:
        out = np.asarray(self.features(tf.convert_to_tensor(batch)))
        if out.ndim != 2:
            raise ValueError(
                f"The extractor must return (N, d) features. Received shape {out.shape}; flatten "
                "or pool them (e.g. pooling='avg')."
            )
        return out


def extract_features(samples: Any, extractor: Any, *, batch_size: int = 256) -> np.ndarray:
    """phi(x) for all samples, batch by batch, as one (N, d) float64 array (for KID, PR, DC)."""
    batch_size = _positive_int("batch_size", batch_size)
    phi = _Compiled(load_extractor(extractor))
    parts = [phi(batch) for batch in _batches(samples, batch_size)]
    if not parts:
        raise ValueError("Argument `samples` holds no samples.")
    return np.concatenate(parts)


# -- FID ---------------------------------------------------------------------------------------

class FeatureStatistics:
    """Running mean and covariance of feature vectors, without keeping them.

    Sums are kept shifted by the first batch's mean c (s1 = sum (x - c), s2 = sum (x - c)(x - c)^T,
    float64) so that large feature offsets do not cancel catastrophically. Then
    mu = c + s1 / N and S = (s2 - s1 s1^T / N) / (N - 1) (the unbiased sample covariance, as
    ``numpy.cov``).
    """

    def __init__(self) -> None:
        self.count = 0
        self.shift: np.ndarray | None = None
        self.s1: np.ndarray | None = None
        self.s2: np.ndarray | None = None

    def update(self, features: Any) -> FeatureStatistics:
        """Add a batch of features (N, d)."""
        x = _features_2d("features", features)
        if self.shift is None:
            self.shift = x.mean(axis=0)
            d = x.shape[1]
            self.s1, self.s2 = np.zeros(d), np.zeros((d, d))
        elif x.shape[1] != self.shift.shape[0]:
            raise ValueError(
                f"Feature dimension changed: {self.shift.shape[0]} before, {x.shape[1]} now."
            )
        centred = x - self.shift
        self.s1 += centred.sum(axis=0)
        self.s2 += centred.T @ centred
        self.count += x.shape[0]
        return self

    @property
    def mean(self) -> np.ndarray:
        self._check(1)
        return self.shift + self.s1 / self.count

    @property
    def covariance(self) -> np.ndarray:
        self._check(2)
        return (self.s2 - np.outer(self.s1, self.s1) / self.count) / (self.count - 1)

    def _check(self, n: int) -> None:
        if self.count < n:
            raise ValueError(
                f"FeatureStatistics needs at least {n} feature vectors. Received: {self.count}."
            )


def feature_statistics(samples: Any, extractor: Any = None, *, batch_size: int = 256
                       ) -> FeatureStatistics:
    """Streamed :class:`FeatureStatistics` of phi(samples); ``extractor=None`` uses the samples
    themselves as features. ``samples``: an array (sliced into batches), a ``tf.data.Dataset``
    or any iterable of batches.
    """
    batch_size = _positive_int("batch_size", batch_size)
    phi = _Compiled(load_extractor(extractor)) if extractor is not None else None
    stats = FeatureStatistics()
    for batch in _batches(samples, batch_size):
        stats.update(phi(batch) if phi is not None else batch)
    return stats


def _psd_sqrt(s: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(0.5 * (s + s.T))
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def trace_sqrt_product(s1: Any, s2: Any) -> float:
    """tr((S1 S2)^{1/2}) for symmetric positive semi-definite S1, S2.

    S1 S2 is similar to S1^{1/2} S2 S1^{1/2} (symmetric PSD), so its eigenvalues are real and
    >= 0 and tr((S1 S2)^{1/2}) = sum_i sqrt(lambda_i(S1^{1/2} S2 S1^{1/2})). Computed with two
    symmetric eigendecompositions (``numpy.linalg.eigh``), negative rounding clipped to 0; no
    complex arithmetic and no iterative matrix square root.
    """
    a, b = np.asarray(s1, np.float64), np.asarray(s2, np.float64)
    root = _psd_sqrt(a)
    values = np.linalg.eigvalsh(root @ b @ root)
    return float(np.sum(np.sqrt(np.clip(values, 0.0, None))))


def frechet_distance(mu1: Any, sigma1: Any, mu2: Any, sigma2: Any) -> float:
    """d^2 = ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^{1/2}), the squared Frechet
    (2-Wasserstein) distance of N(mu1, S1) and N(mu2, S2) (Dowson and Landau 1982), FID's
    formula (Heusel et al. 2017).
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(
        np.asarray(sigma2, np.float64))
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(
            "frechet_distance needs means of shape (d,) and covariances of shape (d, d). "
            f"Received: {mu1.shape}, {s1.shape}, {mu2.shape}, {s2.shape}."
        )
    diff = mu1 - mu2
    value = diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * trace_sqrt_product(s1, s2)
    return float(max(value, 0.0))


def fid(real: Any, fake: Any, extractor: Any = None, *, batch_size: int = 256) -> float:
    """FID between two sample sets, streamed (only means and covariances are kept).

    Args:
      real: real samples, or a :class:`FeatureStatistics` already computed for them (reuse it
        across evaluations).
      fake: generated samples, or a :class:`FeatureStatistics`.
      extractor: the feature map (:func:`load_extractor`); ``None``: the samples are features.
      batch_size: batch size of the extractor.
    """
    stats = [s if isinstance(s, FeatureStatistics) else
             feature_statistics(s, extractor, batch_size=batch_size) for s in (real, fake)]
    return frechet_distance(stats[0].mean, stats[0].covariance, stats[1].mean,
                            stats[1].covariance)


# -- KID ---------------------------------------------------------------------------------------

def _polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: Any, y: Any) -> float:
    """Unbiased MMD^2 with k(a, b) = (a^T b / d + 1)^3:
    sum_{i != j} k(x_i, x_j) / (m (m - 1)) + sum_{i != j} k(y_i, y_j) / (n (n - 1))
    - 2 sum_{i, j} k(x_i, y_j) / (m n).
    """
    x, y = _features_2d("x", x, 2), _features_2d("y", y, 2)
    m, n = x.shape[0], y.shape[0]
    kxx, kyy, kxy = _polynomial_kernel(x, x), _polynomial_kernel(y, y), _polynomial_kernel(x, y)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1))
                 + (kyy.sum() - np.trace(kyy)) / (n * (n - 1)) - 2.0 * kxy.mean())


def kid(real_features: Any, fake_features: Any, *, subsets: int = 100,
        subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance: mean and standard deviation of the unbiased MMD^2 (cubic
    polynomial kernel, :func:`mmd2_unbiased`) over ``subsets`` random subsets of
    ``min(subset_size, N_real, N_fake)`` real and fake feature vectors each, drawn without
    replacement within a subset (Binkowski et al. 2018's defaults: 100 subsets of 1000).

    Args:
      real_features: (N_r, d) features (:func:`extract_features`).
      fake_features: (N_g, d) features.
      subsets: number of subsets.
      subset_size: vectors per subset (capped at the smaller set size).
      seed: seed of the subset draws.

    Returns:
      ``(mean, std)`` of the subset estimates (std 0 for one subset).
    """
    x = _features_2d("real_features", real_features, 2)
    y = _features_2d("fake_features", fake_features, 2)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"Feature dimensions differ: {x.shape[1]} and {y.shape[1]}.")
    subsets = _positive_int("subsets", subsets)
    size = min(_positive_int("subset_size", subset_size), x.shape[0], y.shape[0])
    rng = np.random.default_rng(seed)
    values = [mmd2_unbiased(x[rng.choice(x.shape[0], size, replace=False)],
                            y[rng.choice(y.shape[0], size, replace=False)])
              for _ in range(subsets)]
    return float(np.mean(values)), float(np.std(values))


# -- Inception Score ----------------------------------------------------------------------------

def _probabilities(probs: Any) -> np.ndarray:
    p = _features_2d("probs", probs)
    if p.min() < 0.0 or not np.allclose(p.sum(axis=1), 1.0, atol=1e-4):
        raise ValueError(
            "Argument `probs` must hold class probabilities (rows >= 0 summing to 1). Received "
            f"row sums in [{p.sum(1).min():.6g}, {p.sum(1).max():.6g}], minimum {p.min():.6g}. "
            "Apply a softmax to logits first."
        )
    return p


def _xlogx(p: np.ndarray) -> np.ndarray:
    return np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)


class InceptionScoreAccumulator:
    """Streamed Inception Score: per split, running sums of sum_y p log p and of p(y|x).

    E_x KL(p(y|x) || p(y)) = E_x[sum_y p(y|x) log p(y|x)] - sum_y p(y) log p(y) with
    p(y) = E_x p(y|x), so a split needs only these two sums and its count. Sample i (counted
    over all updates) goes to split i mod ``splits`` (the original code cuts consecutive
    chunks; for exchangeable samples the two agree in distribution).
    """

    def __init__(self, splits: int = 10) -> None:
        self.splits = _positive_int("splits", splits)
        self.count = 0
        self.neg_entropy = np.zeros(self.splits)
        self.marginal: np.ndarray | None = None
        self.counts = np.zeros(self.splits, dtype=np.int64)

    def update(self, probs: Any) -> InceptionScoreAccumulator:
        p = _probabilities(probs)
        if self.marginal is None:
            self.marginal = np.zeros((self.splits, p.shape[1]))
        which = (self.count + np.arange(p.shape[0])) % self.splits
        np.add.at(self.neg_entropy, which, _xlogx(p).sum(axis=1))
        np.add.at(self.marginal, which, p)
        np.add.at(self.counts, which, 1)
        self.count += p.shape[0]
        return self

    def result(self) -> tuple[float, float]:
        """``(mean, std)`` over the splits of exp(E_x KL(p(y|x) || p(y)))."""
        if np.any(self.counts < 1):
            raise ValueError(
                f"Every split needs at least one sample: {self.splits} splits, {self.count} "
                "samples. Use fewer splits or more samples."
            )
        scores = []
        for s in range(self.splits):
            marginal = self.marginal[s] / self.counts[s]
            kl = self.neg_entropy[s] / self.counts[s] - _xlogx(marginal).sum()
            scores.append(math.exp(max(kl, 0.0)))
        return float(np.mean(scores)), float(np.std(scores))


def inception_score(probs: Any, *, splits: int = 10) -> tuple[float, float]:
    """exp(E_x KL(p(y|x) || p(y))) from class probabilities (N, classes), Salimans et al.
    (2016): the samples are cut into ``splits`` consecutive chunks, the score is computed on
    each (p(y) = the chunk's mean) and ``(mean, std)`` over the chunks is returned. It is 1
    when every sample has the same p(y|x) and the number of classes when the predictions are
    one-hot and balanced.
    """
    p = _probabilities(probs)
    splits = _positive_int("splits", splits)
    if p.shape[0] < splits:
        raise ValueError(f"Need at least `splits`={splits} samples. Received {p.shape[0]}.")
    scores = []
    for chunk in np.array_split(p, splits):
        marginal = chunk.mean(axis=0)
        kl = _xlogx(chunk).sum(axis=1).mean() - _xlogx(marginal).sum()
        scores.append(math.exp(max(kl, 0.0)))
    return float(np.mean(scores)), float(np.std(scores))


# -- k-NN manifold metrics ----------------------------------------------------------------------

def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between the rows of a and b (float64, negative rounding -> 0)."""
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.sqrt(np.clip(sq, 0.0, None))


def _knn_radii(x: np.ndarray, k: int, block_size: int) -> np.ndarray:
    """Distance from each row of x to its k-th nearest other row (itself excluded)."""
    if x.shape[0] <= k:
        raise ValueError(
            f"The k-NN radius needs more than k={k} samples. Received: {x.shape[0]}. Lower k or "
            "pass more samples."
        )
    radii = np.empty(x.shape[0])
    for start in range(0, x.shape[0], block_size):
        d = _distances(x[start:start + block_size], x)
        # the k+1 smallest include the point itself (distance 0)
        radii[start:start + block_size] = np.partition(d, k, axis=1)[:, k]
    return radii


def _in_balls(points: np.ndarray, centres: np.ndarray, radii: np.ndarray, block_size: int,
              strict: bool) -> np.ndarray:
    """For each point, how many balls B(centre_i, radius_i) contain it."""
    counts = np.zeros(points.shape[0], dtype=np.int64)
    for start in range(0, points.shape[0], block_size):
        d = _distances(points[start:start + block_size], centres)
        inside = d < radii[None, :] if strict else d <= radii[None, :]
        counts[start:start + block_size] = inside.sum(axis=1)
    return counts


def precision_recall(real_features: Any, fake_features: Any, *, k: int = 3,
                     block_size: int = 1024) -> dict[str, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019).

    The real manifold is the union of the balls B(phi_r, NND_k(phi_r)) (NND_k: the distance to
    the k-th nearest other real feature vector), the fake manifold likewise. precision = share
    of fake vectors inside the real manifold (distance <= radius, as the authors' code);
    recall = share of real vectors inside the fake manifold. Default k = 3 (the paper's).

    Returns:
      ``{"precision": ..., "recall": ...}``.
    """
    x = _features_2d("real_features", real_features, 2)
    y = _features_2d("fake_features", fake_features, 2)
    k, block_size = _positive_int("k", k), _positive_int("block_size", block_size)
    real_radii, fake_radii = _knn_radii(x, k, block_size), _knn_radii(y, k, block_size)
    return {
        "precision": float(np.mean(_in_balls(y, x, real_radii, block_size, False) > 0)),
        "recall": float(np.mean(_in_balls(x, y, fake_radii, block_size, False) > 0)),
    }


def density_coverage(real_features: Any, fake_features: Any, *, k: int = 5,
                     block_size: int = 1024) -> dict[str, float]:
    """Density and coverage (Naeem et al. 2020), with real k-NN balls only.

    density = (1 / (k M)) sum_j sum_i 1[Y_j in B(X_i, NND_k(X_i))] (M fake vectors Y, N real
    X; can exceed 1), coverage = (1 / N) sum_i 1[some Y_j in B(X_i, NND_k(X_i))]. Membership
    is strict (distance < radius), as the authors' ``prdc`` code; default k = 5 (theirs).

    Returns:
      ``{"density": ..., "coverage": ...}``.
    """
    x = _features_2d("real_features", real_features, 2)
    y = _features_2d("fake_features", fake_features, 2)
    k, block_size = _positive_int("k", k), _positive_int("block_size", block_size)
    radii = _knn_radii(x, k, block_size)
    density = _in_balls(y, x, radii, block_size, True).sum() / (k * y.shape[0])
    covered = np.zeros(x.shape[0], dtype=bool)
    for start in range(0, x.shape[0], block_size):
        d = _distances(x[start:start + block_size], y)
        covered[start:start + block_size] = d.min(axis=1) < radii[start:start + block_size]
    return {"density": float(density), "coverage": float(covered.mean())}
