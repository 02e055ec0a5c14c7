"""The second-order family on the standard games: the figures of the docs page
docs/optimizers/opponent-shaping-and-cgd.md.

Writes to docs/figures/second-order/ (or --out):

- matching-pennies.png: (p_1, p_2) trajectories over the simultaneous-gradient field, naive
  learning vs LOLA vs SOS (alpha = 1, 100 steps, 3 seeds; Letcher et al.'s notebook setting);
- ipd.png: (1 - gamma) l_1 over steps on the iterated prisoner's dilemma (gamma = 0.96,
  alpha = 1, 100 steps, 3 seeds), naive learning, LA, LOLA, SOS;
- tandem.png: l_1 over steps on the tandem game (alpha = 0.1, 30 steps, 3 seeds), LOLA vs SOS;
- impossibility.png: trajectories on Letcher's impossibility game (step 0.05, 400 steps from
  (0.5, 0.5)) over its vector field, for GD, CGD, LA, LOLA, SOS, LEAD, LSS and Hamiltonian
  descent;
- bilinear.png: distance to the equilibrium of f = x y over steps, GD vs CGD (step 0.5).

Usage: ``python examples/second_order_games.py [--out DIR] [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import tfgames
from tfgames.optimizers.cgd import CGD
from tfgames.optimizers.hamiltonian import HamiltonianGD
from tfgames.optimizers.lead import LEAD
from tfgames.optimizers.lss import LSS
from tfgames.optimizers.opponent_shaping import LA, LOLA, SOS

G = tfgames.games


class Record(keras.callbacks.Callback):
    """Parameters and losses after every step (the losses re-evaluated at the parameters)."""

    def __init__(self, read):
        super().__init__()
        self.read, self.points, self.losses = read, [], []

    def on_train_begin(self, logs=None):
        self._add()

    def on_train_batch_end(self, batch, logs=None):
        self._add()

    def _add(self):
        self.points.append(self.read(self.model))
        self.losses.append([float(v) for v in self.model.compute_losses(None).values()])


def trajectory(model, optimizer, steps, read):
    record = Record(read)
    model.compile(optimizer=optimizer)
    model.fit(tfgames.datasets.step_dataset(steps), epochs=1, verbose=0, callbacks=[record])
    return np.array(record.points), np.array(record.losses)


def shapers(alpha):
    return {"naive": lambda: keras.optimizers.SGD(alpha),
            "LA": lambda: LA(keras.optimizers.SGD(alpha), alpha=alpha),
            "LOLA": lambda: LOLA(keras.optimizers.SGD(alpha), alpha=alpha),
            "SOS": lambda: SOS(keras.optimizers.SGD(alpha), alpha=alpha)}


def matching_pennies(out, seeds):
    def sig(t):
        return 1 / (1 + np.exp(-t))

    fig, axes = plt.subplots(1, 3, figsize=(13, 4.3), sharey=True)
    grid = np.linspace(-3, 3, 15)
    t1, t2 = np.meshgrid(grid, grid)
    p1, p2 = sig(t1), sig(t2)
    # xi in theta: d l1/d t1 = (2 p2 - 1) 2 p1 (1 - p1), d l2/d t2 = -(2 p1 - 1) 2 p2 (1 - p2)
    u = -(2 * p2 - 1) * 2 * p1 * (1 - p1)
    v = (2 * p1 - 1) * 2 * p2 * (1 - p2)
    makers = shapers(1.0)
    for ax, name in zip(axes, ["naive", "LOLA", "SOS"]):
        ax.quiver(t1, t2, u, v, color="0.75")
        for seed in seeds:
            theta0 = np.random.default_rng(seed).standard_normal(2)
            pts, _ = trajectory(G.MatchingPennies(theta0=theta0), makers[name](), 100,
                                lambda m: [m.t1.numpy()[0], m.t2.numpy()[0]])
            ax.plot(pts[:, 0], pts[:, 1], lw=1.2, label=f"seed {seed}")
            ax.plot(*pts[0], "ko", ms=3)
        ax.plot(0, 0, "r*", ms=12)
        ax.set_title(f"{name} (alpha = 1, 100 steps)")
        ax.set_xlabel("theta_1 (logit of p_1)")
        ax.set_xlim(-3, 3)
        ax.set_ylim(-3, 3)
    axes[0].set_ylabel("theta_2 (logit of p_2)")
    axes[0].legend(loc="lower left", fontsize=8)
    fig.suptitle("Matching pennies: the field -xi (grey), Nash equilibrium at theta = 0 (star)")
    fig.tight_layout()
    fig.savefig(out / "matching-pennies.png", dpi=110)
    plt.close(fig)


def ipd(out, seeds, steps):
    fig, ax = plt.subplots(figsize=(7, 4.3))
    makers = shapers(1.0)
    for color, name in zip(["C0", "C1", "C2", "C3"], ["naive", "LA", "LOLA", "SOS"]):
        for k, seed in enumerate(seeds):
            theta0 = np.random.default_rng(seed).standard_normal((2, 5))
            _, losses = trajectory(G.IteratedPrisonersDilemma(theta0=theta0), makers[name](),
                                   steps, lambda m: [0.0])
            ax.plot(0.04 * losses[:, 0], color=color, lw=1.2, label=name if k == 0 else None)
    ax.axhline(1, ls=":", color="k")
    ax.axhline(2, ls=":", color="k")
    ax.set_xlabel("step")
    ax.set_ylabel("(1 - gamma) l_1")
    ax.set_title(f"Iterated prisoner's dilemma, gamma = 0.96, alpha = 1, {len(seeds)} seeds")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "ipd.png", dpi=110)
    plt.close(fig)


def tandem(out, seeds):
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    makers = shapers(0.1)
    for color, name in zip(["C2", "C3"], ["LOLA", "SOS"]):
        for k, seed in enumerate(seeds):
            x0, y0 = 0.1 * np.random.default_rng(seed).standard_normal(2)
            pts, losses = trajectory(G.Tandem(x0=x0, y0=y0), makers[name](), 30,
                                     lambda m: [m.x.numpy()[0], m.y.numpy()[0]])
            label = name if k == 0 else None
            axes[0].plot(losses[:, 0], color=color, lw=1.2, label=label)
            axes[1].plot(pts[:, 0] + pts[:, 1], color=color, lw=1.2, label=label)
    axes[0].set_ylabel("l_1 = (x + y)^2 - 2x")
    axes[1].axhline(1, ls=":", color="k")
    axes[1].set_ylabel("x + y (fixed points: x + y = 1)")
    for ax in axes:
        ax.set_xlabel("step")
        ax.legend()
    fig.suptitle(f"Tandem game, alpha = 0.1, {len(seeds)} seeds")
    fig.tight_layout()
    fig.savefig(out / "tandem.png", dpi=110)
    plt.close(fig)


def impossibility(out, steps):
    makers = {
        "GD": lambda: keras.optimizers.SGD(0.05),
        "CGD": lambda: CGD(keras.optimizers.SGD(0.05), alpha=0.05),
        "LA": lambda: LA(keras.optimizers.SGD(0.05), alpha=0.05),
        "LOLA": lambda: LOLA(keras.optimizers.SGD(0.05), alpha=0.05),
        "SOS": lambda: SOS(keras.optimizers.SGD(0.05), alpha=0.05),
        "LEAD": lambda: LEAD(keras.optimizers.SGD(0.05), alpha=0.6),
        "LSS": lambda: LSS(keras.optimizers.SGD(0.05)),
        "Hamiltonian": lambda: HamiltonianGD(keras.optimizers.SGD(0.05)),
    }
    fig, axes = plt.subplots(2, 4, figsize=(15, 7.5), sharex=True, sharey=True)
    grid = np.linspace(-1.4, 1.4, 15)
    x, y = np.meshgrid(grid, grid)
    u = -(y - x + x**3)
    v = -(-x - y + y**3)
    for ax, (name, make) in zip(axes.ravel(), makers.items()):
        ax.quiver(x, y, u, v, color="0.75")
        pts, _ = trajectory(G.ImpossibilityGame(x0=0.5, y0=0.5), make(), steps,
                            lambda m: [m.x.numpy()[0], m.y.numpy()[0]])
        ax.plot(pts[:, 0], pts[:, 1], lw=1.0)
        ax.plot(*pts[0], "ko", ms=3)
        ax.plot(*pts[-1], "rs", ms=4)
        ax.set_title(name)
    fig.suptitle(f"Impossibility game (Letcher 2020), step 0.05, {steps} steps from "
                 "(0.5, 0.5) (black dot) to the red square; field -xi in grey")
    fig.tight_layout()
    fig.savefig(out / "impossibility.png", dpi=110)
    plt.close(fig)


def bilinear(out):
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name, make in [("GD", lambda: keras.optimizers.SGD(0.5)),
                       ("CGD (CG)", lambda: CGD(keras.optimizers.SGD(0.5), alpha=0.5))]:
        pts, _ = trajectory(G.Bilinear(), make(), 60, lambda m: [m.x.numpy(), m.y.numpy()])
        ax.semilogy(np.hypot(pts[:, 0], pts[:, 1]), label=name)
    ax.set_xlabel("step")
    ax.set_ylabel("distance to (0, 0)")
    ax.set_title("f = x y, step 0.5: GD diverges, CGD converges")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "bilinear.png", dpi=110)
    plt.close(fig)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1]
                                             / "docs" / "figures" / "second-order"))
    parser.add_argument("--quick", "--smoke", action="store_true",
                        help="1 seed, short runs (CI)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    seeds = [0] if args.quick else [0, 1, 2]
    matching_pennies(out, seeds)
    tandem(out, seeds)
    bilinear(out)
    impossibility(out, 40 if args.quick else 400)
    ipd(out, seeds, 10 if args.quick else 100)
    metrics = {"example": "second_order_games", "seeds": seeds,
               "figures": sorted(p.name for p in out.glob("*.png"))}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


if __name__ == "__main__":
    main()
