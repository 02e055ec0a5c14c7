"""The base of tfgames' optimizers that wrap other optimizers, and the game step helpers.

A Keras optimizer's ``apply(grads, variables)`` sees gradients only. Second-order game
optimizers (SGA, consensus) need Hessian-vector products of the game, extragradient
re-evaluates the game at another point, and an alternating per-player update order computes
only the active player's gradient, so these optimizers take a whole game step,
``apply_game(game)``, which :class:`tfgames.GameModel` calls from its ``train_step``.
:func:`steps_game` is the one test of whether an optimizer must be given the game.

Every tfgames optimizer that wraps other optimizers (:class:`GameOptimizer` and its
subclasses, :class:`tfgames.Lookahead`, :class:`tfgames.PerPlayer`) derives from
:class:`WrapperOptimizer`, which behaves like Keras' ``LossScaleOptimizer``:

- the inner optimizers apply the update; their state is saved with the wrapper's own
  (``variables`` is the wrapper's own variables followed by every inner optimizer's);
- ``learning_rate`` is the inner optimizer's, readable and settable, so Keras'
  ``LearningRateScheduler`` and ``ReduceLROnPlateau`` reach it; where the chain holds one
  optimizer per player, ``optimizers`` lists them (Keras' multi-optimizer convention, read by
  those callbacks and by ``TensorBoard``), each named after its player;
- ``iterations`` counts the wrapper's training steps: one per ``apply_game`` (or ``apply``)
  call, that is one per batch in ``fit``, whatever the inner optimizers count (an
  extragradient step is two inner half-steps; a per-player optimizer counts its player's
  steps only);
- the base arguments of a Keras optimizer that belong to the update (``weight_decay``,
  clipping, EMA, ``loss_scale_factor``, ``gradient_accumulation_steps``, ``learning_rate``)
  are refused with an error that says to set them on the inner optimizer.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import keras
import numpy as np
import tensorflow as tf

from tfgames.game import Game

__all__ = [
    "GameOptimizer",
    "SlotWrapper",
    "StepResult",
    "WrapperOptimizer",
    "all_reduce_sum",
    "apply_after",
    "as_count",
    "as_real",
    "check_bool",
    "check_optimizer",
    "checked",
    "config_of",
    "delegated_learning_rate",
    "loss_scale_of",
    "loss_scale_optimizer_of",
    "num_replicas",
    "positional_hyperparameters",
    "simultaneous_step",
    "steps_game",
    "unknown_names",
]


class StepResult(NamedTuple):
    """What ``apply_game`` returns: the players' losses and the optimizer's diagnostics."""

    losses: dict[str, tf.Tensor]
    diagnostics: dict[str, tf.Tensor]


def num_replicas() -> int:
    """Number of replicas of the current ``tf.distribute`` strategy (1 without one)."""
    return tf.distribute.get_strategy().num_replicas_in_sync


def all_reduce_sum(tensors: list[tf.Tensor]) -> list[tf.Tensor]:
    """Sum ``tensors`` over replicas inside ``strategy.run``; the identity otherwise."""
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return list(tensors)
    return list(ctx.all_reduce(tf.distribute.ReduceOp.SUM, list(tensors)))


def as_real(value: Any) -> float | None:
    """``float(value)`` for a finite real number (Python or NumPy scalar), else ``None``.

    Booleans are not numbers here. Callers turn ``None`` into an error naming the argument.
    """
    if isinstance(value, (bool, np.bool_)):
        return None
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    if not isinstance(value, numbers.Real):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def as_count(value: Any) -> int | None:
    """``int(value)`` for an integer (Python or NumPy, not bool), else ``None``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        return None
    return int(value)


def checked(name: str, value: Any, kind: type[int] | type[float],
            accept: Callable[[Any], bool], requirement: str) -> Any:
    """``value`` as an ``int`` or ``float`` if it is one and ``accept`` holds, else a ValueError.

    The error reads "Argument `name` <requirement>. Received: name=<value!r>.", so the
    requirement states the constraint and, where it helps, its reason.

    Args:
      name: the argument's name.
      value: the value received.
      kind: ``int`` (an integer, see :func:`as_count`) or ``float`` (a finite real number,
        see :func:`as_real`).
      accept: the constraint on the converted value.
      requirement: the message's words after the argument's name, e.g.
        ``"must be an integer >= 1"``.
    """
    converted = as_count(value) if kind is int else as_real(value)
    if converted is None or not accept(converted):
        raise ValueError(f"Argument `{name}` {requirement}. Received: {name}={value!r}.")
    return converted


def check_bool(name: str, value: Any) -> None:
    """Raise a ``TypeError`` unless ``value`` is a Python bool (a flag argument)."""
    if not isinstance(value, bool):
        raise TypeError(f"Argument `{name}` must be a bool. Received: {name}={value!r}.")


def config_of(owner: Any, names: Sequence[str]) -> dict[str, Any]:
    """``{name: owner.name}`` for each of ``names``: the hyperparameters a ``get_config`` adds."""
    return {name: getattr(owner, name) for name in names}


def unknown_names(variables: Sequence, known: Sequence) -> list[str]:
    """The names of the ``variables`` that are not (by identity) among the ``known`` ones."""
    known_ids = {id(v) for v in known}
    return [v.name for v in variables if id(v) not in known_ids]


def delegated_learning_rate(inner: str) -> property:
    """A ``learning_rate`` property that reads and sets the attribute ``inner``'s learning rate."""

    def get(self):
        return getattr(self, inner).learning_rate

    def set_(self, learning_rate) -> None:
        getattr(self, inner).learning_rate = learning_rate

    return property(get, set_, doc=f"``{inner}.learning_rate``, readable and settable.")


def positional_hyperparameters(
    owner: str, args: tuple, names: tuple[str, ...], given: Mapping[str, Any],
    defaults: Mapping[str, Any],
) -> dict[str, Any]:
    """Map hyperparameters passed by position (tfgames 0.1) to their keywords, with a warning.

    Hyperparameters are keyword-only; the positional spelling of 0.1 keeps working with a
    ``DeprecationWarning``.

    Args:
      owner: the class name, for the messages.
      args: the extra positional arguments received.
      names: the hyperparameters in their 0.1 positional order.
      given: the keyword values received.
      defaults: the keyword defaults (a keyword given with a non-default value and by
        position is an error, as Python's own "multiple values").

    Returns:
      ``given`` updated with the positional values.
    """
    given = dict(given)
    if not args:
        return given
    if len(args) > len(names):
        raise TypeError(
            f"{owner}() takes at most {len(names)} hyperparameters by position after the "
            f"inner optimizer ({', '.join(names)}), and they are keyword-only. Received "
            f"{len(args)} positional values: {args!r}."
        )
    used = names[: len(args)]
    for key, value in zip(used, args):
        if given[key] is not defaults[key] and given[key] != defaults[key]:
            raise TypeError(f"{owner}() got multiple values for argument `{key}`.")
        given[key] = value
    warnings.warn(
        f"Passing {owner}'s hyperparameters by position is deprecated: they are keyword-only. "
        f"Write {owner}(inner_optimizer, "
        + ", ".join(f"{k}={v!r}" for k, v in zip(used, args))
        + ").",
        DeprecationWarning,
        stacklevel=3,
    )
    return given


def loss_scale_optimizer_of(optimizer: Any) -> keras.optimizers.LossScaleOptimizer | None:
    """The Keras ``LossScaleOptimizer`` that ``optimizer`` applies its update through.

    Follows ``inner_optimizer`` from ``optimizer`` (a ``LossScaleOptimizer`` itself, or a
    wrapper such as :class:`tfgames.Lookahead` whose inner optimizer is one); ``None`` when
    the chain holds none.
    """
    seen = set()
    node = optimizer
    while node is not None and id(node) not in seen:
        seen.add(id(node))
        if isinstance(node, keras.optimizers.LossScaleOptimizer):
            return node
        node = getattr(node, "inner_optimizer", None)
    return None


def loss_scale_of(optimizer: Any) -> tf.Variable | None:
    """The dynamic scale of :func:`loss_scale_optimizer_of` (built), or ``None``."""
    found = loss_scale_optimizer_of(optimizer)
    return None if found is None else found.dynamic_scale


def apply_after(
    optimizer: keras.optimizers.Optimizer,
    direction: list[tf.Tensor],
    variables: list,
    losses: Mapping[str, tf.Tensor] | None = None,
) -> None:
    """``optimizer.apply(direction, variables)`` once every direction and loss is computed.

    Inside ``keras.Model.fit``'s ``tf.function`` the variable reads of the forward pass are
    not always ordered before the optimizer's assignments (observed on TF 2.21: one player's
    update could see another's new value, making "simultaneous" updates sequential). The
    explicit control dependency, as in the TF1 seeds, makes the update simultaneous.

    If ``optimizer`` applies through a ``LossScaleOptimizer`` (mixed_float16), the direction,
    from which the game divided the loss scale out, is multiplied by the scale again: the
    ``LossScaleOptimizer`` divides it out and checks the scaled step for overflow.
    """
    after = [t for t in direction if t is not None] + list((losses or {}).values())
    with tf.control_dependencies(after):
        scale = loss_scale_of(optimizer)
        if scale is not None:
            direction = [None if d is None else d * tf.cast(scale, d.dtype) for d in direction]
        optimizer.apply(direction, variables)


def simultaneous_step(optimizer: keras.optimizers.Optimizer, game: Game) -> StepResult:
    """One simultaneous step: every player moves along its block of xi, through ``optimizer``.

    w <- w - optimizer(xi(w)), xi = (grad_{w_1} l_1, ..., grad_{w_n} l_n), all blocks at the
    same w. The step of any optimizer for which :func:`steps_game` is false.
    """
    losses, xi = game.gradient()
    apply_after(optimizer, xi, game.variables, losses)
    return StepResult(dict(game.last_losses), {})


def steps_game(optimizer: Any) -> bool:
    """Whether ``optimizer``'s update needs the game (the players' losses), not only gradients.

    True for game optimizers (second-order products, re-evaluations), for a
    :class:`tfgames.PerPlayer` whose update order is not simultaneous or whose players scale
    their own losses (mixed_float16), and for any wrapper of these; such an optimizer is
    stepped with ``optimizer.apply_game(game)``. False for Keras optimizers and for wrappers
    of them, which :func:`simultaneous_step` applies to the simultaneous gradient.
    """
    if isinstance(optimizer, WrapperOptimizer):
        return optimizer._steps_game()
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return steps_game(optimizer.inner_optimizer)
    return False


def check_optimizer(optimizer: Any, argument: str) -> keras.optimizers.Optimizer:
    """Reject what is not a Keras 3 optimizer with an error that says what to pass instead."""
    if isinstance(optimizer, keras.optimizers.Optimizer):
        return optimizer
    # Imported here: tfgames.compat imports the optimizers, so a module-level import would
    # be circular.
    from tfgames.compat.migration import migration_hint

    kind = type(optimizer).__module__ + "." + type(optimizer).__name__
    raise TypeError(
        f"Argument `{argument}` must be a Keras 3 optimizer instance such as "
        f"keras.optimizers.RMSprop(1e-4). Received: an object of type {kind}."
        f"{migration_hint(optimizer)}"
    )


#: Base arguments of ``keras.optimizers.Optimizer`` that a wrapper does not apply itself, with
#: their defaults (accepted, so that configs written by Keras' base class load).
_INNER_ARGUMENTS = {
    "weight_decay": None,
    "clipnorm": None,
    "global_clipnorm": None,
    "clipvalue": None,
    "use_ema": False,
    "ema_momentum": 0.99,
    "ema_overwrite_frequency": None,
    "loss_scale_factor": None,
    "gradient_accumulation_steps": None,
}


class PlayerOptimizer:
    """One player's optimizer as Keras' callbacks see it: named after the player.

    An entry of :attr:`WrapperOptimizer.optimizers`. ``name`` is the player's name (so that
    ``TensorBoard`` logs ``learning_rate_<player>``), ``learning_rate`` reads and sets that
    player's optimizer's learning rate, and every other attribute is the optimizer's own.

    Attributes:
      player: the player's name.
      optimizer: the player's Keras optimizer.
    """

    __slots__ = ("optimizer", "player")

    def __init__(self, player: str, optimizer: keras.optimizers.Optimizer) -> None:
        object.__setattr__(self, "player", player)
        object.__setattr__(self, "optimizer", optimizer)

    @property
    def name(self) -> str:
        """The player's name."""
        return self.player

    learning_rate = delegated_learning_rate("optimizer")
    """The player's optimizer's learning rate (settable)."""

    def __getattr__(self, key: str) -> Any:
        if key in PlayerOptimizer.__slots__:  # not set yet (copy, pickle)
            raise AttributeError(key)
        return getattr(self.optimizer, key)

    def __setattr__(self, key: str, value: Any) -> None:
        if key == "learning_rate":
            object.__setattr__(self, key, value)
        else:
            setattr(self.optimizer, key, value)

    def __repr__(self) -> str:
        return f"PlayerOptimizer({self.player!r}, {self.optimizer!r})"


class WrapperOptimizer(keras.optimizers.Optimizer):
    """Base of the optimizers that apply their update through inner optimizers.

    Owns what every wrapper shares: the refusal of Keras' base arguments, building the inner
    optimizers, ``variables`` (own, then the inner optimizers'), ``learning_rate`` (the inner
    optimizer's, settable), ``optimizers`` (one entry per player where the chain holds a
    :class:`tfgames.PerPlayer`), ``iterations`` (the wrapper's own steps),
    ``finalize_variable_values`` and the config round trip. A subclass with one inner
    optimizer keeps it in ``self.inner_optimizer``; :class:`tfgames.PerPlayer` overrides the
    parts that differ for one optimizer per player.

    Args:
      inner_optimizer: the optimizer that applies the update, or ``None`` for a subclass that
        holds several (:class:`tfgames.PerPlayer`).
      name: the optimizer's name; ``None`` derives one from the class name, as Keras does.
      **kwargs: Keras' base optimizer arguments are refused (set them on the inner
        optimizer), except at their default values.
    """

    def __init__(
        self,
        inner_optimizer: keras.optimizers.Optimizer | None = None,
        *,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        owner = type(self).__name__
        if "learning_rate" in kwargs:
            raise ValueError(
                f"{owner} does not take `learning_rate`: the inner optimizer applies the "
                "update with its own learning rate. Set it there, e.g. "
                "keras.optimizers.RMSprop(learning_rate=1e-4); "
                f"{owner}.learning_rate reads and sets it. "
                f"Received: learning_rate={kwargs['learning_rate']!r}."
            )
        for key, default in _INNER_ARGUMENTS.items():
            if key not in kwargs:
                continue
            value = kwargs.pop(key)
            if value is None and default is None:
                continue
            if default is not None and value == default:
                continue
            raise ValueError(
                f"{owner} does not support `{key}`: the update is applied by its inner "
                f"optimizer, and a `{key}` given here would be ignored. Set `{key}` on the "
                f"inner optimizer instead, e.g. keras.optimizers.Adam(1e-4, {key}=...). "
                f"Received: {key}={value!r}."
            )
        if kwargs:
            raise TypeError(
                f"{owner} got unexpected arguments: {sorted(kwargs)}. Received: "
                + ", ".join(f"{k}={v!r}" for k, v in sorted(kwargs.items()))
                + "."
            )
        super().__init__(learning_rate=0.0, name=name)
        if inner_optimizer is not None:
            self.inner_optimizer = check_optimizer(inner_optimizer, "inner_optimizer")

    # -- the inner optimizers -----------------------------------------------------------------
    def _inner_optimizers(self) -> list[keras.optimizers.Optimizer]:
        """The optimizers this one applies its update through."""
        return [self.inner_optimizer]

    def _steps_game(self) -> bool:
        """See :func:`steps_game`: by default, whether the inner optimizer steps the game."""
        return steps_game(self.inner_optimizer)

    def build(self, var_list: list) -> None:
        """Build the inner optimizer on ``var_list`` (it must not know other variables)."""
        if self.built:
            return
        inner = self.inner_optimizer
        if inner.built:
            strangers = unknown_names(var_list, inner._trainable_variables)
            if strangers:
                raise ValueError(
                    f"The inner optimizer {inner.name!r} of {type(self).__name__} is already "
                    f"built on other variables (it does not know {strangers[:3]}...). Pass a "
                    "fresh optimizer instance."
                )
        else:
            inner.build(var_list)
        super().build(var_list)

    @property
    def variables(self) -> list:
        """The wrapper's own variables, then every inner optimizer's (all saved)."""
        out = list(self._variables)
        for inner in self._inner_optimizers():
            out.extend(inner.variables)
        return out

    @property
    def iterations(self):
        """Training steps of this optimizer: one per ``apply_game``/``apply`` call."""
        return self._iterations

    learning_rate = delegated_learning_rate("inner_optimizer")
    """The inner optimizer's learning rate; setting it sets the inner optimizer's."""

    @property
    def optimizers(self) -> list[PlayerOptimizer]:
        """One entry per player where the chain holds a :class:`tfgames.PerPlayer`.

        Keras' callbacks (``TensorBoard``, ``LearningRateScheduler``, ``ReduceLROnPlateau``)
        read and set each entry's ``learning_rate``. Raises ``AttributeError`` (so
        ``hasattr`` is false and the callbacks use :attr:`learning_rate`) when the chain
        holds one first-order optimizer.
        """
        node = self.inner_optimizer
        while node is not None:
            if isinstance(node, WrapperOptimizer):
                return node.optimizers
            node = getattr(node, "inner_optimizer", None)
        raise AttributeError(
            f"{type(self).__name__} applies its update through one optimizer, not one per "
            "player: read or set `learning_rate` instead."
        )

    @property
    def diagnostic_names(self) -> tuple[str, ...]:
        """Names of the scalars the step reports (GameModel shows them as metrics)."""
        return tuple(getattr(self.inner_optimizer, "diagnostic_names", ()))

    def scale_loss(self, loss):
        return self.inner_optimizer.scale_loss(loss)

    def finalize_variable_values(self, var_list) -> None:
        for inner in self._inner_optimizers():
            inner.finalize_variable_values(var_list)

    def apply_gradients(self, grads_and_vars):
        grads, variables = zip(*grads_and_vars)
        self.apply(list(grads), list(variables))

    # -- config -------------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "inner_optimizer": keras.saving.serialize_keras_object(self.inner_optimizer),
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any], custom_objects=None):
        config = dict(config)
        inner = keras.saving.deserialize_keras_object(
            config.pop("inner_optimizer"), custom_objects=custom_objects
        )
        return cls(inner, **config)


class SlotWrapper(WrapperOptimizer):
    """Base of the wrappers that act on the iterates after every inner step, with one slot each.

    One step of such a wrapper, on gradients (:meth:`apply`) or on a game (:meth:`apply_game`):

    1. :meth:`_before_step` on the variables (default: nothing);
    2. the inner optimizer's step: ``inner.apply(grads)``; on a game, ``inner.apply_game(game)``
       where :func:`steps_game` holds for the inner optimizer, else :func:`simultaneous_step`
       (which comes back through :meth:`apply`);
    3. :meth:`_after_step` on the variables, once the step's losses and diagnostics are
       computed.

    Every variable has one slot, ``add_optimizer_variables(var_list, slot_name)`` created after
    the inner optimizer is built (so the order of the saved optimizer variables is: the
    wrapper's own, its slots, the inner optimizer's); the slots are saved with the model and
    restored by ``keras.models.load_model``. :class:`tfgames.averaging.Averaging` (the slot
    holds the average) and :class:`tfgames.Lookahead` (the slow weights) derive from it.

    Args:
      inner_optimizer: the optimizer that moves the iterates (a Keras optimizer, a game
        optimizer or a :class:`tfgames.PerPlayer`).
      name: the optimizer's name; ``None`` derives one from the class name.
      **kwargs: Keras' base optimizer arguments are refused: set them on the inner optimizer.
    """

    #: Name of the per-variable slot (its variables are named after the variable and it).
    slot_name: str = "slot"

    def build(self, var_list: list) -> None:
        """Build the inner optimizer and one ``slot_name`` slot per variable."""
        if self.built:
            return
        super().build(var_list)
        self._slot_variables = self.add_optimizer_variables(var_list, self.slot_name)

    def _slots(self, variables: list) -> list:
        """The slots of ``variables``, in their order."""
        return [self._slot_variables[self._get_variable_index(v)] for v in variables]

    def _before_step(self, variables: list) -> None:
        """Runs before the inner step (e.g. a slot's initial value)."""

    def _after_step(self, variables: list) -> None:
        """Runs after the inner step: count it and update the slots (and the iterates)."""
        raise NotImplementedError(f"{type(self).__name__} must implement `_after_step`.")

    def apply(self, grads, trainable_variables=None) -> None:
        """One inner step on ``grads``, then :meth:`_after_step`."""
        if steps_game(self.inner_optimizer):
            raise TypeError(
                f"The inner optimizer {type(self.inner_optimizer).__name__} needs the game, "
                f"not only gradients. Train a tfgames.GameModel with this "
                f"{type(self).__name__} (it calls apply_game), or call "
                "optimizer.apply_game(game) in your own loop."
            )
        if trainable_variables is None:
            trainable_variables = self._trainable_variables
        variables = list(trainable_variables)
        if not self.built:
            self.build(variables)
        self._before_step(variables)
        self.inner_optimizer.apply(grads, variables)
        self._after_step(variables)

    def apply_game(self, game: Game) -> StepResult:
        """One inner step on ``game`` (its ``apply_game`` if it steps games), then
        :meth:`_after_step`.
        """
        from tfgames.optimizers.per_player import bind_players

        bind_players(self.inner_optimizer, game.players)
        if not steps_game(self.inner_optimizer):
            return simultaneous_step(self, game)
        if not self.built:
            self.build(game.variables)
        self._before_step(game.variables)
        result = self.inner_optimizer.apply_game(game)
        with tf.control_dependencies(
            list(result.losses.values()) + list(result.diagnostics.values())
        ):
            self._after_step(game.variables)
        return result


class GameOptimizer(WrapperOptimizer):
    """Base class: a Keras optimizer that steps a :class:`tfgames.Game` through an inner one.

    Subclasses implement :meth:`direction`, returning the per-replica direction that the inner
    optimizer applies. ``apply``/``apply_gradients`` without a game raise, because the
    adjustment needs the losses, not only their gradients.

    Args:
      inner_optimizer: the Keras optimizer that applies the adjusted direction (or a
        simultaneous :class:`tfgames.PerPlayer`).
      name: the optimizer's name; ``None`` derives one from the class name.
      **kwargs: Keras' base optimizer arguments are refused: set them on the inner optimizer.
    """

    #: Names of the scalars ``direction`` reports, shown as training metrics by GameModel.
    diagnostic_names: tuple[str, ...] = ()

    def __init__(
        self,
        inner_optimizer: keras.optimizers.Optimizer,
        *,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        inner_optimizer = check_optimizer(inner_optimizer, "inner_optimizer")
        if isinstance(inner_optimizer, GameOptimizer):
            raise TypeError(
                f"{type(self).__name__} wraps a first-order Keras optimizer; it received "
                f"another game optimizer ({type(inner_optimizer).__name__}). Nesting game "
                "adjustments is not defined: pass e.g. keras.optimizers.RMSprop(1e-4)."
            )
        if steps_game(inner_optimizer):
            raise TypeError(
                f"{type(self).__name__} hands its direction to the inner optimizer's "
                "apply(gradients), but the inner optimizer "
                f"({type(inner_optimizer).__name__}) needs the game itself (e.g. a PerPlayer "
                "with an alternating update order). Pass a first-order Keras optimizer or a "
                "PerPlayer with update_order='simultaneous'."
            )
        super().__init__(inner_optimizer, name=name, **kwargs)

    def _steps_game(self) -> bool:
        return True

    def apply(self, grads, trainable_variables=None):
        raise TypeError(
            f"{type(self).__name__} needs the game, not only gradients: its update uses "
            "Hessian-vector products of the players' losses (or re-evaluates them). Train a "
            "tfgames.GameModel with model.compile(optimizer=...) and model.fit(...), or call "
            "optimizer.apply_game(tfgames.Game(players, loss_fn)) in your own loop."
        )

    def apply_gradients(self, grads_and_vars):
        received = type(grads_and_vars).__name__
        if isinstance(grads_and_vars, (list, tuple)):
            received = f"a {received} of {len(grads_and_vars)} (gradient, variable) pairs"
        raise TypeError(
            f"{type(self).__name__}.apply_gradients(grads_and_vars) is not supported: "
            f"{type(self).__name__} needs the game, not only gradients (its update uses the "
            "players' losses: Hessian-vector products or re-evaluations). The TF1 pattern "
            "`Xi = tf.gradients(...)`, "
            "`optimizer.apply_gradients(zip(Xi, xs))` becomes a tfgames.GameModel: "
            "`players()` returns {name: layer or variables} (the variable groups of xs, in "
            "the order of Xi) and `compute_losses(data)` returns {name: loss}; then "
            "model.compile(optimizer=...) and model.fit(...). In a custom loop, call "
            "optimizer.apply_game(tfgames.Game(players, loss_fn)). See the tfgames migration "
            f"guide (\"Migrating from TF1\"). Received: {received}."
        )

    def minimize(self, *args, **kwargs):
        raise TypeError(
            f"{type(self).__name__} has no minimize(loss, var_list): Keras 3 optimizers "
            "do not minimize a loss tensor (that was TF1), and a game has one loss per "
            "player. Declare the players and their losses in a tfgames.GameModel and call "
            "model.compile(optimizer=...) and model.fit(...). See the tfgames migration "
            "guide (\"Migrating from TF1\")."
        )

    # -- the game step ------------------------------------------------------------------------
    def direction(self, game: Game) -> tuple[dict, list[tf.Tensor], dict[str, tf.Tensor]]:
        """``(losses, per-replica direction, diagnostics)`` for the inner optimizer."""
        raise NotImplementedError(f"{type(self).__name__} must implement `direction`.")

    def apply_game(self, game: Game) -> StepResult:
        """One update of every player: dir = self.direction(game); inner.apply(dir)."""
        from tfgames.optimizers.per_player import bind_players

        bind_players(self.inner_optimizer, game.players)
        if not self.built:
            self.build(game.variables)
        losses, direction, diagnostics = self.direction(game)
        apply_after(self.inner_optimizer, direction, game.variables, losses)
        self._iterations.assign_add(1)
        return StepResult(dict(game.last_losses or losses), diagnostics)
