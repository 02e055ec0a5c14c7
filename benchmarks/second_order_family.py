"""Step time of the second-order family against a plain step and SGA, side by side.

On the 4x4-grid architecture (G and D: 6 hidden ReLU layers of 384 units, z 64, batch 256;
:func:`benchmarks.first_order.grid_gan`, real samples drawn inside the step), from identical
initial weights, through ``GameModel``'s compiled train step:

- ``rmsprop``: simultaneous RMSProp, the plain step; ``sga``: ``tfgames.SGA(RMSprop)``;
- ``la``, ``lola``, ``sos``: :mod:`tfgames.optimizers.opponent_shaping` (target: LA, LOLA and
  SOS at most 1.3x an SGA step);
- ``hgd``: Hamiltonian gradient descent; ``lead``: LEAD(Adam);
- ``cgd-k1``, ``cgd-k5``, ``cgd-k10``: CGD (alpha = 1) with GMRES forced to exactly k
  iterations (tolerance 0, no warm start; the solver's k is printed): the cost of one
  solver iteration is the slope (t(k10) - t(k1)) / 9, printed over a plain step (target: at
  most two Hessian-vector products, about an SGA step minus a plain one);
- ``gacgd-k5``, ``acgd-k5``, ``lss-k5``: the other solver-based methods at k = 5;
  ``lss-k5-forward``: LSS with ``hvp_mode="forward"`` (one evaluation per H v product).

Repetitions are interleaved across configurations in a rotating order, so that the load of a
shared machine hits all alike; reported: median ms/step (for orientation) and the median ratio
to the plain step measured in the same repetition, the same ratio of process CPU time, and the
Hessian-vector products per step reported by each optimizer's ``hessian_products`` metric.

Usage: ``python benchmarks/second_order_family.py [--reps 6] [--steps 3] [--small]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # measure this checkout
sys.path.insert(0, str(Path(__file__).resolve().parent))

import keras
import tensorflow as tf
from first_order import runner

import tfgames
from tfgames.optimizers.cgd import ACGD, CGD, GACGD
from tfgames.optimizers.hamiltonian import HamiltonianGD
from tfgames.optimizers.lead import LEAD
from tfgames.optimizers.lss import LSS
from tfgames.optimizers.opponent_shaping import LA, LOLA, SOS


def optimizers(lr: float) -> dict:
    rms = lambda: keras.optimizers.RMSprop(lr)  # noqa: E731
    exact = dict(tol=0.0, warm_start=False)  # exactly k iterations
    return {
        "rmsprop": rms,
        "sga": lambda: tfgames.SGA(rms()),
        "la": lambda: LA(rms(), alpha=lr),
        "lola": lambda: LOLA(rms(), alpha=lr),
        "sos": lambda: SOS(rms(), alpha=lr),
        "hgd": lambda: HamiltonianGD(rms()),
        "lead": lambda: LEAD(keras.optimizers.Adam(lr, beta_1=0.5, beta_2=0.9), alpha=0.6),
        # alpha = 1 for the cost scan: with alpha = lr = 1e-4 the Schur matrix
        # I - alpha^2 H_pq H_qp is the identity to float32 precision and GMRES stops after one
        # iteration (a lucky breakdown), whatever k.
        "cgd-k1": lambda: CGD(rms(), alpha=1.0, solver="gmres", max_iterations=1, **exact),
        "cgd-k5": lambda: CGD(rms(), alpha=1.0, solver="gmres", max_iterations=5, **exact),
        "cgd-k10": lambda: CGD(rms(), alpha=1.0, solver="gmres", max_iterations=10, **exact),
        "gacgd-k5": lambda: GACGD(rms(), alpha=lr, max_iterations=5, **exact),
        "acgd-k5": lambda: ACGD(lr, solver="gmres", max_iterations=5, **exact),
        "lss-k5": lambda: LSS(rms(), regularize="never", tol=0.0, max_iterations=5),
        "lss-k5-forward": lambda: LSS(rms(), regularize="never", tol=0.0, max_iterations=5,
                                      hvp_mode="forward"),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=6)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--small", action="store_true", help="tiny nets (a smoke run)")
    parser.add_argument("--only", nargs="+", metavar="NAME",
                        help="run only these (rmsprop and sga are always run)")
    args = parser.parse_args(argv)
    sizes = (2, 32, 8, 64) if args.small else (6, 384, 64, 256)
    tf.get_logger().setLevel("ERROR")
    chosen = {n: m for n, m in optimizers(1e-4).items()
              if not args.only or n in ("rmsprop", "sga") or n in args.only}
    built = {n: runner(m, sizes, False, warmup=2) for n, m in chosen.items()}
    names = list(built)
    times = {n: [] for n in names}
    cpu = {n: [] for n in names}
    for rep in range(args.reps):
        for name in names[rep % len(names):] + names[: rep % len(names)]:
            start, start_cpu = time.perf_counter(), time.process_time()
            built[name][1](args.steps)
            times[name].append((time.perf_counter() - start) / args.steps)
            cpu[name].append((time.process_time() - start_cpu) / args.steps)
    depth, width, z_dim, batch = sizes
    print(f"GAN {depth}x{width} ReLU MLPs, z {z_dim}, batch {batch}, {args.reps} interleaved "
          f"repetitions of {args.steps} steps, TF {tf.__version__}, CPU threads "
          f"{os.cpu_count()}")

    def ratio(series, name, base):
        return statistics.median([t / b for t, b in zip(series[name], series[base])])

    print(f"{'optimizer':<10}{'ms/step':>10}{'/ plain':>9}{'CPU /plain':>11}{'/ SGA':>7}"
          f"{'CPU /SGA':>9}{'products':>10}")
    for name in names:
        model = built[name][0]
        metrics = model.get_metrics_result()
        products = metrics.get("hessian_products")
        products = "" if products is None else f"{float(products):.0f}"
        if "solver_iterations" in metrics:
            products += f" (k={float(metrics['solver_iterations']):.0f})"
        if name == "sga":
            products = "2"
        print(f"{name:<10}{1e3 * statistics.median(times[name]):>10.1f}"
              f"{ratio(times, name, 'rmsprop'):>9.2f}{ratio(cpu, name, 'rmsprop'):>11.2f}"
              f"{ratio(times, name, 'sga'):>7.2f}{ratio(cpu, name, 'sga'):>9.2f}"
              f"{products:>10}")
    if {"cgd-k1", "cgd-k10"} <= set(names):
        for label, series in (("wall", times), ("CPU", cpu)):
            slope = statistics.median([(a - b) / 9 / p for a, b, p in zip(
                series["cgd-k10"], series["cgd-k1"], series["rmsprop"])])
            product = statistics.median([(s - p) / 2 / p for s, p in zip(
                series["sga"], series["rmsprop"])])
            print(f"one GMRES iteration of CGD ({label} time): {slope:.2f} plain steps; one "
                  f"Hessian-vector product ~ (SGA - plain) / 2 = {product:.2f} plain steps; "
                  f"target: iteration <= 2 products = {2 * product:.2f}")


if __name__ == "__main__":
    main()
