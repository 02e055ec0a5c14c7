"""Symplectic gradient adjustment (SGA)."""

from __future__ import annotations

from typing import Any, Literal

import keras
import numpy as np
import tensorflow as tf

from tfgames import products
from tfgames.game import Game
from tfgames.optimizers.base import GameOptimizer, all_reduce_sum, num_replicas

__all__ = ["NORMALIZERS", "SGA", "sga_adjustment"]

NORMALIZERS = ("scalars", "tensors")


def sga_adjustment(
    xi: list[tf.Tensor],
    hv: list[tf.Tensor],
    htv: list[tf.Tensor],
    *,
    lambda_: float,
    use_signs: bool,
    epsilon: float,
    normalizer: float,
) -> tuple[list[tf.Tensor], tf.Tensor]:
    """Twice the antisymmetric product, 2 A^T xi, and the aligned lambda of SGA.

        2 A^T xi = H^T xi - H xi,
        lambda = sign(<xi, H^T xi> <A^T xi, H^T xi> / normalizer + epsilon) * |lambda_0|

    (without alignment, lambda = lambda_0). Balduzzi et al. 2018, Letcher et al. 2019.

    The factor 1/2 of A^T xi = (H^T xi - H xi) / 2 is left to the caller, who folds it into a
    scalar (dir = xi + (lambda / 2) (2 A^T xi), ||A^T xi|| = ||2 A^T xi|| / 2) instead of
    scaling every tensor: one elementwise pass over the parameters fewer per step.

    Args:
      xi: the simultaneous gradient.
      hv: H xi.
      htv: H^T xi.
      lambda_: lambda_0.
      use_signs: apply sign alignment.
      epsilon: the alignment threshold epsilon.
      normalizer: d, the number of scalars (paper) or of variable tensors (seed/DeepMind).

    Returns:
      ``(2 A^T xi, lambda)``.
    """
    twice_at_xi = [ht - h for ht, h in zip(htv, hv)]
    if use_signs:
        mult = products.dot(xi, htv) * products.dot(twice_at_xi, htv)
        lam = tf.sign(mult / (2.0 * normalizer) + epsilon) * abs(lambda_)
    else:
        lam = tf.constant(lambda_, tf.float32)
    return twice_at_xi, lam


@keras.saving.register_keras_serializable(package="tfgames")
class SGA(GameOptimizer):
    """Symplectic gradient adjustment: w <- w - eta * inner(xi + lambda A^T xi).

        dir = xi + lambda * A^T xi,      A^T xi = (H^T xi - H xi) / 2,
        lambda = sign(<xi, H^T xi> <A^T xi, H^T xi> / d + epsilon) * |lambda_0|  (alignment)

    xi is the simultaneous gradient, H = d xi / d w the game Jacobian, A its antisymmetric part
    (:mod:`tfgames.products`). The direction is handed to ``inner_optimizer``, which applies
    its own update rule (the seed wraps RMSProp). ``lambda_`` is lambda_0; ``use_signs`` turns
    alignment on; ``epsilon`` is its threshold; d is the number of scalar parameters
    (``normalizer="scalars"``, the paper's formula) or of variable tensors
    (``normalizer="tensors"``, the DeepMind reference code and the seed; see
    :class:`tfgames.compat.v1.SymplecticOptimizer`). With ``lambda_=0`` the update is exactly
    the inner optimizer's step on xi.

    H xi is computed in forward mode (``hvp_mode="forward"``, a
    ``tf.autodiff.ForwardAccumulator``; a second forward pass at the same parameter tensors,
    whose primal part ``tf.function`` computes only once) or by the double-backward trick
    (``hvp_mode="double_backward"``, one forward pass and three backward passes), for layers
    that forward mode does not support. H^T xi is reverse-over-reverse.

    Under ``tf.distribute``, xi is all-reduced first and the products use the global xi; the
    direction is exact for the global batch.

    Reported diagnostics: ``sga_lambda`` (lambda, whose sign is the alignment), ``xi_norm``
    (||xi||) and ``at_xi_norm`` (||A^T xi||).

    Args:
      inner_optimizer: Keras optimizer applying the adjusted direction, e.g.
        ``keras.optimizers.RMSprop(1e-4)``.
      lambda_: lambda_0 >= 0, the strength of the adjustment.
      use_signs: sign alignment (on by default).
      epsilon: alignment threshold, > 0.
      normalizer: ``"scalars"`` (default) or ``"tensors"``.
      hvp_mode: ``"forward"`` (default) or ``"double_backward"``.
      name: the optimizer's name.

    References:
      Balduzzi, Racaniere, Martens, Foerster, Tuyls, Graepel. The Mechanics of n-Player
      Differentiable Games. ICML 2018. Letcher, Balduzzi, Racaniere, Martens, Foerster, Tuyls,
      Graepel. Differentiable Game Mechanics. JMLR 20(84), 2019.

    Example:
      >>> import keras, tfgames
      >>> opt = tfgames.SGA(keras.optimizers.RMSprop(1e-4), lambda_=1.0)
    """

    diagnostic_names = ("sga_lambda", "xi_norm", "at_xi_norm")

    def __init__(
        self,
        inner_optimizer: keras.optimizers.Optimizer,
        lambda_: float = 1.0,
        use_signs: bool = True,
        epsilon: float = 0.1,
        normalizer: Literal["scalars", "tensors"] = "scalars",
        hvp_mode: Literal["forward", "double_backward"] = "forward",
        name: str = "sga",
        **kwargs,
    ) -> None:
        if not isinstance(lambda_, (int, float)) or lambda_ < 0:
            raise ValueError(
                "Argument `lambda_` must be a number >= 0 (its sign is set by alignment). "
                f"Received: lambda_={lambda_!r}."
            )
        if not isinstance(epsilon, (int, float)) or epsilon <= 0:
            raise ValueError(f"Argument `epsilon` must be > 0. Received: epsilon={epsilon!r}.")
        if normalizer not in NORMALIZERS:
            raise ValueError(
                f"Argument `normalizer` must be one of {NORMALIZERS}. "
                f"Received: normalizer={normalizer!r}."
            )
        if hvp_mode not in products.HVP_MODES:
            raise ValueError(
                f"Argument `hvp_mode` must be one of {products.HVP_MODES}. "
                f"Received: hvp_mode={hvp_mode!r}."
            )
        super().__init__(inner_optimizer, name=name, **kwargs)
        self.lambda_ = float(lambda_)
        self.use_signs = bool(use_signs)
        self.epsilon = float(epsilon)
        self.normalizer = normalizer
        self.hvp_mode = hvp_mode

    def direction(self, game: Game):
        if self.lambda_ == 0.0:
            losses, xi = game.gradient()
            zero = tf.zeros((), tf.float32)
            return losses, xi, {"sga_lambda": zero, "xi_norm": products.norm(xi),
                                "at_xi_norm": zero}
        p = game.products(None, hv=True, htv=True, mode=self.hvp_mode, vector_fn=all_reduce_sum)
        # p.vector is the global xi; p.hv and p.htv are this replica's share of H xi, H^T xi.
        hv, htv = all_reduce_sum(p.hv), all_reduce_sum(p.htv)
        if self.normalizer == "scalars":
            d = float(sum(int(np.prod(v.shape)) for v in game.variables))
        else:
            d = float(len(game.variables))
        twice_at_xi, lam = sga_adjustment(
            p.vector, hv, htv,
            lambda_=self.lambda_, use_signs=self.use_signs, epsilon=self.epsilon, normalizer=d,
        )
        scale = lam * (0.5 / num_replicas())  # lambda A^T xi, this replica's share
        direction = [x + tf.cast(scale, x.dtype) * a for x, a in zip(p.xi, twice_at_xi)]
        diagnostics = {
            "sga_lambda": tf.cast(lam, tf.float32),
            "xi_norm": products.norm(p.vector),
            "at_xi_norm": 0.5 * products.norm(twice_at_xi),
        }
        return p.losses, direction, diagnostics

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            lambda_=self.lambda_,
            use_signs=self.use_signs,
            epsilon=self.epsilon,
            normalizer=self.normalizer,
            hvp_mode=self.hvp_mode,
        )
        return config
