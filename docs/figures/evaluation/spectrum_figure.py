"""Eigenvalues of the game Jacobian H over training, RMSProp vs SGA, 4x4 grid (reduced size).

Reduced configuration (not the paper's 6x384 MLPs): MLPGAN with 2 hidden layers of 32 units,
z_dim 4, batch 128, learning rate 1e-3, 1000 steps, seed 0; optimizers from the registry
(``rmsprop`` = TF1 RMSProp, ``sga`` = SGA over TF1 RMSProp). tfgames.diagnostics.GameDiagnostics
records, every 100 steps on the model's own sampled batch, the 8 largest-magnitude Ritz values
of H, S and A (Arnoldi / Lanczos, Krylov dimension 30, seed 0).

Run from the repository root:
    python docs/figures/evaluation/spectrum_figure.py
Writes docs/figures/evaluation/jacobian_spectrum_grid.png and .json.
"""

import json
from pathlib import Path

import keras
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from tfgames.datasets import step_dataset
from tfgames.diagnostics import GameDiagnostics
from tfgames.lab.experiments.registry import make_optimizer
from tfgames.lab.experiments.runner import MLPGAN, GanConfig

OUT = Path(__file__).parent
CONFIG = GanConfig(depth=2, width=32, z_dim=4, batch_size=128, learning_rate=1e-3, steps=1000)
EVERY, K, KRYLOV = 100, 8, 30


def run(name):
    """Train one optimizer with the callback; its history and parameter count."""
    keras.utils.set_random_seed(0)
    model = MLPGAN(CONFIG, seed=0)
    model.compile(optimizer=make_optimizer(name, CONFIG.learning_rate))
    callback = GameDiagnostics(None, every=EVERY, k=K, krylov_dim=KRYLOV)
    model.fit(step_dataset(CONFIG.steps), epochs=1, verbose=0, callbacks=[callback])
    return callback.history, model.count_params()


def main():
    """Both runs, the JSON and the figure."""
    results = {}
    for name in ("rmsprop", "sga"):
        history, n_params = run(name)
        results[name] = {
            "parameters": n_params,
            "steps": [h["step"] for h in history],
            "H": [[[float(v.real), float(v.imag)] for v in h["H"].eigenvalues] for h in history],
            "H_residuals": [h["H"].residuals.tolist() for h in history],
            "S": [h["S"].eigenvalues.tolist() for h in history],
            "A": [[float(v.imag) for v in h["A"].eigenvalues] for h in history],
            "hamiltonian": [h["hamiltonian"] for h in history],
        }
        print(name, "done", flush=True)
    (OUT / "jacobian_spectrum_grid.json").write_text(json.dumps(results, indent=1))
    fig, axes = plt.subplots(2, 2, figsize=(11, 8.5))
    for col, name in enumerate(("rmsprop", "sga")):
        r = results[name]
        steps = np.array(r["steps"])
        ax = axes[0, col]
        cmap = plt.get_cmap("viridis")
        for i, (step, values) in enumerate(zip(steps, r["H"])):
            v = np.array(values)
            ax.scatter(v[:, 0], v[:, 1], s=14, color=cmap(i / max(len(steps) - 1, 1)),
                       label=f"step {step}" if i in (0, len(steps) - 1) else None)
        ax.axhline(0, color="grey", lw=0.5)
        ax.axvline(0, color="grey", lw=0.5)
        ax.set_xlabel("Re(lambda)")
        ax.set_ylabel("Im(lambda)")
        ax.set_title(f"{name}: top-{K} |lambda| Ritz values of H\n(colour: step 0 dark -> "
                     f"{steps[-1]} yellow)")
        ax.legend(fontsize=8)
        ax = axes[1, col]
        h = np.array(r["H"])
        ax.plot(steps, np.abs(h[:, :, 1]).max(1), "o-", label="max |Im lambda(H)|")
        ax.plot(steps, h[:, :, 0].max(1), "s-", label="max Re lambda(H) (of top-|.|)")
        ax.plot(steps, np.array(r["S"]).max(1), "^-", label="max lambda(S)")
        ax.plot(steps, np.array(r["S"]).min(1), "v-", label="min lambda(S) (of top-|.|)")
        ax.plot(steps, np.abs(np.array(r["A"])).max(1), "x-", label="max |lambda(A)|")
        ax.set_xlabel("training step")
        ax.set_title(f"{name}: rotational vs potential parts")
        ax.legend(fontsize=8)
    fig.suptitle("Game Jacobian spectrum over training, 4x4 grid GAN, REDUCED size "
                 f"(2x32 MLPs, {results['sga']['parameters']} parameters, 1000 steps, seed 0)")
    fig.tight_layout()
    fig.savefig(OUT / "jacobian_spectrum_grid.png", dpi=90)


if __name__ == "__main__":
    main()
