"""Matrix-free Krylov solvers over lists of tensors: conjugate gradients, GMRES, BiCGSTAB.

Competitive gradient descent and LSS solve linear systems A x = b whose matrix A is only
available through products v -> A v (Hessian-vector products of the game, :mod:`tfgames.products`).
The solvers here take such an ``operator`` on lists of tensors (the layout of a model's
variables), run inside ``tf.function`` and XLA (a ``tf.while_loop`` over the iterations), and
return, besides the solution, what a training loop should report: the number of iterations,
the number of operator applications (products), the residual norm and whether the tolerance was
met.

Conventions (both solvers):

- stopping rule ||b - A x|| <= max(tol * ||b||, atol), checked before every iteration, with at
  most ``max_iterations`` iterations;
- a warm start x0 starts from the residual r0 = b - A x0, computed with one operator
  application (counted in ``products``). Starting from r0 = b with x0 != 0 silently solves a
  different system (the bug reported in HyperGAN#255 for a CGD implementation);
- vectors of any shapes, including scalars and 1-element players (cgds-package#2 crashed on
  1-dimensional players), and of very different sizes are handled by flattening the list into
  one vector inside the solver.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import tensorflow as tf

__all__ = ["SolveResult", "bicgstab", "conjugate_gradient", "gmres"]

Operator = Callable[[list[tf.Tensor]], Sequence[tf.Tensor]]


class SolveResult(NamedTuple):
    """What a solver returns.

    Attributes:
      x: the solution, a list shaped like ``b``.
      iterations: Krylov iterations made (int32 scalar).
      products: operator applications, including the warm start's residual (int32 scalar).
      residual_norm: ||b - A x|| by the solver's recursion (float scalar; conjugate gradients
        updates the residual recursively, GMRES computes it from its least-squares problem).
      converged: whether residual_norm <= max(tol ||b||, atol) (bool scalar).
    """

    x: list[tf.Tensor]
    iterations: tf.Tensor
    products: tf.Tensor
    residual_norm: tf.Tensor
    converged: tf.Tensor


def _check(tol, atol, max_iterations) -> None:
    for name, value in (("tol", tol), ("atol", atol)):
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float, np.integer, np.floating))
            or not np.isfinite(value)
            or value < 0
        ):
            raise ValueError(
                f"Argument `{name}` must be a finite number >= 0. Received: {name}={value!r}."
            )
    if (
        isinstance(max_iterations, bool)
        or not isinstance(max_iterations, (int, np.integer))
        or max_iterations < 1
    ):
        raise ValueError(
            "Argument `max_iterations` must be an integer >= 1 (the cap on Krylov iterations, "
            f"each one operator application). Received: max_iterations={max_iterations!r}."
        )


def _solver_dtype(b: Sequence[tf.Tensor]) -> tf.DType:
    """float64 if any part of b is float64, float32 otherwise (half precision is widened)."""
    return tf.float64 if any(t.dtype == tf.float64 for t in b) else tf.float32


class _Flat:
    """Flatten a list of tensors into one vector of the solver's dtype and back."""

    def __init__(self, like: Sequence[tf.Tensor]) -> None:
        self.dtypes = [t.dtype for t in like]
        self.shapes = [tf.shape(t) for t in like]
        self.sizes = [tf.size(t) for t in like]
        self.dtype = _solver_dtype(like)

    def flat(self, xs: Sequence[tf.Tensor]) -> tf.Tensor:
        return tf.concat([tf.reshape(tf.cast(x, self.dtype), [-1]) for x in xs], axis=0)

    def split(self, v: tf.Tensor) -> list[tf.Tensor]:
        parts = tf.split(v, tf.stack(self.sizes), num=len(self.sizes))
        return [
            tf.cast(tf.reshape(p, s), d) for p, s, d in zip(parts, self.shapes, self.dtypes)
        ]


class _Problem(NamedTuple):
    """A solver's start: b and x0 flattened, r0 = b - A x0, the stopping threshold."""

    flat: _Flat
    apply: Callable[[tf.Tensor], tf.Tensor]  # flat v -> flat A v
    b: tf.Tensor
    x0: tf.Tensor
    r0: tf.Tensor
    products: int  # operator applications made here (1 for a warm start's residual)
    threshold: tf.Tensor  # max(tol ||b||, atol)


def _prepare(operator, b, x0, tol, atol, max_iterations) -> _Problem:
    _check(tol, atol, max_iterations)
    b = [tf.convert_to_tensor(t) for t in b]
    if not b:
        raise ValueError("Argument `b` must be a non-empty list of tensors. Received: [].")
    flat = _Flat(b)
    bv = flat.flat(b)
    threshold = tf.maximum(tf.cast(tol, bv.dtype) * tf.norm(bv), tf.cast(atol, bv.dtype))

    def apply(v: tf.Tensor) -> tf.Tensor:
        out = list(operator(flat.split(v)))
        if len(out) != len(b):
            raise ValueError(
                f"The operator must return one tensor per entry of `b` ({len(b)}). "
                f"Received: {len(out)} tensors."
            )
        return flat.flat(out)

    if x0 is None:
        return _Problem(flat, apply, bv, tf.zeros_like(bv), bv, 0, threshold)
    x0v = flat.flat([tf.convert_to_tensor(t) for t in x0])
    return _Problem(flat, apply, bv, x0v, bv - apply(x0v), 1, threshold)


def conjugate_gradient(
    operator: Operator,
    b: Sequence[tf.Tensor],
    x0: Sequence[tf.Tensor] | None = None,
    *,
    tol: float = 1e-6,
    atol: float = 0.0,
    max_iterations: int = 10,
    unroll: bool = False,
) -> SolveResult:
    """Solve A x = b for a symmetric positive-definite A given as ``operator(v) = A v``.

    Hestenes & Stiefel (1952): x_{k+1} = x_k + a_k p_k, r_{k+1} = r_k - a_k A p_k,
    a_k = <r_k, r_k> / <p_k, A p_k>, p_{k+1} = r_{k+1} + (<r_{k+1}, r_{k+1}> / <r_k, r_k>) p_k,
    from r_0 = b - A x_0. One operator application per iteration.

    Args:
      operator: v -> A v on lists of tensors shaped like ``b``.
      b: the right-hand side, a list of tensors.
      x0: warm start (a list shaped like ``b``) or ``None`` for x0 = 0.
      tol: relative tolerance on ||b - A x|| / ||b||.
      atol: absolute tolerance on ||b - A x||.
      max_iterations: the cap on iterations.
      unroll: a Python loop of ``max_iterations`` masked iterations instead of a
        ``tf.while_loop`` (needed when ``operator`` all-reduces across replicas; every
        iteration's product is then computed).

    Returns:
      :class:`SolveResult`.
    """
    problem = _prepare(operator, b, x0, tol, atol, max_iterations)
    apply, threshold = problem.apply, problem.threshold
    rs = tf.reduce_sum(problem.r0 * problem.r0)

    def cond(i, x, r, p, rs):
        return tf.logical_and(i < max_iterations, tf.sqrt(rs) > threshold)

    def body(i, x, r, p, rs):
        ap = apply(p)
        step = rs / tf.reduce_sum(p * ap)
        x = x + step * p
        r = r - step * ap
        rs_new = tf.reduce_sum(r * r)
        p = r + (rs_new / rs) * p
        return i + 1, x, r, p, rs_new

    i, x, _, _, rs = _loop(
        cond, body, (tf.constant(0, tf.int32), problem.x0, problem.r0, problem.r0, rs),
        max_iterations, unroll,
    )
    return _result(problem, x, i, tf.sqrt(rs), max_iterations, unroll)


def _result(problem: _Problem, x: tf.Tensor, iterations: tf.Tensor, residual: tf.Tensor,
            max_iterations: int, unroll: bool, per_iteration: int = 1) -> SolveResult:
    """The :class:`SolveResult` of the flat solution ``x`` (``per_iteration`` products per
    iteration; unrolled, every one of the ``max_iterations`` iterations' is counted).
    """
    applied = per_iteration * (tf.constant(max_iterations, tf.int32) if unroll else iterations)
    return SolveResult(problem.flat.split(x), iterations, applied + problem.products, residual,
                       residual <= problem.threshold)


def _loop(cond, body, state, max_iterations: int, unroll: bool):
    """``tf.while_loop(cond, body, state)``, or with ``unroll=True`` a Python loop of exactly
    ``max_iterations`` bodies whose results are kept only while ``cond`` holds. Unrolled, the
    operator may contain a synchronisation point (the all-reduce of a ``tf.distribute``
    replica), which TensorFlow does not allow inside a ``while_loop``; every iteration's
    product is then computed (and counted).
    """
    if not unroll:
        return tf.while_loop(cond, body, state, maximum_iterations=max_iterations)
    for _ in range(max_iterations):
        active = cond(*state)
        new = body(*state)
        state = tuple(tf.where(active, n, o) for n, o in zip(new, state))
    return state


def _least_squares(h_t: tf.Tensor, beta: tf.Tensor, k: tf.Tensor):
    """min_y ||beta e_1 - H_k y|| for the (k+1) x k upper Hessenberg matrix of GMRES.

    ``h_t`` is the transposed, zero-padded (m, m+1) Hessenberg matrix; the columns c >= k are
    replaced by e_{c+1}, which makes the padded (m+1, m) problem full-rank with y_c = 0 there,
    so the fixed-shape problem is solved by one QR factorisation (XLA-friendly).
    """
    m = h_t.shape[0]
    used = tf.range(m) < k
    shift = tf.one_hot(tf.range(m) + 1, m + 1, dtype=h_t.dtype)  # row c = e_{c+1}
    h_pad = tf.transpose(tf.where(used[:, None], h_t, shift))
    rhs = tf.concat([[beta], tf.zeros([m], h_t.dtype)], axis=0)
    q, r = tf.linalg.qr(h_pad)
    qtb = tf.linalg.matvec(q, rhs, transpose_a=True)[:, None]
    y = tf.linalg.triangular_solve(r, qtb, lower=False)[:, 0]
    residual = tf.norm(rhs - tf.linalg.matvec(h_pad, y))
    return y, residual


def gmres(
    operator: Operator,
    b: Sequence[tf.Tensor],
    x0: Sequence[tf.Tensor] | None = None,
    *,
    tol: float = 1e-6,
    atol: float = 0.0,
    max_iterations: int = 10,
    unroll: bool = False,
) -> SolveResult:
    """Solve A x = b for a general (non-symmetric) A given as ``operator(v) = A v``.

    Saad & Schultz (1986), without restarts: x_k = x_0 + V_k y_k minimises ||b - A x|| over
    the Krylov space span(r_0, A r_0, ..., A^{k-1} r_0), r_0 = b - A x_0; the basis V_k is built
    by Arnoldi with classical Gram-Schmidt applied twice, y_k solves the small Hessenberg
    least-squares problem. One operator application per iteration; memory
    (max_iterations + 1) vectors of the size of ``b``.

    Args:
      operator: v -> A v on lists of tensors shaped like ``b``.
      b: the right-hand side, a list of tensors.
      x0: warm start (a list shaped like ``b``) or ``None`` for x0 = 0.
      tol: relative tolerance on ||b - A x|| / ||b||.
      atol: absolute tolerance on ||b - A x||.
      max_iterations: the cap on iterations (the dimension of the Krylov space).
      unroll: as :func:`conjugate_gradient`.

    Returns:
      :class:`SolveResult`.
    """
    problem = _prepare(operator, b, x0, tol, atol, max_iterations)
    apply, threshold = problem.apply, problem.threshold
    dtype = problem.b.dtype
    m = int(max_iterations)
    beta = tf.norm(problem.r0)
    safe_beta = tf.where(beta > 0, beta, tf.ones_like(beta))
    basis = tf.tensor_scatter_nd_update(
        tf.zeros(tf.stack([m + 1, tf.size(problem.b)]), dtype), [[0]], [problem.r0 / safe_beta]
    )
    h_t = tf.zeros([m, m + 1], dtype)
    y = tf.zeros([m], dtype)
    tiny = tf.constant(np.finfo(dtype.as_numpy_dtype).tiny, dtype)
    eps = tf.constant(10 * np.finfo(dtype.as_numpy_dtype).eps, dtype)

    def cond(j, basis, h_t, y, residual, breakdown):
        return tf.logical_and(
            tf.logical_and(j < m, residual > threshold), tf.logical_not(breakdown)
        )

    def body(j, basis, h_t, y, residual, breakdown):
        w = apply(basis[j])
        w_in = tf.norm(w)
        h = tf.linalg.matvec(basis, w)  # rows > j of the basis are zero
        w = w - tf.linalg.matvec(basis, h, transpose_a=True)
        h2 = tf.linalg.matvec(basis, w)  # second Gram-Schmidt pass
        w = w - tf.linalg.matvec(basis, h2, transpose_a=True)
        h = h + h2
        w_norm = tf.norm(w)
        h = tf.tensor_scatter_nd_update(h, [[j + 1]], [w_norm])
        h_t = tf.tensor_scatter_nd_update(h_t, [[j]], [h])
        # Lucky breakdown: A v_j lies in the Krylov space (to rounding), the basis is complete.
        breakdown = w_norm <= tf.maximum(eps * w_in, tiny)
        v_next = tf.where(
            breakdown, tf.zeros_like(w), w / tf.where(breakdown, tf.ones_like(w_norm), w_norm)
        )
        basis = tf.tensor_scatter_nd_update(basis, [[j + 1]], [v_next])
        y, residual = _least_squares(h_t, beta, j + 1)
        return j + 1, basis, h_t, y, residual, breakdown

    j, basis, _, y, residual, _ = _loop(
        cond, body, (tf.constant(0, tf.int32), basis, h_t, y, beta, tf.constant(False)), m,
        unroll,
    )
    x = problem.x0 + tf.linalg.matvec(basis[:m], y, transpose_a=True)
    return _result(problem, x, j, residual, m, unroll)


def bicgstab(
    operator: Operator,
    b: Sequence[tf.Tensor],
    x0: Sequence[tf.Tensor] | None = None,
    *,
    tol: float = 1e-6,
    atol: float = 0.0,
    max_iterations: int = 10,
    unroll: bool = False,
) -> SolveResult:
    """Solve A x = b for a general (non-symmetric) A by BiCGSTAB, given ``operator(v) = A v``.

    van der Vorst, "Bi-CGSTAB: A Fast and Smoothly Converging Variant of Bi-CG for the
    Solution of Nonsymmetric Linear Systems", SIAM J. Sci. Stat. Comput. 1992; from
    r_0 = b - A x_0 and the shadow residual r^ = r_0:

        rho_k = <r^, r_k>,
        p_k = r_k + (rho_k a_{k-1}) / (rho_{k-1} w_{k-1}) (p_{k-1} - w_{k-1} A p_{k-1}),
        a_k = rho_k / <r^, A p_k>,   s_k = r_k - a_k A p_k,
        w_k = <A s_k, s_k> / <A s_k, A s_k>,
        x_{k+1} = x_k + a_k p_k + w_k s_k,   r_{k+1} = s_k - w_k A s_k.

    Two operator applications per iteration (both counted, also when s_k already meets the
    tolerance and w_k is set to 0); memory a few vectors, independent of the iteration count
    (GMRES keeps ``max_iterations + 1``). A breakdown (rho_k = 0 or <r^, A p_k> = 0 with
    r_k != 0, to eps^2 relative: the method cannot continue, e.g. <r, A r> = 0 for a
    skew-symmetric A) stops the iterations with the last finite iterate, ``converged`` false;
    no NaN is produced.

    Args:
      operator: v -> A v on lists of tensors shaped like ``b``.
      b: the right-hand side, a list of tensors.
      x0: warm start (a list shaped like ``b``) or ``None`` for x0 = 0.
      tol: relative tolerance on ||b - A x|| / ||b||.
      atol: absolute tolerance on ||b - A x||.
      max_iterations: the cap on iterations (each two operator applications).
      unroll: as :func:`conjugate_gradient`.

    Returns:
      :class:`SolveResult` (``residual_norm`` from the recursively updated residual).
    """
    problem = _prepare(operator, b, x0, tol, atol, max_iterations)
    apply, threshold = problem.apply, problem.threshold
    dtype = problem.b.dtype
    tiny = tf.constant(np.finfo(dtype.as_numpy_dtype).tiny, dtype)
    eps2 = tf.constant(np.finfo(dtype.as_numpy_dtype).eps ** 2, dtype)  # breakdown threshold
    one = tf.ones([], dtype)
    r0 = problem.r0
    shadow = r0
    zero = tf.zeros_like(r0)

    def safe_div(num, den, ok):
        return tf.where(ok, num / tf.where(ok, den, one), tf.zeros_like(num))

    def cond(i, x, r, p, v, rho, alpha, omega, rnorm, breakdown):
        return tf.logical_and(
            tf.logical_and(i < max_iterations, rnorm > threshold), tf.logical_not(breakdown))

    def body(i, x, r, p, v, rho, alpha, omega, rnorm, breakdown):
        rho_new = tf.reduce_sum(shadow * r)
        ok_rho = tf.abs(rho_new) > eps2 * tf.norm(shadow) * rnorm
        beta = safe_div(rho_new, rho, tf.abs(rho) > tiny) * safe_div(alpha, omega,
                                                                       tf.abs(omega) > tiny)
        p = r + beta * (p - omega * v)
        v = apply(p)
        den = tf.reduce_sum(shadow * v)
        ok_den = tf.abs(den) > eps2 * tf.norm(shadow) * tf.norm(v)
        ok = tf.logical_and(ok_rho, ok_den)
        alpha = safe_div(rho_new, den, ok)
        s = r - alpha * v
        t = apply(s)
        tt = tf.reduce_sum(t * t)
        done_half = tf.norm(s) <= threshold  # s meets the tolerance: x + alpha p is the answer
        omega = safe_div(tf.reduce_sum(t * s), tt, tf.logical_and(tt > tiny,
                                                                   tf.logical_not(done_half)))
        x_new = x + alpha * p + omega * s
        r_new = s - omega * t
        # On a breakdown nothing of this iteration is kept (x, r stay finite and consistent).
        x, r = tf.where(ok, x_new, x), tf.where(ok, r_new, r)
        rnorm = tf.norm(r)
        return (i + 1, x, r, p, v, rho_new, alpha, tf.where(ok, omega, one), rnorm,
                tf.logical_not(ok))

    state = (tf.constant(0, tf.int32), problem.x0, r0, zero, zero, one, one, one,
             tf.norm(r0), tf.constant(False))
    i, x, _, _, _, _, _, _, rnorm, _ = _loop(cond, body, state, max_iterations, unroll)
    return _result(problem, x, i, rnorm, max_iterations, unroll, per_iteration=2)
