"""Tests for tfgames.lab.metrics: synthetic samples with known answers."""

import math

import numpy as np
import pytest

from tfgames.lab.metrics import (
    covariance_spectrum,
    loss_equilibrium_distance,
    mode_statistics,
    spectrum_error,
)
from tfgames.lab.samplers import GRID_CENTRES

STD = 0.02


def test_all_sixteen_modes_balanced():
    rng = np.random.default_rng(0)
    samples = np.repeat(GRID_CENTRES, 50, axis=0) + rng.uniform(-STD, STD, (800, 2))
    stats = mode_statistics(samples, GRID_CENTRES, STD)
    assert stats["modes_covered"] == 16
    assert stats["high_quality_share"] == 1.0
    assert stats["kl_modes"] == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_array_equal(stats["mode_counts"], np.full(16, 50))
    assert stats["min_count"] == math.ceil(0.2 * 800 / 16)


def test_exactly_one_mode():
    samples = np.tile(GRID_CENTRES[5], (320, 1))
    stats = mode_statistics(samples, GRID_CENTRES, STD)
    assert stats["modes_covered"] == 1
    assert stats["high_quality_share"] == 1.0
    assert stats["kl_modes"] == pytest.approx(math.log(16))
    assert stats["mode_counts"][5] == 320


def test_no_mode_when_all_samples_far_away():
    samples = np.full((100, 2), 10.0)
    stats = mode_statistics(samples, GRID_CENTRES, STD)
    assert stats["modes_covered"] == 0
    assert stats["high_quality_share"] == 0.0
    # Documented convention: no high-quality sample gives the supremum ln K.
    assert stats["kl_modes"] == pytest.approx(math.log(16))


def test_high_quality_share_exact_and_n_std_boundary():
    centre = GRID_CENTRES[0]
    inside = centre + np.array([[2.9 * STD, 0.0], [0.0, -2.0 * STD], [0.0, 0.0]])
    outside = centre + np.array([[3.2 * STD, 0.0], [0.0, 0.3]])
    stats = mode_statistics(np.concatenate([inside, outside]), GRID_CENTRES, STD)
    assert stats["high_quality_share"] == pytest.approx(3 / 5)
    wide = mode_statistics(np.concatenate([inside, outside]), GRID_CENTRES, STD, n_std=4.0)
    assert wide["high_quality_share"] == pytest.approx(4 / 5)


def test_non_finite_samples_are_not_high_quality():
    samples = np.array([GRID_CENTRES[0], [np.nan, 0.0], [np.inf, np.inf], GRID_CENTRES[1]])
    stats = mode_statistics(samples, GRID_CENTRES, STD)
    assert stats["high_quality_share"] == 0.5
    assert stats["mode_counts"].sum() == 2


def test_min_count_threshold_ignores_stray_samples():
    samples = np.concatenate([np.tile(GRID_CENTRES[0], (159, 1)), GRID_CENTRES[1:2]])
    assert mode_statistics(samples, GRID_CENTRES, STD)["modes_covered"] == 1
    assert mode_statistics(samples, GRID_CENTRES, STD, min_count=1)["modes_covered"] == 2


def test_kl_two_balanced_modes_is_log_k_over_two():
    samples = np.concatenate([np.tile(GRID_CENTRES[0], (30, 1)), np.tile(GRID_CENTRES[9], (30, 1))])
    stats = mode_statistics(samples, GRID_CENTRES, STD)
    assert stats["kl_modes"] == pytest.approx(math.log(8))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"std": 0.0}, "`std` must be a finite number > 0"),
        ({"std": STD, "n_std": -1.0}, "`n_std` must be a finite number > 0"),
        ({"std": STD, "min_count": 0}, "`min_count` must be an integer >= 1"),
    ],
)
def test_mode_statistics_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        mode_statistics(np.zeros((4, 2)), GRID_CENTRES, **kwargs)


def test_mode_statistics_rejects_dimension_mismatch():
    with pytest.raises(ValueError, match=r"shape \(n, 2\).*Received: samples with shape \(4, 3\)"):
        mode_statistics(np.zeros((4, 3)), GRID_CENTRES, STD)


def test_loss_equilibrium_distance():
    assert loss_equilibrium_distance(2 * math.log(2), math.log(2)) == 0.0
    assert loss_equilibrium_distance(2 * math.log(2) + 3.0, math.log(2) - 4.0) == pytest.approx(5.0)


def test_covariance_spectrum_of_known_covariance():
    rng = np.random.default_rng(1)
    # Exactly whitened samples, then scaled and rotated: covariance R diag(9, 4, 1) R^T.
    z = rng.normal(size=(2000, 3))
    z -= z.mean(axis=0)
    z = z @ np.linalg.inv(np.linalg.cholesky(z.T @ z / len(z))).T
    rotation, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    samples = (z * np.array([1.0, 3.0, 2.0])) @ rotation.T + 5.0
    np.testing.assert_allclose(covariance_spectrum(samples), [9.0, 4.0, 1.0], rtol=1e-9)


def test_covariance_spectrum_rejects_single_sample():
    with pytest.raises(ValueError, match="at least 2 rows"):
        covariance_spectrum(np.zeros((1, 3)))


def test_spectrum_error():
    assert spectrum_error(np.ones(75)) == 0.0
    assert spectrum_error(np.array([3.0, 1.0, 1.0, 1.0])) == pytest.approx(1.0)
    assert spectrum_error(np.array([2.0, 2.0]), target=np.array([2.0, 0.0])) == pytest.approx(
        math.sqrt(2.0)
    )
    with pytest.raises(ValueError, match="`target` must be a scalar or a 1-D array"):
        spectrum_error(np.ones(3), target=np.ones(2))
