"""The seed's own TF1 code on the paper-size 4x4-grid GAN: a reference for the `mog` results.

Runs seed 000's ``SymplecticOptimizer`` (or TF1 RMSProp) through ``tf.compat.v1`` graph mode
(:mod:`tfgames.lab.tf1_seed`, ``kfac.utils.fwd_gradients`` replaced by its double-backward
definition) on the seed's Experiment 4 GAN (6x384 ReLU MLPs, z 64, batch 256, lr 1e-4), from
the initial weights ``tfgames run mog --seed S`` starts from, with fresh NumPy data and noise
every step. Prints the training-batch losses (as the seed's loop did) and, at every
``--every`` steps, the losses and mode statistics of 10 x 256 samples on fixed evaluation
noise. It answers one question: does the seed's own code, in this TensorFlow, reach what the
seed printed (SGA at L_D 1.3853 / L_G 0.6939 after 10k steps) from these starting points?

    python benchmarks/seed_tf1_mog.py --mode SGA --seed 0 --steps 2000
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import keras
import numpy as np

from tfgames.lab import metrics, samplers, tf1_seed
from tfgames.lab.experiments.runner import MLPGAN, GanConfig


def initial_weights(seed: int, config: GanConfig) -> dict[str, list[np.ndarray]]:
    """The weights ``tfgames run mog --seed seed`` starts from (set_random_seed, MLPGAN)."""
    keras.utils.set_random_seed(seed)
    model = MLPGAN(config, seed=seed)
    return {name: [w.numpy() for w in layer.weights]
            for name, layer in (("discriminator", model.discriminator),
                                ("generator", model.generator))}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", default="SGA", choices=["SGA", "RMS"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--every", type=int, default=500)
    parser.add_argument("--json", default=None, help="write the snapshots to this file")
    args = parser.parse_args(argv)

    config = GanConfig()
    graph = tf1_seed.build_seed_gan_graph(
        initial_weights(args.seed, config), args.mode, config.learning_rate, config.depth,
        config.width, batch_size=config.batch_size)
    rng = np.random.default_rng(1000 + args.seed)
    tiled = np.tile(samplers.GRID_CENTRES, (config.batch_size // 16 + 1, 1))[:config.batch_size]

    def real() -> np.ndarray:
        return (tiled + config.std * rng.standard_normal(tiled.shape)).astype(np.float32)

    def noise() -> np.ndarray:
        return rng.standard_normal((config.batch_size, config.z_dim)).astype(np.float32)

    eval_batches = [(real(), noise()) for _ in range(config.eval_batches)]
    snapshots = []
    start = time.perf_counter()
    try:
        for step in range(args.steps + 1):
            if step % args.every == 0 or step == args.steps:
                losses = np.array([graph.session.run([graph.disc_loss, graph.gen_loss],
                                                     graph.feed_dict(x, z))
                                   for x, z in eval_batches])
                fake = np.concatenate([graph.session.run(graph.x_fake, graph.feed_dict(x, z))
                                       for x, z in eval_batches])
                stats = metrics.mode_statistics(fake, samplers.GRID_CENTRES, config.std)
                shot = {"step": step, "L_D": float(losses[:, 0].mean()),
                        "L_G": float(losses[:, 1].mean()),
                        "distance": float(metrics.loss_equilibrium_distance(
                            losses[:, 0].mean(), losses[:, 1].mean())),
                        "modes": int(stats["modes_covered"]),
                        "high_quality": float(stats["high_quality_share"]),
                        "seconds": time.perf_counter() - start}
                snapshots.append(shot)
                print(json.dumps(shot), flush=True)
            if step < args.steps:
                graph.session.run(graph.train_op, graph.feed_dict(real(), noise()))
    finally:
        graph.session.close()
    result = {"mode": args.mode, "seed": args.seed, "steps": args.steps, "snapshots": snapshots}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
