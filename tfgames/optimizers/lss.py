"""Local symmetrized (Newton-type) dynamics, LSS."""

from __future__ import annotations

from typing import Any, Literal

import keras
import tensorflow as tf

from tfgames import products, solvers
from tfgames.game import Game
from tfgames.optimizers import _blocks
from tfgames.optimizers.base import GameOptimizer, num_replicas

__all__ = ["LSS", "REGULARIZE", "SOLVERS"]

REGULARIZE = ("auto", "always", "never")
SOLVERS = ("gmres", "bicgstab")


@keras.saving.register_keras_serializable(package="tfgames")
class LSS(GameOptimizer):
    """Local symmetric surrogate dynamics: w <- w - eta * inner((xi + H^T H^{-1} xi) / 2).

        dir = (xi + H^T u) / 2,   u = H^{-1} xi                    (H invertible),
        u = (H^T H + lambda I)^{-1} H^T xi                         (regularised)

    H is the game Jacobian. Near a fixed point w*, xi ~ H (w - w*), so H^T H^{-1} xi ~ H^T (w -
    w*) and dir ~ S (w - w*) with S = (H + H^T) / 2: the dynamics follow the symmetric part of
    H, which keeps stable fixed points attracting and makes the others repelling (Mazumdar,
    Jordan & Sastry 2019). u is computed matrix-free: H^{-1} xi by GMRES (one H v product per
    iteration; or BiCGSTAB, ``solver="bicgstab"``, two), the regularised form by conjugate
    gradients on H^T H + lambda I (one H v and one H^T v per iteration). The reference
    notebook (Letcher et al.) inverts H and switches to the regularised form when det H = 0; a
    matrix-free solver cannot see the determinant, so ``regularize="auto"`` (default) uses the
    regularised form when GMRES does not reach the tolerance within ``max_iterations`` (a
    singular or badly conditioned H), ``"always"``/``"never"`` fix the choice.

    The losses are evaluated once per step (:func:`tfgames.products.game_linearization`): xi,
    every H^T v (reverse-over-reverse through the recorded evaluation) and, with
    ``hvp_mode="double_backward"`` (default), every H v the solvers ask for (the
    double-backward trick through the recorded map u -> H^T u) come from that one evaluation.
    ``hvp_mode="forward"`` computes each H v by forward-over-reverse instead, one new
    evaluation of the losses per product (more executed matrix products and a slower step on
    the GANs measured in ``docs/optimizers/opponent-shaping-and-cgd.md``). Under
    ``tf.distribute`` xi is all-reduced before any product.

    Cost per step: one evaluation of the losses and k + 1 Hessian-vector products (GMRES, k
    iterations), 2k + 2 for the regularised solve; with ``"auto"`` both when GMRES fails.

    Reported diagnostics: ``xi_norm``, ``direction_norm``, ``solver_iterations``,
    ``solver_residual``, ``regularized`` (1 when the regularised form was used) and
    ``hessian_products``.

    Args:
      inner_optimizer: Keras optimizer applying the direction.
      lambda_: lambda > 0 of the regularised inverse (0.1 in the reference notebook).
      regularize: ``"auto"``, ``"always"`` or ``"never"``.
      tol: relative residual tolerance of the solvers.
      max_iterations: the cap on iterations of each solve.
      solver: ``"gmres"`` (one H v per iteration) or ``"bicgstab"`` (two per iteration, memory
        independent of ``max_iterations``; :func:`tfgames.solvers.bicgstab`) for H u = xi.
      hvp_mode: ``"double_backward"`` (H v through the step's one evaluation) or
        ``"forward"`` (H v by forward mode, one evaluation of the losses per product).
      name: the optimizer's name.

    References:
      Mazumdar, Jordan, Sastry. On Finding Local Nash Equilibria (and Only Local Nash
      Equilibria) in Zero-Sum Games. arXiv:1901.00838, 2019.
    """

    diagnostic_names = ("xi_norm", "direction_norm", "solver_iterations", "solver_residual",
                        "regularized", "hessian_products")

    def __init__(self, inner_optimizer: keras.optimizers.Optimizer, *, lambda_: float = 0.1,
                 regularize: Literal["auto", "always", "never"] = "auto", tol: float = 1e-6,
                 max_iterations: int = 20, solver: Literal["gmres", "bicgstab"] = "gmres",
                 hvp_mode: Literal["forward", "double_backward"] = "double_backward",
                 name: str | None = None, **kwargs) -> None:
        lambda_ = _blocks.check_number("lambda_", lambda_)
        if regularize not in REGULARIZE:
            raise ValueError(f"Argument `regularize` must be one of {REGULARIZE}. "
                             f"Received: regularize={regularize!r}.")
        if hvp_mode not in products.HVP_MODES:
            raise ValueError(f"Argument `hvp_mode` must be one of {products.HVP_MODES}. "
                             f"Received: hvp_mode={hvp_mode!r}.")
        if solver not in SOLVERS:
            raise ValueError(f"Argument `solver` must be one of {SOLVERS} (the solver of "
                             "H u = xi; the regularised form always uses conjugate "
                             "gradients). "
                             f"Received: solver={solver!r}.")
        tol = _blocks.check_number("tol", tol, strict=False)
        max_iterations = _blocks.check_iterations(max_iterations)
        super().__init__(inner_optimizer, name=name or "lss", **kwargs)
        self.lambda_, self.regularize, self.tol = lambda_, regularize, tol
        self.max_iterations, self.hvp_mode, self.solver = max_iterations, hvp_mode, solver

    def _products(self, game: Game):
        """The step's one evaluation (xi, H^T v) and the H v product the solvers use."""
        shared = self.hvp_mode == "double_backward"
        lin = _blocks.Linearization(game, jacobian=shared)
        hv = lin.hv if shared else (lambda v: _blocks.full_hv(game, v, "forward"))
        return lin, hv

    def _plain(self, lin, hv, xi):
        solve = solvers.gmres if self.solver == "gmres" else solvers.bicgstab
        result = solve(hv, xi, tol=self.tol, max_iterations=self.max_iterations,
                       unroll=num_replicas() > 1)
        return result.x, result, result.products

    def _regularized(self, lin, hv, xi):
        def normal(v):
            htv = lin.htv(hv(v))
            return [h + tf.cast(self.lambda_, x.dtype) * x for h, x in zip(htv, v)]

        rhs = lin.htv(xi)
        result = solvers.conjugate_gradient(normal, rhs, tol=self.tol,
                                            max_iterations=self.max_iterations,
                                            unroll=num_replicas() > 1)
        return result.x, result, 1 + 2 * result.products

    def direction(self, game: Game):
        lin, hv = self._products(game)
        losses, xi = lin.losses, lin.xi  # xi global (all-reduced) before any product
        reported = game.last_losses
        if self.regularize == "never":
            u, result, count = self._plain(lin, hv, xi)
            used = tf.constant(0.0)
        elif self.regularize == "always":
            u, result, count = self._regularized(lin, hv, xi)
            used = tf.constant(1.0)
        else:
            u0, r0, c0 = self._plain(lin, hv, xi)
            fallback = tf.logical_not(tf.logical_and(
                r0.converged, tf.reduce_all([tf.reduce_all(tf.math.is_finite(x)) for x in u0])))

            def regularized():
                u1, r1, c1 = self._regularized(lin, hv, xi)
                return u1, r1.iterations, r1.residual_norm, c0 + c1

            def plain():
                return u0, r0.iterations, r0.residual_norm, c0

            if num_replicas() > 1:  # no all-reduce inside tf.cond: compute both, select
                both = [regularized(), plain()]
                u = [tf.where(fallback, a, b) for a, b in zip(both[0][0], both[1][0])]
                iterations, residual, count = (
                    tf.where(fallback, a, b) for a, b in zip(both[0][1:], both[1][1:]))
            else:
                u, iterations, residual, count = tf.cond(fallback, regularized, plain)
            result = solvers.SolveResult(u, iterations, count, residual, tf.constant(True))
            used = tf.cast(fallback, tf.float32)
        htu = lin.htv(u)
        game.last_losses = reported  # not those of forward-mode evaluations inside the loop
        direction = [0.5 * (x + h) for x, h in zip(xi, htu)]
        share = 1.0 / num_replicas()
        out = [d * tf.cast(share, d.dtype) for d in direction]
        diagnostics = {
            "xi_norm": products.norm(xi), "direction_norm": products.norm(direction),
            "solver_iterations": tf.cast(result.iterations, tf.float32),
            "solver_residual": tf.cast(result.residual_norm, tf.float32),
            "regularized": used, "hessian_products": tf.cast(count + 1, tf.float32),
        }
        return losses, out, diagnostics

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "lambda_": self.lambda_, "regularize": self.regularize,
                "tol": self.tol, "max_iterations": self.max_iterations,
                "solver": self.solver, "hvp_mode": self.hvp_mode}
