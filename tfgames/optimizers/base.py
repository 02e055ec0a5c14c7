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
        if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            # The game divided the loss scale out of its products; the LossScaleOptimizer
            # divides it out again and checks the scaled step for overflow.
            scale = optimizer.dynamic_scale
            direction = [None if d is None else d * tf.cast(scale, d.dtype) for d in direction]
        optimizer.apply(direction, variables)


#: Replacements for TF1 optimizers (and the seeds' TF1 subclasses), by class name.
_TF1_REPLACEMENTS = {
    "RMSPropOptimizer": "tfgames.compat.v1.RMSPropOptimizer(learning_rate) (TF1-exact: mean "
    "square starting at ones, epsilon 1e-10) or keras.optimizers.RMSprop(learning_rate) "
    "(mean square starting at zeros, epsilon 1e-7: different numbers)",
    "AdamOptimizer": "keras.optimizers.Adam(learning_rate, beta_1=beta1, beta_2=beta2, "
    "epsilon=1e-8) (Keras' default epsilon is 1e-7)",
    "GradientDescentOptimizer": "keras.optimizers.SGD(learning_rate)",
    "MomentumOptimizer": "keras.optimizers.SGD(learning_rate, momentum=momentum)",
    "AdagradOptimizer": "keras.optimizers.Adagrad(learning_rate, epsilon=0.0)",
    "SymplecticOptimizer": "tfgames.compat.v1.SymplecticOptimizer(learning_rate), passed as "
    "the GameModel's optimizer (it is a game optimizer, not an inner one)",
    "AdamirrorOptimizer": "tfgames.compat.v1.AdamirrorOptimizer(learning_rate)",
}


def _migration_hint(optimizer: Any) -> str:
    """What to pass instead of a TF1 / Keras 2 optimizer or an optimizer class."""
    if isinstance(optimizer, type) and issubclass(optimizer, keras.optimizers.Optimizer):
        return f" Pass an instance, e.g. {optimizer.__name__}(learning_rate), not the class."
    if isinstance(optimizer, tf.compat.v1.train.Optimizer):
        name = type(optimizer).__name__
        instead = _TF1_REPLACEMENTS.get(
            name, "the Keras optimizer of the same name from keras.optimizers"
        )
        return (
            f" {name} is a TF1 optimizer (tf.compat.v1.train.Optimizer), which cannot run "
            f"inside Keras 3: use {instead}. tfgames.compat.v1 holds TF1-exact equivalents; "
            "see the migration guide (docs/migration.md)."
        )
    if type(optimizer).__module__.startswith("tf_keras"):
        return (
            " This is a Keras 2 (tf_keras) optimizer; tfgames needs Keras 3: use "
            f"keras.optimizers.{type(optimizer).__name__} from `import keras` (Keras 3)."
        )
    return ""


def check_optimizer(optimizer: Any, argument: str) -> keras.optimizers.Optimizer:
    """Reject what is not a Keras 3 optimizer with an error that says what to pass instead."""
    if isinstance(optimizer, keras.optimizers.Optimizer):
        return optimizer
    kind = type(optimizer).__module__ + "." + type(optimizer).__name__
    raise TypeError(
        f"Argument `{argument}` must be a Keras 3 optimizer instance such as "
        f"keras.optimizers.RMSprop(1e-4). Received: an object of type {kind}."
        f"{_migration_hint(optimizer)}"
    )


class WrapsInnerOptimizer:
    """Mixin of optimizers that wrap ``self.inner_optimizer`` (as LossScaleOptimizer does):
    the learning rate is the inner optimizer's, and the variables are the wrapper's own ones
    followed by the inner optimizer's (so saving restores both)."""

    inner_optimizer: keras.optimizers.Optimizer

    @property
    def variables(self) -> list:
        return self._variables + self.inner_optimizer.variables

    @property
    def learning_rate(self):
        return self.inner_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, learning_rate) -> None:
        self.inner_optimizer.learning_rate = learning_rate


class GameOptimizer(WrapsInnerOptimizer, keras.optimizers.Optimizer):
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
            "optimizer.apply_game(tfgames.Game(players, loss_fn)). See docs/migration.md. "
            f"Received: {received}."
        )

    def minimize(self, *args, **kwargs):
        raise TypeError(
            f"{type(self).__name__} has no minimize(loss, var_list): Keras 3 optimizers "
            "do not minimize a loss tensor (that was TF1), and a game has one loss per "
            "player. Declare the players and their losses in a tfgames.GameModel and call "
            "model.compile(optimizer=...) and model.fit(...). See docs/migration.md."
        )

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
