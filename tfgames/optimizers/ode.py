"""ODE-GAN: Runge-Kutta steps of the game dynamics dw/dt = -xi(w)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import keras
import tensorflow as tf

from tfgames import products
from tfgames.game import Game
from tfgames.optimizers.base import (
    GameOptimizer,
    StepResult,
    all_reduce_sum,
    apply_after,
    check_bool,
    config_of,
)
from tfgames.optimizers.per_player import PerPlayer

__all__ = ["BUTCHER_TABLEAUX", "RungeKutta", "gradient_norm_regularizer"]

#: Explicit Runge-Kutta methods as (stage offsets c_2..c_s, weights b_1..b_s); stage i is
#: evaluated at w - h c_i k_{i-1} (the diagonal tableaux of Heun's method and classical RK4).
BUTCHER_TABLEAUX: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "euler": ((), (1.0,)),
    "heun": ((1.0,), (0.5, 0.5)),
    "rk4": ((0.5, 0.5, 1.0), (1.0 / 6.0, 1.0 / 3.0, 1.0 / 3.0, 1.0 / 6.0)),
}

Method = Literal["euler", "heun", "rk4"]


def gradient_norm_regularizer(
    game: Game, regularized: str, penalized: str
) -> tuple[dict, list[tf.Tensor], list[tf.Tensor]]:
    """``(losses, xi, r)`` with r = grad_{w_reg} ||grad_{w_pen} l_pen||^2, zero elsewhere.

    r = 2 H^T v with v = xi restricted to the penalized player's block (its blocks outside
    the regularized player are zeroed): one reverse-over-reverse product. Under a
    distribution strategy v is the global (all-reduced) xi, and xi and r are this replica's
    shares, as the inner optimizer expects.
    """
    blocks = game.split(list(range(len(game.variables))))

    def penalized_xi(xs):
        xs = all_reduce_sum(xs)
        keep = set(blocks[penalized])
        return [x if i in keep else tf.zeros_like(x) for i, x in enumerate(xs)]

    p = game.products(None, hv=False, htv=True, vector_fn=penalized_xi)
    keep = set(blocks[regularized])
    reg = [2.0 * h if i in keep else tf.zeros_like(h) for i, h in enumerate(p.htv)]
    return p.losses, p.xi, reg


@keras.saving.register_keras_serializable(package="tfgames")
class RungeKutta(GameOptimizer):
    """ODE-GAN: one explicit Runge-Kutta step of dw/dt = -xi(w), both players jointly.

        k_1 = xi(w_t),  k_i = xi(w_t - h c_i k_{i-1}) (i = 2..s),
        w_{t+1} = w_t - h sum_i b_i k_i,

    with step h = the inner optimizer's learning rate and (c, b) from
    :data:`BUTCHER_TABLEAUX`: ``method="heun"`` (RK2: c = (1,), b = (1/2, 1/2), local error
    O(h^3)), ``"rk4"`` (classical: c = (1/2, 1/2, 1), b = (1/6, 1/3, 1/3, 1/6), local error
    O(h^5)) or ``"euler"`` (simultaneous gradient descent). xi is the simultaneous gradient,
    so every player follows its own loss's gradient flow; the stages are evaluated by moving
    the parameters and restoring them. With ``keras.optimizers.SGD(h)`` this is the
    integrator; with another inner optimizer the stages stay Euler steps of size h c_i and
    only the combined direction sum_i b_i k_i goes through the inner optimizer (DeepMind's
    code with ``opt_name=adam`` also routes the stages through Adam: a different update).

    Gradient-norm regulariser (``grad_reg_weight`` = lambda > 0; Qin et al. 2020, Sec. 3.3):
    lambda grad_{w_D} ||grad_{w_G} l_G||^2 is added to the regularized player's (the
    discriminator's) direction, as in deepmind-research ``cs_gan/main_ode.py``: with
    ``reg_first_grad_only=True`` (their default) it is added to k_1 only, weighted lambda / b_1
    (so the final direction carries lambda exactly, and the first stage sees lambda / b_1, as
    theirs does); with ``False``, lambda is added to every k_i. Each regularised evaluation
    costs one extra reverse-over-reverse product (:func:`gradient_norm_regularizer`).

    Sampling: every stage replays the step's noise and sees the step's batch (default), or
    with ``fresh_noise=True`` draws new noise at every stage (DeepMind's code draws new
    noise and a new quarter of a 4x batch for each RK4 stage).

    Gradient evaluations per step: s = 1, 2, 4 for euler, heun, rk4.
    :attr:`iterations` counts steps; the inner optimizer takes one step per step.

    Args:
      inner_optimizer: the optimizer of the final update; ``SGD(h)`` for the integrator.
      method: ``"heun"``, ``"rk4"`` or ``"euler"``.
      grad_reg_weight: lambda >= 0 (0.02 in DeepMind's CIFAR script; 0 turns it off).
      regularized_player: the player whose direction receives the regulariser (D).
      penalized_player: the player whose gradient norm is penalised (G).
      reg_first_grad_only: add the regulariser to the first stage only.
      fresh_noise: new noise at every stage.
      name: the optimizer's name.

    References:
      Qin, Wu, Springenberg, Brock, Donahue, Lillicrap, Kohli. Training Generative
      Adversarial Networks by Solving Ordinary Differential Equations. NeurIPS 2020.

    Example:
      >>> import keras, tfgames
      >>> from tfgames.optimizers.ode import RungeKutta
      >>> model = tfgames.games.Bilinear()  # the flow of f = x * y circles around (0, 0)
      >>> model.compile(optimizer=RungeKutta(keras.optimizers.SGD(0.1), method="rk4"))
      >>> _ = model.fit(tfgames.datasets.step_dataset(300), verbose=0)
      >>> round(model.distance_to_equilibrium(), 3)  # on the circle; gradient descent: 6.29
      1.414
    """

    def __init__(
        self,
        inner_optimizer: keras.optimizers.Optimizer,
        *,
        method: Method = "rk4",
        grad_reg_weight: float = 0.0,
        regularized_player: str = "discriminator",
        penalized_player: str = "generator",
        reg_first_grad_only: bool = True,
        fresh_noise: bool = False,
        name: str = "runge_kutta",
        **kwargs: Any,
    ) -> None:
        if method not in BUTCHER_TABLEAUX:
            raise ValueError(
                f"Argument `method` must be one of {sorted(BUTCHER_TABLEAUX)}. Received: "
                f"method={method!r}."
            )
        if (isinstance(grad_reg_weight, bool) or not isinstance(grad_reg_weight, (int, float))
                or not grad_reg_weight >= 0 or grad_reg_weight == float("inf")):
            raise ValueError(
                "Argument `grad_reg_weight` must be a finite number >= 0 (0 turns the "
                f"regulariser off). Received: grad_reg_weight={grad_reg_weight!r}."
            )
        for flag, value in (("reg_first_grad_only", reg_first_grad_only),
                            ("fresh_noise", fresh_noise)):
            check_bool(flag, value)
        if regularized_player == penalized_player:
            raise ValueError(
                "The regulariser grad_{w_D} ||grad_{w_G} l_G||^2 needs two different players. "
                f"Received: regularized_player={regularized_player!r}, penalized_player="
                f"{penalized_player!r}."
            )
        if isinstance(inner_optimizer, PerPlayer):
            raise ValueError(
                "RungeKutta takes its step h from the inner optimizer's learning rate, so it "
                "needs one optimizer with one learning rate, not a PerPlayer container. "
                "Received: PerPlayer."
            )
        super().__init__(inner_optimizer, name=name, **kwargs)
        self.method = method
        self.grad_reg_weight = float(grad_reg_weight)
        self.regularized_player = regularized_player
        self.penalized_player = penalized_player
        self.reg_first_grad_only = reg_first_grad_only
        self.fresh_noise = fresh_noise

    @property
    def iterations(self):
        """Runge-Kutta steps taken."""
        return self._iterations

    def _check_players(self, game: Game) -> None:
        missing = [p for p in (self.regularized_player, self.penalized_player)
                   if p not in game.players]
        if missing:
            raise ValueError(
                f"The gradient-norm regulariser names players {missing} that the game does not "
                f"have; its players are {game.player_names}. Pass regularized_player= and "
                "penalized_player= (or grad_reg_weight=0)."
            )

    def _stage(self, game: Game, weight: float) -> tuple[dict, list[tf.Tensor]]:
        """K = xi (+ weight * the regulariser), this replica's share."""
        if weight == 0.0:
            return game.gradient()
        losses, xi, reg = gradient_norm_regularizer(
            game, self.regularized_player, self.penalized_player)
        return losses, [x + tf.constant(weight, x.dtype) * r for x, r in zip(xi, reg)]

    def apply_game(self, game: Game) -> StepResult:
        """One Runge-Kutta step: s evaluations, then the inner step on sum_i b_i k_i."""
        if not self.built:
            self.build(game.variables)
        if self.grad_reg_weight > 0:
            self._check_players(game)
        offsets, weights = BUTCHER_TABLEAUX[self.method]
        first_weight = self.grad_reg_weight
        other_weight = self.grad_reg_weight
        if self.reg_first_grad_only:
            first_weight, other_weight = self.grad_reg_weight / weights[0], 0.0
        variables = game.variables
        saved = [products.read_value(v) for v in variables]
        h = tf.convert_to_tensor(self.inner_optimizer.learning_rate)
        with tf.control_dependencies(saved):
            losses, k = self._stage(game, first_weight)
        reported = dict(game.last_losses)
        total = [tf.constant(weights[0], x.dtype) * x for x in k]
        after: Sequence[tf.Tensor] = k + list(losses.values())
        for offset, weight in zip(offsets, weights[1:]):
            k_global = all_reduce_sum(k)
            with tf.control_dependencies(after):
                for variable, value, x in zip(variables, saved, k_global):
                    step = tf.cast(h, value.dtype) * tf.constant(offset, value.dtype)
                    variable.assign(value - step * x)
            if self.fresh_noise:
                game.fresh_noise()
            stage_losses, k = self._stage(game, other_weight)
            total = [t + tf.constant(weight, x.dtype) * x for t, x in zip(total, k)]
            after = k + list(stage_losses.values())
        if offsets:
            with tf.control_dependencies(after):
                for variable, value in zip(variables, saved):
                    variable.assign(value)
        apply_after(self.inner_optimizer, total, variables, losses)
        self._iterations.assign_add(1)
        return StepResult(reported, {})

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), **config_of(self, (
            "method", "grad_reg_weight", "regularized_player", "penalized_player",
            "reg_first_grad_only", "fresh_noise"))}
