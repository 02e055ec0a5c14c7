"""Experiment 4 of the SGA notebook: a GAN learning the 4x4 grid mixture of Gaussians.

A generator and a discriminator (6 ReLU layers of 384 units each, z of dimension 64, batch 256)
learn the 16-component mixture with centres {+-0.5, +-1.5}^2 and std 0.02
(:func:`tfgames.lab.samplers.grid_batch`), each optimizer at learning rate 1e-4 for 10,000 steps
(preset ``paper``). For every optimizer the run records, at steps 0, 2000, ..., 10000, the
losses on fixed evaluation batches, the generated samples, their density (one figure per
optimizer, snapshots side by side, as the seed's KDE plots) and the mode metrics of
:func:`tfgames.lab.metrics.mode_statistics` (modes covered out of 16, share of samples within 3 std
of a centre, KL of the mode histogram from uniform) and
:func:`tfgames.lab.metrics.loss_equilibrium_distance` (distance of (L_D, L_G) from (2 ln 2, ln 2)).

Outputs in ``out``: ``metrics.json`` (rewritten after every snapshot), ``mog_<optimizer>.png``
and ``samples_<optimizer>.npz`` (the generated samples of every snapshot).

References:
    Balduzzi et al. (2018). The mechanics of n-player differentiable games. ICML, Section 5.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tfgames.lab import metrics, plotting
from tfgames.lab.experiments.checkpoints import Snapshot
from tfgames.lab.experiments.gan import GanConfig
from tfgames.lab.experiments.records import RunRecord
from tfgames.lab.experiments.runner import RunOptions, start_experiment, train_recorded
from tfgames.lab.samplers import GRID_CENTRES
from tfgames.lab.tables import markdown_table, number, step_cell

__all__ = [
    "BLOWUP_DISTANCE",
    "DEFAULT_OPTIMIZERS",
    "LOOSE_N_STD",
    "PRESETS",
    "blown_up",
    "collect",
    "collect_table",
    "run",
    "snapshot_metrics",
    "summary_table",
    "train_one",
]

log = logging.getLogger("tfgames.lab.experiments")

#: Sizes and schedules. ``paper`` is the seed's; ``quick`` (4x128 MLPs, z 16, batch 256,
#: lr 5e-4, 4,000 steps) takes a few minutes on two CPU cores; ``smoke`` is for tests.
PRESETS: dict[str, GanConfig] = {
    "paper": GanConfig(),
    "quick": GanConfig(depth=4, width=128, z_dim=16, batch_size=256, learning_rate=5e-4,
                       steps=4_000, snapshot_every=1_000, eval_batches=10),
    "smoke": GanConfig(depth=1, width=8, z_dim=4, batch_size=32, learning_rate=1e-3,
                       steps=4, snapshot_every=2, eval_batches=2),
}

#: Optimizers run when none are given: the seed's five for ``paper``.
DEFAULT_OPTIMIZERS: dict[str, list[str]] = {
    "paper": ["sgd", "adagrad", "adam", "rmsprop", "sga"],
    "quick": ["rmsprop", "sga"],
    "smoke": ["rmsprop", "sga"],
}


#: Distance of the evaluation losses from (2 ln 2, ln 2) beyond which a run has blown up (or
#: when they are not finite). GAN losses here are cross-entropies per sample; the runs that
#: train stay within about 3 of the equilibrium values, the notebook's blown-up ones reach
#: 1e5 and more.
BLOWUP_DISTANCE = 100.0

#: Radius, in component standard deviations, of the looser quality ball (0.2 for std 0.02:
#: a fifth of the spacing of the centres, so the nearest centre is still unambiguous).
LOOSE_N_STD = 10.0


def blown_up(row: Mapping[str, Any]) -> bool:
    """Whether a snapshot row (:func:`snapshot_metrics`) is that of a blown-up run: losses
    not finite or farther than ``BLOWUP_DISTANCE`` from (2 ln 2, ln 2).
    """
    return not row["finite"] or not row["loss_distance"] <= BLOWUP_DISTANCE


def snapshot_metrics(shot: Snapshot, config: GanConfig) -> dict[str, Any]:
    """The metrics of one snapshot: losses, distance from equilibrium and mode statistics.

    The mode statistics are those of :func:`tfgames.lab.metrics.mode_statistics` with the
    standard 3-std ball (``modes_covered``, ``high_quality_share``, ``kl_modes``) and again
    with a ``LOOSE_N_STD``-std ball (suffix ``_10std``), which counts a mode that the
    generator places correctly but spreads wider than the target's 0.02.
    """
    d_loss, g_loss = shot.losses
    stats = metrics.mode_statistics(shot.samples, GRID_CENTRES, config.std)
    loose = metrics.mode_statistics(shot.samples, GRID_CENTRES, config.std, LOOSE_N_STD)
    finite = bool(np.isfinite([d_loss, g_loss]).all())
    return {
        "step": shot.step,
        "disc_loss": d_loss,
        "gen_loss": g_loss,
        "loss_distance": metrics.loss_equilibrium_distance(d_loss, g_loss),
        "finite": finite,
        "train_disc_loss": shot.train_losses[0] if shot.train_losses else None,
        "train_gen_loss": shot.train_losses[1] if shot.train_losses else None,
        "modes_covered": stats["modes_covered"],
        "high_quality_share": stats["high_quality_share"],
        "kl_modes": stats["kl_modes"],
        "mode_counts": stats["mode_counts"],
        "modes_covered_10std": loose["modes_covered"],
        "high_quality_share_10std": loose["high_quality_share"],
        "kl_modes_10std": loose["kl_modes"],
        "train_diagnostics": {k: v for k, v in shot.train_logs.items()
                              if not k.endswith("_loss")},
        "wall_time_s": shot.wall_time_s,
    }


def train_one(
    name: str,
    config: GanConfig,
    record: RunRecord,
    key: str,
    *,
    seed: int,
    out: Path,
    verbose: int,
    figure: bool = True,
    resume: bool = False,
) -> dict[str, Any]:
    """Train with optimizer ``name``, recording into ``record.data["runs"][key]``.

    The entry is saved after every snapshot (``status`` "running", then "done"); with
    ``figure`` the density figure ``mog_<key>.png`` and ``samples_<key>.npz`` are rewritten
    too. With ``resume`` the run checkpoints into ``checkpoints/<key>`` under ``out`` and
    continues from there if it was interrupted (see :func:`train_with_snapshots`). Returns
    the entry.
    """
    samples: list[tuple[int, np.ndarray]] = []
    tag = key.replace("@", "_lr")

    def on_snapshot(entry: dict[str, Any], shot: Snapshot, model: Any) -> None:
        row = snapshot_metrics(shot, config)
        entry["snapshots"].append(row)
        newly_blown_up = blown_up(row) and "blew_up_at_step" not in entry
        if newly_blown_up:
            entry["blew_up_at_step"] = shot.step
        record.save()
        samples.append((shot.step, shot.samples))
        if figure:
            np.savez_compressed(out / f"samples_{tag}.npz",
                                **{f"step_{s}": x for s, x in samples})
            plotting.density_snapshots(
                samples, (-2.0, 2.0, -2.0, 2.0), centres=GRID_CENTRES,
                title=f"{key}: 4x4 grid, lr {config.learning_rate:g}",
                path=out / f"mog_{tag}.png",
            )
        log.info("%s step %d/%d: L_D %.4f L_G %.4f, modes %d/16, high quality %.3f (%.0f s)",
                 key, shot.step, config.steps, row["disc_loss"], row["gen_loss"],
                 row["modes_covered"], row["high_quality_share"], shot.wall_time_s)
        if newly_blown_up:
            log.warning(
                "%s blew up by step %d: L_D %s, L_G %s (non-finite, or more than %g from the "
                "equilibrium losses 2 ln 2, ln 2). Training goes on so that the run is "
                "recorded whole; its final metrics are those of a diverged run.",
                key, shot.step, row["disc_loss"], row["gen_loss"], BLOWUP_DISTANCE)

    def final(entry: dict[str, Any]) -> dict[str, Any]:
        last = dict(entry["snapshots"][-1])
        last.pop("mode_counts")
        last.pop("train_diagnostics")
        return {"final": last}

    entry, _ = train_recorded(
        record, key, name, config, seed=seed, on_snapshot=on_snapshot, verbose=verbose,
        checkpoint_dir=out / "checkpoints" / tag if resume else None, final=final,
    )
    return entry


def summary_table(runs: dict[str, dict[str, Any]]) -> str:
    """A Markdown table of the final metrics of finished runs."""
    header = ["run", "steps", "L_D", "L_G", "distance from (2 ln 2, ln 2)",
              "modes (of 16), 3 std", "high-quality share, 3 std", "KL(modes, uniform), 3 std",
              "modes, 10 std", "share, 10 std", "KL, 10 std", "wall time (s)"]
    finished = [(key, entry["final"], entry) for key, entry in runs.items()
                if entry.get("status") == "done"]
    return markdown_table(header, (
        [key, f["step"], f"{f['disc_loss']:.4f}", f"{f['gen_loss']:.4f}",
         f"{f['loss_distance']:.4f}", f["modes_covered"], f"{f['high_quality_share']:.3f}",
         f"{f['kl_modes']:.3f}", f["modes_covered_10std"],
         f"{f['high_quality_share_10std']:.3f}", f"{f['kl_modes_10std']:.3f}",
         f"{entry['wall_time_s']:.0f}"]
        for key, f, entry in finished))


def collect(folders: Sequence[str | os.PathLike[str]]) -> list[dict[str, Any]]:
    """One row per run found in the ``metrics.json`` of each folder, finished or not.

    The losses come from the last snapshot recorded; the mode statistics are recomputed from
    the saved samples of that snapshot (``samples_<run>.npz``) with the current
    :func:`snapshot_metrics` (so runs recorded by an older version get every column).
    """
    rows = []
    for folder in map(Path, folders):
        saved = json.loads((folder / "metrics.json").read_text())
        std = saved["config"]["std"]
        for key, entry in saved["runs"].items():
            if not entry["snapshots"]:
                continue
            last = entry["snapshots"][-1]
            with np.load(folder / f"samples_{key.replace('@', '_lr')}.npz") as archive:
                samples = archive[f"step_{last['step']}"]
            strict = metrics.mode_statistics(samples, GRID_CENTRES, std)
            loose = metrics.mode_statistics(samples, GRID_CENTRES, std, LOOSE_N_STD)
            rows.append({
                "folder": str(folder), "run": key, "optimizer": entry["optimizer"],
                "seed": entry["seed"], "status": entry["status"], "step": last["step"],
                "steps": saved["config"]["steps"],
                "disc_loss": last["disc_loss"], "gen_loss": last["gen_loss"],
                "loss_distance": last["loss_distance"],
                "modes_covered": strict["modes_covered"],
                "high_quality_share": strict["high_quality_share"],
                "kl_modes": strict["kl_modes"],
                "modes_covered_10std": loose["modes_covered"],
                "high_quality_share_10std": loose["high_quality_share"],
                "kl_modes_10std": loose["kl_modes"],
                "wall_time_s": last["wall_time_s"],
            })
    return rows


def collect_table(rows: Sequence[dict[str, Any]]) -> str:
    """A Markdown table of :func:`collect`'s rows, unfinished runs marked with their step."""
    header = ["optimizer", "seed", "step", "L_D", "L_G", "distance", "modes, 3 std",
              "share, 3 std", "KL, 3 std", "modes, 10 std", "share, 10 std", "KL, 10 std",
              "wall time (s)"]
    return markdown_table(header, (
        [r["optimizer"], r["seed"], step_cell(r), number(r["disc_loss"]),
         number(r["gen_loss"]), number(r["loss_distance"]), r["modes_covered"],
         f"{r['high_quality_share']:.3f}", f"{r['kl_modes']:.3f}", r["modes_covered_10std"],
         f"{r['high_quality_share_10std']:.3f}", f"{r['kl_modes_10std']:.3f}",
         f"{r['wall_time_s']:.0f}"]
        for r in sorted(rows, key=lambda r: (r["optimizer"], r["seed"]))))


def run(out: str | os.PathLike[str], **options: Any) -> dict[str, Any]:
    """Run the 4x4-grid comparison and write ``metrics.json``, figures and ``summary.md``.

    Args:
        out: output folder (created).
        **options: the keywords of :class:`~tfgames.lab.experiments.runner.RunOptions`
            (``preset``, ``optimizers``, ``steps``, ``seed``, ``verbose``, ``command``,
            ``resume``; with ``resume`` each optimizer checkpoints into
            ``out/checkpoints/<optimizer>``).

    Returns:
        The metrics dict written to ``out/metrics.json``.
    """
    opts = RunOptions(**options)
    config, names, record = start_experiment("mog", out, PRESETS, DEFAULT_OPTIMIZERS, opts)
    folder = Path(out)
    for name in names:
        train_one(name, config, record, name, seed=opts.seed, out=folder, verbose=opts.verbose,
                  resume=opts.resume)
    (folder / "summary.md").write_text(summary_table(record.data["runs"]))
    return record.data


