"""Figures for GAN and game experiments: sample densities, covariance spectra, vector fields.

Every function builds a ``matplotlib.figure.Figure`` on the non-interactive Agg canvas
(no pyplot, no global state, nothing shown), optionally saves it to ``path`` and returns it.

References:
    Balduzzi, Racaniere, Martens, Foerster, Tuyls and Graepel (2018). The mechanics of
    n-player differentiable games. ICML.
    Mescheder, Nowozin and Geiger (2017). The numerics of GANs. NeurIPS.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from numpy.typing import ArrayLike
from scipy import ndimage, stats

__all__ = ["density_snapshots", "loss_curves", "spectrum_plot", "vector_field"]

BBox = tuple[float, float, float, float]


def _new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    return figure


def _finish(figure: Figure, path: str | os.PathLike[str] | None) -> Figure:
    if path is not None:
        directory = os.path.dirname(os.fspath(path))
        if directory:
            os.makedirs(directory, exist_ok=True)
        figure.savefig(path, dpi=100, bbox_inches="tight")
    return figure


def _check_bbox(name: str, bbox: Sequence[float]) -> BBox:
    values = tuple(float(v) for v in bbox)
    if len(values) != 4 or not values[0] < values[1] or not values[2] < values[3]:
        raise ValueError(
            f"Argument `{name}` must be (xmin, xmax, ymin, ymax) with xmin < xmax and "
            f"ymin < ymax. Received: {name}={tuple(bbox)!r}"
        )
    return values  # type: ignore[return-value]


def _check_limits(name: str, limits: Sequence[float]) -> tuple[float, float]:
    values = tuple(float(v) for v in limits)
    if len(values) != 2 or not values[0] < values[1]:
        raise ValueError(
            f"Argument `{name}` must be a pair (low, high) with low < high. "
            f"Received: {name}={tuple(limits)!r}"
        )
    return values  # type: ignore[return-value]


def _kde_grid(points: np.ndarray, bbox: BBox, grid_size: int) -> tuple[np.ndarray, ...]:
    xs = np.linspace(bbox[0], bbox[1], grid_size)
    ys = np.linspace(bbox[2], bbox[3], grid_size)
    xx, yy = np.meshgrid(xs, ys, indexing="ij")
    cell = max(xs[1] - xs[0], ys[1] - ys[0])
    try:
        kernel = stats.gaussian_kde(points.T)
        if np.linalg.eigvalsh(kernel.covariance).min() >= cell**2:
            return xx, yy, np.reshape(kernel(np.vstack([xx.ravel(), yy.ravel()])), xx.shape)
    except np.linalg.LinAlgError:
        pass
    # Degenerate samples (collapse to a point or a line): the KDE kernel is thinner than a
    # grid cell, so smooth a histogram on the grid with a Gaussian of two cells instead.
    x_edges = np.concatenate([xs - (xs[1] - xs[0]) / 2, [xs[-1] + (xs[1] - xs[0]) / 2]])
    y_edges = np.concatenate([ys - (ys[1] - ys[0]) / 2, [ys[-1] + (ys[1] - ys[0]) / 2]])
    counts, _, _ = np.histogram2d(points[:, 0], points[:, 1], bins=(x_edges, y_edges))
    return xx, yy, ndimage.gaussian_filter(counts, sigma=2.0, mode="constant")


def density_snapshots(
    snapshots: Sequence[tuple[int, ArrayLike]],
    bbox: Sequence[float] = (-2.0, 2.0, -2.0, 2.0),
    *,
    title: str | None = None,
    centres: ArrayLike | None = None,
    grid_size: int = 200,
    cmap: str = "Blues",
    path: str | os.PathLike[str] | None = None,
) -> Figure:
    """Kernel density estimates of 2-D samples at several training steps, side by side.

    Panel j shows p_hat_j(x) = (1/N) sum_i K_h(x - x_i^{(j)}), a Gaussian KDE with Scott's
    bandwidth (``scipy.stats.gaussian_kde``), filled contours on a ``grid_size`` x
    ``grid_size`` grid over ``bbox``, titled with the step. This is the ``kde`` figure of the
    SGA notebook, one panel per snapshot. Non-finite samples are dropped; a panel with
    fewer than 2 finite samples says so instead of a density. When the samples are
    degenerate (the KDE kernel is thinner than a grid cell in some direction, e.g. a
    generator collapsed to a point or a line) the panel shows instead their histogram on
    the grid smoothed by an isotropic Gaussian two cells wide.

    Args:
        snapshots: pairs ``(step, samples)``, samples of shape ``(N, 2)``; at least one.
        bbox: ``(xmin, xmax, ymin, ymax)`` of every panel.
        title: figure title, or None.
        centres: true mode centres, shape ``(K, 2)``, marked with red crosses; or None.
        grid_size: grid points per axis for the density, >= 2.
        cmap: matplotlib colormap name.
        path: where to save the figure (format from the suffix), or None.

    Returns:
        The ``matplotlib.figure.Figure``.

    References:
        Balduzzi et al. (2018). The mechanics of n-player differentiable games. ICML,
        Figure 5 (4x4 mixture of Gaussians).
    """
    if len(snapshots) < 1:
        raise ValueError(
            "Argument `snapshots` must hold at least one (step, samples) pair. "
            f"Received: snapshots={snapshots!r}"
        )
    box = _check_bbox("bbox", bbox)
    if isinstance(grid_size, bool) or not isinstance(grid_size, (int, np.integer)) or (
        grid_size < 2
    ):
        raise ValueError(
            f"Argument `grid_size` must be an integer >= 2. Received: grid_size={grid_size!r}"
        )
    marks = None
    if centres is not None:
        marks = np.asarray(centres, dtype=np.float64)
        if marks.ndim != 2 or marks.shape[1] != 2:
            raise ValueError(
                "Argument `centres` must have shape (K, 2), or be None. "
                f"Received: centres with shape {marks.shape}"
            )
    arrays = []
    for step, samples in snapshots:
        points = np.asarray(samples, dtype=np.float64)
        if points.ndim != 2 or points.shape[1] != 2:
            raise ValueError(
                "Each snapshot must be (step, samples) with samples of shape (N, 2). "
                f"Received: samples with shape {points.shape} at step {step!r}"
            )
        arrays.append((int(step), points[np.isfinite(points).all(axis=1)]))

    n_panels = len(arrays)
    figure = _new_figure(3.0 * n_panels, 3.4 if title else 3.1)
    axes = figure.subplots(1, n_panels, squeeze=False)[0]
    for ax, (step, points) in zip(axes, arrays):
        ax.set_xlim(box[0], box[1])
        ax.set_ylim(box[2], box[3])
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"step {step}", fontsize=10)
        if points.shape[0] < 2:
            ax.text(0.5, 0.5, "no finite samples", ha="center", va="center",
                    transform=ax.transAxes)
        else:
            xx, yy, density = _kde_grid(points, box, int(grid_size))
            ax.contourf(xx, yy, density, levels=12, cmap=cmap)
        if marks is not None:
            ax.scatter(marks[:, 0], marks[:, 1], marker="x", s=14, c="red", linewidths=0.8)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return _finish(figure, path)


def spectrum_plot(
    spectra: Mapping[str, ArrayLike],
    *,
    reference: float | None = None,
    title: str | None = None,
    log_scale: bool = False,
    path: str | os.PathLike[str] | None = None,
) -> Figure:
    """Covariance spectra, singular values in decreasing order, one line per label.

    Plots s_1 >= s_2 >= ... >= s_d against the index j = 1, ..., d for every entry of
    ``spectra`` (as ``compute_eigenvalue`` in the SGA notebook); the values are sorted here,
    so any order is accepted. A dashed line marks ``reference``, e.g. 1 for the identity
    covariance of N(0, I_d).

    Args:
        spectra: label -> singular values, each 1-D and non-empty; at least one entry.
        reference: target singular value drawn as a horizontal line, or None.
        title: axes title, or None.
        log_scale: use a logarithmic y axis.
        path: where to save the figure, or None.

    Returns:
        The ``matplotlib.figure.Figure``.

    References:
        Santurkar, Schmidt and Madry (2018). A classification-based study of covariate shift
        in GAN distributions. ICML.
        Balduzzi et al. (2018). The mechanics of n-player differentiable games. ICML.
    """
    if len(spectra) < 1:
        raise ValueError(
            f"Argument `spectra` must map at least one label to singular values. "
            f"Received: spectra={spectra!r}"
        )
    figure = _new_figure(5.5, 3.8)
    ax = figure.subplots()
    for label, values in spectra.items():
        s = np.asarray(values, dtype=np.float64)
        if s.ndim != 1 or s.size < 1:
            raise ValueError(
                "Each spectrum must be a non-empty 1-D array. "
                f"Received: spectra[{label!r}] with shape {s.shape}"
            )
        ordered = np.sort(s)[::-1]
        ax.plot(np.arange(1, ordered.size + 1), ordered, marker=".", markersize=3,
                linewidth=1.2, label=str(label))
    if reference is not None:
        ax.axhline(float(reference), color="black", linestyle="--", linewidth=0.8,
                   label=f"target {reference:g}")
    if log_scale:
        ax.set_yscale("log")
    ax.set_xlabel("index (decreasing order)")
    ax.set_ylabel("singular value of the covariance")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    figure.tight_layout()
    return _finish(figure, path)


def vector_field(
    fn: Callable[[np.ndarray, np.ndarray], tuple[ArrayLike, ArrayLike]],
    xlim: Sequence[float],
    ylim: Sequence[float],
    trajectories: Mapping[str, ArrayLike] | None = None,
    *,
    grid: int = 41,
    norm_map: bool = False,
    xlabel: str = "x",
    ylabel: str = "y",
    title: str | None = None,
    density: float = 1.5,
    path: str | os.PathLike[str] | None = None,
) -> Figure:
    """Streamlines of the update field of a two-parameter game, with optional trajectories.

    For a game with losses (l_1(x, y), l_2(x, y)) the simultaneous gradient is
    xi(x, y) = (d l_1 / dx, d l_2 / dy); gradient descent follows (u, v) = -xi. ``fn``
    returns (u, v) on a ``grid`` x ``grid`` mesh over ``xlim`` x ``ylim``; the left panel
    draws its streamlines and overlays each trajectory (rows (x_t, y_t), t = 0, ..., T-1;
    start marked by a circle, end by a square). With ``norm_map=True`` a right panel shows
    ||(u, v)|| = sqrt(u^2 + v^2) as filled contours with the same trajectories. Non-finite
    field values are masked.

    Args:
        fn: maps two arrays ``x, y`` of equal shape to ``(u, v)`` of that shape
            (broadcastable values, e.g. scalars, are accepted).
        xlim: ``(xmin, xmax)`` of the first parameter.
        ylim: ``(ymin, ymax)`` of the second parameter.
        trajectories: label -> array of shape ``(T, 2)``, T >= 1; or None.
        grid: mesh points per axis, >= 2.
        norm_map: also draw the field-norm panel.
        xlabel: label of the first parameter.
        ylabel: label of the second parameter.
        title: figure title, or None.
        density: streamline density passed to ``Axes.streamplot``, > 0.
        path: where to save the figure, or None.

    Returns:
        The ``matplotlib.figure.Figure``.

    Example:
        The bilinear game l_1 = x y, l_2 = -x y has the rotational field
        ``vector_field(lambda x, y: (-y, x), (-2, 2), (-2, 2))``.

    References:
        Balduzzi et al. (2018). The mechanics of n-player differentiable games. ICML.
        Mescheder, Nowozin and Geiger (2017). The numerics of GANs. NeurIPS.
    """
    x_range = _check_limits("xlim", xlim)
    y_range = _check_limits("ylim", ylim)
    if isinstance(grid, bool) or not isinstance(grid, (int, np.integer)) or grid < 2:
        raise ValueError(f"Argument `grid` must be an integer >= 2. Received: grid={grid!r}")
    if not np.isfinite(density) or density <= 0:
        raise ValueError(
            f"Argument `density` must be a finite number > 0. Received: density={density!r}"
        )
    paths: dict[str, np.ndarray] = {}
    for label, values in (trajectories or {}).items():
        points = np.asarray(values, dtype=np.float64)
        if points.ndim != 2 or points.shape[1] != 2 or points.shape[0] < 1:
            raise ValueError(
                "Each trajectory must have shape (T, 2) with T >= 1. "
                f"Received: trajectories[{label!r}] with shape {points.shape}"
            )
        paths[str(label)] = points

    xs = np.linspace(x_range[0], x_range[1], int(grid))
    ys = np.linspace(y_range[0], y_range[1], int(grid))
    xx, yy = np.meshgrid(xs, ys)
    out = fn(xx, yy)
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise ValueError(
            "Argument `fn` must return a pair (u, v) of arrays shaped like its inputs. "
            f"Received: a value of type {type(out).__name__}"
        )
    try:
        u, v = (np.broadcast_to(np.asarray(c, dtype=np.float64), xx.shape) for c in out)
    except ValueError as error:
        raise ValueError(
            f"Argument `fn` must return (u, v) broadcastable to the mesh shape {xx.shape}. "
            f"Received: shapes {[np.shape(c) for c in out]}"
        ) from error
    u_masked, v_masked = np.ma.masked_invalid(u), np.ma.masked_invalid(v)

    n_panels = 2 if norm_map else 1
    figure = _new_figure(5.0 * n_panels + (0.6 if norm_map else 0.0), 4.8)
    axes = figure.subplots(1, n_panels, squeeze=False)[0]
    axes[0].streamplot(xs, ys, u_masked, v_masked, density=density, linewidth=0.6,
                       color="0.45", arrowsize=0.8)
    if norm_map:
        norm = np.ma.masked_invalid(np.hypot(u, v))
        filled = axes[1].contourf(xx, yy, norm, levels=20, cmap="viridis")
        figure.colorbar(filled, ax=axes[1], label="update norm")
        axes[1].set_title("norm of the update field", fontsize=10)
    for ax in axes:
        for index, (label, points) in enumerate(paths.items()):
            colour = f"C{index + 1}"
            ax.plot(points[:, 0], points[:, 1], "-", color=colour, linewidth=1.2, label=label)
            ax.plot(points[0, 0], points[0, 1], "o", color=colour, markersize=5)
            ax.plot(points[-1, 0], points[-1, 1], "s", color=colour, markersize=5)
        ax.set_xlim(*x_range)
        ax.set_ylim(*y_range)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
    if paths:
        axes[0].legend(fontsize=8, loc="upper right")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return _finish(figure, path)


def loss_curves(
    history: Mapping[str, Sequence[float]] | object,
    path: str | os.PathLike[str] | None = None,
    *,
    metrics: Sequence[str] | None = None,
    log_y: bool = False,
    title: str | None = None,
) -> Figure:
    """Training curves of a ``fit``: the players' losses in one panel, each other metric in its own.

    ``<player>_loss`` curves share the first panel; every other logged quantity (an optimizer's
    diagnostics such as ``xi_norm``, extra metrics) gets a panel of its own. Validation
    curves (``val_<name>``) are drawn dashed in their training curve's panel and colour.

    Args:
      history: the ``keras.callbacks.History`` that ``fit`` returns, or its ``history`` dict
        ``{name: [value per epoch]}``.
      path: where to save the figure (PNG, PDF, ...); None saves nothing.
      metrics: names to plot (without ``val_``); default all.
      log_y: logarithmic y axes (for norms that decay over orders of magnitude).
      title: the figure's title.

    Returns:
      The figure.
    """
    logs = getattr(history, "history", history)
    if not isinstance(logs, Mapping) or not logs:
        raise ValueError(
            "Argument `history` must be the History returned by fit or a non-empty dict "
            f"{{name: [values]}}. Received: {type(history).__name__}."
        )
    names = [k for k in logs if not k.startswith("val_")]
    names += [k[4:] for k in logs if k.startswith("val_") and k[4:] not in names]
    if metrics is not None:
        unknown = [m for m in metrics if m not in names]
        if unknown:
            raise ValueError(
                f"Argument `metrics` names quantities that were not logged: {unknown}. Logged: "
                f"{names}."
            )
        names = [n for n in names if n in metrics]
    losses = [n for n in names if n.endswith("_loss") or n == "loss"]
    panels: list[tuple[str, list[str]]] = [("players' losses", losses)] if losses else []
    panels += [(n, [n]) for n in names if n not in losses]
    cols = min(len(panels), 3)
    rows = -(-len(panels) // cols)
    figure = _new_figure(4.2 * cols, 3.0 * rows)
    axes = np.atleast_1d(figure.subplots(rows, cols, squeeze=False)).ravel()
    for ax, (panel, series) in zip(axes, panels):
        for i, name in enumerate(series):
            colour = f"C{i % 10}"
            for key, style in ((name, "-"), (f"val_{name}", "--")):
                if key in logs:
                    values = np.asarray(logs[key], dtype=np.float64)
                    ax.plot(np.arange(1, len(values) + 1), values, style, color=colour,
                            linewidth=1.3, label=key, marker="o" if len(values) == 1 else None)
        ax.set_title(panel, fontsize=10)
        ax.set_xlabel("epoch")
        if log_y:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        if len(series) > 1 or any(f"val_{n}" in logs for n in series):
            ax.legend(fontsize=8)
    for ax in axes[len(panels):]:
        ax.axis("off")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return _finish(figure, path)
