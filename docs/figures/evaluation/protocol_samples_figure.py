"""Generated samples per optimizer and seed under a protocol (from run_seeds' .npz files).

    python docs/figures/evaluation/protocol_samples_figure.py runs/h20_protocols/ring \
        docs/figures/evaluation/ring_samples.png

One panel per (optimizer, seed): the 2,500 evaluated samples (black), the mode centres (red
crosses) and the 3-std high-quality circles; the title gives the protocol's numbers.
"""

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from tfgames.lab.protocols import get_protocol


def main(folder, out):
    """Draw every run of ``folder`` into ``out``."""
    files = sorted(Path(folder).glob("*__seed*.json"))
    rows = [json.loads(f.read_text()) for f in files]
    optimizers = list(dict.fromkeys(r["optimizer"] for r in rows))
    seeds = sorted({r["seed"] for r in rows})
    fig, axes = plt.subplots(len(optimizers), len(seeds), squeeze=False,
                             figsize=(2.6 * len(seeds), 2.7 * len(optimizers)))
    for ax in axes.ravel():
        ax.set_axis_off()
    for f, r in zip(files, rows):
        p = get_protocol(r["protocol"])
        ax = axes[optimizers.index(r["optimizer"]), seeds.index(r["seed"])]
        ax.set_axis_on()
        samples = np.load(f.with_suffix(".npz"))["samples"]
        c = p.centres_array()
        ax.scatter(samples[:, 0], samples[:, 1], s=1, c="black", alpha=0.3)
        ax.scatter(c[:, 0], c[:, 1], marker="x", c="red", s=20)
        for centre in c:
            ax.add_patch(plt.Circle(centre, p.n_std * p.std, fill=False, color="red", lw=0.5))
        lim = 1.0 + np.abs(c).max()
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{r['optimizer']} seed {r['seed']}\nmodes {r['modes']}, hq "
                     f"{100 * r['high_quality_share']:.1f}%", fontsize=8)
    fig.suptitle(f"protocol {rows[0]['protocol']}, training config {rows[0]['config']['name']}",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=80)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
