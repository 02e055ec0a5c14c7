"""Bitwise repeatable steps on the CPU: the summation order of TensorFlow's ``AddN``.

A sum of three or more tensors in a TensorFlow graph is one ``AddN`` node (``tf.GradientTape``
adds up the contributions to a gradient with it). TensorFlow's CPU kernel
(``AddNOp::Compute``, ``tensorflow/core/kernels/aggregate_ops.h``) writes the sum into the
buffer of the first input that no other op still holds and, when that is input r >= 2, swaps
inputs 0 and r before adding left to right:

    (x_0 + x_1) + x_2   becomes   (x_2 + x_1) + x_0,

which can differ in the last bit. Whether an input is still held depends on whether its other
consumers have already run, that is on thread scheduling, so one graph can give two results
(``benchmarks/addn_order.py`` shows it without tfgames). Grappler's arithmetic optimizer merges
equal subexpressions (the same loss term of two players, the products H xi shares with
H^T xi), which gives such inputs their second consumer; with it off, the steps of every lab
optimizer have no such node (``benchmarks/order_dependent_sums.py``).

This is one cause of run-to-run differences, not the only one. Measured with
``python benchmarks/sga_repeatability.py --gan tutorial`` (12 repeats of one epoch from one
saved state, 2 fresh models, TF 2.21, 2-core CPU, 2026-12-01): the double-backward SGA step of
the tutorial's GAN has no such node with the arithmetic optimizer off and still ended in 3
and 4 distinct states (with it on: 1 and 1); forward mode, 1 and 1 with it on, 1 and 2 with
it off; extragradient 1 in every case; ``jit_compile=True`` (XLA, which does not use this
kernel) 1 in every case, on or off. The tutorial fits on a NumPy array, which Keras feeds
through its own ``tf.data`` pipeline; with the same batches fed as
``tf.data.Dataset.from_tensor_slices(x).batch(64)`` (``--plain-data``), the double-backward
step with the arithmetic optimizer off ended in 1 and 1 states (docs/scaling.md, "Bitwise
needs a repeatable step"). Hence: :func:`fixed_sum_order` for first-order steps,
``jit_compile=True`` where a second-order step must repeat bit for bit.

- :func:`fixed_sum_order` switches the arithmetic optimizer off while a block runs: the
  functions called inside it run graphs optimized without it, so their sums have a fixed
  order (at the cost of the subexpressions it would merge, which are then computed where
  they occur). Measured on first-order steps; it made double-backward steps less repeatable
  (above).
- :func:`order_dependent_sums` lists the executed ``AddN`` nodes whose order can change, in
  the graphs :func:`executed_graphs` returns.

XLA (``jit_compile=True``) does not use this kernel. ``tf.config.experimental.
enable_op_determinism()`` does not cover it (docs/migration.md, "Repeatability").

Example: ``exp(x)`` computed twice is merged into one tensor with two consumers, one of them a
three-term sum; with the arithmetic optimizer off it is computed twice and the sum's order is
fixed.

>>> import tensorflow as tf
>>> from tfgames import repeatability
>>> def make_step():
...     @tf.function
...     def step(x):
...         return tf.add_n([tf.exp(x), tf.sin(x), tf.cos(x)]), tf.exp(x)
...     return lambda: step(tf.constant([1.0, 2.0]))
>>> repeatability.order_dependent_sums(make_step())
['AddN']
>>> with repeatability.fixed_sum_order():
...     repeatability.order_dependent_sums(make_step())
[]
"""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Callable, Iterator

import tensorflow as tf

__all__ = ["executed_graphs", "fixed_sum_order", "order_dependent_sums"]

_OPTION = "arithmetic_optimization"


@contextlib.contextmanager
def fixed_sum_order() -> Iterator[None]:
    """Grappler's arithmetic optimizer off while the block runs, restored afterwards.

    TensorFlow optimizes a function (``tf.function``, Keras' train function) for the setting
    in force when it is called, once per setting: calls made inside the block run the graph
    optimized without the arithmetic optimizer, calls of the same function after the block
    the graph optimized with it. The setting is process-wide while the block runs.

    Use it as ``with fixed_sum_order(): model.fit(...)`` or as a function decorator
    (``@fixed_sum_order()``); the module docstring has an example.
    """
    before = tf.config.optimizer.get_experimental_options().get(_OPTION)
    tf.config.optimizer.set_experimental_options({_OPTION: False})
    try:
        yield
    finally:
        tf.config.optimizer.set_experimental_options({_OPTION: True if before is None else before})


# Ops whose output is their input's buffer: such an output is held while the input is.
_ALIASING = frozenset({"BitCast", "EnsureShape", "ExpandDims", "Identity", "PreventGradient",
                       "Reshape", "Squeeze", "StopGradient"})


def _tensor_name(name: str) -> str:
    return name[:-2] if name.endswith(":0") else name


def executed_graphs(run: Callable[[], object]) -> list[tf.compat.v1.GraphDef]:
    """The graphs, after Grappler, that TensorFlow executes for the functions ``run()`` calls.

    Calls ``run()`` once with TensorFlow's graph collection on and returns the partition
    graphs it reports. TensorFlow reports a function's graph when it instantiates it, so the
    kernel cache is cleared first: functions called before are instantiated again and
    reported. Graphs collected before the call and not yet exported (as under
    ``tf.summary.trace_on``) are dropped; collection is off again afterwards.
    """
    from tensorflow.python.eager import context  # graph collection has no public eager API

    ctx = context.context()
    ctx.clear_kernel_cache()
    ctx.export_run_metadata()
    ctx.enable_graph_collection()
    try:
        run()
        metadata = ctx.export_run_metadata()
    finally:
        ctx.disable_graph_collection()
    return [g for f in metadata.function_graphs for g in f.partition_graphs]


def order_dependent_sums(run: Callable[[], object]) -> list[str]:
    """The ``AddN`` nodes, executed by ``run()``, whose summation order can change from run to run.

    Calls ``run()`` once and inspects the graphs TensorFlow executes for it
    (:func:`executed_graphs`). A node is listed when
    it sums three or more tensors and the buffer of one of them can also be held by another
    op: the tensor, or a tensor whose buffer it aliases (``Identity``, ``Reshape``, ...), has
    another consumer. Whether that
    buffer is still held when the sum runs then depends on scheduling, and with it the order
    (module docstring). The test is conservative for this cause (a listed node may in fact
    always run in one order), and it models no other: an empty list does not prove a step
    repeatable (the module docstring has a measured counterexample).

    Args:
        run: runs the step(s) to check, for example ``lambda: model.fit(x, epochs=1)``
            (which trains for an epoch).

    Returns:
        The nodes' names, sorted, without repeats.

    Raises:
        ValueError: ``run`` executed no TensorFlow operation.
    """
    graphs = executed_graphs(run)
    if not graphs:
        raise ValueError(
            "order_dependent_sums: run() executed no TensorFlow operation, so there is no "
            "graph to check. Received a run() that computed nothing in TensorFlow; pass one "
            "that calls the tf.function or the fit to check.")
    return sorted(set().union(*map(_order_dependent_in, graphs)))


def _order_dependent_in(graph: tf.compat.v1.GraphDef) -> set[str]:
    """The listed ``AddN`` nodes of one executed graph (see :func:`order_dependent_sums`)."""
    producers = {node.name: node for node in graph.node}
    consumers = collections.Counter(
        _tensor_name(i) for node in graph.node for i in node.input if not i.startswith("^"))

    def shared(tensor: str) -> bool:
        while consumers[tensor] <= 1:
            producer = producers.get(tensor)
            if producer is None or producer.op not in _ALIASING:
                return False
            tensor = _tensor_name(producer.input[0])
        return True

    return {node.name for node in graph.node if node.op == "AddN" and len(
        inputs := [_tensor_name(i) for i in node.input if not i.startswith("^")]) >= 3
        and any(map(shared, inputs))}
