"""Lookahead-minmax: slow weights pulled towards the fast ones every k steps."""

from __future__ import annotations

from typing import Any, Mapping

import keras
import tensorflow as tf

from tfgames import products
from tfgames.game import Game
from tfgames.optimizers.base import (
    GameOptimizer, StepResult, WrapsInnerOptimizer, apply_after, check_optimizer)
from tfgames.optimizers.per_player import bind_players

__all__ = ["Lookahead"]


@keras.saving.register_keras_serializable(package="tfgames")
class Lookahead(WrapsInnerOptimizer, keras.optimizers.Optimizer):
    """Lookahead-minmax: every k steps, phi <- phi + alpha (w - phi) and w <- phi.

    w are the fast weights, moved at every step by ``inner_optimizer``; phi are the slow
    weights, phi_0 = w_0 (taken at the first step). After every k-th step, jointly over all
    players, the slow weights move a fraction alpha towards the fast ones and the fast
    weights restart from them. k = ``k`` (5 in the paper's experiments), alpha = ``alpha``
    (0.5). On games the averaging cancels the rotation of the inner method, which makes
    even gradient descent-ascent converge on bilinear games (Chavdarova et al. 2021).

    The inner optimizer can be any optimizer, game or not:

    - a Keras optimizer (``Lookahead(keras.optimizers.Adam())``): ``apply(grads)`` works in
      a plain ``keras.Model.fit``, and in a :class:`tfgames.GameModel` the players step on
      the simultaneous gradient (LA-GDA, LA-Adam);
    - a game optimizer (``Lookahead(tfgames.Extragradient(...))``, LA-ExtraGrad, or
      :class:`tfgames.SGA`) or a :class:`tfgames.PerPlayer` container with any schedule: its
      ``apply_game`` runs, then the lookahead step synchronises every player.

    The slow weights are optimizer variables, saved with the optimizer; :attr:`iterations`
    counts Lookahead's steps (the position in the k-cycle); ``learning_rate`` is the inner
    optimizer's. With ``k=1, alpha=1`` the update is the inner optimizer's.

    Args:
      inner_optimizer: the optimizer of the fast weights.
      k: the number of fast steps between synchronisations, an integer >= 1.
      alpha: the slow weights' step towards the fast ones, in (0, 1].
      name: the optimizer's name.

    References:
      Chavdarova, Pagliardini, Stich, Fleuret, Jaggi. Taming GANs with Lookahead-Minmax.
      ICLR 2021. Zhang, Lucas, Hinton, Ba. Lookahead Optimizer: k steps forward, 1 step back.
      NeurIPS 2019.

    Example:
      >>> import keras, tfgames
      >>> opt = tfgames.Lookahead(keras.optimizers.Adam(2e-4, beta_1=0.0), k=5, alpha=0.5)
    """

    def __init__(
        self,
        inner_optimizer: keras.optimizers.Optimizer,
        k: int = 5,
        alpha: float = 0.5,
        *,
        name: str = "lookahead",
    ) -> None:
        check_optimizer(inner_optimizer, "inner_optimizer")
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(
                f"Argument `k` (fast steps per synchronisation) must be an integer >= 1. "
                f"Received: k={k!r}."
            )
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha <= 1:
            raise ValueError(
                "Argument `alpha` (the slow weights' step) must be in (0, 1]: 0 would never "
                f"move the slow weights. Received: alpha={alpha!r}."
            )
        super().__init__(learning_rate=0.0, name=name)
        self.inner_optimizer = inner_optimizer
        self.k = int(k)
        self.alpha = float(alpha)

    @property
    def diagnostic_names(self) -> tuple[str, ...]:
        """The inner optimizer's diagnostics."""
        return tuple(getattr(self.inner_optimizer, "diagnostic_names", ()))

    # -- Keras optimizer plumbing (as LossScaleOptimizer) ------------------------------------
    def build(self, var_list: list) -> None:
        """Build the inner optimizer and one slow-weight slot per variable."""
        if self.built:
            return
        if not self.inner_optimizer.built:
            self.inner_optimizer.build(var_list)
        super().build(var_list)
        self._slow_weights = self.add_optimizer_variables(var_list, "slow")

    @property
    def iterations(self):
        """Lookahead steps taken (the position in the cycle of k fast steps)."""
        return self._iterations

    def scale_loss(self, loss):
        return self.inner_optimizer.scale_loss(loss)

    def finalize_variable_values(self, var_list) -> None:
        self.inner_optimizer.finalize_variable_values(var_list)

    # -- the lookahead step -------------------------------------------------------------------
    def _slots(self, variables: list) -> list:
        return [self._slow_weights[self._get_variable_index(v)] for v in variables]

    def _initialise(self, variables: list) -> None:
        """phi_0 = w_0, at the first step (after any weight loading)."""
        slots = self._slots(variables)

        def initialise():
            for slow, variable in zip(slots, variables):
                slow.assign(products.read_value(variable))

        tf.cond(tf.equal(self._iterations, 0), initialise, lambda: None)

    def _synchronise(self, variables: list) -> None:
        """Count the step; after every k-th: phi <- phi + alpha (w - phi), w <- phi."""
        slots = self._slots(variables)
        self._iterations.assign_add(1)

        def synchronise():
            for slow, variable in zip(slots, variables):
                fast = products.read_value(variable)
                value = tf.convert_to_tensor(slow)
                value = value + tf.cast(self.alpha, value.dtype) * (fast - value)
                slow.assign(value)
                variable.assign(value)

        tf.cond(
            tf.equal(tf.math.floormod(self._iterations, self.k), 0), synchronise, lambda: None
        )

    def apply(self, grads, trainable_variables=None) -> None:
        """One inner step on ``grads``, then the lookahead synchronisation if due."""
        if isinstance(self.inner_optimizer, GameOptimizer) or (
            getattr(self.inner_optimizer, "schedule", "simultaneous") != "simultaneous"
        ):
            raise TypeError(
                f"The inner optimizer {type(self.inner_optimizer).__name__} needs the game, "
                "not only gradients. Train a tfgames.GameModel with this Lookahead (it calls "
                "apply_game), or call optimizer.apply_game(game) in your own loop."
            )
        if trainable_variables is None:
            trainable_variables = self._trainable_variables
        variables = list(trainable_variables)
        if not self.built:
            self.build(variables)
        self._initialise(variables)
        self.inner_optimizer.apply(grads, variables)
        self._synchronise(variables)

    def apply_gradients(self, grads_and_vars) -> None:
        grads, variables = zip(*grads_and_vars)
        self.apply(list(grads), list(variables))

    def apply_game(self, game: Game) -> StepResult:
        """One inner step on ``game`` (its ``apply_game`` if it has one), then the sync."""
        if not hasattr(self.inner_optimizer, "apply_game"):
            losses, xi = game.gradient()
            apply_after(self, xi, game.variables, losses)
            return StepResult(dict(game.last_losses), {})
        bind_players(self.inner_optimizer, game.players)
        if not self.built:
            self.build(game.variables)
        self._initialise(game.variables)
        result = self.inner_optimizer.apply_game(game)
        with tf.control_dependencies(
            list(result.losses.values()) + list(result.diagnostics.values())
        ):
            self._synchronise(game.variables)
        return result

    # -- config -------------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "inner_optimizer": keras.saving.serialize_keras_object(self.inner_optimizer),
            "k": self.k,
            "alpha": self.alpha,
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any], custom_objects=None) -> "Lookahead":
        config = dict(config)
        inner = keras.saving.deserialize_keras_object(
            config.pop("inner_optimizer"), custom_objects=custom_objects
        )
        return cls(inner, **config)
