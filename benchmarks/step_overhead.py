"""The fixed per-step cost of ``GameModel``'s train step, on a GAN too small to compute much.

At depth 6, width 8 and batch 8 (``benchmarks/step_time.py``'s GAN, shrunk) a step's matrix
work is negligible, so a row's time is what the step costs around it: the ``tf.function``
call, the iterator, Keras' train-function wrapper, metrics and tfgames' divergence check. The
rows, side by side in one process, interleaved as in ``step_time.py`` (``time_interleaved``:
a new seeded random order each repetition, the garbage collector paused inside a timed
repetition), medians:

- ``tfgames-plain``: ``GameModel`` + ``keras.optimizers.RMSprop``, its own ``train_function``
  (the direct step: one concrete function of the iterator, see ``tfgames/_train_function.py``);
- ``tfgames-plain-unchecked``: the same with ``model.check_finite = False``;
- ``tfgames-plain-lowered-check``: the same as ``tfgames-plain`` with the check's branches
  built by plain ``tf.cond`` (TensorFlow lowers them to switch/merge nodes, which the executor
  visits on every step);
- ``tfgames-plain-keras-function``: ``tfgames-plain`` stepped through Keras' own train
  function (a ``tf.function`` of the iterator returning a ``tf.experimental.Optional``, asked
  in Python for its value) and a separate read of the divergence record, as before the direct
  step;
- ``keras-plain``, ``hand-plain``: as in ``benchmarks/step_time.py`` (a stock
  ``keras.Model``'s ``fit`` step; a bare ``tf.function`` with the data as a constant).

Usage: ``python benchmarks/step_overhead.py [--reps 41] [--steps 10] [--width 8] [--batch 8]``.
Absolute times depend on the machine; the differences between rows are the result.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from unittest import mock

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras
import step_time as st
import tensorflow as tf

from tfgames import _divergence, _train_function


def _rows(width: int, batch: int, depth: int = 6) -> dict:
    weights, x = st.init_weights(depth, width), st.real_batch(batch)
    rms = lambda: keras.optimizers.RMSprop(st.LR)  # noqa: E731
    rows = {
        "tfgames-plain": st.keras_runner(weights, rms(), x),
        "tfgames-plain-unchecked": st.keras_runner(weights, rms(), x, check_finite=False),
    }
    with mock.patch.object(_divergence, "_function_cond", tf.cond):
        rows["tfgames-plain-lowered-check"] = st.keras_runner(weights, rms(), x)
    with mock.patch.object(_train_function, "_one_device_iterator", lambda iterator: False):
        through_keras = st.keras_runner(weights, rms(), x)

    def keras_function(steps: int) -> None:
        with mock.patch.object(_train_function, "_one_device_iterator", lambda iterator: False):
            through_keras(steps)

    rows["tfgames-plain-keras-function"] = keras_function
    rows["keras-plain"] = st.keras_plain_runner(weights, x)
    rows["hand-plain"] = st.hand_runner(weights, "plain", x)
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=41)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--batch", type=int, default=8)
    args = parser.parse_args(argv)
    times = st.time_interleaved(_rows(args.width, args.batch), args.reps, args.steps)
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, {os.cpu_count()} CPUs; "
          f"depth 6, width {args.width}, batch {args.batch}; {args.reps} interleaved "
          f"repetitions of {args.steps} steps")
    hand = statistics.median(times["hand-plain"])
    base = statistics.median(times["tfgames-plain"])
    print(f"{'row':30s} {'ms/step':>8s} {'- hand ms':>10s} {'- tfgames ms':>13s} "
          f"{'/hand':>7s}")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"{name:30s} {1e3 * med:8.3f} {1e3 * (med - hand):10.3f} "
              f"{1e3 * (med - base):13.3f} {med / hand:7.3f}")


if __name__ == "__main__":
    main()
