"""Bitwise repeatable steps on the CPU: the summation order of TensorFlow's ``AddN``.

A sum of three or more tensors in a TensorFlow graph is one ``AddN`` node: ``tf.GradientTape``
adds up the contributions to one gradient with it, and Grappler's arithmetic optimizer merges
chains of additions into it. TensorFlow's CPU kernel (``AddNOp::Compute``,
``tensorflow/core/kernels/aggregate_ops.h``) writes the sum into the buffer of the first input
that no other op still holds and, when that is input r >= 2, swaps inputs 0 and r before
adding left to right:

    (x_0 + x_1) + x_2   becomes   (x_2 + x_1) + x_0,

which can differ in the last bit. Whether an input is still held depends on thread
scheduling, so one graph can give two results (``benchmarks/addn_order.py`` shows it without
tfgames).

Which sums are exposed cannot be read off the graph. Grappler's merges give inputs a second
consumer (the lab's extragradient step: CI saw one weight one bit apart, 2026-11-30). But the
tutorial's double-backward SGA step, with the arithmetic optimizer off, also ended in 3 to 5
distinct states in 12 repeats of one epoch from one saved state, while no input of any of its
sums had a second consumer in the executed graph (``python benchmarks/sga_repeatability.py
--gan tutorial --arithmetic-off``, TF 2.21, 2-core CPU, 2026-12-01). The tape's sums were the
cause: adding the contributions left to right instead made 16 of 16 repeats agree, twice
(unchanged: 4 distinct states, twice), and doing so only for the sums with a ``Tile`` input
(the second derivative of a bias addition) did as well. What holds their buffers was not
identified; Keras' NumPy input pipeline, running beside the step, was needed to show it.
Hence:

- :func:`fixed_sum_order` makes the tape add left to right, two at a time, and switches the
  arithmetic optimizer off, so that the steps traced and run inside it have no such sum;
- :func:`sum_in_order` is that sum, for sums in your own code;
- :func:`order_dependent_sums` lists every executed ``AddN`` of three or more inputs.

XLA (``jit_compile=True``) does not use this kernel. ``tf.config.experimental.
enable_op_determinism()`` does not cover it (docs/migration.md, "Repeatability").

Example: x contributes three times to the gradient of exp(x) sin(x) cos(x); traced inside
the block, the contributions are added two at a time.

>>> import tensorflow as tf
>>> from tfgames import repeatability
>>> def make_step():
...     @tf.function
...     def step(x):
...         with tf.GradientTape() as tape:
...             tape.watch(x)
...             y = tf.reduce_sum(tf.exp(x) * tf.sin(x) * tf.cos(x))
...         return tape.gradient(y, x)
...     return lambda: step(tf.constant([1.0, 2.0]))
>>> len(repeatability.order_dependent_sums(make_step()))
1
>>> with repeatability.fixed_sum_order():
...     repeatability.order_dependent_sums(make_step())
[]
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Sequence

import tensorflow as tf

__all__ = ["executed_graphs", "fixed_sum_order", "order_dependent_sums", "sum_in_order"]

_OPTION = "arithmetic_optimization"
# Nesting depth of fixed_sum_order blocks: the tape's aggregation is switched at the outermost.
_DEPTH = [0]


def sum_in_order(tensors: Sequence[tf.Tensor]) -> tf.Tensor:
    """(...((t_0 + t_1) + t_2) + ...) + t_{n-1}: a sum in a fixed order, two terms at a time.

    ``tf.add_n(tensors)`` computes the same sum as one ``AddN`` node, whose CPU kernel may
    reorder it (module docstring); a sum of two is the same in either order. Grappler's
    arithmetic optimizer merges such a chain back into one ``AddN``, so the order is fixed
    under :func:`fixed_sum_order`.

    Args:
        tensors: one or more tensors of one dtype and broadcast-compatible shapes.

    Returns:
        Their sum, added left to right.

    Raises:
        ValueError: ``tensors`` is empty.
    """
    tensors = list(tensors)
    if not tensors:
        raise ValueError("sum_in_order: needs at least one tensor to add. Received an empty "
                         "sequence; pass the tensors to sum.")
    total = tensors[0]
    for tensor in tensors[1:]:
        total = tf.math.add(total, tensor)
    return total


def _tape_internals():
    """TensorFlow's registered gradient-tape vector space and its registration function, or a
    clear error where this TensorFlow has neither (they are not public API).
    """
    try:
        from tensorflow.python import pywrap_tfe
        from tensorflow.python.eager import backprop

        vspace, register = backprop._default_vspace, pywrap_tfe.TFE_Py_RegisterVSpace
        vspace._replace  # noqa: B018 - a namedtuple, as in TF 2.x
    except (ImportError, AttributeError) as error:
        raise RuntimeError(
            "fixed_sum_order: cannot set the order in which tf.GradientTape adds gradient "
            f"contributions in TensorFlow {tf.__version__} (tensorflow.python.eager.backprop."
            "_default_vspace or pywrap_tfe.TFE_Py_RegisterVSpace is missing). Nothing was "
            "changed. Compile with jit_compile=True (XLA) for repeatable steps instead."
        ) from error
    return vspace, register


def _aggregate_in_order(default: Callable, gradients: list) -> tf.Tensor:
    """The tape's sum of the contributions to one gradient: dense ones left to right
    (:func:`sum_in_order`) from three on, anything else as TensorFlow does.
    """
    if len(gradients) > 2 and all(isinstance(g, tf.Tensor) for g in gradients):
        return sum_in_order(gradients)
    return default(gradients)


def _sum_order_fixed() -> bool:
    """Whether a :func:`fixed_sum_order` block is active: gradients traced now are summed in
    order (``GameModel`` traces its train function again when this changes).
    """
    return _DEPTH[0] > 0


@contextlib.contextmanager
def fixed_sum_order() -> Iterator[None]:
    """Every sum of three or more gradient contributions in a fixed order while the block runs.

    Two settings, both restored when the outermost block ends:

    - ``tf.GradientTape`` (and with it ``tf.autodiff.ForwardAccumulator``) adds the
      contributions to one gradient left to right, two at a time (:func:`sum_in_order`),
      instead of in one ``AddN``. This applies to gradients computed or traced inside the
      block: a ``tf.function`` traced inside it, such as Keras' train function on the first
      ``fit`` in the block; ``tfgames.GameModel`` traces its train function again when the
      setting differs from the one it was traced under.
    - Grappler's arithmetic optimizer is off, which otherwise merges such chains back into one
      ``AddN`` and merges equal subexpressions. TensorFlow optimizes a function for the
      setting in force when it is called, once per setting; the setting is process-wide while
      the block runs.

    A ``tf.add_n`` of three or more tensors written in your own code stays one ``AddN``: use
    :func:`sum_in_order` there. Use it as ``with fixed_sum_order(): model.fit(...)`` or as a
    function decorator (``@fixed_sum_order()``); the module docstring has an example.

    Raises:
        RuntimeError: this TensorFlow does not expose the tape's aggregation (checked before
            anything is changed).
    """
    vspace, register = _tape_internals()
    before = tf.config.optimizer.get_experimental_options().get(_OPTION)
    tf.config.optimizer.set_experimental_options({_OPTION: False})
    if _DEPTH[0] == 0:
        register(vspace._replace(
            aggregate_fn=functools.partial(_aggregate_in_order, vspace.aggregate_fn)))
    _DEPTH[0] += 1
    try:
        yield
    finally:
        _DEPTH[0] -= 1
        if _DEPTH[0] == 0:
            register(vspace)
        tf.config.optimizer.set_experimental_options({_OPTION: True if before is None else before})


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
    """The sums of three or more tensors (``AddN`` nodes) that ``run()`` executes: the sums
    whose order TensorFlow's CPU kernel may change from run to run.

    Calls ``run()`` once and inspects the graphs TensorFlow executes for it
    (:func:`executed_graphs`). Every ``AddN`` (and ``AccumulateNV2``) node with three or more
    inputs is listed: whether the kernel reorders one depends on which of its input buffers
    are still held when it runs, and that was measured to change even where no input has
    another consumer in the graph (module docstring), so no node is ruled out. A sum of two
    is the same in either order. An empty list means no sum of this kernel runs; other
    kernels are not modelled.

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
    return sorted({node.name for graph in graphs for node in graph.node
                   if node.op in ("AddN", "AccumulateNV2")
                   and sum(not i.startswith("^") for i in node.input) >= 3})
