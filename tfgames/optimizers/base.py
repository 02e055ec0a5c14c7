"""The base of game optimizers: Keras optimizers that need the game, not only gradients.

A Keras optimizer's ``apply(grads, variables)`` sees gradients only. Second-order game
optimizers (SGA, consensus) need Hessian-vector products of the game, and extragradient needs
to re-evaluate the game at another point, so they implement ``apply_game(game)`` instead;
:class:`tfgames.GameModel` calls it from its ``train_step``. Like Keras'
``LossScaleOptimizer``, a game optimizer wraps an inner Keras optimizer that turns the adjusted
direction into the parameter update; ``learning_rate`` and ``iterations`` are the inner
optimizer's, and saving stores the inner optimizer's state with the wrapper's.
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple

import keras
import tensorflow as tf

from tfgames.game import Game

__all__ = [
    "GameOptimizer",
    "StepResult",
    "all_reduce_sum",
    "apply_after",
    "check_optimizer",
    "num_replicas",
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
    """
    after = [t for t in direction if t is not None] + list((losses or {}).values())
    with tf.control_dependencies(after):
        optimizer.apply(direction, variables)


def check_optimizer(optimizer: Any, argument: str) -> keras.optimizers.Optimizer:
    """Reject what is not a Keras 3 optimizer with an error that says what to pass instead."""
    if isinstance(optimizer, keras.optimizers.Optimizer):
        return optimizer
    kind = type(optimizer).__module__ + "." + type(optimizer).__name__
    hint = ""
    if "compat.v1" in kind or "tensorflow.python.training" in kind:
        hint = (
            " TF1 optimizers (tf.compat.v1.train.*) cannot run inside Keras 3: use the Keras "
            "optimizer of the same name, or tfgames.compat.v1 for TF1-exact semantics."
        )
    raise TypeError(
        f"Argument `{argument}` must be a Keras 3 optimizer instance such as "
        f"keras.optimizers.RMSprop(1e-4). Received: an object of type {kind}.{hint}"
    )


class GameOptimizer(keras.optimizers.Optimizer):
    """Base class: a Keras optimizer that steps a :class:`tfgames.Game` through an inner one.

    Subclasses implement :meth:`direction`, returning the per-replica direction that the inner
    optimizer applies. ``apply``/``apply_gradients`` without a game raise, because the
    adjustment needs the losses, not only their gradients.

    Args:
      inner_optimizer: the Keras optimizer that applies the adjusted direction.
      name: the optimizer's name.
    """

    #: Names of the scalars ``direction`` reports, shown as training metrics by GameModel.
    diagnostic_names: tuple[str, ...] = ()

    def __init__(
        self, inner_optimizer: keras.optimizers.Optimizer, name: str | None = None, **kwargs
    ) -> None:
        inner_optimizer = check_optimizer(inner_optimizer, "inner_optimizer")
        if isinstance(inner_optimizer, GameOptimizer):
            raise TypeError(
                f"{type(self).__name__} wraps a first-order Keras optimizer; it received "
                f"another game optimizer ({type(inner_optimizer).__name__}). Nesting game "
                "adjustments is not defined: pass e.g. keras.optimizers.RMSprop(1e-4)."
            )
        for key in ("weight_decay", "clipnorm", "global_clipnorm", "clipvalue", "use_ema"):
            if kwargs.get(key):
                raise ValueError(
                    f"{type(self).__name__} does not take `{key}`: set it on the inner "
                    f"optimizer instead. Received: {key}={kwargs[key]!r}."
                )
        for key in list(kwargs):
            if key in (
                "weight_decay", "clipnorm", "global_clipnorm", "clipvalue", "use_ema",
                "ema_momentum", "ema_overwrite_frequency", "loss_scale_factor",
                "gradient_accumulation_steps",
            ):
                kwargs.pop(key)
        if kwargs:
            raise TypeError(
                f"{type(self).__name__} got unexpected arguments: {sorted(kwargs)}."
            )
        super().__init__(learning_rate=0.0, name=name)
        self.inner_optimizer = inner_optimizer

    # -- Keras optimizer plumbing (as LossScaleOptimizer) ------------------------------------
    def build(self, var_list: list) -> None:
        if self.built:
            return
        if self.inner_optimizer.built:
            known = {id(v) for v in self.inner_optimizer._trainable_variables}
            strangers = [v.name for v in var_list if id(v) not in known]
            if strangers:
                raise ValueError(
                    f"The inner optimizer {self.inner_optimizer.name!r} of "
                    f"{type(self).__name__} is already built on other variables (it does "
                    f"not know {strangers[:3]}...). Pass a fresh optimizer instance."
                )
        else:
            self.inner_optimizer.build(var_list)
        super().build(var_list)

    @property
    def variables(self) -> list:
        return self._variables + self.inner_optimizer.variables

    @property
    def learning_rate(self):
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, learning_rate) -> None:
        self.inner_optimizer.learning_rate = learning_rate

    @property
    def iterations(self):
        return self.inner_optimizer.iterations

    def finalize_variable_values(self, var_list) -> None:
        self.inner_optimizer.finalize_variable_values(var_list)

    def apply(self, grads, trainable_variables=None):
        raise TypeError(
            f"{type(self).__name__} needs the game, not only gradients: its update uses "
            "Hessian-vector products of the players' losses (or re-evaluates them). Train a "
            "tfgames.GameModel with model.compile(optimizer=...) and model.fit(...), or call "
            "optimizer.apply_game(tfgames.Game(players, loss_fn)) in your own loop."
        )

    def apply_gradients(self, grads_and_vars):
        return self.apply(None)

    # -- the game step ------------------------------------------------------------------------
    def direction(self, game: Game) -> tuple[dict, list[tf.Tensor], dict[str, tf.Tensor]]:
        """``(losses, per-replica direction, diagnostics)`` for the inner optimizer."""
        raise NotImplementedError(f"{type(self).__name__} must implement `direction`.")

    def apply_game(self, game: Game) -> StepResult:
        """One update of every player: dir = self.direction(game); inner.apply(dir)."""
        if not self.built:
            self.build(game.variables)
        losses, direction, diagnostics = self.direction(game)
        apply_after(self.inner_optimizer, direction, game.variables, losses)
        return StepResult(dict(game.last_losses or losses), diagnostics)

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
