"""Anchored extragradient: extra anchored gradient (EAG) and fast extragradient (FEG)."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tfgames import products
from tfgames.game import Game
from tfgames.optimizers.base import GameOptimizer, StepResult, apply_after, as_real
from tfgames.optimizers.per_player import PerPlayer, bind_players

__all__ = [
    "ExtraAnchoredGradient",
    "FastExtragradient",
    "anchored_point",
    "eag_anchor_weight",
    "feg_anchor_weight",
]


def eag_anchor_weight(k: tf.Tensor) -> tf.Tensor:
    """EAG's beta_k = 1 / (k + 2), k = 0, 1, ... (Yoon & Ryu 2021)."""
    return 1.0 / (k + 2.0)


def feg_anchor_weight(k: tf.Tensor) -> tf.Tensor:
    """FEG's beta_k = 1 / (k + 1), k = 0, 1, ... (Lee & Kim 2021)."""
    return 1.0 / (k + 1.0)


def anchored_point(
    point: list[tf.Tensor], anchor: list[tf.Tensor], beta: tf.Tensor
) -> list[tf.Tensor]:
    """z_k + beta (z_0 - z_k), the pull towards the anchor z_0 of both half-steps."""
    return [z + tf.cast(beta, z.dtype) * (tf.convert_to_tensor(a) - z)
            for z, a in zip(point, anchor)]


class _Anchored(GameOptimizer):
    """Both half-steps start from z_k + beta_k (z_0 - z_k) and are steps of the inner optimizer.

    Subclasses define the anchor weight and the two directions.
    """

    def build(self, var_list: list) -> None:
        """Build the inner optimizer and one anchor slot z_0 per variable."""
        if self.built:
            return
        super().build(var_list)
        self._anchors = self.add_optimizer_variables(var_list, "anchor")

    @property
    def iterations(self):
        """Game steps taken: k, the index of the anchor weight beta_k."""
        return self._iterations

    def anchor_weight(self, k: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError

    def _extrapolation(self, f_start, beta):
        """The direction the inner optimizer takes from the anchored point to z_{k+1/2}."""
        raise NotImplementedError

    def _update(self, f_start, f_half, beta):
        """The direction the inner optimizer takes from the anchored point to z_{k+1}."""
        raise NotImplementedError

    def apply_game(self, game: Game) -> StepResult:
        """Anchor, extrapolate, re-evaluate, anchor again and step (two evaluations)."""
        bind_players(self.inner_optimizer, game.players)
        if not self.built:
            self.build(game.variables)
        variables = game.variables
        saved = [products.read_value(v) for v in variables]
        anchors = [self._anchors[self._get_variable_index(v)] for v in variables]
        first = tf.equal(self._iterations, 0)
        with tf.control_dependencies(saved):
            for anchor, value in zip(anchors, saved):  # z_0, taken at the first step
                anchor.assign(tf.where(first, value, tf.convert_to_tensor(anchor)))
            losses, f_start = game.gradient()
        reported = dict(game.last_losses)
        k = tf.cast(self._iterations, tf.float64)
        beta = self.anchor_weight(k)
        base = anchored_point(saved, anchors, beta)
        with tf.control_dependencies(f_start + list(losses.values())):
            for variable, value in zip(variables, base):
                variable.assign(value)
        apply_after(self.inner_optimizer, self._extrapolation(f_start, beta),
                    variables)
        half_losses, f_half = game.gradient()
        with tf.control_dependencies(f_half + list(half_losses.values())):
            for variable, value in zip(variables, base):
                variable.assign(value)
        apply_after(self.inner_optimizer, self._update(f_start, f_half, beta),
                    variables, half_losses)
        self._iterations.assign_add(1)
        return StepResult(reported, {})


@keras.saving.register_keras_serializable(package="tfgames")
class ExtraAnchoredGradient(_Anchored):
    """Extra anchored gradient (EAG-C): extragradient pulled towards the starting point.

        z_{k+1/2} = z_k + beta_k (z_0 - z_k) - alpha F(z_k),
        z_{k+1}   = z_k + beta_k (z_0 - z_k) - alpha F(z_{k+1/2}),     beta_k = 1 / (k + 2),

    F = xi is the simultaneous gradient, z_0 the parameters at the first step (the anchor,
    an optimizer variable saved with the model), alpha the inner optimizer's learning rate,
    k = :attr:`iterations` (0 at the first step). For monotone L-Lipschitz F and alpha <=
    1 / (8 L), ||F(z_k)||^2 <= 260 L^2 ||z_0 - z*||^2 / (k + 1)^2: O(1/k^2) on the squared
    operator norm, where extragradient has O(1/k) (Yoon & Ryu 2021, Theorem 1).

    The anchor pull is applied to the parameters before each half-step, and the half-step
    is a step of ``inner_optimizer`` on F: with ``keras.optimizers.SGD(alpha)`` this is the
    paper's EAG-C; with another inner optimizer (e.g. Adam) the pull stays decoupled from it,
    as weight decay is in AdamW. Gradient evaluations per step: 2. The losses reported are
    those at z_k.

    Args:
      inner_optimizer: the optimizer of both half-steps (``SGD(alpha)`` for the paper's
        method), or a simultaneous :class:`tfgames.PerPlayer`.
      name: the optimizer's name.

    References:
      Yoon, Ryu. Accelerated Algorithms for Smooth Convex-Concave Minimax Problems with
      O(1/k^2) Rate on Squared Gradient Norm. ICML 2021.

    Example:
      >>> import keras, tfgames
      >>> from tfgames.optimizers.anchored import ExtraAnchoredGradient
      >>> model = tfgames.games.Bilinear()  # f = x * y from (1, 1)
      >>> model.compile(optimizer=ExtraAnchoredGradient(keras.optimizers.SGD(0.1)))
      >>> _ = model.fit(tfgames.datasets.step_dataset(300), verbose=0)
      >>> round(model.distance_to_equilibrium(), 3)  # from sqrt(2); gradient descent: 6.29
      0.044
    """

    def __init__(
        self, inner_optimizer: keras.optimizers.Optimizer, *, name: str = "eag", **kwargs: Any
    ) -> None:
        super().__init__(inner_optimizer, name=name, **kwargs)

    def anchor_weight(self, k: tf.Tensor) -> tf.Tensor:
        return eag_anchor_weight(k)

    def _extrapolation(self, f_start, beta):
        return f_start

    def _update(self, f_start, f_half, beta):
        return f_half


@keras.saving.register_keras_serializable(package="tfgames")
class FastExtragradient(_Anchored):
    """Fast extragradient (FEG): anchored, two-time-scale extragradient.

        z_{k+1/2} = z_k + beta_k (z_0 - z_k) - (1 - beta_k) (alpha + 2 rho) F(z_k),
        z_{k+1}   = z_k + beta_k (z_0 - z_k) - alpha F(z_{k+1/2}) - (1 - beta_k) 2 rho F(z_k),
        beta_k = 1 / (k + 1),

    (Lee & Kim 2021, Algorithm 1), F = xi, z_0 the parameters at the first step (the anchor,
    saved with the model), alpha = the inner optimizer's learning rate (1/L in the paper),
    rho = ``rho``, k = :attr:`iterations` (0 at the first step: beta_0 = 1, so z_{1/2} = z_0).
    For L-Lipschitz, rho-comonotone F with rho > -1/(2L) (rho = 0: monotone; rho < 0:
    negatively comonotone, a nonconvex-nonconcave class), ||F(z_k)||^2 <= 4 ||z_0 - z*||^2 /
    ((1/L + 2 rho)^2 k^2) (their Theorem 4.1; exact on f = L x y from (1, 0), where
    z_{4l+2} = (0, 1/(2l+1))).

    The half-steps are steps of ``inner_optimizer`` on (1 - beta_k)(1 + 2 rho / alpha) F(z_k)
    and on F(z_{k+1/2}) + (1 - beta_k)(2 rho / alpha) F(z_k), taken from the anchored point:
    with ``keras.optimizers.SGD(alpha)`` these are the equations above; with another inner
    optimizer the anchor pull stays decoupled from it. Gradient evaluations per step: 2.

    Args:
      inner_optimizer: the optimizer of both half-steps (``SGD(1 / L)`` for the paper's
        method), or a simultaneous :class:`tfgames.PerPlayer` (then ``rho`` must be 0).
      rho: the comonotonicity parameter rho > -alpha / 2 (0 for monotone problems).
      name: the optimizer's name.

    References:
      Lee, Kim. Fast Extra Gradient Methods for Smooth Structured Nonconvex-Nonconcave
      Minimax Problems. NeurIPS 2021.

    Example:
      >>> import keras, tfgames
      >>> from tfgames.optimizers.anchored import FastExtragradient
      >>> model = tfgames.games.Bilinear()  # f = x * y from (1, 1), L = 1
      >>> model.compile(optimizer=FastExtragradient(keras.optimizers.SGD(0.5), rho=0.0))
      >>> _ = model.fit(tfgames.datasets.step_dataset(300), verbose=0)
      >>> round(model.distance_to_equilibrium(), 3)  # from sqrt(2); gradient descent: 6.29
      0.009
    """

    def __init__(
        self,
        inner_optimizer: keras.optimizers.Optimizer,
        *,
        rho: float = 0.0,
        name: str = "feg",
        **kwargs: Any,
    ) -> None:
        real = as_real(rho)
        if real is None:
            raise ValueError(f"Argument `rho` must be a finite number. Received: rho={rho!r}.")
        rho = real
        if rho != 0.0:
            lr = getattr(inner_optimizer, "learning_rate", None)
            if isinstance(inner_optimizer, PerPlayer) or not isinstance(lr, keras.Variable):
                raise ValueError(
                    "FastExtragradient with rho != 0 divides by the inner learning rate alpha, "
                    "so the inner optimizer needs one constant learning rate (not a schedule "
                    f"or a PerPlayer container). Received: rho={rho}, inner optimizer "
                    f"{type(inner_optimizer).__name__}."
                )
            alpha = float(np.asarray(lr.numpy()))
            if rho <= -alpha / 2:
                raise ValueError(
                    "Argument `rho` must be > -alpha / 2 (FEG converges for rho-comonotone "
                    f"operators with rho > -1/(2L), alpha = 1/L). Received: rho={rho} with "
                    f"alpha={alpha}. Lower |rho| or raise the learning rate."
                )
        super().__init__(inner_optimizer, name=name, **kwargs)
        self.rho = rho

    def anchor_weight(self, k: tf.Tensor) -> tf.Tensor:
        return feg_anchor_weight(k)

    def _rho_over_alpha(self) -> tf.Tensor:
        learning_rate = tf.convert_to_tensor(self.inner_optimizer.learning_rate)
        return self.rho / tf.cast(learning_rate, tf.float64)

    def _extrapolation(self, f_start, beta):
        scale = 1.0 - beta
        if self.rho != 0.0:
            scale = scale * (1.0 + 2.0 * self._rho_over_alpha())
        return [tf.cast(scale, f.dtype) * f for f in f_start]

    def _update(self, f_start, f_half, beta):
        if self.rho == 0.0:
            return f_half
        scale = (1.0 - beta) * 2.0 * self._rho_over_alpha()
        return [h + tf.cast(scale, f.dtype) * f for f, h in zip(f_start, f_half)]

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(rho=self.rho)
        return config

