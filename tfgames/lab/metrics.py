"""Sample-based diagnostics for GAN experiments (NumPy): mode coverage, loss equilibrium, spectra.

References:
    Metz, Poole, Pfau and Sohl-Dickstein (2017). Unrolled generative adversarial networks.
    ICLR.
    Srivastava, Valkov, Russell, Gutmann and Sutton (2017). VEEGAN: Reducing mode collapse in
    GANs using implicit variational learning. NeurIPS.
    Lin, Khetan, Fanti and Oh (2018). PacGAN: The power of two samples in generative
    adversarial networks. NeurIPS.
    Goodfellow et al. (2014). Generative adversarial nets. NeurIPS.
    Santurkar, Schmidt and Madry (2018). A classification-based study of covariate shift in
    GAN distributions. ICML.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "covariance_spectrum",
    "loss_equilibrium_distance",
    "mode_statistics",
    "spectrum_error",
]

# Fraction of a perfect generator's per-mode count below which a mode counts as missed.
_COVERAGE_FRACTION = 0.2


def _as_points(name: str, value: ArrayLike, *, dim: int | None = None) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] < 1 or (dim is not None and array.shape[1] != dim):
        expected = f"(n, {dim})" if dim is not None else "(n, d)"
        raise ValueError(
            f"Argument `{name}` must be a 2-D array of shape {expected} with n >= 1. "
            f"Received: {name} with shape {array.shape}"
        )
    return array


def mode_statistics(
    samples: ArrayLike,
    centres: ArrayLike,
    std: float,
    n_std: float = 3.0,
    *,
    min_count: int | None = None,
) -> dict[str, Any]:
    """Mode coverage, share of high-quality samples and mode KL for a mixture of Gaussians.

    Each sample x_i is assigned to its nearest centre c(i) = argmin_k ||x_i - mu_k||; it is
    *high quality* when ||x_i - mu_{c(i)}|| <= n_std * std (Metz et al. 2017; Srivastava et al.
    2017). With n_k the number of high-quality samples assigned to mode k (K modes, N samples,
    H = sum_k n_k):

    * ``high_quality_share`` = H / N.
    * ``modes_covered`` = #{k : n_k >= min_count}. By default
      min_count = max(1, ceil(0.2 * N / K)): a mode counts as covered when it receives at
      least one fifth of the N / K samples a perfect generator would put there, the
      convention of Lin et al. (2018, PacGAN) for the 2-D grid. It ignores a few stray
      samples, which the "at least one high-quality sample" rule (``min_count=1``,
      VEEGAN) counts as a mode.
    * ``kl_modes`` = KL(p || U) = sum_k p_k ln(K p_k), p_k = n_k / H, U uniform over the
      K modes (Metz et al. 2017): 0 for a perfectly balanced histogram, ln K when every
      high-quality sample lies in one mode. When H = 0 (no high-quality sample) it is ln K,
      the supremum of KL(p || U), so the metric stays finite and never rewards a generator
      that misses every mode; ``high_quality_share == 0`` tells that case apart.

    Args:
        samples: generated samples, shape ``(N, d)``, N >= 1. Non-finite rows count as
            samples that are not high quality.
        centres: mode centres, shape ``(K, d)``, K >= 1.
        std: standard deviation of each mixture component, > 0.
        n_std: radius of the high-quality ball in units of ``std``, > 0.
        min_count: high-quality samples a mode needs to count as covered, >= 1; None
            for the default above.

    Returns:
        A dict with ``modes_covered`` (int), ``high_quality_share`` (float in [0, 1]),
        ``kl_modes`` (float in [0, ln K]), ``mode_counts`` (int array of shape ``(K,)``,
        the n_k) and ``min_count`` (the threshold used).

    References:
        Metz et al. (2017). Unrolled generative adversarial networks. ICLR.
        Srivastava et al. (2017). VEEGAN. NeurIPS.
        Lin et al. (2018). PacGAN. NeurIPS.
    """
    centres_arr = _as_points("centres", centres)
    samples_arr = _as_points("samples", samples, dim=centres_arr.shape[1])
    if not np.isfinite(std) or std <= 0:
        raise ValueError(f"Argument `std` must be a finite number > 0. Received: std={std!r}")
    if not np.isfinite(n_std) or n_std <= 0:
        raise ValueError(
            f"Argument `n_std` must be a finite number > 0. Received: n_std={n_std!r}"
        )
    n_samples, n_modes = samples_arr.shape[0], centres_arr.shape[0]
    if min_count is None:
        min_count = max(1, math.ceil(_COVERAGE_FRACTION * n_samples / n_modes))
    elif isinstance(min_count, bool) or not isinstance(min_count, (int, np.integer)) or (
        min_count < 1
    ):
        raise ValueError(
            "Argument `min_count` must be an integer >= 1, or None for the default "
            f"max(1, ceil(0.2 * N / K)). Received: min_count={min_count!r}"
        )

    sq_dist = np.stack(
        [((samples_arr - centre) ** 2).sum(axis=1) for centre in centres_arr], axis=1
    )
    finite = np.isfinite(sq_dist).all(axis=1)
    nearest = np.argmin(np.where(np.isfinite(sq_dist), sq_dist, np.inf), axis=1)
    nearest_dist = np.sqrt(sq_dist[np.arange(n_samples), nearest])
    high_quality = finite & (nearest_dist <= n_std * std)

    counts = np.bincount(nearest[high_quality], minlength=n_modes)
    total = int(counts.sum())
    if total == 0:
        kl = math.log(n_modes)
    else:
        p = counts[counts > 0] / total
        kl = float(np.sum(p * np.log(n_modes * p)))
    return {
        "modes_covered": int(np.sum(counts >= min_count)),
        "high_quality_share": total / n_samples,
        "kl_modes": max(kl, 0.0),
        "mode_counts": counts,
        "min_count": int(min_count),
    }


def loss_equilibrium_distance(disc_loss: float, gen_loss: float) -> float:
    """Euclidean distance of the (discriminator, generator) losses from the GAN equilibrium.

    d = sqrt((L_D - 2 ln 2)^2 + (L_G - ln 2)^2).

    At the equilibrium of Goodfellow et al. (2014) the discriminator outputs D = 1/2
    everywhere, so the discriminator loss L_D = -E[ln D(x)] - E[ln(1 - D(G(z)))] (the sum of
    the real and fake cross-entropies, as in the SGA notebook) equals 2 ln 2, and the
    non-saturating generator loss L_G = -E[ln D(G(z))] equals ln 2. A small d is necessary,
    not sufficient, for convergence: a collapsed generator facing a confused discriminator
    also has d near 0.

    Args:
        disc_loss: discriminator loss L_D (mean over the batch, real + fake terms).
        gen_loss: non-saturating generator loss L_G (mean over the batch).

    Returns:
        The distance d >= 0 as a float (nan when a loss is nan).

    References:
        Goodfellow et al. (2014). Generative adversarial nets. NeurIPS, Proposition 1 and
        Theorem 1.
    """
    log_2 = math.log(2.0)
    return float(math.hypot(float(disc_loss) - 2.0 * log_2, float(gen_loss) - log_2))


def covariance_spectrum(samples: ArrayLike) -> np.ndarray:
    """Singular values of the sample covariance, in decreasing order.

    Sigma = (1/N) sum_i (x_i - m)(x_i - m)^T, m = (1/N) sum_i x_i; returns the singular values
    s_1 >= ... >= s_d of Sigma (its eigenvalues, since Sigma is symmetric positive
    semi-definite), as ``compute_eigenvalue`` in the SGA notebook. Mode dropping in a
    Gaussian target shows as small trailing values (Santurkar et al. 2018).

    Args:
        samples: shape ``(N, d)``, N >= 2.

    Returns:
        A float64 array of shape ``(d,)``, decreasing.

    References:
        Santurkar, Schmidt and Madry (2018). A classification-based study of covariate shift
        in GAN distributions. ICML.
        Balduzzi et al. (2018). The mechanics of n-player differentiable games. ICML.
    """
    array = _as_points("samples", samples)
    if array.shape[0] < 2:
        raise ValueError(
            "Argument `samples` must hold at least 2 rows to estimate a covariance. "
            f"Received: samples with shape {array.shape}"
        )
    centred = array - array.mean(axis=0, keepdims=True)
    cov = centred.T @ centred / array.shape[0]
    return np.linalg.svd(cov, compute_uv=False)


def spectrum_error(singular_values: ArrayLike, target: float | ArrayLike = 1.0) -> float:
    """Root-mean-square deviation of a covariance spectrum from a target spectrum.

    e = sqrt((1/d) sum_j (s_j - t_j)^2), with t_j = ``target`` (a scalar, or an array sorted
    like ``singular_values``). With the default target 1 this is the distance, per
    direction, from the spectrum of the identity covariance of N(0, I_d).

    Args:
        singular_values: s, shape ``(d,)``, d >= 1, e.g. from ``covariance_spectrum``.
        target: t, a scalar or an array of shape ``(d,)``.

    Returns:
        The RMS error e >= 0 as a float.

    References:
        Balduzzi et al. (2018). The mechanics of n-player differentiable games. ICML,
        Section 5 (75-dimensional Gaussian).
    """
    s = np.asarray(singular_values, dtype=np.float64)
    if s.ndim != 1 or s.size < 1:
        raise ValueError(
            "Argument `singular_values` must be a non-empty 1-D array. "
            f"Received: singular_values with shape {s.shape}"
        )
    t = np.asarray(target, dtype=np.float64)
    if t.ndim > 1 or (t.ndim == 1 and t.shape != s.shape):
        raise ValueError(
            "Argument `target` must be a scalar or a 1-D array shaped like `singular_values` "
            f"{s.shape}. Received: target with shape {t.shape}"
        )
    return float(np.sqrt(np.mean((s - t) ** 2)))
