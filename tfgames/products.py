"""Simultaneous gradient and game-Jacobian-vector products, written once.

For a game with players i = 1..n, parameters w = (w_1, ..., w_n) and losses l_i (each player
minimises its own loss), the simultaneous gradient and the game Jacobian are

    xi(w) = (grad_{w_1} l_1, ..., grad_{w_n} l_n),        H(w) = d xi / d w,

(Balduzzi et al., "The Mechanics of n-Player Differentiable Games", ICML 2018). Every game
optimizer in tfgames needs xi and one or both of the products H v and H^T v for a vector v.
They are computed here without ever forming H:

- H^T v: reverse-over-reverse, an outer tape over the computation of xi, then
  ``outer.gradient(xi, w, output_gradients=v)``.
- H v, ``mode="forward"`` (default): forward-over-reverse, a
  ``tf.autodiff.ForwardAccumulator`` with tangents v around the tape that computes xi.
- H v, ``mode="double_backward"``: the double-backward trick, g(u) = H^T u for a dummy u,
  then H v = d<g(u), v>/du. It works where forward mode is unsupported (e.g. ``while_loop``
  bodies such as Keras RNNs inside ``tf.function``).

The functions take the losses as a zero-argument callable so that they can re-run the forward
pass under the tapes and accumulators they need. :func:`game_products` reads the parameters
once and evaluates the losses at those tensors (a ``keras.StatelessScope``), so that inside
``tf.function`` the forward-mode pass repeats the reverse pass's primal computation exactly and
TensorFlow's common-subexpression elimination computes it once: forward mode then costs the
tangent operations only, not a second evaluation of xi. (Noise drawn from a
:class:`~tfgames.Game`'s seed generator is the exception: the second pass replays it from a
snapshot, so what depends on it is computed twice; see ``Game._checked_losses``.)

Exactness on Keras layers (tests/test_products_exact.py checks every claim here against
central finite differences of xi in float64):

- Normalisation statistics. Keras' TensorFlow backend computes moments with ``tf.nn.moments``,
  whose variance is ``mean((x - stop_gradient(mean))^2)``: first derivatives are exact, second
  derivatives are not (BatchNormalization(training=True), LayerNormalization,
  GroupNormalization). Every loss evaluation here runs inside :func:`exact_moments`, which
  swaps in the same computation without the ``stop_gradient`` (same forward values).
- Random streams. Forward mode evaluates the losses twice. The first evaluation's variable
  updates (every ``keras.random.SeedGenerator`` state it advanced, BatchNorm statistics) are
  applied only after the second one, so both read the same seed states and draw the same
  noise (layers' own generators such as ``Dropout(seed=7)``'s, ``keras.random`` with a
  generator or ``seed=None``), and the updates are applied once. TensorFlow's stateful random
  ops (``tf.random.uniform``, ``tf.random.normal``, ``tf.nn.dropout``, ``tf.random.Generator``,
  ...) cannot be replayed: forward mode detects them in the first evaluation and raises
  :class:`UnreplayableRandomnessError` before any state changes; the double-backward mode,
  which evaluates the losses once, is exact with them.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Literal, NamedTuple

import keras
import tensorflow as tf
from keras.src.backend.tensorflow import nn as _keras_tf_nn
from tensorflow.compiler.tf2xla.python import xla as _xla
from tensorflow.python.framework import op_callbacks as _op_callbacks
from tensorflow.python.framework import op_def_registry as _op_def_registry

from tfgames.repeatability import sum_in_order

__all__ = [
    "GameProducts",
    "HVP_MODES",
    "UnreplayableRandomnessError",
    "cross_gradients",
    "dot",
    "exact_moments",
    "game_linearization",
    "game_products",
    "GameLinearization",
    "lola_chi",
    "lola_terms",
    "norm",
    "off_diagonal_htv",
    "off_diagonal_hv",
    "off_diagonal_linearization",
    "off_diagonal_products",
    "OffDiagonalLinearization",
    "OffDiagonalProducts",
    "ShapingTerms",
    "player_jvps",
    "player_vjps",
    "read_value",
    "simultaneous_gradient",
]

HVP_MODES = ("forward", "double_backward")


def _xla_dynamic_update_slice_grad(op, grad):
    """Gradient of ``XlaDynamicUpdateSlice`` (out = input with ``update`` written at
    ``indices``), which TensorFlow does not register: d input = grad with that region zeroed,
    d update = the region of grad (both ops clamp the start indices alike), no gradient for the
    indices. Keras' TensorFlow backend emits the op (``keras.ops.slice_update``) under XLA, and
    double backward differentiates its gradient graph again
    (``tests/test_products_exact.py``, ``-xla`` cases, against finite differences).
    """
    update, indices = op.inputs[1], op.inputs[2]
    region = tf.shape(update, out_type=indices.dtype)
    return (_xla.dynamic_update_slice(grad, tf.zeros_like(update), indices),
            _xla.dynamic_slice(grad, indices, region), None)


try:
    tf.RegisterGradient("XlaDynamicUpdateSlice")(_xla_dynamic_update_slice_grad)
except KeyError:  # a later TensorFlow registers its own
    pass
HvpMode = Literal["forward", "double_backward"]
LossFn = Callable[[], Mapping[str, tf.Tensor]]


class UnreplayableRandomnessError(ValueError):
    """The losses draw from a random stream that a second evaluation cannot replay."""

    # Exception's own constructor lets tf.function's autograph re-raise this class (with the
    # user-code trace) instead of turning it into a StagingError.
    __init__ = Exception.__init__


# -- exact second derivatives of normalisation statistics --------------------------------------
#: Whether this Keras exposes the function that :func:`exact_moments` replaces (Keras 3.x's
#: TensorFlow backend, ``keras/src/backend/tensorflow/nn.py``). Without it the normalisation
#: layers are refused by second-order optimizers (:meth:`tfgames.Game.check_exact`).
EXACT_MOMENTS_AVAILABLE = callable(getattr(_keras_tf_nn, "_compute_moments", None))
_moments_lock = threading.Lock()
_moments_depth = 0
_keras_compute_moments = getattr(_keras_tf_nn, "_compute_moments", None)


def _exact_compute_moments(x, axes, keepdims):
    """``tf.nn.moments`` without its ``stop_gradient``: the same operations and values,
    variance = mean((x - mean)^2) differentiated through the mean as well.
    """
    with tf.name_scope("moments"):
        y = tf.cast(x, tf.float32) if x.dtype == tf.float16 else x
        mean = tf.reduce_mean(y, axes, keepdims=True, name="mean")
        variance = tf.reduce_mean(
            tf.math.squared_difference(y, mean), axes, keepdims=True, name="variance"
        )
        if not keepdims:
            mean = tf.squeeze(mean, axes)
            variance = tf.squeeze(variance, axes)
        if x.dtype == tf.float16:
            return tf.cast(mean, tf.float16), tf.cast(variance, tf.float16)
        return mean, variance


@contextlib.contextmanager
def exact_moments():
    """Within the context, Keras normalisation statistics have exact second derivatives.

    Keras' TensorFlow backend computes ``ops.moments`` (used by ``BatchNormalization``,
    ``LayerNormalization`` and ``GroupNormalization``) with ``tf.nn.moments``, whose variance
    ``mean((x - stop_gradient(mean))^2)`` has exact first derivatives but wrong second ones
    (the path through the mean is cut; ``tape.jacobian`` shares the defect). The context
    replaces the backend's ``_compute_moments`` with the same computation without the
    ``stop_gradient``: forward values are unchanged, Hessian-vector products become exact.
    tfgames enters it around every evaluation of the losses it differentiates; use it around
    your own tapes to get the same derivatives.

    The replacement is a module attribute, so while any thread is inside the context every
    thread's Keras moments are the exact ones (same values; only second derivatives differ).
    Nested and concurrent uses are counted; the original is restored when the last one exits.
    """
    global _moments_depth
    if not EXACT_MOMENTS_AVAILABLE:
        yield
        return
    with _moments_lock:
        if _moments_depth == 0:
            _keras_tf_nn._compute_moments = _exact_compute_moments
        _moments_depth += 1
    try:
        yield
    finally:
        with _moments_lock:
            _moments_depth -= 1
            if _moments_depth == 0:
                _keras_tf_nn._compute_moments = _keras_compute_moments


# -- stateful random ops: detected, since a second evaluation cannot replay them ----------------
_RANDOM_OP_TYPES = frozenset({
    "Multinomial", "NonDeterministicInts", "ParameterizedTruncatedNormal", "RandomCrop",
    "RandomGamma", "RandomPoisson", "RandomPoissonV2", "RandomShuffle",
    "RandomStandardNormal", "RandomUniform", "RandomUniformInt", "RngReadAndSkip", "RngSkip",
    "StatefulRandomBinomial", "StatefulStandardNormal", "StatefulStandardNormalV2",
    "StatefulTruncatedNormal", "StatefulUniform", "StatefulUniformFullInt",
    "StatefulUniformInt", "TruncatedNormal",
})


def _is_stateful_random(op_type: str) -> bool:
    if op_type in _RANDOM_OP_TYPES:
        return True
    if "Random" not in op_type and "Rng" not in op_type:
        return False
    op_def = _op_def_registry.get(op_type)
    return bool(op_def is not None and op_def.is_stateful and "Stateless" not in op_type)


def _function_definition(name: str, graph):
    """The FunctionDef called ``name`` (from ``graph``'s library or the eager context)."""
    try:
        if graph is not None and hasattr(graph, "_get_function"):
            function = graph._get_function(name)
            if function is not None:
                return function.cached_definition if hasattr(
                    function, "cached_definition") else function.definition
        from tensorflow.python.eager import context  # pylint: disable=g-import-not-at-top

        return context.context().get_function_def(name)
    except Exception:
        return None


def _random_ops_in_function(name: str, graph, seen: set) -> list[str]:
    """Stateful random op types inside function ``name`` and the functions it calls."""
    if name in seen:
        return []
    seen.add(name)
    definition = _function_definition(name, graph)
    if definition is None:
        return []
    found = []
    for node in definition.node_def:
        if _is_stateful_random(node.op):
            found.append(node.op)
        for attr in node.attr.values():
            callees = [attr.func.name] if attr.HasField("func") else [
                f.name for f in attr.list.func]
            for callee in callees:
                found += _random_ops_in_function(callee, graph, seen)
        found += _random_ops_in_function(node.op, graph, seen) if node.op.startswith(
            "__inference") else []
    return found


class _RandomOpWatch:
    """Records the stateful random ops created (in a graph) or executed (eagerly) inside,
    looking into the functions that ops call. A TensorFlow op callback, thread-local.
    """

    def __init__(self) -> None:
        self.found: list[str] = []
        self._seen: set = set()

    def _callback(self, op_type, inputs, attrs, outputs, op_name=None, graph=None):
        del inputs, outputs
        op_type = op_type.decode() if isinstance(op_type, bytes) else str(op_type)
        if _is_stateful_random(op_type):
            self.found.append(op_type if op_name is None else f"{op_type} ({op_name})")
        elif op_type.startswith("__inference"):  # an eagerly executed tf.function
            self.found += _random_ops_in_function(op_type, graph, self._seen)
        elif attrs:
            for value in attrs[1::2]:  # functional ops: look into the functions they call
                values = list(value) if isinstance(value, (list, tuple)) else [value]
                for func in values:
                    name = getattr(func, "name", None)
                    if hasattr(func, "attr") and isinstance(name, (str, bytes)):  # NameAttrList
                        name = name.decode() if isinstance(name, bytes) else name
                        self.found += _random_ops_in_function(name, graph, self._seen)
        return None

    def __enter__(self) -> _RandomOpWatch:
        self._graph = None if tf.executing_eagerly() else tf.compat.v1.get_default_graph()
        self._count = len(self._graph.get_operations()) if self._graph is not None else 0
        _op_callbacks.add_op_callback(self._callback)
        return self

    def __exit__(self, *args) -> None:
        _op_callbacks.remove_op_callback(self._callback)
        if self._graph is None:
            return
        # Calls of functions traced before (no callback sees their ops): inspect their bodies.
        for op in self._graph.get_operations()[self._count :]:
            if op.type in ("PartitionedCall", "StatefulPartitionedCall"):
                name = op.node_def.attr["f"].func.name
            elif op.type.startswith("__inference"):
                name = op.type
            else:
                continue
            self.found += _random_ops_in_function(name, self._graph, self._seen)


def _refuse_unreplayable(found: list[str]) -> None:
    ops = sorted(set(found))
    raise UnreplayableRandomnessError(
        "hvp_mode='forward' evaluates the losses twice and needs both evaluations to draw the "
        "same random numbers, but the losses use TensorFlow's stateful random ops, which "
        f"cannot be replayed: {ops[:5]}. Fix: draw the noise with keras.random.* and a "
        "keras.random.SeedGenerator (e.g. the GameModel's `self.seed_generator`) or with "
        "tf.random.stateless_* from a seed tensor; or use hvp_mode='double_backward' (one "
        "evaluation per step, exact with any randomness)."
    )


class GameProducts(NamedTuple):
    """What :func:`game_products` returns; every list is aligned with the flat variable list."""

    losses: dict[str, tf.Tensor]
    xi: list[tf.Tensor]
    vector: list[tf.Tensor]
    hv: list[tf.Tensor] | None
    htv: list[tf.Tensor] | None


def _value(variable) -> tf.Variable:
    """The ``tf.Variable`` behind a Keras 3 variable (tapes and accumulators need it); a plain
    ``tf.Variable`` is returned as is (its ``value`` is a method, not the variable).
    """
    return variable.value if isinstance(variable, keras.Variable) else variable


class _EvaluationAt(keras.StatelessScope):
    """Evaluate the losses with Keras variables reading the given tensors.

    Two evaluations at the same tensors build the same graph, which ``tf.function``'s
    common-subexpression elimination computes once. Assignments to Keras variables made inside
    (a noise seed advancing, BatchNorm statistics) are recorded by the scope and, with
    ``apply_updates=True``, applied to the variables on exit, as an evaluation outside the scope
    would have done. A re-evaluation at the same point passes ``apply_updates=False``: its
    updates repeat the first evaluation's, and applying them again would, e.g., move BatchNorm
    statistics twice per step. A first evaluation that another will repeat passes
    ``apply_updates=False`` too and calls :meth:`apply_updates` after the last one, so that
    every evaluation reads the same seed-generator states (the same noise).

    Inside, Keras' normalisation statistics have exact second derivatives
    (:func:`exact_moments`).
    """

    def __init__(self, mapping: Sequence[tuple], apply_updates: bool = True) -> None:
        super().__init__(state_mapping=mapping)
        self._apply_on_exit = apply_updates
        self._updated: dict[int, keras.Variable] = {}
        self._moments = None

    def add_update(self, update) -> None:
        super().add_update(update)
        self._updated[id(update[0])] = update[0]

    def __enter__(self) -> _EvaluationAt:
        self._moments = exact_moments()
        self._moments.__enter__()
        try:
            return super().__enter__()
        except BaseException:
            self._moments.__exit__(None, None, None)
            raise

    def __exit__(self, exc_type, *args) -> None:
        try:
            super().__exit__(exc_type, *args)
        finally:
            self._moments.__exit__(None, None, None)
        if exc_type is None and self._apply_on_exit:
            self.apply_updates()

    def apply_updates(self) -> None:
        """Assign the values recorded inside the scope to their variables (once)."""
        for variable in self._updated.values():
            variable.assign(self.get_current_value(variable))
        self._updated = {}


def _read_once(variables) -> tuple[list, list[tuple]]:
    """Tensors (or, for plain ``tf.Variable`` players, the variables) that the tapes and
    accumulators watch, and the ``(Keras variable, tensor)`` mapping for :class:`_EvaluationAt`.
    """
    values, mapping = [], []
    for v in variables:
        if isinstance(v, keras.Variable):
            tensor = tf.convert_to_tensor(_value(v))
            values.append(tensor)
            mapping.append((v, tensor))
        else:
            values.append(_value(v))
    return values, mapping


def read_value(variable) -> tf.Tensor:
    """The current value of a Keras variable or a plain ``tf.Variable``, as a tensor."""
    return tf.identity(_value(variable))


def _zeros_for_none(grads: Sequence[tf.Tensor | None], sources) -> list[tf.Tensor]:
    """``grads`` with zeros (shaped like the aligned watched ``sources``) for ``None``."""
    return [
        tf.zeros_like(_value(x)) if g is None else tf.convert_to_tensor(g)
        for g, x in zip(grads, sources)
    ]


def _float32_or_wider(x) -> tf.Tensor:
    """``x`` as a tensor, half-precision types cast to float32 (so that sums accumulate there)."""
    x = tf.convert_to_tensor(x)
    return tf.cast(x, tf.float32) if x.dtype in (tf.float16, tf.bfloat16) else x


def dot(xs: Sequence[tf.Tensor], ys: Sequence[tf.Tensor]) -> tf.Tensor:
    """<x, y> = sum_k sum(x_k * y_k) over two aligned lists of tensors, in float32 or wider."""
    return sum_in_order([
        tf.reduce_sum(_float32_or_wider(x) * _float32_or_wider(y)) for x, y in zip(xs, ys)
    ])


def norm(xs: Sequence[tf.Tensor]) -> tf.Tensor:
    """||x|| = sqrt(sum_k sum(x_k^2)) over a list of tensors, in float32 or wider.

    One fused ``L2Loss`` op per tensor (l2_loss(x) = sum(x^2) / 2) rather than a square and a
    sum: the tensor is read once and no temporary of its size is written.
    """
    return tf.sqrt(2.0 * sum_in_order([tf.nn.l2_loss(_float32_or_wider(x)) for x in xs]))


def _player_gradients(
    tape: tf.GradientTape,
    losses: Mapping[str, tf.Tensor],
    players: Mapping[str, Sequence],
    values: Sequence,
) -> list[tf.Tensor]:
    """Xi = (grad_{w_i} l_i)_i, flattened in player order, zeros for unconnected variables;
    the gradients are taken with respect to ``values`` (what the tape watched: flat, aligned
    with the players' variables).
    """
    xi: list[tf.Tensor] = []
    start = 0
    for name, variables in players.items():
        sources = list(values[start : start + len(variables)])
        start += len(variables)
        grads = tape.gradient(losses[name], sources)
        if all(g is None for g in grads):
            raise ValueError(
                f"The loss of player {name!r} does not depend on that player's variables, so "
                "its gradient is None. Check that the loss uses the player's layers (called "
                "inside the loss function) and that the players are declared as intended."
            )
        xi.extend(_zeros_for_none(grads, sources))
    return xi


def simultaneous_gradient(
    loss_fn: LossFn, players: Mapping[str, Sequence]
) -> tuple[dict[str, tf.Tensor], list[tf.Tensor]]:
    """xi(w) = (grad_{w_1} l_1, ..., grad_{w_n} l_n).

    Args:
      loss_fn: zero-argument callable returning ``{player: scalar loss}``.
      players: ``{player: [variables]}``, the same keys as the losses, in a fixed order.

    Returns:
      ``(losses, xi)`` with ``xi`` flattened in player order.
    """
    values = [_value(v) for vs in players.values() for v in vs]
    with tf.GradientTape(watch_accessed_variables=False, persistent=True) as tape:
        tape.watch(values)
        with exact_moments():  # for losses that differentiate inside (unrolled GANs)
            losses = dict(loss_fn())
    return losses, _player_gradients(tape, losses, players, values)


def game_products(
    loss_fn: LossFn,
    players: Mapping[str, Sequence],
    vector: Sequence[tf.Tensor] | None = None,
    *,
    hv: bool = True,
    htv: bool = True,
    mode: HvpMode = "forward",
    vector_fn: Callable[[list[tf.Tensor]], list[tf.Tensor]] | None = None,
) -> GameProducts:
    """xi, H v and H^T v at the current parameters, without forming H.

    H = d xi / d w is the game Jacobian (block (i, j) = grad_{w_j} grad_{w_i} l_i). The vector
    v is a constant (no gradient flows through it). With ``vector=None``, v = vector_fn(xi)
    (default: v = xi, as SGA and consensus need). One reverse pass gives the losses, xi and
    H^T v (and H v by the double-backward trick); in forward mode a second forward pass with a
    ``tf.autodiff.ForwardAccumulator`` (tangents v) gives H v, since forward mode needs v
    before its forward pass. Both passes read the same seed-generator states (the first
    pass's variable updates are applied after the second), and stateful TensorFlow random ops,
    which no second pass can replay, raise :class:`UnreplayableRandomnessError` in forward
    mode. Normalisation statistics are differentiated exactly (:func:`exact_moments`).

    Args:
      loss_fn: zero-argument callable returning ``{player: scalar loss}``. Every evaluation
        must see the same batch and noise (:class:`tfgames.Game` guarantees it).
      players: ``{player: [variables]}`` in a fixed order.
      vector: v, aligned with the flat variable list, or ``None`` for v = vector_fn(xi).
      hv: compute H v.
      htv: compute H^T v.
      mode: ``"forward"`` (forward-over-reverse, ``tf.autodiff.ForwardAccumulator``) or
        ``"double_backward"`` (reverse-over-reverse with a dummy vector) for H v.
      vector_fn: applied to xi to make v when ``vector`` is None (e.g. an all-reduce across
        replicas, so that the products use the global-batch xi).

    Returns:
      :class:`GameProducts` ``(losses, xi, vector, hv, htv)``; a product not asked for is
      ``None``. Every list holds dense tensors.

    Raises:
      UnreplayableRandomnessError: forward mode on losses that use stateful TensorFlow random
        ops (raised before any variable changes).
    """
    if mode not in HVP_MODES:
        raise ValueError(
            f"Argument `mode` must be one of {HVP_MODES}. Received: mode={mode!r}. Use "
            "'forward' (the default) or 'double_backward' for layers where forward mode fails."
        )
    variables = [v for vs in players.values() for v in vs]
    values, mapping = _read_once(variables)
    vector = _checked_vector(vector, values)
    double_backward = hv and mode == "double_backward"
    forward = hv and mode == "forward"
    # In forward mode the first evaluation's updates wait for the second evaluation, so that
    # both read the same seed states (the same noise), and stateful random ops are refused.
    scope = _EvaluationAt(mapping, apply_updates=not forward)
    watch = _RandomOpWatch() if forward else contextlib.nullcontext()
    losses, xi, vector, htv_out, hv_out = _reverse_pass(
        loss_fn, players, values, scope, watch, vector, vector_fn or (lambda xs: xs), htv,
        double_backward,
    )
    if forward:
        if watch.found:
            _refuse_unreplayable(watch.found)
        hv_out = _forward_jvp(loss_fn, players, values, mapping, vector)
        scope.apply_updates()
    return GameProducts(losses, xi, vector, hv_out, htv_out)


def _checked_vector(vector, values, what: str = "variable") -> list[tf.Tensor] | None:
    """``vector`` cast to the variables' dtypes, constant; one tensor per variable (or None).
    ``what`` names the variables in the error (e.g. ``"variable of the block"``).
    """
    if vector is None:
        return None
    if len(vector) != len(values):
        raise ValueError(
            f"`vector` must have one tensor per {what} ({len(values)}). "
            f"Received: {len(vector)} tensors."
        )
    return [tf.stop_gradient(tf.cast(u, x.dtype)) for u, x in zip(vector, values)]


def _recorded_evaluation(loss_fn, players, values, contexts, vector, vector_fn, record: bool):
    """One evaluation of the losses at ``values`` (inside ``contexts``) and xi.

    Returns ``(outer, losses, xi, vector)``: ``outer`` is a persistent tape that recorded xi
    (for reverse-over-reverse products; ``None`` unless ``record``), and ``vector`` is v, or
    ``vector_fn(xi)`` of this same evaluation when v is None. Every ``gradient`` call is made
    outside its own tape's context (TensorFlow warns otherwise).
    """
    outer = None
    with contextlib.ExitStack() as stack:
        if record:
            outer = stack.enter_context(
                tf.GradientTape(watch_accessed_variables=False, persistent=True)
            )
            outer.watch(values)
        with tf.GradientTape(watch_accessed_variables=False, persistent=True) as inner:
            inner.watch(values)
            with contextlib.ExitStack() as scopes:
                for context in contexts:
                    scopes.enter_context(context)
                losses = dict(loss_fn())
        xi = _player_gradients(inner, losses, players, values)
        if vector is None:
            vector_fn = vector_fn or (lambda xs: xs)
            vector = [tf.stop_gradient(u) for u in vector_fn([tf.stop_gradient(x) for x in xi])]
    return outer, losses, xi, vector


def _record_linear_map(g, like, persistent: bool = False) -> tuple:
    """A linear map g recorded at a dummy u = 0 shaped like ``like``: ``(tape, u, g(u))``.

    Its transpose applied to v is then d<g(u), v>/du (:func:`_apply_transpose`): the
    double-backward trick, one backward pass through the recorded map per product.
    """
    dummies = [tf.zeros_like(x) for x in like]
    with tf.GradientTape(watch_accessed_variables=False, persistent=persistent) as tape:
        tape.watch(dummies)
        g_of_u = g(dummies)
    return tape, dummies, g_of_u


def _apply_transpose(recorded: tuple, vector, sources) -> list[tf.Tensor]:
    """g^T v = d<g(u), v>/du for a map recorded by :func:`_record_linear_map` (dense)."""
    tape, dummies, g_of_u = recorded
    return _dense(_zeros_for_none(
        tape.gradient(g_of_u, dummies, output_gradients=vector), sources))


def _reverse_pass(loss_fn, players, values, scope, watch, vector, vector_fn, want_htv,
                  want_hv):
    """One forward pass at ``values`` (in ``scope``): losses, xi, v, H^T v
    (reverse-over-reverse) and, by the double-backward trick, H v; v = vector_fn(xi) of this
    same pass when not given. Every ``gradient`` call is made outside its own tape's context
    (TensorFlow warns otherwise); the dummy tape records g(u) = H^T u on its own.
    """
    outer, losses, xi, vector = _recorded_evaluation(
        loss_fn, players, values, (watch, scope), vector, vector_fn, want_htv or want_hv)
    htv = hv = None
    if want_hv:  # g(u) = H^T u for a dummy u, recorded; then H v = d<g(u), v>/du
        recorded = _record_linear_map(
            lambda u: _zeros_for_none(outer.gradient(xi, values, output_gradients=u), values),
            values)
        hv = _apply_transpose(recorded, vector, values)
    if want_htv:
        htv = _dense(
            _zeros_for_none(outer.gradient(xi, values, output_gradients=vector), values)
        )
    return losses, [tf.stop_gradient(x) for x in xi], vector, htv, hv


def _dense(tensors: Sequence) -> list[tf.Tensor]:
    """Dense tensors (``tf.IndexedSlices``, e.g. an embedding table's, converted)."""
    return [tf.convert_to_tensor(t) for t in tensors]


def _forward_jvp(loss_fn, players, values, mapping, vector) -> list[tf.Tensor]:
    """H v by forward-over-reverse: the JVP of xi along v, in a second forward pass at the
    same ``values`` as the reverse pass (so that its primal part is a common subexpression).
    """
    try:
        with tf.autodiff.ForwardAccumulator(values, vector) as accumulator:
            with tf.GradientTape(watch_accessed_variables=False, persistent=True) as tape:
                tape.watch(values)
                with _EvaluationAt(mapping, apply_updates=False):
                    losses = dict(loss_fn())
            xi = _player_gradients(tape, losses, players, values)
        return _dense([accumulator.jvp(x, unconnected_gradients="zero") for x in xi])
    except (NotImplementedError, LookupError, TypeError, ValueError) as error:
        # The same losses were just evaluated and differentiated in reverse mode, so what
        # fails here is forward mode itself.
        raise NotImplementedError(
            "hvp_mode='forward' cannot differentiate these losses: TensorFlow's forward mode "
            "(tf.autodiff.ForwardAccumulator) failed on an op that reverse mode handled. The "
            "usual cause is a Keras RNN layer (LSTM, GRU, SimpleRNN) that is not unrolled, "
            "whose while_loop forward mode does not support inside tf.function. Use "
            "hvp_mode='double_backward' (exact on the same layers), or build the RNN with "
            "unroll=True. TensorFlow said: "
            f"{type(error).__name__}: {' '.join(str(error).split())[:400]}"
        ) from error


# -- Block products: per-player tangents for the second-order family -------------------------
# Opponent shaping (LA, LOLA, SOS), competitive gradient descent and LEAD need products with
# parts of the game Jacobian H: the off-diagonal blocks H_o (H with its diagonal blocks
# H_ii = grad_i grad_i l_i set to zero), and player-wise products such as LOLA's
# chi_i = grad_i sum_{j != i} <stop(grad_j l_i), grad_j l_j>. A product "per player" takes,
# for each player i, its own vector t^(i) and keeps only block i of the result:
#
#     player_jvps:  out_i = (H t^(i))_i   = sum_j (grad_j xi_i) t^(i)_j     (forward mode)
#     player_vjps:  out_i = (H^T u^(i))_i = grad_i sum_j <xi_j, u^(i)_j>   (reverse mode)
#
# so H_o v is player_jvps with t^(i) = v minus its block i. Each player costs one pass (one
# forward-over-reverse or reverse-over-reverse product); H is never formed.


def _player_slices(players: Mapping[str, Sequence]) -> list[tuple[str, int, int]]:
    """``(name, start, stop)`` of each player's block in the flat variable list."""
    out, start = [], 0
    for name, variables in players.items():
        out.append((name, start, start + len(variables)))
        start += len(variables)
    return out


def _one_list_per_player(argument: str, vectors: Sequence, players: Mapping[str, Sequence]
                         ) -> list:
    """The flat variable list of ``players``, after checking ``vectors`` has one list each."""
    if len(vectors) != len(players):
        raise ValueError(
            f"`{argument}` must hold one list per player ({len(players)}). "
            f"Received: {len(vectors)} lists."
        )
    return [v for vs in players.values() for v in vs]


def cross_gradients(
    loss_fn: LossFn, players: Mapping[str, Sequence]
) -> tuple[dict[str, tf.Tensor], list[list[tf.Tensor]]]:
    """Every player's loss differentiated with respect to every parameter.

    ``grads[i] = grad_w l_i`` (a flat list aligned with the variables, zeros where l_i does
    not depend on a variable); the simultaneous gradient is xi_i = block i of ``grads[i]`` and
    the cross gradients grad_j l_i (j != i) are LOLA's opponent terms. One forward pass, one
    backward pass per player; the evaluation's variable updates (e.g. BatchNorm statistics) are
    applied once.

    Args:
      loss_fn: zero-argument callable returning ``{player: scalar loss}``.
      players: ``{player: [variables]}`` in a fixed order.

    Returns:
      ``(losses, grads)``.
    """
    variables = [v for vs in players.values() for v in vs]
    values, mapping = _read_once(variables)
    with tf.GradientTape(watch_accessed_variables=False, persistent=True) as tape:
        tape.watch(values)
        with _EvaluationAt(mapping):
            losses = dict(loss_fn())
    grads = []
    for name in players:
        g = tape.gradient(losses[name], values, unconnected_gradients="zero")
        grads.append([tf.stop_gradient(x) for x in g])
    return losses, grads


def _per_player(argument: str, vectors, players: Mapping[str, Sequence], block) -> list:
    """The flat list of ``block(name, start, stop, vector, values, mapping)`` over the players:
    player i's block of a product with its own vector ``vectors[i]``, each player from its own
    evaluation at freshly read values (``block`` returns ``None`` for a zero block).
    """
    variables = _one_list_per_player(argument, vectors, players)
    out: list[tf.Tensor] = []
    for (name, start, stop), vector in zip(_player_slices(players), vectors):
        values, mapping = _read_once(variables)
        got = block(name, start, stop, vector, values, mapping)
        if got is None:
            got = [tf.zeros_like(x) for x in values[start:stop]]
        out.extend(got)
    return out


def player_jvps(
    loss_fn: LossFn,
    players: Mapping[str, Sequence],
    tangents: Sequence[Sequence[tf.Tensor | None]],
) -> list[tf.Tensor]:
    """out_i = (H t^(i))_i = sum_j (grad_j xi_i) t^(i)_j for each player i, in forward mode.

    Args:
      loss_fn: zero-argument callable returning ``{player: scalar loss}``; evaluated once per
        player (its variable updates are not applied: they repeat the step's first evaluation).
      players: ``{player: [variables]}`` in a fixed order.
      tangents: one flat list per player, aligned with the variables; ``None`` entries are
        zero tangents (those variables are not watched at all).

    Returns:
      The flat list of the players' blocks ``[out_1..., out_2..., ...]``.
    """

    def block(name, start, stop, tangent, values, mapping):
        own = list(values[start:stop])
        keep = [k for k, t in enumerate(tangent) if t is not None]
        if not keep:
            return None
        primals = [values[k] for k in keep]
        directions = [tf.stop_gradient(tf.cast(tangent[k], values[k].dtype)) for k in keep]
        with tf.autodiff.ForwardAccumulator(primals, directions) as accumulator:
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(own)
                with _EvaluationAt(mapping, apply_updates=False):
                    losses = dict(loss_fn())
            xi_i = tape.gradient(losses[name], own, unconnected_gradients="zero")
        return [accumulator.jvp(x, unconnected_gradients="zero") for x in xi_i]

    return _per_player("tangents", tangents, players, block)


def player_vjps(loss_fn: LossFn, players: Mapping[str, Sequence],
                cotangents: Sequence[Sequence[tf.Tensor | None]]) -> list[tf.Tensor]:
    """out_i = (H^T u^(i))_i = grad_i sum_j <xi_j, u^(i)_j> for each player i (reverse mode).

    ``loss_fn`` and ``players`` as :func:`player_jvps` (one evaluation per player, its variable
    updates not applied); ``cotangents`` holds one flat list per player, aligned with the
    variables, ``None`` entries zero (a player j whose block of u^(i) is all ``None`` is not
    differentiated). Returns the flat list of the players' blocks.
    """
    slices = _player_slices(players)

    def block(_name, start, stop, cotangent, values, mapping):
        own = list(values[start:stop])
        with tf.GradientTape(watch_accessed_variables=False) as outer:
            outer.watch(own)
            with tf.GradientTape(watch_accessed_variables=False, persistent=True) as inner:
                inner.watch(values)
                with _EvaluationAt(mapping, apply_updates=False):
                    losses = dict(loss_fn())
            terms = []
            for name_j, start_j, stop_j in slices:
                keep = [k for k in range(start_j, stop_j) if cotangent[k] is not None]
                if not keep:
                    continue
                grads = inner.gradient(
                    losses[name_j], [values[k] for k in keep], unconnected_gradients="zero"
                )
                terms.extend(
                    tf.reduce_sum(g * tf.stop_gradient(tf.cast(cotangent[k], g.dtype)))
                    for g, k in zip(grads, keep)
                )
            total = sum_in_order(terms) if terms else None  # recorded by the outer tape
        if total is None:
            return None
        return outer.gradient(total, own, unconnected_gradients="zero")

    return _per_player("cotangents", cotangents, players, block)


def _without_own_block(players, vectors) -> list[list[tf.Tensor | None]]:
    """For each player i, ``vectors[i]`` with player i's block replaced by ``None``."""
    return [
        [None if start <= k < stop else t for k, t in enumerate(vector)]
        for (_, start, stop), vector in zip(_player_slices(players), vectors)
    ]


def off_diagonal_hv(
    loss_fn: LossFn, players: Mapping[str, Sequence], vector: Sequence[tf.Tensor]
) -> list[tf.Tensor]:
    """H_o v, the off-diagonal blocks of the game Jacobian times v.

    (H_o v)_i = sum_{j != i} (grad_j xi_i) v_j; one forward-mode pass per player
    (:func:`player_jvps`).
    """
    return player_jvps(loss_fn, players, _without_own_block(players, [vector] * len(players)))


def off_diagonal_htv(
    loss_fn: LossFn, players: Mapping[str, Sequence], vector: Sequence[tf.Tensor]
) -> list[tf.Tensor]:
    """H_o^T v, the transposed off-diagonal blocks of the game Jacobian times v.

    (H_o^T v)_i = grad_i sum_{j != i} <xi_j, v_j>; one reverse-over-reverse pass per player
    (:func:`player_vjps`); LEAD's coupling term.
    """
    return player_vjps(loss_fn, players, _without_own_block(players, [vector] * len(players)))


class OffDiagonalProducts(NamedTuple):
    """What :func:`off_diagonal_products` returns, aligned with the flat variable list."""

    losses: dict[str, tf.Tensor]
    xi: list[tf.Tensor]
    vector: list[tf.Tensor]
    ho_v: list[tf.Tensor] | None
    ho_t_v: list[tf.Tensor] | None


def _restricted_htv(outer, xi, values, slices, cotangents) -> list[tf.Tensor]:
    """H_o^T c = sum_i grad_{w_-i} <xi_i, c_i>: each player's xi differentiated only with
    respect to the OTHER players' parameters (``outer`` recorded xi; zeros where unconnected).
    """
    total: list = [None] * len(values)
    for _, start, stop in slices:
        others = [k for k in range(len(values)) if not start <= k < stop]
        if not others:
            continue
        grads = outer.gradient(xi[start:stop], [values[k] for k in others],
                               output_gradients=cotangents[start:stop])
        for k, g in zip(others, grads):
            if g is not None:
                g = tf.convert_to_tensor(g)
                total[k] = g if total[k] is None else total[k] + g
    return _zeros_for_none(total, values)


def off_diagonal_products(
    loss_fn: LossFn,
    players: Mapping[str, Sequence],
    vector: Sequence[tf.Tensor] | None = None,
    *,
    hv: bool = True,
    htv: bool = True,
    vector_fn: Callable[[list[tf.Tensor]], list[tf.Tensor]] | None = None,
) -> OffDiagonalProducts:
    """xi, H_o v and H_o^T v from ONE evaluation of the losses (a shared primal pass).

        (H_o v)_i   = sum_{j != i} (grad_j xi_i) v_j,
        (H_o^T v)_i = grad_i sum_{j != i} <xi_j, v_j>

    H_o is the game Jacobian H = d xi / d w without its diagonal blocks H_ii (Balduzzi et al.,
    ICML 2018). Unlike :func:`off_diagonal_hv` / :func:`off_diagonal_htv`, which evaluate the
    losses again once per player, one forward pass gives the losses and xi, and both products
    are outer gradients through that pass restricted to the paths between players: H_o^T v is
    ``sum_i grad_{w_-i} <xi_i, v_i>`` (reverse-over-reverse) and H_o v the double-backward trick
    through the same linear map, H_o v = d<H_o^T u, v>/du at a dummy u. Restricted to the
    cross paths, each product executes fewer matrix products than the full H v or H^T v
    (``benchmarks/sga_product_counts.py``). v may be ``vector_fn(xi)`` of the same pass (e.g.
    the all-reduced xi), as in :func:`game_products`. Reverse mode only: one evaluation, exact
    with any randomness; the evaluation's variable updates are applied once.

    Args:
      loss_fn: zero-argument callable returning ``{player: scalar loss}``.
      players: ``{player: [variables]}`` in a fixed order.
      vector: v, aligned with the flat variable list, or ``None`` for v = vector_fn(xi).
      hv: compute H_o v.
      htv: compute H_o^T v.
      vector_fn: applied to xi to make v when ``vector`` is None (default: v = xi).

    Returns:
      :class:`OffDiagonalProducts` ``(losses, xi, vector, ho_v, ho_t_v)``; a product not asked
      for is ``None``. Every list holds dense tensors.
    """
    variables = [v for vs in players.values() for v in vs]
    values, mapping = _read_once(variables)
    vector = _checked_vector(vector, values)
    slices = _player_slices(players)
    outer, losses, xi, vector = _recorded_evaluation(
        loss_fn, players, values, (_EvaluationAt(mapping),), vector, vector_fn, hv or htv)
    ho_v = ho_t_v = None
    if hv:  # g(u) = H_o^T u for a dummy u, recorded; then H_o v = d<g(u), v>/du
        recorded = _record_linear_map(
            lambda u: _restricted_htv(outer, xi, values, slices, u), values)
        ho_v = _apply_transpose(recorded, vector, values)
    if htv:
        ho_t_v = _dense(_restricted_htv(outer, xi, values, slices, vector))
    return OffDiagonalProducts(losses, [tf.stop_gradient(x) for x in xi], vector, ho_v, ho_t_v)


class GameLinearization:
    """H v, H^T v, H_o v and blocks H_ts v_s for any number of vectors, from ONE evaluation.

        H v = d xi/dw v,   H^T v = grad_w <xi, v>,
        (H_o v)_i = sum_{j != i} (grad_j xi_i) v_j,        H_ts v_s = (grad_s xi_t) v_s  (t != s)

    Made by :func:`game_linearization` (or :func:`off_diagonal_linearization`), which evaluates
    the losses once, keeps the persistent tape that recorded xi, and records the linear maps
    u -> H^T u (``jacobian=True``), u -> H_o^T u and u_t -> H_ts^T u_t at a dummy u. H^T v is
    then one reverse-over-reverse pass through the recorded xi, and every other product the
    double-backward trick through a recorded map, d<g(u), v>/du, with no new evaluation of the
    losses: the products of a linear solver's iterations (also inside a ``tf.while_loop``
    whose body calls these methods) share the one evaluation. Reverse mode only (exact with any
    randomness).

    Attributes:
      losses: the evaluation's losses.
      xi: the simultaneous gradient of the evaluation.
      vector: ``vector_fn(xi)`` (e.g. the all-reduced xi; ``xi`` without one).
    """

    def __init__(self, losses, xi, vector, values, slices, maps, htv_fn) -> None:
        self.losses = losses
        self.xi = xi
        self.vector = vector
        self._values = values
        self._slices = slices
        self._maps = maps
        self._htv_fn = htv_fn

    def _apply(self, key, vector, sources) -> list[tf.Tensor]:
        if key not in self._maps:
            raise ValueError(
                f"The block {key!r} was not recorded. Pass it to game_linearization "
                "(`jacobian=True` for H v; `off_diagonal=True`, or full=True in "
                "off_diagonal_linearization, for H_o v; `blocks=[(target, source), ...]` for "
                "H_ts v_s)."
            )
        vector = _checked_vector(vector, self._maps[key][2], "variable of the block")
        return _apply_transpose(self._maps[key], vector, sources)

    def hv(self, vector: Sequence[tf.Tensor]) -> list[tf.Tensor]:
        """H v = (sum_j (grad_j xi_i) v_j)_i, aligned with the flat variable list."""
        return self._apply("jacobian", vector, self._values)

    def htv(self, vector: Sequence[tf.Tensor]) -> list[tf.Tensor]:
        """H^T v = grad_w <xi, v>, aligned with the flat variable list."""
        return _dense(self._htv_fn(_checked_vector(vector, self._values, "variable of the block")))

    def ho_v(self, vector: Sequence[tf.Tensor]) -> list[tf.Tensor]:
        """(H_o v)_i = sum_{j != i} (grad_j xi_i) v_j, aligned with the flat variable list."""
        return self._apply("full", vector, self._values)

    def block_v(self, target: int, source: int, vector: Sequence[tf.Tensor]
                ) -> list[tf.Tensor]:
        """H_ts v_s = (grad_s xi_t) v_s for players t = ``target``, s = ``source`` (indices in
        player order); ``vector`` and the result are aligned with the players' variables.
        """
        _, start, stop = self._slices[target]
        return self._apply((target, source), vector, self._values[start:stop])


OffDiagonalLinearization = GameLinearization  # the name it had before H v and H^T v


def game_linearization(
    loss_fn: LossFn,
    players: Mapping[str, Sequence],
    *,
    jacobian: bool = True,
    off_diagonal: bool = False,
    blocks: Sequence[tuple[int, int]] = (),
    vector_fn: Callable[[list[tf.Tensor]], list[tf.Tensor]] | None = None,
) -> GameLinearization:
    """One evaluation of the losses kept for any number of products with H, H_o or blocks.

        H v = d xi/dw v,   H^T v = grad_w <xi, v>,
        (H_o v)_i = sum_{j != i} (grad_j xi_i) v_j,        H_ts v_s = (grad_s xi_t) v_s

    One forward pass gives the losses and xi, recorded by a persistent tape; the linear maps
    g(u) = H^T u = grad_w <xi, u> (``jacobian=True``), g(u) = H_o^T u (``off_diagonal=True``,
    :func:`off_diagonal_products`' restricted map) and g_ts(u_t) = grad_{w_s} <xi_t, u_t> (for
    each ``(t, s)`` in ``blocks``) are recorded at a dummy u. :meth:`GameLinearization.htv` is
    then one backward pass through the recorded xi, and :meth:`~GameLinearization.hv`,
    :meth:`~GameLinearization.ho_v` and :meth:`~GameLinearization.block_v` one backward pass
    through a recorded map each (the double-backward trick), never a new evaluation of the
    losses: a linear solver's iterations (LSS's GMRES on H u = xi, CG on H^T H + lambda I, the
    CGD family's systems) share it. The evaluation's variable updates are applied once.

    Args:
      loss_fn: zero-argument callable returning ``{player: scalar loss}``.
      players: ``{player: [variables]}`` in a fixed order.
      jacobian: record H (for :meth:`~GameLinearization.hv`); H^T v needs no recorded map.
      off_diagonal: record H_o (for :meth:`~GameLinearization.ho_v`).
      blocks: ``(target, source)`` player-index pairs, t != s, to record H_ts for.
      vector_fn: applied to xi to make ``vector`` (default: the identity).

    Returns:
      A :class:`GameLinearization`.
    """
    values, mapping = _read_once([v for vs in players.values() for v in vs])
    slices = _player_slices(players)
    for t, s in blocks:
        if t == s or not (0 <= t < len(slices) and 0 <= s < len(slices)):
            raise ValueError(
                f"`blocks` must hold (target, source) pairs of different player indices in "
                f"[0, {len(slices)}). Received: {(t, s)!r}."
            )
    outer, losses, xi, vector = _recorded_evaluation(
        loss_fn, players, values, (_EvaluationAt(mapping),), None, vector_fn, True)

    def htv(u):  # H^T u = grad_w <xi, u>, through the recorded evaluation
        return _zeros_for_none(outer.gradient(xi, values, output_gradients=u), values)

    maps = {}
    if jacobian:
        maps["jacobian"] = _record_linear_map(htv, values, persistent=True)
    if off_diagonal:
        maps["full"] = _record_linear_map(
            lambda u: _restricted_htv(outer, xi, values, slices, u), values, persistent=True)
    for t, s in blocks:
        (_, ts, te), (_, ss, se) = slices[t], slices[s]
        maps[(t, s)] = _record_linear_map(
            lambda u, ts=ts, te=te, ss=ss, se=se: _zeros_for_none(outer.gradient(
                xi[ts:te], values[ss:se], output_gradients=u), values[ss:se]),
            values[ts:te], persistent=True)
    return GameLinearization(
        losses, [tf.stop_gradient(x) for x in xi], vector, values, slices, maps, htv)


def off_diagonal_linearization(
    loss_fn: LossFn,
    players: Mapping[str, Sequence],
    *,
    full: bool = False,
    blocks: Sequence[tuple[int, int]] = (),
    vector_fn: Callable[[list[tf.Tensor]], list[tf.Tensor]] | None = None,
) -> GameLinearization:
    """:func:`game_linearization` for the off-diagonal products only (CGD, GACGD, ACGD).

        (H_o v)_i = sum_{j != i} (grad_j xi_i) v_j,        H_ts v_s = (grad_s xi_t) v_s

    Args:
      loss_fn: zero-argument callable returning ``{player: scalar loss}``.
      players: ``{player: [variables]}`` in a fixed order.
      full: record H_o (for :meth:`~GameLinearization.ho_v`).
      blocks: ``(target, source)`` player-index pairs, t != s, to record H_ts for.
      vector_fn: applied to xi to make ``vector`` (default: the identity).

    Returns:
      A :class:`GameLinearization` (H^T v available, H v not recorded).
    """
    return game_linearization(loss_fn, players, jacobian=False, off_diagonal=full,
                              blocks=blocks, vector_fn=vector_fn)


class ShapingTerms(NamedTuple):
    """What :func:`lola_terms` returns; every list is aligned with the flat variable list."""

    losses: dict[str, tf.Tensor]
    grads: list[list[tf.Tensor]]
    xi: list[tf.Tensor]
    ho_xi: list[tf.Tensor]
    chi: list[tf.Tensor]


def lola_terms(
    loss_fn: LossFn,
    players: Mapping[str, Sequence],
    *,
    reduce_fn: Callable[[list[tf.Tensor]], list[tf.Tensor]] | None = None,
) -> ShapingTerms:
    """Every grad_w l_i, xi, H_o xi and LOLA's chi from ONE evaluation of the losses.

        grads_i = grad_w l_i,   xi_i = grad_i l_i,   (H_o xi)_i = sum_{j != i} (grad_j xi_i) xi_j,
        chi_i = grad_i sum_{j != i} <stop(grad_j l_i), grad_j l_j>

    (Foerster et al., "Learning with Opponent-Learning Awareness", AAMAS 2018, in the n-player
    form of Letcher et al., "Stable Opponent Shaping in Differentiable Games", ICLR 2019). One
    forward pass and n backward passes give the gradients; H_o xi is the double-backward trick
    through the restricted map u -> H_o^T u (as in :func:`off_diagonal_products`) and chi_i the
    restricted outer gradient ``grad_{w_i} sum_{j != i} <xi_j, stop(grad_j l_i)>``, both
    through that same pass, in place of one evaluation of the losses per player and product
    (:func:`cross_gradients`, :func:`off_diagonal_hv`, :func:`lola_chi`). The vectors are the
    gradients reduced by ``reduce_fn`` (e.g. all-reduced across replicas); the products are
    this pass's (under a distribution strategy, a replica's share of the global-batch product).

    Args:
      loss_fn: zero-argument callable returning ``{player: scalar loss}``.
      players: ``{player: [variables]}`` in a fixed order.
      reduce_fn: applied to each player's gradient list grad_w l_i before it is used as a
        vector (default: the identity).

    Returns:
      :class:`ShapingTerms` ``(losses, grads, xi, ho_xi, chi)``: ``grads`` (one flat list per
      player) and ``xi`` reduced, ``ho_xi`` and ``chi`` this pass's products.
    """
    values, mapping = _read_once([v for vs in players.values() for v in vs])
    slices = _player_slices(players)
    reduce_fn = reduce_fn or (lambda xs: xs)
    with tf.GradientTape(watch_accessed_variables=False, persistent=True) as outer:
        outer.watch(values)
        with tf.GradientTape(watch_accessed_variables=False, persistent=True) as inner:
            inner.watch(values)
            with _EvaluationAt(mapping):
                losses = dict(loss_fn())
        own, grads = [], []  # own: xi, recorded by the outer tape
        for name, start, stop in slices:
            g = inner.gradient(losses[name], values)
            if all(t is None for t in g[start:stop]):
                _player_gradients(inner, losses, players, values)  # raises, naming the player
            g = _zeros_for_none(g, values)
            own.extend(g[start:stop])
            grads.append([tf.stop_gradient(t) for t in reduce_fn(
                [tf.stop_gradient(t) for t in g])])
    xi = [t for g, (_, start, stop) in zip(grads, slices) for t in g[start:stop]]
    recorded = _record_linear_map(lambda u: _restricted_htv(outer, own, values, slices, u), values)
    ho_xi = _apply_transpose(recorded, xi, values)
    chi = []
    for (_, start, stop), grad in zip(slices, grads):
        others = [k for k in range(len(values)) if not start <= k < stop]
        block = outer.gradient([own[k] for k in others], values[start:stop],
                               output_gradients=[grad[k] for k in others]) if others else (
            [None] * (stop - start))
        chi.extend(_dense(_zeros_for_none(block, values[start:stop])))
    return ShapingTerms(losses, grads, xi, ho_xi, chi)


def lola_chi(
    loss_fn: LossFn, players: Mapping[str, Sequence], grads: Sequence[Sequence[tf.Tensor]]
) -> list[tf.Tensor]:
    """chi_i = grad_i sum_{j != i} <stop(grad_j l_i), grad_j l_j>, LOLA's shaping term.

    Foerster et al., "Learning with Opponent-Learning Awareness", AAMAS 2018, in the n-player
    form of Letcher et al., "Stable Opponent Shaping in Differentiable Games", ICLR 2019.

    Args:
      loss_fn: zero-argument callable returning ``{player: scalar loss}``.
      players: ``{player: [variables]}`` in a fixed order.
      grads: ``grads[i] = grad_w l_i`` (:func:`cross_gradients`, all-reduced under a
        distribution strategy); its off-diagonal blocks are the constants grad_j l_i.

    Returns:
      chi as a flat list aligned with the variables.
    """
    return player_vjps(loss_fn, players, _without_own_block(players, grads))
