"""Order-dependent sums in the lab's train steps, with and without ``fixed_sum_order()``.

For every optimizer of the lab's registry (or those named), two steps of the smoke 4x4-grid
GAN of ``tfgames run mog --preset smoke`` through the lab's training loop, checked with
``tfgames.repeatability.order_dependent_sums``: once as the lab runs them (under
``fixed_sum_order()``), once with Grappler's arithmetic optimizer on (the loop undecorated,
as before 2026-12-01). Prints one Markdown row per optimizer with the number of ``AddN`` nodes
whose summation order can depend on thread scheduling in each case.

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
    from tfgames.lab.experiments import mog, registry
    from tfgames.lab.experiments.runner import train_with_snapshots
    from tfgames.repeatability import order_dependent_sums

    names = list(sys.argv[1:] if argv is None else argv) or registry.available_optimizers()
    config = dataclasses.replace(mog.PRESETS["smoke"], steps=2)

    def count(name: str, train) -> int:
        return len(order_dependent_sums(lambda: train(
            registry.make_optimizer(name, config.learning_rate), config, seed=2, verbose=0)))

    print("| optimizer | order-dependent sums, arithmetic optimizer on | under fixed_sum_order |")
    print("| --- | --- | --- |")
    counts = {}
    for name in names:
        counts[name] = (count(name, train_with_snapshots.__wrapped__),
                        count(name, train_with_snapshots))
        print(f"| {name} | {counts[name][0]} | {counts[name][1]} |", flush=True)
    return counts


if __name__ == "__main__":
    main()
