"""BiCGSTAB (tfgames.solvers.bicgstab) against numpy.linalg.solve in float64, and as the
solver of GACGD and LSS against dense solves with H from finite differences of xi."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from test_lss_shared import _jacobian, _lss_reference
from test_off_diagonal_products import _flat_w, _game, _reference

from tfgames import solvers
from tfgames.game import Game
from tfgames.optimizers.cgd import GACGD
from tfgames.optimizers.lss import LSS

SHAPES = [(), (1,), (2, 3), (4,)]  # a scalar, a 1-element player, a matrix: 12 unknowns


def _parts(v):
    sizes = [int(np.prod(s)) for s in SHAPES]
    return [tf.constant(np.reshape(p, s), tf.float64)
            for p, s in zip(np.split(v, np.cumsum(sizes)[:-1]), SHAPES)]


def _operator(a):
    a = tf.constant(a, tf.float64)
    sizes = [int(np.prod(s)) for s in SHAPES]

    def op(parts):
        w = tf.linalg.matvec(a, tf.concat([tf.reshape(p, [-1]) for p in parts], 0))
        return [tf.reshape(t, s) for t, s in zip(tf.split(w, sizes), SHAPES)]
    return op


def _vector(parts) -> np.ndarray:
    return np.concatenate([np.ravel(p.numpy()) for p in parts])


def _system(seed: int):
    """A random non-symmetric, well-conditioned 12 x 12 system."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((12, 12)) + 6.0 * np.eye(12)
    assert np.abs(a - a.T).max() > 1.0 and np.linalg.cond(a) < 20
    return a, rng.standard_normal(12)


@pytest.mark.parametrize("execution", ["eager", "function", "unrolled"])
@pytest.mark.parametrize("seed", [0, 1])
def test_bicgstab_equals_dense_solve(seed, execution):
    a, b = _system(seed)
    exact = np.linalg.solve(a, b)
    x0 = _parts(exact + 0.3 * np.random.default_rng(seed + 10).standard_normal(12))

    def solve():
        cold = solvers.bicgstab(_operator(a), _parts(b), tol=1e-12, max_iterations=40,
                                unroll=execution == "unrolled")
        warm = solvers.bicgstab(_operator(a), _parts(b), x0, tol=1e-12, max_iterations=40,
                                unroll=execution == "unrolled")
        return cold, warm

    cold, warm = tf.function(solve)() if execution == "function" else solve()
    for r, warm_start in ((cold, 0), (warm, 1)):
        assert [p.shape for p in r.x] == [tf.TensorShape(s) for s in SHAPES]
        assert bool(r.converged)
        x = _vector(r.x)
        np.testing.assert_allclose(x, exact, rtol=0, atol=1e-10 * np.abs(exact).max())
        # the reported (recursive) residual is the true one, to rounding
        true = np.linalg.norm(b - a @ x)
        assert float(r.residual_norm) <= 1e-12 * np.linalg.norm(b)
        assert abs(true - float(r.residual_norm)) <= 1e-12 * np.linalg.norm(b)
        iterations = int(r.iterations)
        assert 1 <= iterations < 40  # stopped by the tolerance, before the cap
        applied = 40 if execution == "unrolled" else iterations
        assert int(r.products) == 2 * applied + warm_start


def test_bicgstab_warm_start_at_the_solution_makes_no_iteration():
    a, b = _system(3)
    exact = np.linalg.solve(a, b)
    r = solvers.bicgstab(_operator(a), _parts(b), _parts(exact), tol=1e-8)
    assert int(r.iterations) == 0 and int(r.products) == 1 and bool(r.converged)
    np.testing.assert_array_equal(_vector(r.x), _vector(_parts(exact)))
    # the residual of the warm start is computed from it, not taken as b
    r = solvers.bicgstab(_operator(a), _parts(b), _parts(exact + 1.0), tol=1e-12,
                         max_iterations=1)
    assert float(r.residual_norm) < np.linalg.norm(b - a @ (exact + 1.0))
    assert int(r.iterations) == 1 and int(r.products) == 3


def test_bicgstab_iteration_cap_is_reported():
    a, b = _system(4)
    r = solvers.bicgstab(_operator(a), _parts(b), tol=0.0, max_iterations=2)
    x = _vector(r.x)
    assert int(r.iterations) == 2 and int(r.products) == 4 and not bool(r.converged)
    np.testing.assert_allclose(float(r.residual_norm), np.linalg.norm(b - a @ x), rtol=1e-10)


@pytest.mark.parametrize("execution", ["eager", "function"])
def test_bicgstab_breakdown_gives_a_clear_result_without_nan(execution):
    """A skew-symmetric A with the shadow residual r^ = r0: <r^, A r0> = 0, so the first step
    length is undefined (BiCGSTAB breaks down; GMRES solves the system)."""
    a = np.array([[0.0, 1.0], [-1.0, 0.0]])
    b = np.array([1.0, 0.0])

    def op(parts):
        return [tf.linalg.matvec(tf.constant(a), parts[0])]

    def solve():
        return solvers.bicgstab(op, [tf.constant(b)], tol=1e-10, max_iterations=10)

    r = tf.function(solve)() if execution == "function" else solve()
    x = r.x[0].numpy()
    assert np.all(np.isfinite(x)) and np.isfinite(float(r.residual_norm))
    assert not bool(r.converged)
    assert int(r.iterations) == 1 and int(r.products) == 2  # stopped at the breakdown
    np.testing.assert_array_equal(x, [0.0, 0.0])  # nothing of the broken iteration kept
    assert float(r.residual_norm) == pytest.approx(np.linalg.norm(b - a @ x))
    g = solvers.gmres(op, [tf.constant(b)], tol=1e-10, max_iterations=2)
    np.testing.assert_allclose(g.x[0].numpy(), np.linalg.solve(a, b), atol=1e-12)


def test_bicgstab_validates_arguments():
    a, b = _system(5)
    with pytest.raises(ValueError, match=r"`max_iterations` must be an integer >= 1.*"
                       r"Received: max_iterations=0"):
        solvers.bicgstab(_operator(a), _parts(b), max_iterations=0)
    with pytest.raises(ValueError, match=r"`tol` must be a finite number >= 0\. "
                       r"Received: tol=nan"):
        solvers.bicgstab(_operator(a), _parts(b), tol=float("nan"))


@pytest.mark.parametrize("n_players", [2, 3])
def test_gacgd_with_bicgstab_equals_the_dense_solve(n_players):
    """dir = (I + alpha H_o)^{-1} xi with H_o from differences of xi; one SGD step."""
    players, loss_fn = _game(n_players)
    xi, h_o = _reference(players, loss_fn)
    lr, alpha = 0.1, 0.4
    expected = _flat_w(players) - lr * np.linalg.solve(np.eye(xi.size) + alpha * h_o, xi)
    GACGD(keras.optimizers.SGD(lr), alpha=alpha, solver="bicgstab", tol=1e-13,
          max_iterations=5 * xi.size, warm_start=False).apply_game(Game(players, loss_fn))
    np.testing.assert_allclose(_flat_w(players), expected, rtol=0,
                               atol=1e-8 * max(1.0, np.abs(h_o).max()))


@pytest.mark.parametrize("n_players", [2, 3])
def test_lss_with_bicgstab_equals_the_dense_solve(n_players):
    players, loss_fn = _game(n_players)
    xi, jac = _jacobian(players, loss_fn)
    lr = 0.1
    expected = _flat_w(players) - lr * _lss_reference(xi, jac, False, 0.1)
    # BiCGSTAB has no finite termination in n steps (GMRES has): room for 5 n iterations
    LSS(keras.optimizers.SGD(lr), regularize="never", solver="bicgstab", tol=1e-13,
        max_iterations=5 * xi.size).apply_game(Game(players, loss_fn))
    np.testing.assert_allclose(_flat_w(players), expected, rtol=0,
                               atol=1e-9 * np.linalg.cond(jac) * max(1.0, np.abs(jac).max()))


@pytest.mark.parametrize("make, match", [
    (lambda: GACGD(keras.optimizers.SGD(0.1), solver="bicg"),
     r"Argument `solver` must be one of \('cg', 'gmres', 'bicgstab'\)\. "
     r"Received: solver='bicg'"),
    (lambda: LSS(keras.optimizers.SGD(0.1), solver="cg"),
     r"Argument `solver` must be one of \('gmres', 'bicgstab'\) \(the solver of H u = xi"
     r".*Received: solver='cg'"),
])
def test_solver_choice_is_validated(make, match):
    with pytest.raises(ValueError, match=match):
        make()
