"""The best TF1 SGA graph in two runtimes: its ``tf.compat.v1.Session`` and TF2's functions.

Where ``benchmarks/step_time.py``'s TF2 steps (tfgames' default SGA and the hand-written one)
trail the best TF1 graph, is it the graph or the runtime that runs it? This benchmark runs the
**same** ``GraphDef`` both ways, side by side in one process, interleaved, at one size
(``step_time.py``'s GAN, default depth 6):

- ``tf1-sga-best``: as in ``step_time.py``: ``session.run`` of the train op, x and z fed;
- ``tf1-sga-best-as-function``: the session's ``GraphDef`` imported into a
  ``tf.compat.v1.wrap_function`` and pruned to the train op, x and z its inputs: TensorFlow 2's
  function runtime (the one that runs every ``tf.function``) executing the very same graph, on
  variables loaded with the session's values;
- ``tfgames-sga``, ``hand-sga-double_backward``: as in ``step_time.py``.

Before timing, the session and the function each take one step from equal variable values and
the largest difference of the results is printed (the same arithmetic, so the same graph).
Each row is printed with its median and its paired ratios (median of the per-repetition
ratios, 90% bootstrap interval; ``step_time.paired_ratio``) to the session and to the function.

Usage: ``python benchmarks/tf1_graph_runtime.py [--width 128] [--batch 256] [--reps 21]
[--steps 6]``. Absolute times depend on the machine; the ratios are the result.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np
import step_time as st
import tensorflow as tf


def all_variables(g) -> list:
    """The graph's variables, the optimizer's slots included."""
    return g.graph.get_collection(tf.compat.v1.GraphKeys.GLOBAL_VARIABLES)


def graph_as_function(g):
    """A runner stepping ``g``'s train op (a ``tf1_seed.SeedGanGraph``) through TF2's function
    runtime, on variables of its own holding the session's current values (the optimizer's
    slots included); ``run.values()`` reads them. The caller sets the batch, ``run.x`` and
    ``run.z``."""
    graph_def = g.graph.as_graph_def()
    wrapped = tf.compat.v1.wrap_function(
        lambda: tf.graph_util.import_graph_def(graph_def, name=""), [])
    fg = wrapped.graph
    wrapped.prune([], [fg.get_operation_by_name("init")])()  # creates the variables
    variables = all_variables(g)
    handles = wrapped.prune([], [fg.get_tensor_by_name(v.handle.name) for v in variables])()
    for handle, value in zip(handles, g.session.run(variables)):
        tf.raw_ops.AssignVariableOp(resource=handle, value=tf.constant(value))
    train = wrapped.prune([fg.get_tensor_by_name(g.feeds["x_real"].name),
                           fg.get_tensor_by_name(g.feeds["z"].name)],
                          [fg.get_operation_by_name(g.train_op.name)])

    def run(steps: int) -> None:
        for _ in range(steps):
            train(run.x, run.z)

    def values() -> list[np.ndarray]:
        return [tf.raw_ops.ReadVariableOp(resource=h, dtype=v.dtype.base_dtype).numpy()
                for h, v in zip(handles, variables)]

    run.values = values
    return run


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--depth", type=int, default=6)
    parser.add_argument("--reps", type=int, default=21)
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args(argv)
    depth, width, batch = args.depth, args.width, args.batch
    weights, x = st.init_weights(depth, width), st.real_batch(batch)
    session = st.tf1_runner(weights, "SGA", depth, width, x, colocate_alike=True)
    function = graph_as_function(session.graph)
    function.x, function.z = (tf.constant(session.feed[p]) for p in
                              (session.graph.feeds["x_real"], session.graph.feeds["z"]))
    session(1)
    function(1)
    difference = max(float(np.max(np.abs(a - b))) for a, b in
                     zip(session.graph.session.run(all_variables(session.graph)),
                         function.values()))
    rows = {"tf1-sga-best": session, "tf1-sga-best-as-function": function}
    for name in ("tfgames-sga", "hand-sga-double_backward"):
        rows[name] = st.runners(name, weights, depth, width, x, False)
    times = st.time_interleaved(rows, args.reps, args.steps)
    session.close()
    print(f"TensorFlow {tf.__version__}, {os.cpu_count()} CPUs; depth {depth}, width {width}, "
          f"batch {batch}; {args.reps} interleaved repetitions of {args.steps} steps")
    print(f"largest difference, session vs function, after one step each from equal values: "
          f"{difference:.3g}")
    refs = ("tf1-sga-best", "tf1-sga-best-as-function")
    print(f"{'row':26s} {'ms/step':>8s}" + "".join(f" {'/' + r:>34s}" for r in refs))
    for name, t in times.items():
        cells = "".join(" {:>34s}".format("{:.3f} [{:.3f}, {:.3f}]".format(
            *st.paired_ratio(t, times[r]))) for r in refs)
        print(f"{name:26s} {1e3 * statistics.median(t):8.2f}{cells}")


if __name__ == "__main__":
    main()
