"""Experiment 4 of the SGA notebook: a GAN learning the 4x4 grid mixture of Gaussians.

A generator and a discriminator (6 ReLU layers of 384 units each, z of dimension 64, batch 256)
learn the 16-component mixture with centres {+-0.5, +-1.5}^2 and std 0.02
(:func:`tfgames.datasets.grid_batch`), each optimizer at learning rate 1e-4 for 10,000 steps
(preset ``paper``). For every optimizer the run records, at steps 0, 2000, ..., 10000, the
losses on fixed evaluation batches, the generated samples, their density (one figure per
optimizer, snapshots side by side, as the seed's KDE plots) and the mode metrics of
:func:`tfgames.metrics.mode_statistics` (modes covered out of 16, share of samples within 3 std
of a centre, KL of the mode histogram from uniform) and
:func:`tfgames.metrics.loss_equilibrium_distance` (distance of (L_D, L_G) from (2 ln 2, ln 2)).

Outputs in ``out``: ``metrics.json`` (rewritten after every snapshot), ``mog_<optimizer>.png``
and ``samples_<optimizer>.npz`` (the generated samples of every snapshot).

References:
    Balduzzi et al. (2018). The mechanics of n-player differentiable games. ICML, Section 5.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from tfgames import metrics, plotting
from tfgames.datasets import GRID_CENTRES
from tfgames.experiments import registry
from tfgames.experiments.runner import GanConfig, RunRecord, Snapshot, train_with_snapshots

__all__ = ["DEFAULT_OPTIMIZERS", "PRESETS", "run", "snapshot_metrics", "train_one"]

log = logging.getLogger("tfgames.experiments")

#: Sizes and schedules. ``paper`` is the seed's; ``quick`` (3x128 MLPs, z 16, batch 128,
#: lr 1e-3, 1,500 steps) takes a few minutes on two CPU cores; ``smoke`` is for tests.
PRESETS: dict[str, GanConfig] = {
    "paper": GanConfig(),
    "quick": GanConfig(depth=3, width=128, z_dim=16, batch_size=128, learning_rate=1e-3,
                       steps=1_500, snapshot_every=300, eval_batches=20),
    "smoke": GanConfig(depth=1, width=8, z_dim=4, batch_size=32, learning_rate=1e-3,
                       steps=4, snapshot_every=2, eval_batches=2),
}

#: Optimizers run when none are given: the seed's five for ``paper``.
DEFAULT_OPTIMIZERS: dict[str, list[str]] = {
    "paper": ["sgd", "adagrad", "adam", "rmsprop", "sga"],
    "quick": ["rmsprop", "sga"],
    "smoke": ["rmsprop", "sga"],
}


def snapshot_metrics(shot: Snapshot, config: GanConfig) -> dict[str, Any]:
    """The metrics of one snapshot: losses, distance from equilibrium and mode statistics."""
    d_loss, g_loss = shot.losses
    stats = metrics.mode_statistics(shot.samples, GRID_CENTRES, config.std)
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
) -> dict[str, Any]:
    """Train with optimizer ``name``, recording into ``record.data["runs"][key]``.

    The entry is saved after every snapshot (``status`` "running", then "done"); with
    ``figure`` the density figure ``mog_<key>.png`` and ``samples_<key>.npz`` are rewritten
    too. Returns the entry.
    """
    entry: dict[str, Any] = {
        "optimizer": name,
        "description": registry.OPTIMIZERS[name].description,
        "learning_rate": config.learning_rate,
        "seed": seed,
        "status": "running",
        "snapshots": [],
    }
    record.data["runs"][key] = entry
    record.save()
    samples: list[tuple[int, np.ndarray]] = []
    tag = key.replace("@", "_lr")

    def on_snapshot(shot: Snapshot, model: Any) -> None:
        row = snapshot_metrics(shot, config)
        entry["snapshots"].append(row)
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

    _, shots = train_with_snapshots(
        registry.make_optimizer(name, config.learning_rate), config, seed=seed,
        on_snapshot=on_snapshot, verbose=verbose,
    )
    final = dict(entry["snapshots"][-1])
    final.pop("mode_counts")
    entry["final"] = final
    entry["wall_time_s"] = shots[-1].wall_time_s
    entry["seconds_per_step"] = shots[-1].wall_time_s / config.steps
    entry["status"] = "done"
    record.save()
    return entry


def summary_table(runs: dict[str, dict[str, Any]]) -> str:
    """A Markdown table of the final metrics of finished runs."""
    lines = [
        "| run | steps | L_D | L_G | distance from (2 ln 2, ln 2) | modes (of 16) "
        "| high-quality share | KL(modes, uniform) | wall time (s) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for key, entry in runs.items():
        if entry.get("status") != "done":
            continue
        f = entry["final"]
        lines.append(
            f"| {key} | {f['step']} | {f['disc_loss']:.4f} | {f['gen_loss']:.4f} "
            f"| {f['loss_distance']:.4f} | {f['modes_covered']} "
            f"| {f['high_quality_share']:.3f} | {f['kl_modes']:.3f} "
            f"| {entry['wall_time_s']:.0f} |"
        )
    return "\n".join(lines) + "\n"


def run(
    out: str | os.PathLike[str],
    *,
    preset: str = "quick",
    optimizers: Sequence[str] | str | None = None,
    steps: int | None = None,
    seed: int = 0,
    verbose: int = 1,
    command: str | None = None,
) -> dict[str, Any]:
    """Run the 4x4-grid comparison and write ``metrics.json``, figures and ``summary.md``.

    Args:
        out: output folder (created).
        preset: ``"paper"``, ``"quick"`` or ``"smoke"`` (:data:`PRESETS`).
        optimizers: registry names (list or comma-separated); None for the preset's default.
        steps: training steps instead of the preset's (snapshots keep their spacing, capped
            at ``steps``).
        seed: seed of weights, data and noise.
        verbose: progress display (1 bar, 2 lines, 0 none).
        command: the command line, stored in the metrics.

    Returns:
        The metrics dict written to ``out/metrics.json``.
    """
    config = _config(preset, steps)
    names = registry.resolve_optimizer_names(
        DEFAULT_OPTIMIZERS[preset] if optimizers is None else optimizers)
    folder = Path(out)
    record = RunRecord.start(folder, "mog", preset=preset, seed=seed, command=command,
                             config=dataclasses.asdict(config), optimizers=names)
    for name in names:
        train_one(name, config, record, name, seed=seed, out=folder, verbose=verbose)
    (folder / "summary.md").write_text(summary_table(record.data["runs"]))
    return record.data


def _config(preset: str, steps: int | None) -> GanConfig:
    if preset not in PRESETS:
        raise ValueError(f"Unknown preset {preset!r}; choose from {sorted(PRESETS)}.")
    config = PRESETS[preset]
    if steps is not None:
        config = dataclasses.replace(config, steps=steps,
                                     snapshot_every=min(config.snapshot_every, steps))
    return config
