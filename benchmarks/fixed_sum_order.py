"""Step-time cost of ``tfgames.repeatability.fixed_sum_order()`` on the user path.

Under ``fixed_sum_order()`` the gradient tape adds the contributions to one gradient two at a
time instead of in one ``AddN``, and Grappler's arithmetic optimizer is off: no sum of three or
more tensors is left whose order could depend on thread scheduling
(:mod:`tfgames.repeatability`), and the subexpressions the optimizer would merge are
computed where they occur. Each row is ``GameModel.fit``'s own
compiled train step on ``benchmarks/step_time.py``'s GAN (noise drawn from the model's
``SeedGenerator`` inside ``compute_losses``, as in the README), built twice in one process:
once called under the setting (``fixed``), once without (``default``). The two are
interleaved with the other rows (``step_time.time_interleaved``), and the table prints the
paired median of fixed / default with its 90% bootstrap interval
(``step_time.paired_ratio``) and each one's executed matrix products per step. Rows:

- ``sga``: ``tfgames.SGA(keras.optimizers.RMSprop)``, the default (double backward on the CPU);
- ``extragradient``: ``tfgames.Extragradient(keras.optimizers.RMSprop)``;
- ``plain``: ``keras.optimizers.RMSprop`` (simultaneous gradient descent).

Usage: ``python benchmarks/fixed_sum_order.py [--depth 6] [--width 384] [--batch 256]
[--reps 15] [--steps 5] [--small]`` (``--small``: width 32, batch 32, 3 repetitions of 2
steps, for the test). Absolute times depend on the machine; the ratios are the result.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras
import step_time as st

import tfgames
from tfgames.repeatability import fixed_sum_order

OPTIMIZERS = {
    "sga": lambda: tfgames.SGA(keras.optimizers.RMSprop(st.LR)),
    "extragradient": lambda: tfgames.Extragradient(keras.optimizers.RMSprop(st.LR)),
    "plain": lambda: keras.optimizers.RMSprop(st.LR),
}


def fixed(make):
    """A runner built (its train function traced) and always called under
    ``fixed_sum_order()``: the tape's order is set when a function is traced, and TensorFlow
    optimizes a function for the Grappler setting in force at each call."""
    with fixed_sum_order():
        run = make()

    def call(steps: int) -> None:
        with fixed_sum_order():
            run(steps)

    call.products = run.products
    return call


def measure(depth: int, width: int, batch: int, reps: int, steps: int) -> dict:
    """``{row: (ratio, low, high, fixed products, default products)}``."""
    weights = st.init_weights(depth, width)
    x = st.real_batch(batch)
    configs = {}
    for name, optimizer in OPTIMIZERS.items():
        make = lambda optimizer=optimizer: st.keras_runner(weights, optimizer(), x)  # noqa: E731
        configs[f"{name}/fixed"] = fixed(make)
        configs[f"{name}/default"] = make()
    times = st.time_interleaved(configs, reps, steps)
    return {name: (*st.paired_ratio(times[f"{name}/fixed"], times[f"{name}/default"]),
                   configs[f"{name}/fixed"].products, configs[f"{name}/default"].products)
            for name in OPTIMIZERS}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=6)
    parser.add_argument("--width", type=int, default=384)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--small", action="store_true")
    args = parser.parse_args(argv)
    if args.small:
        args.width, args.batch, args.reps, args.steps = 32, 32, 3, 2
    result = measure(args.depth, args.width, args.batch, args.reps, args.steps)
    print(f"depth {args.depth}, width {args.width}, batch {args.batch}: {args.reps} "
          f"repetitions of {args.steps} steps, interleaved")
    print("| row | fixed / default (paired median) | 90% interval | products fixed | "
          "products default |")
    print("| --- | --- | --- | --- | --- |")
    for name, (ratio, low, high, p_fixed, p_default) in result.items():
        print(f"| {name} | {ratio:.2f} | [{low:.2f}, {high:.2f}] | {p_fixed} | {p_default} |")
    return result


if __name__ == "__main__":
    main()
