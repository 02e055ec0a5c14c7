"""Eigenvalues of the game Jacobian H at the checkpoints of paper-size 4x4-grid runs.

The reduced-size figure (``spectrum_figure.py``) trains small MLPs with the callback. This one
reads the checkpoints that ``tfgames run mog --preset paper`` writes every 2,000 steps (the
seed's GAN: 6 hidden ReLU layers of 384 units in both players, z_dim 64, batch 256, learning
rate 1e-4; ``runs/<out>/seed-<s>/checkpoints/<optimizer>/step_<n>.keras``) and computes, at each
checkpoint, the 8 largest-magnitude Ritz values of H, S = (H + H^T)/2 and A = (H - H^T)/2
(``tfgames.diagnostics``: Arnoldi / Lanczos, Krylov dimension 30, start vector seed 0, H v by
double backward) and ||xi||^2 / 2, every checkpoint on ONE batch: the model's noise stream is
set to the same state (a fresh ``SeedGenerator(EVAL_SEED)``) before each, so the spectra differ
only by the parameters. No training: it only reads what the runs wrote, so it can be rerun as
the runs advance; entries already in the JSON are kept (resumable).

Run from the repository root (the default is the issue-19 run):
    python docs/figures/evaluation/spectrum_checkpoints.py [RUN_SEED_FOLDER] [OPTIMIZERS]
Writes docs/figures/evaluation/jacobian_spectrum_grid_paper.png and .json.
"""

import json
import re
import sys
from pathlib import Path

import keras
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import tfgames.lab.experiments.gan  # noqa: F401  (registers MLPGAN for loading)
from tfgames.diagnostics import (
    JacobianOperator,
    antisymmetric_eigenvalues,
    jacobian_eigenvalues,
    symmetric_eigenvalues,
)

OUT = Path(__file__).parent
NAME = "jacobian_spectrum_grid_paper"
K, KRYLOV, EVAL_SEED = 8, 30, 1234


def checkpoints(folder: Path, optimizer: str) -> list[tuple[int, Path]]:
    """(step, path) of every ``step_<n>.keras`` of one optimizer, by step."""
    found = []
    for path in (folder / "checkpoints" / optimizer).glob("step_*.keras"):
        match = re.fullmatch(r"step_(\d+)\.keras", path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def spectra_at(path: Path) -> dict:
    """H, S and A Ritz values and ||xi||^2/2 of one checkpoint, on the fixed evaluation batch."""
    model = keras.models.load_model(path, compile=False)
    model.seed_generator.state.assign(keras.random.SeedGenerator(EVAL_SEED).state.value)
    operator = JacobianOperator.from_model(model, None, training=True, mode="double_backward")
    try:
        h = jacobian_eigenvalues(operator, k=K, krylov_dim=KRYLOV)
        s = symmetric_eigenvalues(operator, k=K, krylov_dim=KRYLOV)
        a = antisymmetric_eigenvalues(operator, k=K, krylov_dim=KRYLOV)
        energy = operator.hamiltonian()
    finally:
        operator.restore()
    return {
        "parameters": int(h.dim),
        "H": [[float(v.real), float(v.imag)] for v in h.eigenvalues],
        "H_residuals": h.residuals.tolist(),
        "S": [float(v) for v in s.eigenvalues],
        "S_residuals": s.residuals.tolist(),
        "A": [float(v.imag) for v in a.eigenvalues],
        "hamiltonian": float(energy["hamiltonian"]),
    }


def compute(folder: Path, optimizers: list[str], json_path: Path) -> dict:
    """Every checkpoint not yet in the JSON; the JSON is rewritten after each."""
    results = json.loads(json_path.read_text()) if json_path.exists() else {}
    results.setdefault("run", str(folder))
    for name in optimizers:
        entries = results.setdefault(name, {})
        for step, path in checkpoints(folder, name):
            if str(step) in entries:
                continue
            entries[str(step)] = spectra_at(path)
            json_path.write_text(json.dumps(results, indent=1))
            print(name, step, "done", flush=True)
    return results


def figure(results: dict, optimizers: list[str], png: Path) -> None:
    """Top row: H's Ritz values in the complex plane, coloured by step; bottom row: the
    rotational (imaginary, A) and potential (real, S) parts and ||xi||^2/2 over training.
    Symlog axes (linear within +-1): the values span six orders of magnitude.
    """
    fig, axes = plt.subplots(2, len(optimizers), figsize=(5.5 * len(optimizers), 8.5),
                             squeeze=False)
    cmap = plt.get_cmap("viridis")
    last_step = max(int(s) for name in optimizers for s in results.get(name, {}))
    for col, name in enumerate(optimizers):
        entries = results.get(name, {})
        steps = sorted(int(s) for s in entries)
        ax = axes[0, col]
        for step in steps:
            v = np.array(entries[str(step)]["H"])
            ax.scatter(v[:, 0], v[:, 1], s=16, color=cmap(step / max(last_step, 1)),
                       label=f"step {step}")
        ax.axhline(0, color="grey", lw=0.5)
        ax.axvline(0, color="grey", lw=0.5)
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_yscale("symlog", linthresh=1.0)
        ax.set_xlabel("Re(lambda) (symlog)")
        ax.set_ylabel("Im(lambda) (symlog)")
        ax.set_title(f"{name}: top-{K} |lambda| Ritz values of H")
        ax.legend(fontsize=7)
        ax = axes[1, col]
        h = np.array([entries[str(s)]["H"] for s in steps])
        sym = np.array([entries[str(s)]["S"] for s in steps])
        anti = np.array([entries[str(s)]["A"] for s in steps])
        ax.plot(steps, np.abs(h[:, :, 1]).max(1), "o-", label="max |Im lambda(H)|")
        ax.plot(steps, h[:, :, 0].max(1), "s-", label="max Re lambda(H) (of top-|.|)")
        ax.plot(steps, sym.max(1), "^-", label="max lambda(S)")
        ax.plot(steps, sym.min(1), "v-", label="min lambda(S) (of top-|.|)")
        ax.plot(steps, np.abs(anti).max(1), "x-", label="max |lambda(A)|")
        ax.plot(steps, [entries[str(s)]["hamiltonian"] for s in steps], "k--",
                label="||xi||^2 / 2")
        ax.set_xlim(-300, last_step + 300)
        ax.set_yscale("symlog", linthresh=1.0)
        ax.set_xlabel("training step")
        ax.set_title(f"{name}: rotational vs potential parts")
        ax.legend(fontsize=7)
    parameters = next(iter(results[optimizers[0]].values()))["parameters"]
    fig.suptitle("Game Jacobian spectrum at the checkpoints of the paper-size 4x4-grid runs\n"
                 f"(6x384 MLPs, {parameters} parameters, seed 0, one fixed batch; symlog axes)")
    fig.tight_layout()
    fig.savefig(png, dpi=90)


def main() -> None:
    """The JSON (new checkpoints only) and the figure, for the folder and optimizers given."""
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("runs/i19_paper/seed-0")
    optimizers = sys.argv[2].split(",") if len(sys.argv) > 2 else ["rmsprop", "sga"]
    results = compute(folder, optimizers, OUT / f"{NAME}.json")
    figure(results, optimizers, OUT / f"{NAME}.png")


if __name__ == "__main__":
    main()
