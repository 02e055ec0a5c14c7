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
"""

from __future__ import annotations

import contextlib
from typing import Callable, Literal, Mapping, NamedTuple, Sequence

import keras
import tensorflow as tf

__all__ = [
    "HVP_MODES",
    "GameProducts",
    "dot",
    "game_products",
    "norm",
    "read_value",
    "simultaneous_gradient",
]

HVP_MODES = ("forward", "double_backward")
HvpMode = Literal["forward", "double_backward"]
LossFn = Callable[[], Mapping[str, tf.Tensor]]


class GameProducts(NamedTuple):
    """What :func:`game_products` returns; every list is aligned with the flat variable list."""

    losses: dict[str, tf.Tensor]
    xi: list[tf.Tensor]
    vector: list[tf.Tensor]
    hv: list[tf.Tensor] | None
    htv: list[tf.Tensor] | None


def _value(variable) -> tf.Variable:
    """The ``tf.Variable`` behind a Keras 3 variable (tapes and accumulators need it); a plain
    ``tf.Variable`` is returned as is (its ``value`` is a method, not the variable)."""
    return variable.value if isinstance(variable, keras.Variable) else variable


class _EvaluationAt(keras.StatelessScope):
    """Evaluate the losses with Keras variables reading the given tensors.

    Two evaluations at the same tensors build the same graph, which ``tf.function``'s
    common-subexpression elimination computes once. Assignments to Keras variables made inside
    (a noise seed advancing, BatchNorm statistics) are recorded by the scope and, with
    ``apply_updates=True``, applied to the variables on exit, as an evaluation outside the scope
    would have done. A re-evaluation at the same point passes ``apply_updates=False``: its
    updates repeat the first evaluation's, and applying them again would, e.g., move BatchNorm
    statistics twice per step.
    """

    def __init__(self, mapping: Sequence[tuple], apply_updates: bool = True) -> None:
        super().__init__(state_mapping=mapping)
        self._apply_updates = apply_updates
        self._updated: dict[int, keras.Variable] = {}

    def add_update(self, update) -> None:
        super().add_update(update)
        self._updated[id(update[0])] = update[0]

    def __exit__(self, exc_type, *args) -> None:
        super().__exit__(exc_type, *args)
        if exc_type is None and self._apply_updates:
            for variable in self._updated.values():
                variable.assign(self.get_current_value(variable))


def _read_once(variables) -> tuple[list, list[tuple]]:
    """Tensors (or, for plain ``tf.Variable`` players, the variables) that the tapes and
    accumulators watch, and the ``(Keras variable, tensor)`` mapping for :class:`_EvaluationAt`."""
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
    return tf.add_n([
        tf.reduce_sum(_float32_or_wider(x) * _float32_or_wider(y)) for x, y in zip(xs, ys)
    ])


def norm(xs: Sequence[tf.Tensor]) -> tf.Tensor:
    """||x|| = sqrt(sum_k sum(x_k^2)) over a list of tensors, in float32 or wider.

    One fused ``L2Loss`` op per tensor (l2_loss(x) = sum(x^2) / 2) rather than a square and a
    sum: the tensor is read once and no temporary of its size is written.
    """
    return tf.sqrt(2.0 * tf.add_n([tf.nn.l2_loss(_float32_or_wider(x)) for x in xs]))


def _player_gradients(
    tape: tf.GradientTape,
    losses: Mapping[str, tf.Tensor],
    players: Mapping[str, Sequence],
    values: Sequence,
) -> list[tf.Tensor]:
    """xi = (grad_{w_i} l_i)_i, flattened in player order, zeros for unconnected variables;
    the gradients are taken with respect to ``values`` (what the tape watched: flat, aligned
    with the players' variables)."""
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
    before its forward pass.

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
      ``None``.
    """
    if mode not in HVP_MODES:
        raise ValueError(
            f"Argument `mode` must be one of {HVP_MODES}. Received: mode={mode!r}. Use "
            "'forward' (the default) or 'double_backward' for layers where forward mode fails."
        )
    variables = [v for vs in players.values() for v in vs]
    values, mapping = _read_once(variables)
    if vector is not None:
        if len(vector) != len(values):
            raise ValueError(
                f"`vector` must have one tensor per variable ({len(values)}). "
                f"Received: {len(vector)} tensors."
            )
        vector = [tf.stop_gradient(tf.cast(u, x.dtype)) for u, x in zip(vector, values)]
    double_backward = hv and mode == "double_backward"
    losses, xi, vector, htv_out, hv_out = _reverse_pass(
        loss_fn, players, values, mapping, vector, vector_fn or (lambda xs: xs), htv,
        double_backward,
    )
    if hv and mode == "forward":
        hv_out = _forward_jvp(loss_fn, players, values, mapping, vector)
    return GameProducts(losses, xi, vector, hv_out, htv_out)


def _reverse_pass(loss_fn, players, values, mapping, vector, vector_fn, want_htv, want_hv):
    """One forward pass at ``values``: losses, xi, v, H^T v (reverse-over-reverse) and, by the
    double-backward trick, H v; v = vector_fn(xi) of this same pass when not given."""
    dummies = [tf.zeros_like(x) for x in values] if want_hv else None
    with contextlib.ExitStack() as stack:
        if dummies is not None:
            dummy_tape = stack.enter_context(
                tf.GradientTape(watch_accessed_variables=False, persistent=True)
            )
            dummy_tape.watch(dummies)
        if want_htv or want_hv:
            outer = stack.enter_context(
                tf.GradientTape(watch_accessed_variables=False, persistent=True)
            )
            outer.watch(values)
        with tf.GradientTape(watch_accessed_variables=False, persistent=True) as inner:
            inner.watch(values)
            with _EvaluationAt(mapping):
                losses = dict(loss_fn())
        xi = _player_gradients(inner, losses, players, values)
        if vector is None:
            vector = [tf.stop_gradient(u) for u in vector_fn([tf.stop_gradient(x) for x in xi])]
        if dummies is not None:  # g(u) = H^T u, recorded by the dummy tape
            g_of_u = _zeros_for_none(
                outer.gradient(xi, values, output_gradients=dummies), values
            )
    htv = hv = None
    if want_htv:
        htv = _zeros_for_none(outer.gradient(xi, values, output_gradients=vector), values)
    if dummies is not None:
        hv = _zeros_for_none(
            dummy_tape.gradient(g_of_u, dummies, output_gradients=vector), values
        )
    return losses, [tf.stop_gradient(x) for x in xi], vector, htv, hv


def _forward_jvp(loss_fn, players, values, mapping, vector) -> list[tf.Tensor]:
    """H v by forward-over-reverse: the JVP of xi along v, in a second forward pass at the
    same ``values`` as the reverse pass (so that its primal part is a common subexpression)."""
    with tf.autodiff.ForwardAccumulator(values, vector) as accumulator:
        with tf.GradientTape(watch_accessed_variables=False, persistent=True) as tape:
            tape.watch(values)
            with _EvaluationAt(mapping, apply_updates=False):
                losses = dict(loss_fn())
        xi = _player_gradients(tape, losses, players, values)
    return [accumulator.jvp(x, unconnected_gradients="zero") for x in xi]
