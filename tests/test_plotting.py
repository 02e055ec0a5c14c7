"""Tests for tfgames.lab.plotting: every figure is written as a non-empty PNG."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from tfgames.lab.plotting import density_snapshots, spectrum_plot, vector_field
from tfgames.lab.samplers import GRID_CENTRES

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _assert_png(path):
    data = path.read_bytes()
    assert len(data) > 1000 and data[:8] == PNG_MAGIC


def test_density_snapshots_writes_png(tmp_path):
    rng = np.random.default_rng(0)
    grid = np.repeat(GRID_CENTRES, 20, axis=0) + 0.05 * rng.normal(size=(320, 2))
    collapsed = np.tile(GRID_CENTRES[0], (50, 1))  # singular covariance
    line = np.stack([np.linspace(-1.0, 1.0, 50)] * 2, axis=1)  # LinAlgError in gaussian_kde
    diverged = np.full((10, 2), np.nan)
    path = tmp_path / "sub" / "density.png"
    figure = density_snapshots(
        [(0, rng.normal(size=(200, 2))), (1000, grid), (2000, collapsed), (2500, line),
         (3000, diverged)],
        title="4x4 grid",
        centres=GRID_CENTRES,
        grid_size=40,
        path=path,
    )
    assert isinstance(figure, Figure) and len(figure.axes) == 5
    titles = [ax.get_title() for ax in figure.axes]
    assert titles == ["step 0", "step 1000", "step 2000", "step 2500", "step 3000"]
    _assert_png(path)


def test_density_snapshots_rejects_bad_input():
    with pytest.raises(ValueError, match="at least one"):
        density_snapshots([])
    with pytest.raises(ValueError, match=r"shape \(N, 2\).*\(5, 3\)"):
        density_snapshots([(0, np.zeros((5, 3)))])


def test_spectrum_plot_writes_png(tmp_path):
    path = tmp_path / "spectrum.png"
    figure = spectrum_plot(
        {"SGA": np.linspace(0.8, 1.2, 75), "RMSProp": np.r_[np.full(10, 3.0), np.full(65, 0.01)]},
        reference=1.0,
        title="75-d Gaussian",
        path=path,
    )
    line = figure.axes[0].get_lines()[0]
    assert np.all(np.diff(line.get_ydata()) <= 0)
    _assert_png(path)


def test_vector_field_xy_game_with_trajectory(tmp_path):
    # f(x, y) = x y: player 1 minimises over x, player 2 maximises over y; update -xi = (-y, x).
    def field(x, y):
        return -y, x

    t = np.linspace(0.0, 4.0, 50)
    trajectory = np.stack([np.cos(t) * np.exp(0.1 * t), np.sin(t) * np.exp(0.1 * t)], axis=1)
    path = tmp_path / "field.png"
    figure = vector_field(field, (-2, 2), (-2, 2), {"simultaneous GD": trajectory},
                          grid=21, norm_map=True, title="f(x, y) = xy", path=path)
    assert len(figure.axes) == 3  # field, norm map, colour bar
    _assert_png(path)
    single = vector_field(lambda x, y: (0.0 * x + 1.0, 0.5), (0, 1), (0, 1), grid=5)
    assert len(single.axes) == 1


def test_vector_field_rejects_bad_input():
    with pytest.raises(ValueError, match=r"trajectory must have shape \(T, 2\)"):
        vector_field(lambda x, y: (x, y), (-1, 1), (-1, 1), {"bad": np.zeros((4, 3))})
    with pytest.raises(ValueError, match="`xlim` must be a pair"):
        vector_field(lambda x, y: (x, y), (1, -1), (-1, 1))
    with pytest.raises(ValueError, match="must return a pair"):
        vector_field(lambda x, y: x, (-1, 1), (-1, 1))
