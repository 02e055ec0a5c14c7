"""Order-dependent sums in the lab's train steps, with and without ``fixed_sum_order()``.

For every optimizer of the lab's registry (or those named), two steps of the smoke 4x4-grid
GAN of ``tfgames run mog --preset smoke`` through the lab's training loop, checked with
``tfgames.repeatability.order_dependent_sums`` (every executed ``AddN`` of three or more
inputs): with TensorFlow's defaults, and under ``fixed_sum_order()`` (the gradient tape's sums
added in order, Grappler's arithmetic optimizer off), which is how the lab trains every
optimizer. Prints one Markdown row per optimizer with the number of ``AddN`` nodes listed in
each case. The check models this one kernel, no other (docs/scaling.md).

Usage: ``python benchmarks/order_dependent_sums.py [optimizer ...]``.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # measure this checkout


def main(argv: list[str] | None = None) -> dict[str, tuple[int, int]]:
    from tfgames.lab.experiments import mog, registry, runner
    from tfgames.repeatability import fixed_sum_order, order_dependent_sums

    names = list(sys.argv[1:] if argv is None else argv) or registry.available_optimizers()
    config = dataclasses.replace(mog.PRESETS["smoke"], steps=2)

    def count(name: str) -> int:
        return len(order_dependent_sums(lambda: runner._train(
            registry.make_optimizer(name, config.learning_rate), config, seed=2, verbose=0)))

    print("| optimizer | sums of 3 or more (AddN), TensorFlow's defaults | under fixed_sum_order "
          "(the lab's setting) |")
    print("| --- | --- | --- |")
    counts = {}
    for name in names:
        on = count(name)
        with fixed_sum_order():
            off = count(name)
        counts[name] = (on, off)
        print(f"| {name} | {on} | {off} |", flush=True)
    return counts


if __name__ == "__main__":
    main()
