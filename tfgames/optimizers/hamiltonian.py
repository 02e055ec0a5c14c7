"""Hamiltonian gradient descent."""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from tfgames import products
from tfgames.game import Game
from tfgames.optimizers import _blocks
from tfgames.optimizers.base import GameOptimizer, all_reduce_sum, num_replicas

__all__ = ["HamiltonianGD"]


@keras.saving.register_keras_serializable(package="tfgames")
class HamiltonianGD(GameOptimizer):
    """Hamiltonian gradient descent: w <- w - eta * inner(H^T xi).

        dir = H^T xi = grad_w (0.5 ||xi||^2)

    Every player descends the Hamiltonian 0.5 ||xi||^2 (Abernethy, Lai & Wibisono 2019), whose
    minima include every fixed point of the game; H^T xi is one reverse-over-reverse product
    (:mod:`tfgames.products`). ``two_sample=True`` is the unbiased stochastic estimator of
    Loizou et al. (2020): the two factors come from independent samples,
    dir = H(s_2)^T xi(s_1). Here the second sample is the game's noise drawn afresh
    (``Game.fresh_noise``); the data batch is shared, so the estimator is unbiased with
    respect to the noise of ``compute_losses`` (e.g. a generator's z), not the data.

    Cost per step: one Hessian-vector product (two evaluations of the losses with
    ``two_sample``).

    Reported diagnostics: ``xi_norm``, ``hamiltonian`` (0.5 ||xi||^2) and ``hessian_products``.

    Args:
      inner_optimizer: Keras optimizer applying the direction.
      two_sample: the two-sample (unbiased) estimator.
      name: the optimizer's name.

    References:
      Abernethy, Lai, Wibisono. Last-Iterate Convergence Rates for Min-Max Optimization.
      arXiv:1906.02027, 2019 (ALT 2021).
      Loizou, Berard, Jolicoeur-Martineau, Vincent, Lacoste-Julien, Mitliagkas. Stochastic
      Hamiltonian Gradient Methods for Smooth Games. ICML 2020.
    """

    diagnostic_names = ("xi_norm", "hamiltonian", "hessian_products")

    def __init__(self, inner_optimizer: keras.optimizers.Optimizer, *,
                 two_sample: bool = False, name: str | None = None, **kwargs) -> None:
        super().__init__(inner_optimizer, name=name or "hamiltonian_gd", **kwargs)
        self.two_sample = bool(two_sample)

    def direction(self, game: Game):
        if self.two_sample:
            game.check_exact()  # before the first evaluation (game.products checks too late)
            losses, xi = game.gradient()
            xi = all_reduce_sum(xi)
            game.fresh_noise()
            htv = _blocks.full_htv(game, xi)
        else:
            p = game.products(None, hv=False, htv=True, vector_fn=all_reduce_sum)
            losses, xi, htv = p.losses, p.vector, all_reduce_sum(p.htv)
        xi_norm = products.norm(xi)
        out = [h * tf.cast(1.0 / num_replicas(), h.dtype) for h in htv]
        diagnostics = {"xi_norm": xi_norm, "hamiltonian": 0.5 * tf.square(xi_norm),
                       "hessian_products": _blocks.count(1)}
        return losses, out, diagnostics

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "two_sample": self.two_sample}
