"""Order-dependent sums in the lab's train steps, with and without ``fixed_sum_order()``.

For every optimizer of the lab's registry (or those named), two steps of the smoke 4x4-grid
GAN of ``tfgames run mog --preset smoke`` through the lab's training loop, checked with
``tfgames.repeatability.order_dependent_sums``: with Grappler's arithmetic optimizer on, and
under ``fixed_sum_order()`` (off). Prints one Markdown row per optimizer with the number of
``AddN`` nodes listed in each case and the setting the lab trains it with
(``runner.uses_curvature``: second-order optimizers with the optimizer on). The check finds one
cause of run-to-run differences, not all: an empty list does not prove a step repeatable
(docs/scaling.md).

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

    print("| optimizer | order-dependent sums, arithmetic optimizer on | under fixed_sum_order "
          "| the lab trains it with the optimizer |")
    print("| --- | --- | --- | --- |")
    counts = {}
    for name in names:
        on = count(name)
        with fixed_sum_order():
            off = count(name)
        counts[name] = (on, off)
        lab = "on" if runner.uses_curvature(registry.make_optimizer(name, 1e-3)) else "off"
        print(f"| {name} | {on} | {off} | {lab} |", flush=True)
    return counts


if __name__ == "__main__":
    main()
