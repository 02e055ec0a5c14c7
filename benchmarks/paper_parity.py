"""How long do tfgames and the seed's TF1 code stay together on the paper-size 4x4-grid GAN?

From the initial weights of ``tfgames run mog --seed 0`` and identical batches (fed to both),
trains the seed's ``SymplecticOptimizer`` in ``tf.compat.v1`` graph mode
(:mod:`tfgames.lab.tf1_seed`) and the ``sga`` optimizer of ``tfgames run mog``
(``tfgames.SGA`` over ``compat.v1.RMSPropOptimizer``, normalizer "tensors", forward-mode H xi)
under ``GameModel``, and prints the largest parameter difference (relative to the largest
parameter) after each number of steps. The unit tests check 20 steps on a small GAN
(``tests/test_compat_v1.py``); this script shows what happens at the paper's size and beyond.

    python benchmarks/paper_parity.py --steps 1 20 200 [--hvp-mode double_backward]
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(__file__))

import numpy as np
import tensorflow as tf
from seed_tf1_mog import initial_weights
from step_time import SeedGAN

from tfgames.lab import (
    samplers,
    tf1_seed,
)
from tfgames.lab.experiments.registry import make_optimizer
from tfgames.lab.experiments.runner import GanConfig


def relative_difference(steps: int, hvp_mode: str = "forward", seed: int = 0) -> float:
    config = GanConfig()
    weights = initial_weights(seed, config)
    rng = np.random.default_rng(5)
    tiled = np.tile(samplers.GRID_CENTRES, (config.batch_size // 16 + 1, 1))[:config.batch_size]
    x = (tiled + config.std * rng.standard_normal((steps,) + tiled.shape)).astype("float32")
    z = rng.standard_normal((steps, config.batch_size, config.z_dim)).astype("float32")

    graph = tf1_seed.build_seed_gan_graph(weights, "SGA", config.learning_rate, config.depth,
                                          config.width, batch_size=config.batch_size)
    try:
        for t in range(steps):
            graph.session.run(graph.train_op, graph.feed_dict(x[t], z[t]))
        reference = graph.session.run(graph.variables)
    finally:
        graph.session.close()

    model = SeedGAN(weights)
    optimizer = make_optimizer("sga", config.learning_rate)
    optimizer.hvp_mode = hvp_mode  # the seed computes H xi by double backward
    model.compile(optimizer=optimizer)
    model.fit(tf.data.Dataset.from_tensor_slices((x, z)), epochs=1, verbose=0)
    ours = [v.numpy() for v in model.trainable_variables]
    return max(float(np.abs(a - b).max() / np.abs(b).max()) for a, b in zip(ours, reference))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 20, 200])
    parser.add_argument("--hvp-mode", default="forward", choices=["forward", "double_backward"])
    args = parser.parse_args(argv)
    print(f"hvp_mode={args.hvp_mode}")
    print("steps  max |w_tfgames - w_tf1| / max |w_tf1| over the variables")
    for steps in args.steps:
        print(f"{steps:5d}  {relative_difference(steps, args.hvp_mode):.3g}", flush=True)


if __name__ == "__main__":
    main()
