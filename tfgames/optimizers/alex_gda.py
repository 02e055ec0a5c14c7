"""Alternating-extrapolation gradient descent-ascent (Alex-GDA)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
import tensorflow as tf

from tfgames import products
from tfgames.game import Game
from tfgames.optimizers.base import (
    GameOptimizer,
    StepResult,
    apply_after,
    as_real,
)
from tfgames.optimizers.per_player import bind_players

__all__ = ["AlexGDA", "extrapolation_offset"]


def extrapolation_offset(new: list[tf.Tensor], old: list[tf.Tensor], factor: float
                         ) -> list[tf.Tensor]:
    """w~_{t+1} - w_{t+1} = (factor - 1) (w_{t+1} - w_t), the extrapolated point's offset.

    Alex-GDA extrapolates a player's step: w~_{t+1} = w_t + factor (w_{t+1} - w_t) (gamma for
    x, delta for y in Lee, Cho & Yun 2024). Kept as its offset from w_{t+1}, it starts at zero
    (w~_0 = w_0) and needs no copy of the parameters.
    """
    return [tf.cast(factor - 1.0, n.dtype) * (n - o) for n, o in zip(new, old)]


def _factor(name: str, value: Any) -> float:
    real = as_real(value)
    if real is None or real < 0:
        raise ValueError(
            f"Argument `{name}` must be a finite number >= 0 (the extrapolation factor: 0 "
            "evaluates the other players at their previous point, 1 at their newest one). "
            f"Received: {name}={value!r}. Pass e.g. extrapolation=2.0 or "
            "{'discriminator': 2.0, 'generator': 2.0}."
        )
    return real


@keras.saving.register_keras_serializable(package="tfgames")
class AlexGDA(GameOptimizer):
    """Alex-GDA: x_{t+1} = x_t - a grad_x f(x_t, y~_t), y_{t+1} = y_t + b grad_y f(x~_{t+1}, y_t).

        x_{t+1} = x_t - alpha grad_x f(x_t, y~_t),     x~_{t+1} = x_t + gamma (x_{t+1} - x_t),
        y_{t+1} = y_t + beta grad_y f(x~_{t+1}, y_t),  y~_{t+1} = y_t + delta (y_{t+1} - y_t),

    from x~_0 = x_0, y~_0 = y_0 (Lee, Cho & Yun, ICML 2024, Alternating-Extrapolation GDA; the
    reference code HanseulJo/Alex-GDA, ``quadratic-extensive/algo.py``, class ``GDA``). The
    players step one after the other, each on the gradient of its own loss taken at its own
    current parameters and the other player's *extrapolated* point: (gamma, delta) = (1, 0) is
    simultaneous GDA, (1, 1) alternating GDA, and larger factors extrapolate further along
    the other player's last step (the paper proves linear convergence on bilinear games,
    where both of those fail, and the complexity of extragradient on strongly-convex
    strongly-concave games with fewer gradient evaluations).

    Symbols: x is the game's first player, y the second (``GameModel.players()`` order); l_x =
    f and l_y = -f for a zero-sum game (``y + beta grad_y f`` is y's descent on its own loss).
    For n players, player i (in order) steps on grad_i l_i at its own w_i and every other
    player's latest extrapolated point w~_j, then w~_i = w_i,t + e_i (w_i,t+1 - w_i,t).
    ``extrapolation`` is e_i: one number for every player (gamma = delta) or ``{player:
    factor}``. alpha and beta are the inner optimizer's learning rate(s): each player's step
    is a step of ``inner_optimizer`` on that player's gradient (``keras.optimizers.SGD`` is the
    paper's update; a simultaneous :class:`tfgames.PerPlayer` gives alpha != beta or one Adam
    per player, as the authors' GAN code). With one inner optimizer shared by the players,
    its step counter advances at every player's step (n per step, which matters for Adam's
    bias correction; use a :class:`tfgames.PerPlayer` there). With another inner optimizer
    than SGD the extrapolation multiplies that optimizer's step, as the authors' GAN code
    (``target = gamma * online + (1 - gamma) * target``).

    One training step is one round: every player steps once, and each evaluation of the
    losses replays the step's batch and noise (the reference GAN code draws one noise batch
    per round). Gradient evaluations per step: n (one per player, each differentiating only
    that player's loss with respect to its own parameters; 2 for two players, as the paper
    counts). The losses reported are each player's own loss at the point its gradient was
    taken. The offsets w~ - w are optimizer variables (saved and resumed). Under
    ``tf.distribute.MirroredStrategy`` and ``MultiWorkerMirroredStrategy`` a round equals one
    device's on the global batch (tests/test_alternating_distribute.py).

    Args:
      inner_optimizer: the Keras optimizer of every player's step (SGD: the paper's
        update), or a simultaneous :class:`tfgames.PerPlayer`.
      extrapolation: e >= 0 for every player (gamma = delta), or ``{player: e}`` naming
        every player of the game.
      name: the optimizer's name; ``None`` derives one from the class name.
      **kwargs: Keras' base optimizer arguments are refused: set them on the inner optimizer.

    References:
      Lee, Cho, Yun. Fundamental Benefit of Alternating Updates in Minimax Optimization. ICML
      2024 (PMLR 235:26439-26514). Gidel, Askari Hemmat, Pezeshki, Le Priol, Huang,
      Lacoste-Julien, Mitliagkas. Negative Momentum for Improved Game Dynamics. AISTATS 2019
      (alternating updates). Zhang, Wang, Lessard, Grosse. Near-optimal Local Convergence of
      Alternating Gradient Descent-Ascent for Minimax Optimization. AISTATS 2022.

    Example:
      >>> import keras, tfgames
      >>> from tfgames.optimizers.alex_gda import AlexGDA
      >>> model = tfgames.games.Bilinear()  # f = x * y from (1, 1)
      >>> model.compile(optimizer=AlexGDA(keras.optimizers.SGD(0.5), extrapolation=2.0))
      >>> _ = model.fit(tfgames.datasets.step_dataset(300), verbose=0)
      >>> model.distance_to_equilibrium() < 1e-3  # alternating GDA (1, 1) stays on an orbit
      True
    """

    def __init__(
        self,
        inner_optimizer: keras.optimizers.Optimizer,
        *,
        extrapolation: float | Mapping[str, float] = 2.0,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        if isinstance(extrapolation, Mapping):
            if not extrapolation or not all(isinstance(k, str) for k in extrapolation):
                raise ValueError(
                    "Argument `extrapolation` must be a number or a non-empty mapping "
                    f"{{player name: factor}}. Received: extrapolation={extrapolation!r}."
                )
            extrapolation = {k: _factor(f"extrapolation[{k!r}]", v)
                             for k, v in extrapolation.items()}
        else:
            extrapolation = _factor("extrapolation", extrapolation)
        super().__init__(inner_optimizer, name=name, **kwargs)
        self.extrapolation = extrapolation

    def build(self, var_list: list) -> None:
        """Build the inner optimizer and one offset w~ - w per variable (zero: w~_0 = w_0)."""
        if self.built:
            return
        super().build(var_list)
        self._offsets = self.add_optimizer_variables(var_list, "extrapolation_offset")

    def factors(self, players: list[str]) -> dict[str, float]:
        """{player: e_i} for the game's ``players``; raises if a mapping names others."""
        if not isinstance(self.extrapolation, Mapping):
            return {p: self.extrapolation for p in players}
        if sorted(self.extrapolation) != sorted(players):
            raise ValueError(
                f"AlexGDA's `extrapolation` names players {sorted(self.extrapolation)}, but "
                f"the game's players are {sorted(players)}. Give one factor per player, or one "
                "number for all."
            )
        return dict(self.extrapolation)

    def apply_game(self, game: Game) -> StepResult:
        """One round: every player, in order, steps at the others' extrapolated points."""
        names = game.player_names
        factors = self.factors(names)
        bind_players(self.inner_optimizer, game.players)
        if not self.built:
            self.build(game.variables)
        reported: dict[str, tf.Tensor] = {}
        after: list[tf.Tensor] = []
        for name in names:
            own = game.players[name]
            others = [v for other in names if other != name for v in game.players[other]]
            with tf.control_dependencies(after):
                saved = [products.read_value(v) for v in others]
            offsets = [self._offsets[self._get_variable_index(v)] for v in others]
            with tf.control_dependencies(saved):
                for variable, value, offset in zip(others, saved, offsets):
                    variable.assign(value + tf.convert_to_tensor(offset))
            loss, grads = self._own_gradient(game, name)
            reported[name] = loss
            with tf.control_dependencies(grads + [loss]):
                for variable, value in zip(others, saved):
                    variable.assign(value)
                old = [products.read_value(v) for v in own]
            apply_after(self.inner_optimizer, grads, own, {name: loss})
            with tf.control_dependencies(old):
                new = [products.read_value(v) for v in own]
            for variable, offset in zip(own, extrapolation_offset(new, old, factors[name])):
                self._offsets[self._get_variable_index(variable)].assign(offset)
            after = new
        with tf.control_dependencies(after):
            self._iterations.assign_add(1)
        game.last_losses = dict(reported)
        return StepResult(reported, {})

    @staticmethod
    def _own_gradient(game: Game, name: str) -> tuple[tf.Tensor, list[tf.Tensor]]:
        """(l_name, grad of l_name with respect to the player's own parameters only)."""

        def loss_fn():
            return {name: game._checked_losses()[name]}

        _, grads = products.simultaneous_gradient(loss_fn, {name: game.players[name]})
        return game.last_losses[name], game._unscale(grads)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        extrapolation = self.extrapolation
        config.update(extrapolation=dict(extrapolation) if isinstance(extrapolation, Mapping)
                      else extrapolation)
        return config
