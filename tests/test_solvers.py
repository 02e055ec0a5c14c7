"""Matrix-free CG and GMRES over lists of tensors against NumPy's dense solve."""

import numpy as np
import pytest
import tensorflow as tf

from tfgames import solvers

SHAPES = [(), (1,), (2, 3)]  # a scalar, a 1-element player and a matrix: 8 unknowns


def _system(seed, spd):
    rng = np.random.default_rng(seed)
    m = rng.standard_normal((8, 8))
    A = m @ m.T + np.eye(8) if spd else m + 4 * np.eye(8)
    return A, rng.standard_normal(8)


def _split(v):
    out, k = [], 0
    for s in SHAPES:
        n = int(np.prod(s))
        out.append(tf.constant(np.reshape(v[k:k + n], s), tf.float32))
        k += n
    return out


def _operator(A):
    a = tf.constant(A, tf.float32)

    def op(parts):
        v = tf.concat([tf.reshape(p, [-1]) for p in parts], 0)
        w = tf.linalg.matvec(a, v)
        return [tf.reshape(t, s) for t, s in zip(tf.split(w, [1, 1, 6]), SHAPES)]
    return op


def _flat(parts):
    return np.concatenate([np.ravel(p.numpy()) for p in parts])


SOLVERS = [(solvers.conjugate_gradient, True), (solvers.gmres, True), (solvers.gmres, False)]


@pytest.mark.parametrize("solve, spd", SOLVERS)
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("warm", [False, True])
def test_solution_equals_dense_solve_to_the_tolerance(solve, spd, seed, warm):
    A, b = _system(seed, spd)
    exact = np.linalg.solve(A, b)
    x0 = _split(exact + 0.5) if warm else None
    r = solve(_operator(A), _split(b), x0, tol=1e-5, max_iterations=30)
    x = _flat(r.x)
    assert [p.shape for p in r.x] == [tf.TensorShape(s) for s in SHAPES]
    assert bool(r.converged)
    true_residual = np.linalg.norm(b - A @ x)
    assert true_residual <= 1e-5 * np.linalg.norm(b) * 5  # float32 recursion vs true residual
    np.testing.assert_allclose(x, exact, rtol=1e-3, atol=1e-4 * np.abs(exact).max())
    assert int(r.products) == int(r.iterations) + (1 if warm else 0)
    assert int(r.iterations) <= 8 + (2 if solve is solvers.conjugate_gradient else 0)


@pytest.mark.parametrize("solve, spd", SOLVERS[:2])
def test_iteration_cap_and_residual_are_reported(solve, spd):
    A, b = _system(3, spd)
    r = solve(_operator(A), _split(b), tol=1e-9, max_iterations=2)
    assert int(r.iterations) == 2 and not bool(r.converged)
    x = _flat(r.x)
    np.testing.assert_allclose(float(r.residual_norm), np.linalg.norm(b - A @ x), rtol=1e-3)


@pytest.mark.parametrize("solve, spd", SOLVERS)
def test_tf_function_xla_and_unrolled_loops_agree(solve, spd):
    A, b = _system(4, spd)
    eager = solve(_operator(A), _split(b), tol=1e-5, max_iterations=6)
    graph = tf.function(lambda: solve(_operator(A), _split(b), tol=1e-5, max_iterations=6))()
    xla = tf.function(lambda: solve(_operator(A), _split(b), tol=1e-5, max_iterations=6),
                      jit_compile=True)()
    unrolled = tf.function(lambda: solve(_operator(A), _split(b), tol=1e-5, max_iterations=6,
                                         unroll=True))()
    for other in (graph, xla, unrolled):
        np.testing.assert_allclose(_flat(other.x), _flat(eager.x), rtol=1e-4, atol=1e-5)
        assert int(other.iterations) == int(eager.iterations)
    assert int(unrolled.products) == 6  # every unrolled iteration applies the operator


def test_gmres_solves_in_at_most_the_dimension_and_stops_on_breakdown():
    A, b = _system(5, False)
    r = solvers.gmres(_operator(A), _split(b), tol=0.0, max_iterations=20)
    assert int(r.iterations) <= 8
    np.testing.assert_allclose(_flat(r.x), np.linalg.solve(A, b), rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("kwargs, match", [
    ({"tol": -1.0}, r"`tol` must be a finite number >= 0. Received: tol=-1.0"),
    ({"atol": float("inf")}, r"`atol` must be a finite number >= 0. Received: atol=inf"),
    ({"max_iterations": 0}, r"`max_iterations` must be an integer >= 1.*max_iterations=0"),
    ({"max_iterations": 2.5}, r"`max_iterations` must be an integer >= 1.*2.5"),
])
def test_invalid_arguments_are_explained(kwargs, match):
    A, b = _system(0, True)
    with pytest.raises(ValueError, match=match):
        solvers.conjugate_gradient(_operator(A), _split(b), **kwargs)
