"""Consensus optimization."""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from tfgames import products
from tfgames.game import Game
from tfgames.optimizers.base import (
    GameOptimizer,
    all_reduce_sum,
    as_real,
    num_replicas,
    positional_hyperparameters,
)

__all__ = ["Consensus"]


@keras.saving.register_keras_serializable(package="tfgames")
class Consensus(GameOptimizer):
    """Consensus optimization: w <- w - eta * inner(xi + gamma H^T xi).

        dir = xi + gamma * H^T xi = grad( L_i + gamma * 0.5 ||xi||^2 )  (player-wise)

    H^T xi is the gradient of the Hamiltonian 0.5 ||xi||^2 (reverse-over-reverse,
    :mod:`tfgames.products`); ``gamma`` is the consensus weight (10 in the paper's experiments,
    with RMSProp 1e-4 as ``inner_optimizer``). With ``gamma=0`` the update is the inner
    optimizer's step on xi. Under ``tf.distribute`` the product uses the all-reduced xi.

    Reported diagnostics: ``xi_norm`` (||xi||) and ``htxi_norm`` (||H^T xi||).

    Args:
      inner_optimizer: Keras optimizer applying the direction.
      gamma: gamma >= 0, the weight of the Hamiltonian's gradient.
      name: the optimizer's name; ``None`` derives one from the class name.
      **kwargs: Keras' base optimizer arguments are refused: set them on the inner optimizer.

    References:
      Mescheder, Nowozin, Geiger. The Numerics of GANs. NeurIPS 2017.
    """

    diagnostic_names = ("xi_norm", "htxi_norm")

    def __init__(
        self,
        inner_optimizer: keras.optimizers.Optimizer,
        *args: Any,
        gamma: float = 10.0,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        # Keyword-only since 0.2; 0.1's positional order still works, with a warning.
        given = positional_hyperparameters(
            "Consensus", args, ("gamma", "name"), {"gamma": gamma, "name": name},
            {"gamma": 10.0, "name": None},
        )
        gamma, name = given["gamma"], given["name"]
        if as_real(gamma) is None or as_real(gamma) < 0:
            raise ValueError(
                f"Argument `gamma` must be a number >= 0. Received: gamma={gamma!r}. Pass a "
                "finite number (Python or NumPy), e.g. gamma=10.0."
            )
        super().__init__(inner_optimizer, name=name, **kwargs)
        self.gamma = float(gamma)

    def direction(self, game: Game):
        p = game.products(None, hv=False, htv=True, vector_fn=all_reduce_sum)
        htv = all_reduce_sum(p.htv)
        share = self.gamma / num_replicas()
        direction = [x + tf.constant(share, x.dtype) * h for x, h in zip(p.xi, htv)]
        diagnostics = {
            "xi_norm": products.norm(p.vector),
            "htxi_norm": products.norm(htv),
        }
        return p.losses, direction, diagnostics

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(gamma=self.gamma)
        return config
