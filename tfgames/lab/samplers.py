"""Lab samplers: synthetic GAN data, a 4x4 grid and a ring of Gaussians, and N(0, I).

The samplers return float32 tensors built with ``keras.random`` ops, so they can be called
inside a ``tf.function`` train step; pass a ``keras.random.SeedGenerator`` to get fresh,
reproducible noise at every step. Drive ``fit`` with
:func:`tfgames.datasets.step_dataset` when the data are sampled inside ``train_step``.

References:
    Balduzzi, Racaniere, Martens, Foerster, Tuyls and Graepel (2018). The mechanics of
    n-player differentiable games. ICML. (4x4 grid and 75-dimensional Gaussian experiments.)
    Metz, Poole, Pfau and Sohl-Dickstein (2017). Unrolled generative adversarial networks.
    ICLR. (Ring of 8 Gaussians.)
    Santurkar, Schmidt and Madry (2018). A classification-based study of covariate shift
    in GAN distributions. ICML. (High-dimensional Gaussian.)
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from tfgames.datasets import check_positive_int as _check_positive_int

__all__ = [
    "GRID_CENTRES",
    "RING_CENTRES",
    "gaussian_batch",
    "grid_batch",
    "ring_batch",
]

Seed = keras.random.SeedGenerator | int | None

# The 16 centres {+-0.5, +-1.5}^2 in the order of the SGA notebook (read-only, float32).
GRID_CENTRES: np.ndarray = np.array(
    [
        [1.5, 1.5],
        [1.5, 0.5],
        [1.5, -0.5],
        [1.5, -1.5],
        [0.5, 1.5],
        [0.5, 0.5],
        [0.5, -0.5],
        [0.5, -1.5],
        [-1.5, 1.5],
        [-1.5, 0.5],
        [-1.5, -0.5],
        [-1.5, -1.5],
        [-0.5, 1.5],
        [-0.5, 0.5],
        [-0.5, -0.5],
        [-0.5, -1.5],
    ],
    dtype=np.float32,
)
GRID_CENTRES.setflags(write=False)


def _check_non_negative(name: str, value: float) -> None:
    if not np.isfinite(value) or value < 0:
        raise ValueError(
            f"Argument `{name}` must be a finite number >= 0. Received: {name}={value!r}"
        )


def _check_seed(seed: Seed) -> None:
    if seed is None or isinstance(seed, keras.random.SeedGenerator):
        return
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(
            "Argument `seed` must be a `keras.random.SeedGenerator`, an int or None; pass "
            "a SeedGenerator to get fresh noise at every call inside a tf.function. "
            f"Received: seed={seed!r} of type {type(seed).__name__}"
        )


def RING_CENTRES(n: int = 8, radius: float = 1.0) -> np.ndarray:  # noqa: N802
    """Centres of ``n`` Gaussians evenly spaced on a circle.

    mu_k = radius * (sin(theta_k), cos(theta_k)),  theta_k = 2 pi k / n,  k = 0, ..., n - 1.

    The angles exclude the endpoint 2 pi, so the ``n`` centres are distinct. (The unrolled-GAN
    notebook of Metz et al. used ``np.linspace(0, 2 pi, n)``, which places the first and the
    last centre at the same point and yields only ``n - 1`` modes.)

    Args:
        n: number of mixture components, >= 1.
        radius: radius of the circle, > 0.

    Returns:
        A float32 array of shape ``(n, 2)``; the first centre is ``(0, radius)`` and the
        centres run clockwise.

    References:
        Metz, Poole, Pfau and Sohl-Dickstein (2017). Unrolled generative adversarial
        networks. ICLR.
    """
    _check_positive_int("n", n)
    if not np.isfinite(radius) or radius <= 0:
        raise ValueError(
            f"Argument `radius` must be a finite number > 0. Received: radius={radius!r}"
        )
    thetas = np.linspace(0.0, 2.0 * np.pi, int(n), endpoint=False)
    return np.stack([radius * np.sin(thetas), radius * np.cos(thetas)], axis=1).astype(
        np.float32
    )


def grid_batch(batch_size: int, seed: Seed = None, *, std: float = 0.02) -> tf.Tensor:
    """A batch from the 4x4 grid mixture of Gaussians, with the centres tiled in order.

    x_i = mu_{i mod 16} + std * eps_i,  eps_i ~ N(0, I_2),  mu = ``GRID_CENTRES``.

    As in the SGA experiments, the component of each row is not random: the 16 centres are
    repeated in order (``np.tile(GRID_CENTRES, (batch_size // 16 + 1, 1))[:batch_size]``), so
    a batch of a multiple of 16 holds every mode equally often. The default ``std = 0.02`` is
    the seed notebook's ``sigma * 0.2`` with ``sigma = 0.1``.

    Args:
        batch_size: number of samples, >= 1.
        seed: a ``keras.random.SeedGenerator`` (fresh noise at every call, also inside a
            ``tf.function``), an int (the same noise at every call), or None (Keras' global
            seed generator).
        std: standard deviation of each component, >= 0.

    Returns:
        A float32 tensor of shape ``(batch_size, 2)``.

    References:
        Balduzzi et al. (2018). The mechanics of n-player differentiable games. ICML,
        Section 5 (4x4 mixture of Gaussians).
    """
    _check_positive_int("batch_size", batch_size)
    _check_non_negative("std", std)
    _check_seed(seed)
    tiled = np.tile(GRID_CENTRES, (batch_size // 16 + 1, 1))[:batch_size]
    noise = keras.random.normal((batch_size, 2), dtype="float32", seed=seed)
    return tf.constant(tiled, dtype=tf.float32) + float(std) * noise


def ring_batch(
    batch_size: int,
    std: float = 0.01,
    radius: float = 1.0,
    seed: Seed = None,
    *,
    n_modes: int = 8,
) -> tf.Tensor:
    """A batch from the ring mixture of Gaussians, one uniformly drawn component per sample.

    x_i = mu_{c_i} + std * eps_i,  c_i ~ Uniform{0, ..., n_modes - 1},  eps_i ~ N(0, I_2),
    with mu = ``RING_CENTRES(n_modes, radius)``.

    Args:
        batch_size: number of samples, >= 1.
        std: standard deviation of each component, >= 0.
        radius: radius of the ring, > 0.
        seed: a ``keras.random.SeedGenerator`` (fresh samples at every call, also inside a
            ``tf.function``), an int (the same samples at every call), or None (Keras'
            global seed generator).
        n_modes: number of components, >= 1.

    Returns:
        A float32 tensor of shape ``(batch_size, 2)``.

    References:
        Metz, Poole, Pfau and Sohl-Dickstein (2017). Unrolled generative adversarial
        networks. ICLR.
    """
    _check_positive_int("batch_size", batch_size)
    _check_non_negative("std", std)
    _check_seed(seed)
    centres = tf.constant(RING_CENTRES(n_modes, radius), dtype=tf.float32)
    # Distinct int seeds for the two draws, so that components and noise are not coupled.
    noise_seed = seed + 1 if isinstance(seed, (int, np.integer)) else seed
    components = keras.random.randint((batch_size,), 0, int(n_modes), dtype="int32", seed=seed)
    noise = keras.random.normal((batch_size, 2), dtype="float32", seed=noise_seed)
    return tf.gather(centres, components) + float(std) * noise


def gaussian_batch(batch_size: int, dim: int = 75, seed: Seed = None) -> tf.Tensor:
    """A batch from the standard Gaussian N(0, I_dim).

    x_i = eps_i,  eps_i ~ N(0, I_dim). The covariance has every singular value equal to 1,
    which ``tfgames.lab.metrics.covariance_spectrum`` measures on generated samples.

    Args:
        batch_size: number of samples, >= 1.
        dim: dimension, >= 1; 75 in the SGA experiment.
        seed: a ``keras.random.SeedGenerator``, an int or None, as in ``grid_batch``.

    Returns:
        A float32 tensor of shape ``(batch_size, dim)``.

    References:
        Santurkar, Schmidt and Madry (2018). A classification-based study of covariate shift
        in GAN distributions. ICML.
        Balduzzi et al. (2018). The mechanics of n-player differentiable games. ICML.
    """
    _check_positive_int("batch_size", batch_size)
    _check_positive_int("dim", dim)
    _check_seed(seed)
    return keras.random.normal((batch_size, int(dim)), dtype="float32", seed=seed)
