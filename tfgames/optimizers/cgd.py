"""Competitive gradient descent: CGD (two players), GACGD (n players, general sum) and ACGD.

All three solve, matrix-free, the linear system of the players' linearised (bilinear) local
game: each player i minimises l_i's first-order expansion plus the bilinear interaction
Delta_i^T H_ij Delta_j with the others' simultaneous steps, regularised by its step size:

    (I + eta H_o) Delta = -eta xi,       H_o = off-diagonal blocks of the game Jacobian.

With the step in the inner optimizer (w <- w - eta * dir) the direction is
dir = (I + alpha H_o)^{-1} xi with alpha = eta (Schaefer & Anandkumar 2019; the n-player form
of Letcher et al.'s reference notebooks). Every solver iteration is one or two products with
H_o or its blocks, all through the step's one evaluation of the losses
(:func:`tfgames.products.off_diagonal_linearization`: the losses are evaluated once, each
product is one backward pass through a recorded linear map); H is never formed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import keras
import numpy as np
import tensorflow as tf

from tfgames import products, solvers
from tfgames.game import Game
from tfgames.optimizers import _blocks
from tfgames.optimizers.base import GameOptimizer, num_replicas

__all__ = ["ACGD", "CGD", "GACGD"]

SOLVERS = ("cg", "gmres", "bicgstab")
Solver = Literal["cg", "gmres", "bicgstab"]


def _mixed(lin: _blocks.Linearization, target: int, source: int,
           vector_block: list[tf.Tensor]):
    """(grad_source xi_target) v_source: the product of one off-diagonal block H_ts with v,
    through the step's one evaluation of the losses (``lin``).
    """
    return lin.block_v(target, source, vector_block)


def _scale(xs, s):
    return [x * tf.cast(s, x.dtype) for x in xs]


class _Competitive(GameOptimizer):
    """Common arguments and state: solver settings, the warm-start slots and, for CGD and
    GACGD, the interaction step size alpha (ACGD has none: its steps are adaptive).
    """

    def __init__(self, inner_optimizer, *, solver, tol, atol, max_iterations, warm_start,
                 name, alpha=None, **kwargs) -> None:
        if alpha is not None:
            alpha = _blocks.check_number("alpha", alpha)
        if solver not in SOLVERS:
            raise ValueError(f"Argument `solver` must be one of {SOLVERS}. Received: "
                             f"solver={solver!r}.")
        tol = _blocks.check_number("tol", tol, strict=False)
        atol = _blocks.check_number("atol", atol, strict=False)
        max_iterations = _blocks.check_iterations(max_iterations)
        super().__init__(inner_optimizer, name=name, **kwargs)
        self.tol, self.atol, self.max_iterations = tol, atol, max_iterations
        self.solver = solver
        self.warm_start = bool(warm_start)
        self.alpha = alpha

    def build(self, var_list: list) -> None:
        if self.built:
            return
        super().build(var_list)
        self._warm = [self.add_variable_from_reference(v, name="warm_start") for v in var_list]

    def _solve(self, game: Game, operator, b, x0):
        solve = {"cg": solvers.conjugate_gradient, "gmres": solvers.gmres,
                 "bicgstab": solvers.bicgstab}[self.solver]
        reported = game.last_losses  # the losses of the evaluations inside the loop stay there
        result = solve(operator, b, x0, tol=self.tol, atol=self.atol,
                       max_iterations=self.max_iterations,
                       unroll=num_replicas() > 1)
        game.last_losses = reported
        return result

    def _warm_values(self, game: Game, start: int, stop: int):
        if not self.warm_start:
            return None
        return [tf.convert_to_tensor(self._warm[self._get_variable_index(v)])
                for v in game.variables[start:stop]]

    def _store_warm(self, game: Game, start: int, values) -> list:
        if not self.warm_start:
            return []
        return [self._warm[self._get_variable_index(v)].assign(x)
                for v, x in zip(game.variables[start:], values)]

    def _per_replica(self, direction, after: list) -> list:
        """The direction as each replica's share (divided by the number of replicas), once
        ``after`` (slot updates) has run.
        """
        with tf.control_dependencies(after):
            return [tf.identity(d) * tf.cast(1.0 / num_replicas(), d.dtype) for d in direction]

    def _diagnostics(self, xi, direction, result, count):
        return {
            "xi_norm": products.norm(xi),
            "direction_norm": products.norm(direction),
            "solver_iterations": tf.cast(result.iterations, tf.float32),
            "solver_residual": tf.cast(result.residual_norm, tf.float32),
            "solver_converged": tf.cast(result.converged, tf.float32),
            "hessian_products": tf.cast(count, tf.float32),
        }

    def get_config(self) -> dict[str, Any]:
        config = {**super().get_config(), "solver": self.solver, "tol": self.tol,
                  "atol": self.atol, "max_iterations": self.max_iterations,
                  "warm_start": self.warm_start}
        if self.alpha is not None:
            config["alpha"] = self.alpha
        return config


def _two_players(game: Game, who: str) -> tuple[int, int]:
    """(solved player p, other player q): p is the smaller player (the Schur complement on
    the smaller block has the smaller Krylov space).
    """
    if len(game.players) != 2:
        raise ValueError(
            f"{who} is defined for two players. Received a game with {len(game.players)} "
            f"players: {game.player_names}. Use tfgames.optimizers.cgd.GACGD for n players."
        )
    sizes = [sum(int(np.prod(v.shape)) for v in vs) for vs in game.players.values()]
    return (0, 1) if sizes[0] <= sizes[1] else (1, 0)


@keras.saving.register_keras_serializable(package="tfgames")
class CGD(_Competitive):
    """Competitive gradient descent for two players: w <- w - eta * inner(dir).

        dir = (I + alpha H_o)^{-1} xi, solved by the Schur complement on player p:
        (I - alpha^2 H_pq H_qp) dir_p = xi_p - alpha H_pq xi_q,
        dir_q = xi_q - alpha H_qp dir_p,

    H_pq = grad_q xi_p (an off-diagonal block of the game Jacobian). For a zero-sum game
    (l_q = -l_p) H_qp = -H_pq^T and the matrix is I + alpha^2 H_pq H_pq^T, symmetric positive
    definite: ``solver="cg"`` (conjugate gradients), which is Schaefer & Anandkumar's
    dx = -eta (I + eta^2 D_xy f D_yx f)^{-1} (grad_x f + eta D_xy f grad_y f) with alpha = eta and
    ``inner_optimizer=SGD(eta)``. For general-sum games use ``solver="gmres"`` (or
    ``"bicgstab"``: two products per iteration, memory independent of k). p is the player
    with fewer parameters. ``warm_start`` starts the solver from the previous step's dir_p
    (its residual b - A x0 is computed, one extra iteration's cost).

    Cost per step: one evaluation of the losses and 2 + 2k Hessian-vector products (k solver
    iterations; +2 with a warm start), each a product with one off-diagonal block through that
    evaluation.

    Reported diagnostics: ``xi_norm``, ``direction_norm``, ``solver_iterations``,
    ``solver_residual`` (||b - A x|| of the Schur system), ``solver_converged`` (1 or 0) and
    ``hessian_products``.

    Args:
      inner_optimizer: Keras optimizer applying the direction (``SGD(alpha)`` is the paper).
      alpha: the interaction step size in the local game (the paper's eta), > 0.
      solver: ``"cg"`` (zero-sum games), ``"gmres"`` or ``"bicgstab"`` (any two-player
        game; :func:`tfgames.solvers.bicgstab`).
      tol: relative residual tolerance of the solver.
      atol: absolute residual tolerance.
      max_iterations: the cap on solver iterations per step.
      warm_start: start the solver from the previous solution.
      name: the optimizer's name.

    References:
      Schaefer, Anandkumar. Competitive Gradient Descent. NeurIPS 2019.
    """

    diagnostic_names = ("xi_norm", "direction_norm", "solver_iterations", "solver_residual",
                        "solver_converged", "hessian_products")

    def __init__(self, inner_optimizer: keras.optimizers.Optimizer, *, alpha: float = 1.0,
                 solver: Solver = "cg", tol: float = 1e-6, atol: float = 0.0,
                 max_iterations: int = 10, warm_start: bool = True, name: str | None = None,
                 **kwargs) -> None:
        super().__init__(inner_optimizer, alpha=alpha, solver=solver, tol=tol, atol=atol,
                         max_iterations=max_iterations, warm_start=warm_start,
                         name=name or "cgd", **kwargs)

    def direction(self, game: Game):
        p, q = _two_players(game, "CGD")
        lin = _blocks.Linearization(game, blocks=[(p, q), (q, p)])
        losses, xi = lin.losses, lin.xi
        blocks = _blocks.player_blocks(game)
        (ps, pe), (qs, qe) = blocks[p][1:], blocks[q][1:]
        alpha = self.alpha
        b = [x - alpha * h for x, h in zip(xi[ps:pe], _mixed(lin, p, q, xi[qs:qe]))]

        def schur(u):
            h = _mixed(lin, p, q, _mixed(lin, q, p, u))
            return [x - alpha**2 * y for x, y in zip(u, h)]

        result = self._solve(game, schur, b, self._warm_values(game, ps, pe))
        d_p = result.x
        d_q = [x - alpha * h for x, h in zip(xi[qs:qe], _mixed(lin, q, p, d_p))]
        direction = d_p + d_q if p == 0 else d_q + d_p
        count = 2 + 2 * result.products
        out = self._per_replica(direction, self._store_warm(game, ps, d_p))
        return losses, out, self._diagnostics(xi, direction, result, count)


@keras.saving.register_keras_serializable(package="tfgames")
class GACGD(_Competitive):
    """General-sum, n-player competitive gradient descent: w <- w - eta * inner(dir).

        dir = (I + alpha H_o)^{-1} xi

    H_o holds the off-diagonal blocks grad_j xi_i (j != i) of the game Jacobian; the system is
    not symmetric, so it is solved by GMRES (``solver="gmres"``, default), matrix-free, one
    H_o product (through the step's one evaluation of the losses) per iteration, optionally
    warm-started from the previous step's direction. This is the update of Letcher et al.'s
    reference notebooks (where it is computed with a dense inverse) and the general-sum CGD of
    Schaefer & Anandkumar (2019) for n players.

    Cost per step: one evaluation of the losses and k (+1 with a warm start) H_o products,
    reported as n (k + 1) Hessian-vector products (n k without a warm start), k solver
    iterations, n players.

    Reported diagnostics: as :class:`CGD`.

    Args:
      inner_optimizer: Keras optimizer applying the direction.
      alpha: the interaction step size, > 0.
      solver: ``"gmres"`` (default), ``"bicgstab"`` or ``"cg"`` (only valid where
        I + alpha H_o is symmetric positive definite, which it is not for competitive games).
      tol: the solver's relative residual tolerance, as :class:`CGD`.
      atol: the solver's absolute residual tolerance, as :class:`CGD`.
      max_iterations: the solver's iteration cap k, as :class:`CGD`.
      warm_start: start the solver from the previous step's solution, as :class:`CGD`.
      name: the optimizer's name (default ``"gacgd"``).

    References:
      Schaefer, Anandkumar. Competitive Gradient Descent. NeurIPS 2019.
      Letcher, Foerster, Balduzzi, Rocktaschel, Whiteson. Stable Opponent Shaping in
      Differentiable Games. ICLR 2019 (reference notebook's CGD).
    """

    diagnostic_names = CGD.diagnostic_names

    def __init__(self, inner_optimizer: keras.optimizers.Optimizer, *, alpha: float = 1.0,
                 solver: Solver = "gmres", tol: float = 1e-6,
                 atol: float = 0.0, max_iterations: int = 10, warm_start: bool = True,
                 name: str | None = None, **kwargs) -> None:
        super().__init__(inner_optimizer, alpha=alpha, solver=solver, tol=tol, atol=atol,
                         max_iterations=max_iterations, warm_start=warm_start,
                         name=name or "gacgd", **kwargs)

    def direction(self, game: Game):
        lin = _blocks.Linearization(game, full=True)
        losses, xi = lin.losses, lin.xi

        def operator(v):
            return [x + self.alpha * h for x, h in zip(v, lin.ho_v(v))]

        result = self._solve(game, operator, xi, self._warm_values(game, 0, len(xi)))
        count = len(game.players) * result.products
        out = self._per_replica(result.x, self._store_warm(game, 0, result.x))
        return losses, out, self._diagnostics(xi, result.x, result, count)


@keras.saving.register_keras_serializable(package="tfgames")
class ACGD(_Competitive):
    """Adaptive competitive gradient descent (two players): RMSProp-style step sizes in CGD.

        v <- beta v + (1 - beta) xi^2,   eta = lr sqrt(1 - beta^t) / (sqrt(v) + epsilon),
        Delta = -(I + eta H_o)^{-1} eta xi,          w <- w + Delta,

    solved, as in devzhk/cgds-package's ``ACGD``, on the smaller player p with the symmetrised
    Schur complement (eta_p^{1/2} = diag(sqrt(eta_p))):

        (I - eta_p^{1/2} H_pq eta_q H_qp eta_p^{1/2}) z = -eta_p^{1/2} (xi_p - H_pq eta_q xi_q),
        Delta_p = eta_p^{1/2} z,      Delta_q = -eta_q (xi_q + H_qp Delta_p).

    For zero-sum games the matrix is symmetric positive definite (``solver="cg"``, the
    reference's choice); ``solver="gmres"`` handles general-sum games. The learning rate lr is
    that of the inner ``keras.optimizers.SGD(learning_rate)`` built here (a float or a Keras
    schedule), which applies w <- w - lr * (-Delta / lr). ``warm_start`` starts CG from the
    previous z (the reference's ``old_max``/``old_min``), with its residual b - A z0 computed
    (HyperGAN#255). The reference alternates the solved player between steps; here it is
    always the smaller one (same solution up to the solver tolerance).

    Cost per step: 2 + 2k Hessian-vector products (+2 with a warm start).

    Reported diagnostics: as :class:`CGD`.

    Args:
      learning_rate: lr, a float > 0 or a ``keras.optimizers.schedules.LearningRateSchedule``.
      beta: the decay of the squared-gradient average, in [0, 1).
      epsilon: added to sqrt(v), > 0.
      solver: ``"cg"`` (zero-sum, default), ``"gmres"`` or ``"bicgstab"``.
      tol: the solver's relative residual tolerance, as :class:`CGD` (the reference's tol is
        relative to ||b||^2; here to ||b||).
      atol: the solver's absolute residual tolerance, as :class:`CGD`.
      max_iterations: the solver's iteration cap k, as :class:`CGD`.
      warm_start: start the solver from the previous step's solution, as :class:`CGD`.
      name: the optimizer's name (default ``"acgd"``).

    References:
      Schaefer, Zheng, Anandkumar. Implicit Competitive Regularization in GANs. ICML 2020.
    """

    diagnostic_names = CGD.diagnostic_names

    def __init__(self, learning_rate: float | Any = 1e-3, *, beta: float = 0.99,
                 epsilon: float = 1e-5, solver: Solver = "cg",
                 tol: float = 1e-6, atol: float = 0.0, max_iterations: int = 10,
                 warm_start: bool = True, name: str | None = None, **kwargs) -> None:
        if not isinstance(learning_rate, keras.optimizers.schedules.LearningRateSchedule):
            learning_rate = _blocks.check_number(
                "learning_rate", learning_rate,
                hint="Pass a float or a keras.optimizers.schedules.LearningRateSchedule.")
        inner = keras.optimizers.SGD(learning_rate)
        beta = _blocks.check_number("beta", beta, strict=False)
        if beta >= 1.0:
            raise ValueError(f"Argument `beta` must be in [0, 1). Received: beta={beta!r}.")
        epsilon = _blocks.check_number("epsilon", epsilon)
        super().__init__(inner, solver=solver, tol=tol, atol=atol,
                         max_iterations=max_iterations, warm_start=warm_start,
                         name=name or "acgd", **kwargs)
        self.beta, self.epsilon = beta, epsilon
        self._learning_rate_argument = learning_rate

    def build(self, var_list: list) -> None:
        if self.built:
            return
        super().build(var_list)
        self._mean_square = [
            self.add_variable_from_reference(v, name="mean_square") for v in var_list
        ]

    def direction(self, game: Game):
        p, q = _two_players(game, "ACGD")
        lin = _blocks.Linearization(game, blocks=[(p, q), (q, p)])
        losses, xi = lin.losses, lin.xi
        t = tf.cast(self.iterations + 1, tf.float32)
        correction = tf.sqrt(1.0 - tf.pow(tf.constant(self.beta, tf.float32), t))
        lr = tf.cast(self.inner_optimizer.learning_rate, tf.float32)
        slots = [self._mean_square[self._get_variable_index(v)] for v in game.variables]
        mean_square = [self.beta * s + (1.0 - self.beta) * tf.square(x)
                       for s, x in zip(slots, xi)]
        eta = [lr * correction / (tf.sqrt(m) + self.epsilon) for m in mean_square]
        blocks = _blocks.player_blocks(game)
        (ps, pe), (qs, qe) = blocks[p][1:], blocks[q][1:]
        root_p = [tf.sqrt(e) for e in eta[ps:pe]]
        eta_q = eta[qs:qe]
        h_xi = _mixed(lin, p, q, [e * x for e, x in zip(eta_q, xi[qs:qe])])
        b = [-r * (x - h) for r, x, h in zip(root_p, xi[ps:pe], h_xi)]

        def schur(z):
            inner = _mixed(lin, q, p, [r * x for r, x in zip(root_p, z)])
            h = _mixed(lin, p, q, [e * x for e, x in zip(eta_q, inner)])
            return [x - r * y for x, r, y in zip(z, root_p, h)]

        result = self._solve(game, schur, b, self._warm_values(game, ps, pe))
        delta_p = [r * z for r, z in zip(root_p, result.x)]
        h_delta = _mixed(lin, q, p, delta_p)
        delta_q = [-e * (x + h) for e, x, h in zip(eta_q, xi[qs:qe], h_delta)]
        delta = delta_p + delta_q if p == 0 else delta_q + delta_p
        direction = [-d / lr for d in delta]
        updates = [s.assign(m) for s, m in zip(slots, mean_square)]
        updates += self._store_warm(game, ps, result.x)
        out = self._per_replica(direction, updates)
        return losses, out, self._diagnostics(xi, direction, result, 2 + 2 * result.products)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.pop("inner_optimizer")
        lr = self._learning_rate_argument
        if isinstance(lr, keras.optimizers.schedules.LearningRateSchedule):
            lr = keras.saving.serialize_keras_object(lr)
        return {**config, "learning_rate": lr, "beta": self.beta, "epsilon": self.epsilon}

    @classmethod
    def from_config(cls, config: Mapping[str, Any], custom_objects=None):
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = keras.saving.deserialize_keras_object(
                config["learning_rate"], custom_objects=custom_objects)
        return cls(**config)
