"""LEAD: least-action dynamics for min-max games."""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from tfgames import products
from tfgames.game import Game
from tfgames.optimizers import _blocks
from tfgames.optimizers.base import GameOptimizer, all_reduce_sum, num_replicas

__all__ = ["LEAD"]


@keras.saving.register_keras_serializable(package="tfgames")
class LEAD(GameOptimizer):
    """LEAD: w <- w - eta * inner(xi - alpha H_o^T (w_t - w_{t-1})), momentum in the inner one.

        dir_i = xi_i - alpha grad_i sum_{j != i} <xi_j, w_j,t - w_j,t-1>
              = xi_i - alpha sum_{j != i} (grad_i xi_j)^T Delta w_j

    Each player's gradient is corrected through the mixed second derivative of the other
    players' losses applied to their last step (a reverse-mode product restricted to the
    paths between players, through the same evaluation of the losses as xi:
    :func:`tfgames.products.off_diagonal_products`), as in the authors' code
    (ReyhaneAskari/Least_action_dynamics_minmax, ``sLead_Adam``: ``grad - alpha * vjp`` with
    ``vjp = autograd.grad(grad_other, params, grad_outputs=delta_other)``). For a zero-sum game
    (grad_i xi_j)^T = -H_ij and dir = xi + alpha H_o Delta w, the paper's coupling term
    (Askari Hemmat et al. 2023, Eq. 9) with the paper's alpha = eta * alpha here. The
    momentum of LEAD comes from the inner optimizer: heavy ball
    ``keras.optimizers.SGD(eta, momentum=beta)`` is the paper's update
    w_{t+1} = w_t + beta (w_t - w_{t-1}) - eta dir_t; the authors' GAN experiments use
    ``keras.optimizers.Adam(3e-4, beta_1=0.5, beta_2=0.9)`` with alpha = 0.6 (8 Gaussians;
    the discriminator's beta_1 is 0.55 there). Their code updates the players alternately;
    this update is simultaneous. The previous parameters w_{t-1} are optimizer variables
    (w_{-1} = w_0: the first step is the inner optimizer's step on xi), so training resumes
    exactly.

    Cost per step: one evaluation of the losses, xi and the restricted product H_o^T Delta w
    (reported as n Hessian-vector products, n players: one per off-diagonal block row).

    Reported diagnostics: ``xi_norm``, ``coupling_norm`` (||H_o^T Delta w||) and
    ``hessian_products``.

    Args:
      inner_optimizer: Keras optimizer applying the direction (its momentum is LEAD's).
      alpha: the coupling coefficient, >= 0 (0 gives the inner optimizer on xi).
      name: the optimizer's name.

    References:
      Askari Hemmat, Mitra, Lajoie, Mitliagkas. LEAD: Min-Max Optimization from a Physical
      Perspective. TMLR 2023.
    """

    diagnostic_names = ("xi_norm", "coupling_norm", "hessian_products")

    def __init__(self, inner_optimizer: keras.optimizers.Optimizer, *, alpha: float = 0.6,
                 name: str | None = None, **kwargs) -> None:
        alpha = _blocks.check_number("alpha", alpha, strict=False)
        super().__init__(inner_optimizer, name=name or "lead", **kwargs)
        self.alpha = alpha

    def build(self, var_list: list) -> None:
        if self.built:
            return
        super().build(var_list)
        self._previous = [self.add_variable_from_reference(v, name="previous")
                          for v in var_list]

    def direction(self, game: Game):
        slots = [self._previous[self._get_variable_index(v)] for v in game.variables]
        current = [products.read_value(v) for v in game.variables]
        first = tf.equal(self.iterations, 0)
        delta = [tf.where(first, tf.zeros_like(w), w - tf.convert_to_tensor(s))
                 for w, s in zip(current, slots)]
        # xi and H_o^T Delta w from one evaluation of the losses (Delta w is known before it)
        p = _blocks.off_diagonal_products(game, delta, hv=False)
        losses, xi, coupling = p.losses, all_reduce_sum(p.xi), p.ho_t_v
        direction = [x - tf.cast(self.alpha, x.dtype) * c for x, c in zip(xi, coupling)]
        updates = [s.assign(w) for s, w in zip(slots, current)]
        with tf.control_dependencies(updates):
            out = [tf.identity(d) * tf.cast(1.0 / num_replicas(), d.dtype) for d in direction]
        diagnostics = {"xi_norm": products.norm(xi), "coupling_norm": products.norm(coupling),
                       "hessian_products": _blocks.count(len(game.players))}
        return losses, out, diagnostics

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "alpha": self.alpha}
