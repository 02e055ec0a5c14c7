"""Step time of the first-order game optimizers against their plain counterparts.

Measured side by side in one run, on the 4x4-grid architecture (G and D: 6 hidden ReLU layers
of 384 units, z 64, batch 256, real samples drawn by :func:`tfgames.lab.samplers.grid_batch` inside
the step), from identical initial weights, through ``GameModel``'s compiled train step:

- ``adam``: simultaneous Adam (a stock Keras optimizer), the plain step;
- ``extragradient``: ``tfgames.Extragradient(Adam)`` (ExtraAdam: two gradient evaluations
  and two Adam half-steps per step); target <= 2.2x ``adam``;
- ``past-extragradient``: the same with ``past=True`` (one evaluation per step);
- ``adamirror``: ``tfgames.Adamirror`` (optimistic Adam); target <= 1.15x ``adam``;
- ``lookahead-adam``: ``tfgames.Lookahead(Adam, k=5)``;
- ``eg-plus``: EG+, ``tfgames.Extragradient(Adam, beta=0.5)`` (two evaluations);
- ``curvature-eg-plus``: CurvatureEG+, ``Extragradient(SGD, curvature=0.9,
  power_iterations=2)`` (two evaluations, backtracking, 4 Hessian-vector products);
- ``eag``, ``feg``: ``ExtraAnchoredGradient(Adam)``, ``FastExtragradient(Adam)`` (two);
- ``negative-momentum``: ``NegativeMomentum(lr, momentum=-0.5)``, alternating update order
  (each step moves one player: one player's gradient);
- ``alex-gda``: ``AlexGDA(Adam, extrapolation=2.0)`` (a round per step: each player steps in
  turn on its own gradient at the other's extrapolated point, two one-player evaluations);
- ``heun``, ``rk4``: ``RungeKutta(SGD, method=...)`` (two, four evaluations);
- ``rk4-regularised``: the same with ``grad_reg_weight=0.02`` (DeepMind's value; one
  reverse-over-reverse product more);
- ``averaging-adam``: ``tfgames.averaging.Averaging(Adam, method="ema")``.

Each configuration runs ``--steps`` steps per repetition; repetitions are interleaved across
configurations (in a rotating order) so that machine noise hits all of them alike. Reported:
the median wall-clock time per step of each (machine-dependent, for orientation only) and, as
the result, its ratio to ``adam``: the median over repetitions of the ratio of the two times
measured in the same repetition. The same ratio of process CPU time is printed beside it: on a
CPU shared with other jobs it is the steadier of the two (it does not count waiting for a
core); it is meaningless on a GPU.

Usage: ``python benchmarks/first_order.py [--reps 24] [--steps 5] [--jit] [--small]``.
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

import keras
import tensorflow as tf

import tfgames
from tfgames.averaging import Averaging
from tfgames.lab.experiments.gan import MLPGAN, GanConfig
from tfgames.optimizers.alex_gda import AlexGDA
from tfgames.optimizers.anchored import ExtraAnchoredGradient, FastExtragradient
from tfgames.optimizers.negative_momentum import NegativeMomentum
from tfgames.optimizers.ode import RungeKutta


def grid_gan(depth: int, width: int, z_dim: int, batch_size: int, *, seed: int) -> MLPGAN:
    """The 4x4-grid GAN of the experiments (:class:`tfgames.lab.experiments.gan.MLPGAN`:
    sigmoid cross-entropy losses, real samples and noise drawn in the step) of these sizes."""
    return MLPGAN(GanConfig(depth=depth, width=width, z_dim=z_dim, batch_size=batch_size),
                  seed=seed)


def optimizers(lr: float) -> dict[str, callable]:
    adam = lambda: keras.optimizers.Adam(lr, beta_1=0.5, beta_2=0.9)  # noqa: E731
    return {
        "adam": adam,
        "extragradient": lambda: tfgames.Extragradient(adam()),
        "past-extragradient": lambda: tfgames.Extragradient(adam(), past=True),
        "adamirror": lambda: tfgames.Adamirror(lr, beta_1=0.5, beta_2=0.9),
        "lookahead-adam": lambda: tfgames.Lookahead(adam(), k=5, alpha=0.5),
        "eg-plus": lambda: tfgames.Extragradient(adam(), beta=0.5),
        "curvature-eg-plus": lambda: tfgames.Extragradient(
            keras.optimizers.SGD(lr), curvature=0.9, power_iterations=2),
        "eag": lambda: ExtraAnchoredGradient(adam()),
        "feg": lambda: FastExtragradient(adam()),
        "negative-momentum": lambda: NegativeMomentum(lr, momentum=-0.5),
        "alex-gda": lambda: AlexGDA(adam(), extrapolation=2.0),
        "heun": lambda: RungeKutta(keras.optimizers.SGD(lr), method="heun"),
        "rk4": lambda: RungeKutta(keras.optimizers.SGD(lr), method="rk4"),
        "rk4-regularised": lambda: RungeKutta(keras.optimizers.SGD(lr), method="rk4",
                                              grad_reg_weight=0.02),
        "averaging-adam": lambda: Averaging(adam(), method="ema", decay=0.999),
    }


#: compile() arguments besides the optimizer.
COMPILE_KWARGS = {"negative-momentum": {"update_order": "alternating"}}


def runner(make_optimizer, sizes: tuple[int, int, int, int], jit: bool, warmup: int,
           compile_kwargs: dict | None = None):
    keras.utils.set_random_seed(0)  # identical initial weights for every configuration
    model = grid_gan(*sizes, seed=1)
    model.compile(optimizer=make_optimizer(), jit_compile=jit, **(compile_kwargs or {}))
    iterator = iter(tfgames.datasets.step_dataset(1).repeat())
    model.make_train_function()

    def run(steps: int) -> None:
        for _ in range(steps):
            logs = model.train_function(iterator)
        for value in tf.nest.flatten(logs):  # wait for the last step to finish
            value.numpy()

    run(warmup)
    return model, run


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=24)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--jit", action="store_true", help="compile the train step with XLA")
    parser.add_argument("--small", action="store_true", help="tiny nets (a smoke run)")
    parser.add_argument("--only", nargs="+", metavar="NAME",
                        help="run only these configurations (adam is always run)")
    args = parser.parse_args(argv)
    sizes = (2, 32, 8, 64) if args.small else (6, 384, 64, 256)
    tf.get_logger().setLevel("ERROR")  # one trace per model: not a retracing problem
    chosen = {name: make for name, make in optimizers(1e-4).items()
              if not args.only or name == "adam" or name in args.only}
    built = {name: runner(make, sizes, args.jit, warmup=3,
                          compile_kwargs=COMPILE_KWARGS.get(name))
             for name, make in chosen.items()}
    models = {name: model for name, (model, _) in built.items()}
    runs = {name: run for name, (_, run) in built.items()}
    names = list(runs)
    times: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(args.reps):
        for name in names[rep % len(names):] + names[: rep % len(names)]:
            start, start_cpu = time.perf_counter(), time.process_time()
            runs[name](args.steps)
            times[name].append((time.perf_counter() - start) / args.steps)
            cpu[name].append((time.process_time() - start_cpu) / args.steps)

    depth, width, z_dim, batch = sizes
    devices = sorted({d.device_type for d in tf.config.list_logical_devices()})
    print(f"GAN {depth}x{width} ReLU MLPs, z {z_dim}, batch {batch}, jit_compile={args.jit}, "
          f"{args.reps} interleaved repetitions of {args.steps} steps, TF {tf.__version__}, "
          f"devices {devices}; traces per model: "
          f"{sorted({model.train_step_traces for model in models.values()})}")
    print(f"{'optimizer':<20}{'median ms/step':>16}{'ratio to adam':>15}"
          f"{'CPU-time ratio':>16}{'target':>10}")
    targets = {"extragradient": 2.2, "adamirror": 1.15}
    for name in names:
        ratio = statistics.median([t / a for t, a in zip(times[name], times["adam"])])
        cpu_ratio = statistics.median([t / a for t, a in zip(cpu[name], cpu["adam"])])
        target = f"<= {targets[name]}" if name in targets else ""
        print(f"{name:<20}{1e3 * statistics.median(times[name]):>16.1f}{ratio:>15.2f}"
              f"{cpu_ratio:>16.2f}{target:>10}")


if __name__ == "__main__":
    main()
