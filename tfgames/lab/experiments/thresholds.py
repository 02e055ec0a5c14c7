"""Experiment 6 of the SGA notebook: which learning rates converge, Adamirror (OMD) vs SGA.

The 4x4-grid GAN of :mod:`tfgames.lab.experiments.mog` is trained with each optimizer at every
learning rate of the seed's two grids, ``coarse`` = [1e-5, 5e-5, 1e-4, 5e-4, 1e-3] and
``fine`` = [8e-5, 1e-4, 1.2e-4, 1.4e-4, 1.6e-4] (a rate in both grids is trained once). In the
seed the OMD half never ran (its ``AdamirrorOptimizer`` raised a TypeError); here it does, with
:mod:`tfgames.optimizers.adamirror`.

**Converged** means: at the last step both evaluation losses are finite and
d = sqrt((L_D - 2 ln 2)^2 + (L_G - ln 2)^2) <= ``CONVERGENCE_TOLERANCE`` = 0.05
(:func:`tfgames.lab.metrics.loss_equilibrium_distance`; the seed's converged SGA runs end at
d ~ 0.002, its diverging or cycling ones at d > 0.5). Small d is necessary, not sufficient,
for a good generator (a collapsed generator facing a confused discriminator also has small d),
so the table also lists the modes covered and the high-quality share.

Outputs in ``out``: ``metrics.json`` (runs keyed ``<optimizer>@<learning rate>`` and the
``table``), ``thresholds.png`` (d against the learning rate, one panel per grid, filled
markers for converged runs), the density figure of every run and ``summary.md``.

References:
    Balduzzi et al. (2018). The mechanics of n-player differentiable games. ICML.
    Daskalakis, Ilyas, Syrgkanis and Zeng (2018). Training GANs with optimism. ICLR.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from tfgames.lab.experiments import registry
from tfgames.lab.experiments.gan import GanConfig
from tfgames.lab.experiments.mog import PRESETS as MOG_PRESETS
from tfgames.lab.experiments.mog import train_one
from tfgames.lab.experiments.runner import RunOptions, start_experiment
from tfgames.lab.tables import markdown_table, number

__all__ = [
    "CONVERGENCE_TOLERANCE",
    "DEFAULT_OPTIMIZERS",
    "GRIDS",
    "PRESETS",
    "converged",
    "run",
    "threshold_figure",
]

#: Largest distance of the final losses from (2 ln 2, ln 2) that counts as converged.
CONVERGENCE_TOLERANCE = 0.05

#: Learning-rate grids per preset (``paper``: the seed's two grids).
GRIDS: dict[str, dict[str, list[float]]] = {
    "paper": {"coarse": [1e-5, 5e-5, 1e-4, 5e-4, 1e-3],
              "fine": [8e-5, 1e-4, 1.2e-4, 1.4e-4, 1.6e-4]},
    "quick": {"coarse": [2.5e-4, 1e-3, 4e-3]},
    "smoke": {"coarse": [1e-3, 1e-2]},
}

#: The GAN of each preset (the learning rate is replaced by the grid's).
PRESETS: dict[str, GanConfig] = {
    "paper": MOG_PRESETS["paper"],
    "quick": dataclasses.replace(MOG_PRESETS["quick"], steps=2_000, snapshot_every=1_000),
    "smoke": MOG_PRESETS["smoke"],
}

DEFAULT_OPTIMIZERS: dict[str, list[str]] = {
    "paper": ["adamirror", "sga"], "quick": ["adamirror", "sga"], "smoke": ["adamirror", "sga"],
}


def converged(final: dict[str, Any], tolerance: float = CONVERGENCE_TOLERANCE) -> bool:
    """Whether a run's final snapshot is converged (finite losses, distance <= tolerance)."""
    distance = final["loss_distance"]
    return bool(final["finite"] and distance is not None and math.isfinite(distance)
                and distance <= tolerance)


def threshold_figure(table: list[dict[str, Any]], *, tolerance: float = CONVERGENCE_TOLERANCE,
                     path: str | os.PathLike[str] | None = None) -> Figure:
    """Final distance from equilibrium against the learning rate, one panel per grid.

    Non-finite runs are drawn at the top of the panel with an ``x``; filled markers are
    converged runs, open ones are not; the dashed line is ``tolerance``.
    """
    grids = list(dict.fromkeys(row["grid"] for row in table))
    figure = Figure(figsize=(5.0 * len(grids), 3.8))
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(grids), squeeze=False)[0]
    finite = [r["loss_distance"] for r in table
              if r["loss_distance"] is not None and math.isfinite(r["loss_distance"])]
    top = max(finite + [10 * tolerance]) * 3.0
    for ax, grid in zip(axes, grids):
        rows = [r for r in table if r["grid"] == grid]
        for index, optimizer in enumerate(dict.fromkeys(r["optimizer"] for r in rows)):
            colour = f"C{index}"
            mine = sorted((r for r in rows if r["optimizer"] == optimizer),
                          key=lambda r: r["learning_rate"])
            lrs = [r["learning_rate"] for r in mine]
            ds = [r["loss_distance"] if r["finite"] else top for r in mine]
            ax.plot(lrs, ds, "-", color=colour, linewidth=1, label=optimizer)
            for r, d in zip(mine, ds):
                marker = "o" if r["finite"] else "x"
                face = colour if r["converged"] else "white"
                ax.plot(r["learning_rate"], d, marker, color=colour, markerfacecolor=face,
                        markersize=7)
        ax.axhline(tolerance, color="black", linestyle="--", linewidth=0.8,
                   label=f"tolerance {tolerance:g}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        rates = sorted({r["learning_rate"] for r in rows})
        ax.set_xticks(rates, [f"{rate:g}" for rate in rates], rotation=45, fontsize=8)
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("learning rate")
        ax.set_ylabel("final distance of (L_D, L_G) from (2 ln 2, ln 2)")
        ax.set_title(f"{grid} grid (filled: converged, x: not finite)", fontsize=10)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3, which="both")
    figure.tight_layout()
    if path is not None:
        figure.savefig(path, dpi=100, bbox_inches="tight")
    return figure


def _table_row(key: str, grid: str, entry: dict[str, Any]) -> dict[str, Any]:
    final = entry["final"]
    return {
        "run": key, "grid": grid, "optimizer": entry["optimizer"],
        "learning_rate": entry["learning_rate"], "disc_loss": final["disc_loss"],
        "gen_loss": final["gen_loss"], "loss_distance": final["loss_distance"],
        "finite": final["finite"], "converged": converged(final),
        "modes_covered": final["modes_covered"],
        "high_quality_share": final["high_quality_share"],
    }


def run(out: str | os.PathLike[str], **options: Any) -> dict[str, Any]:
    """Train every (optimizer, learning rate) of the preset's grids; tabulate convergence.

    Args:
        out: output folder (created).
        **options: the keywords of :class:`~tfgames.lab.experiments.runner.RunOptions`; with
            ``optimizers=None`` the default ``["adamirror", "sga"]`` is reduced to the
            optimizers installed.

    Returns:
        The metrics dict written to ``out/metrics.json``.
    """
    opts = RunOptions(**options)
    available = registry.available_optimizers()
    defaults = {key: [n for n in listed if n in available]
                for key, listed in DEFAULT_OPTIMIZERS.items()}
    grids = GRIDS.get(opts.preset)
    base, names, record = start_experiment(
        "thresholds", out, PRESETS, defaults, opts, grids=grids,
        convergence="finite final losses and distance of (L_D, L_G) from (2 ln 2, ln 2) "
                    f"<= {CONVERGENCE_TOLERANCE}",
    )
    folder = Path(out)
    record.data["table"] = []
    done: dict[str, dict[str, Any]] = {}
    for name in names:
        for grid, rates in grids.items():
            for rate in rates:
                key = f"{name}@{rate:g}"
                if key not in done:
                    config = dataclasses.replace(base, learning_rate=rate)
                    done[key] = train_one(name, config, record, key, seed=opts.seed,
                                          out=folder, verbose=opts.verbose, resume=opts.resume)
                record.data["table"].append(_table_row(key, grid, done[key]))
                record.save()
                threshold_figure(record.data["table"], path=folder / "thresholds.png")
    (folder / "summary.md").write_text(summary_table(record.data["table"]))
    return record.data


def summary_table(table: list[dict[str, Any]]) -> str:
    """A Markdown table of the grid: final losses, distance, converged, modes."""
    header = ["grid", "optimizer", "learning rate", "L_D", "L_G", "distance", "converged",
              "modes", "high-quality share"]
    return markdown_table(header, (
        [r["grid"], r["optimizer"], f"{r['learning_rate']:g}", number(r["disc_loss"]),
         number(r["gen_loss"]), number(r["loss_distance"]), "yes" if r["converged"] else "no",
         r["modes_covered"], number(r["high_quality_share"], 3)]
        for r in table))
