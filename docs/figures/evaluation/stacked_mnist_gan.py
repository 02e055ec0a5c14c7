"""A GAN on stacked MNIST under the ``stacked-mnist`` protocol, per registry optimizer and seed.

Trains :func:`tfgames.lab.protocols.run_stacked_mnist_seeds`'s MLP GAN (configuration
``mlp-small`` of :data:`tfgames.lab.protocols.STACKED_MNIST_CONFIGS`, the same learning rate
and steps for every optimizer), scores 26,000 samples of each run with
:func:`tfgames.lab.protocols.stacked_mnist_modes` (the offline classifier), prints the
mean +- std table (:func:`tfgames.lab.protocols.format_table`) and draws a grid of samples per
optimizer and seed. Resumable: one JSON file (and an .npz of the first 100 samples) per
(optimizer, seed) in ``--out``; a run whose file exists is read, not repeated. Runs go seed by
seed (every optimizer's seed 0 first), so an interrupted job has whole seeds.

    python docs/figures/evaluation/stacked_mnist_gan.py --optimizers adam,sga,extraadam \
        --seeds 0,1,2 --out runs/stacked_mnist
    python docs/figures/evaluation/stacked_mnist_gan.py --small --out /tmp/smoke   # seconds
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def sample_grid(out: str | os.PathLike, optimizers, seeds, config_name: str,
                figure: str | os.PathLike, *, side: int = 6, data=None) -> list[str]:
    """A PNG: one row per seed, one column per optimizer (``side`` x ``side`` of that run's
    first samples), after a column of real stacked digits (drawn from ``data``, default the
    offline MNIST, with the row's seed). Runs without a file are left blank. Returns the
    column titles.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tfgames.lab import protocols as pr

    def tile(images):
        images = images[:side * side]
        grid = np.ones((side * side, 28, 28, 3), np.float32)
        grid[:len(images)] = images
        return grid.reshape(side, side, 28, 28, 3).transpose(0, 2, 1, 3, 4).reshape(
            side * 28, side * 28, 3)

    seeds = list(seeds)
    titles = ["real stacked MNIST", *optimizers]
    fig, axes = plt.subplots(len(seeds), len(titles), squeeze=False,
                             figsize=(2.6 * len(titles), 2.75 * len(seeds)))
    for row, seed in zip(axes, seeds):
        for ax, title in zip(row, titles):
            ax.axis("off")
            if title == titles[0]:
                images = pr.stacked_mnist_real(side * side, seed=seed, data=data)[0]
            else:
                file = Path(out) / f"stacked-mnist__{config_name}__{title}__seed{seed}.npz"
                if not file.is_file():
                    continue
                images = np.load(file)["samples"].astype(np.float32) / 255
            ax.imshow(tile(images), interpolation="nearest")
            ax.set_title(f"{title}, seed {seed}", fontsize=9)
    fig.suptitle(f"stacked-mnist, training config {config_name}: first {side * side} samples")
    fig.tight_layout()
    fig.savefig(figure, dpi=80)
    plt.close(fig)
    return titles


def main(argv=None) -> int:
    """Train and score every (optimizer, seed) not yet in ``--out``; print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--optimizers", default="adam,sga,extraadam")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--steps", type=int, default=None, help="instead of the config's")
    parser.add_argument("--out", default="runs/stacked_mnist")
    parser.add_argument("--figure", default=str(HERE / "stacked_mnist_samples.png"))
    parser.add_argument("--small", action="store_true",
                        help="the 'smoke' configuration: 3 steps, 200 samples (a pipeline test)")
    args = parser.parse_args(argv)

    from tfgames.lab import mnist
    from tfgames.lab import protocols as pr
    from tfgames.lab.experiments.registry import resolve_optimizer_names

    config = pr.STACKED_MNIST_CONFIGS["smoke" if args.small else "mlp-small"]
    if args.steps is not None:
        config = dataclasses.replace(config, steps=args.steps,
                                     name=f"{config.name}-{args.steps}steps")
    optimizers = resolve_optimizer_names(args.optimizers)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    print(f"configuration: {dataclasses.asdict(config)}", flush=True)
    data = mnist.load_mnist("auto", split=config.digits)
    classifier = mnist.mnist_classifier()
    rows = []
    for seed in seeds:
        for optimizer in optimizers:
            (row,) = pr.run_stacked_mnist_seeds([optimizer], [seed], config=config, out=args.out,
                                                classifier=classifier, data=data)
            rows.append(row)
            print(f"stacked-mnist {config.name} {optimizer} seed {seed}: modes {row['modes']}, "
                  f"reverse KL {row['reverse_kl']:.3f}, losses {row['final_losses']}, "
                  f"train {row['wall_seconds']:.0f} s, score {row['score_seconds']:.0f} s",
                  flush=True)
        sample_grid(args.out, optimizers, seeds, config.name, args.figure, data=data)
    print(pr.format_table(pr.summarize(rows)))
    print(f"figure: {args.figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
