"""Experiment 7 of the SGA notebook: a GAN learning the 75-dimensional Gaussian N(0, I_75).

Generator and discriminator are 2-layer ReLU MLPs of 200 units, z has dimension 200, batch 64,
learning rate 2e-4, 20,000 steps (preset ``paper``), RMSProp against SGA from the same initial
weights. The target covariance is the identity, so all 75 singular values of the covariance of
G(z) should be 1; a GAN that drops directions shows small trailing values (Santurkar et al.
2018). Measured, as in the seed: the singular values before and after training on 2^20
generated samples (:func:`tfgames.lab.metrics.covariance_spectrum`), their RMS distance from 1
(:func:`tfgames.lab.metrics.spectrum_error`), and at every snapshot the spectrum of the evaluation
samples (2^15 for ``paper``, as the seed's intermediate plots) and the losses.

Outputs in ``out``: ``metrics.json``, ``gaussian75_spectra.png`` (before training and after,
per optimizer, as :func:`tfgames.lab.plotting.spectrum_plot`), ``gaussian75_<optimizer>.png``
(the spectrum at every snapshot) and ``summary.md``.

References:
    Santurkar, Schmidt and Madry (2018). A classification-based study of covariate shift in
    GAN distributions. ICML.
    Balduzzi et al. (2018). The mechanics of n-player differentiable games. ICML, Section 5.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import keras
import numpy as np

from tfgames.lab import metrics, plotting
from tfgames.lab.experiments.checkpoints import Snapshot
from tfgames.lab.experiments.gan import MLPGAN, GanConfig
from tfgames.lab.experiments.runner import RunOptions, start_experiment, train_recorded
from tfgames.lab.tables import markdown_table, number

__all__ = ["DEFAULT_OPTIMIZERS", "PRESETS", "SPECTRUM_SAMPLES", "generate", "run"]

log = logging.getLogger("tfgames.lab.experiments")

#: ``paper`` is the seed's (2^15 = 512 x 64 evaluation samples per snapshot); ``quick`` keeps
#: the architecture and trains 3,000 steps; ``smoke`` is for tests.
PRESETS: dict[str, GanConfig] = {
    "paper": GanConfig(target="gaussian", x_dim=75, depth=2, width=200, z_dim=200,
                       batch_size=64, learning_rate=2e-4, steps=20_000, snapshot_every=2_000,
                       eval_batches=512),
    "quick": GanConfig(target="gaussian", x_dim=75, depth=2, width=200, z_dim=200,
                       batch_size=64, learning_rate=2e-4, steps=3_000, snapshot_every=1_000,
                       eval_batches=64),
    "smoke": GanConfig(target="gaussian", x_dim=5, depth=1, width=8, z_dim=4, batch_size=16,
                       learning_rate=1e-3, steps=4, snapshot_every=2, eval_batches=2),
}

#: Generated samples for the spectra before and after training (the seed's 2^20).
SPECTRUM_SAMPLES: dict[str, int] = {"paper": 2**20, "quick": 2**16, "smoke": 256}

DEFAULT_OPTIMIZERS: dict[str, list[str]] = {
    "paper": ["rmsprop", "sga"], "quick": ["rmsprop", "sga"], "smoke": ["rmsprop", "sga"],
}


def generate(model: MLPGAN, n: int, seed: int, chunk: int = 65_536) -> np.ndarray:
    """``n`` samples G(z), z ~ N(0, I) from the int ``seed``, generated ``chunk`` at a time."""
    parts = []
    for index, start in enumerate(range(0, n, chunk)):
        size = min(chunk, n - start)
        z = keras.random.normal((size, model.config.z_dim), seed=seed + index)
        parts.append(model.generator(z, training=False).numpy())
    return np.concatenate(parts).astype(np.float64)


def _spectrum(samples: np.ndarray) -> np.ndarray:
    """Covariance spectrum; all-NaN when some sample is not finite (a diverged run)."""
    if not np.isfinite(samples).all():
        return np.full(samples.shape[1], np.nan)
    return metrics.covariance_spectrum(samples)


def _spectrum_row(spectrum: np.ndarray) -> dict[str, Any]:
    return {
        "spectrum_error": metrics.spectrum_error(spectrum),
        "largest_singular_value": float(spectrum[0]),
        "smallest_singular_value": float(spectrum[-1]),
        "singular_values": spectrum,
    }


def run(out: str | os.PathLike[str], **options: Any) -> dict[str, Any]:
    """Train one GAN per optimizer on N(0, I_75) and record the covariance spectra.

    Args:
        out: output folder (created).
        **options: the keywords of :class:`~tfgames.lab.experiments.runner.RunOptions`.

    Returns:
        The metrics dict written to ``out/metrics.json``.
    """
    opts = RunOptions(**options)
    seed = opts.seed
    n_spectrum = SPECTRUM_SAMPLES.get(opts.preset)
    config, names, record = start_experiment(
        "gaussian75", out, PRESETS, DEFAULT_OPTIMIZERS, opts, spectrum_samples=n_spectrum)
    folder = Path(out)
    before: dict[str, np.ndarray] = {}
    after: dict[str, np.ndarray] = {}
    for name in names:
        spectra: dict[str, np.ndarray] = {}

        def on_snapshot(entry: dict[str, Any], shot: Snapshot, model: MLPGAN,
                        spectra: dict = spectra, name: str = name) -> None:
            spectrum = _spectrum(shot.samples)
            d_loss, g_loss = shot.losses
            row = {
                "step": shot.step, "disc_loss": d_loss, "gen_loss": g_loss,
                "loss_distance": metrics.loss_equilibrium_distance(d_loss, g_loss),
                "finite": bool(np.isfinite([d_loss, g_loss]).all()),
                **_spectrum_row(spectrum), "wall_time_s": shot.wall_time_s,
            }
            entry["snapshots"].append(row)
            spectra[f"step {shot.step}"] = spectrum
            if shot.step in (0, config.steps):
                full = _spectrum(generate(model, n_spectrum, seed + 30_011))
                key = "before" if shot.step == 0 else "after"
                entry[key] = _spectrum_row(full)
                (before if shot.step == 0 else after)[name] = full
            record.save()
            plotting.spectrum_plot(spectra, reference=1.0,
                                   title=f"{name}: covariance spectrum of G(z)",
                                   path=folder / f"gaussian75_{name}.png")
            log.info("%s step %d/%d: L_D %.4f L_G %.4f, spectrum error %.4f (%.0f s)", name,
                     shot.step, config.steps, d_loss, g_loss, row["spectrum_error"],
                     shot.wall_time_s)

        train_recorded(
            record, name, name, config, seed=seed, on_snapshot=on_snapshot, verbose=opts.verbose,
            checkpoint_dir=folder / "checkpoints" / name if opts.resume else None,
        )
        lines = {"before training": next(iter(before.values()))}
        lines.update({f"{n} after {config.steps} steps": s for n, s in after.items()})
        plotting.spectrum_plot(
            lines, reference=1.0, path=folder / "gaussian75_spectra.png",
            title=f"N(0, I_{config.x_dim}): singular values of Cov(G(z)), {n_spectrum} samples",
        )
    (folder / "summary.md").write_text(summary_table(record.data["runs"]))
    return record.data


def summary_table(runs: dict[str, dict[str, Any]]) -> str:
    """A Markdown table: spectrum error before/after, final losses, wall time."""
    header = ["optimizer", "spectrum error before", "after", "smallest singular value after",
              "L_D", "L_G", "wall time (s)"]
    finished = [(name, entry, entry["snapshots"][-1]) for name, entry in runs.items()
                if entry.get("status") == "done"]
    return markdown_table(header, (
        [name, number(entry["before"]["spectrum_error"]), number(entry["after"]["spectrum_error"]),
         number(entry["after"]["smallest_singular_value"]), number(final["disc_loss"]),
         number(final["gen_loss"]), f"{entry['wall_time_s']:.0f}"]
        for name, entry, final in finished))
