"""LSS from one evaluation of the losses: the full-Jacobian linearization
(tfgames.products.game_linearization) and LSS's first step against central finite differences
of xi in float64.

The reference game Jacobian H is built column by column from central differences of the
simultaneous gradient xi (first-order gradients only; no second derivative of TensorFlow's is
involved), on the 2- and 3-player games of tests/test_off_diagonal_products.py (players of
sizes 2, 3 and 1); the LSS direction is then solved densely in NumPy.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from test_off_diagonal_products import _cat, _flat_w, _game, _set_w, _split, _xi

from tfgames import products
from tfgames.game import Game
from tfgames.optimizers.lss import LSS


def _jacobian(players, loss_fn, h=1e-5) -> tuple[np.ndarray, np.ndarray]:
    """(xi, H) at the current w, H = d xi/dw by central differences of xi (all blocks)."""
    w0 = _flat_w(players)

    def xi_at(w):
        _set_w(players, w)
        return _xi(players, loss_fn)

    columns = [(xi_at(w0 + h * e) - xi_at(w0 - h * e)) / (2 * h) for e in np.eye(w0.size)]
    xi = xi_at(w0)  # also restores w0
    return xi, np.stack(columns, axis=1)


@pytest.mark.parametrize("execution", ["eager", "function"])
@pytest.mark.parametrize("n_players", [2, 3])
def test_game_linearization_products_equal_finite_differences(n_players, execution):
    """H v, H^T v (once, and iterated three times inside a tf.while_loop) from ONE recorded
    evaluation, against the matrix of differences of xi; the losses are evaluated once."""
    players, base_loss_fn = _game(n_players)
    xi_ref, jac = _jacobian(players, base_loss_fn)
    assert np.abs(jac - np.diag(np.diag(jac))).max() > 0.1  # a coupled, non-diagonal H
    assert np.abs(jac - jac.T).max() > 0.1  # and a non-symmetric one
    v0 = np.random.default_rng(3).normal(size=xi_ref.size)
    calls = []

    def loss_fn():
        calls.append(1)
        return base_loss_fn()

    def compute():
        lin = products.game_linearization(loss_fn, players,
                                          vector_fn=lambda xs: [2.0 * x for x in xs])
        once = lin.hv(_split(players, v0)), lin.htv(_split(players, v0))

        def body(i, v, u):
            return i + 1, [0.5 * a + 0.3 * b for a, b in zip(v, lin.hv(v))], lin.htv(
                lin.hv(u))

        _, v, u = tf.while_loop(lambda i, v, u: i < 3, body,
                                (0, _split(players, v0), _split(players, v0)))
        return lin.xi, lin.vector, once, v, u

    xi, vector, (hv, htv), v, u = compute() if execution == "eager" else tf.function(compute)()
    assert len(calls) == 1  # traced or run once: one evaluation for every product
    v_ref, u_ref = v0.copy(), v0.copy()
    for _ in range(3):
        v_ref = 0.5 * v_ref + 0.3 * jac @ v_ref
        u_ref = jac.T @ (jac @ u_ref)
    scale = np.abs(jac).max()
    np.testing.assert_allclose(_cat(xi), xi_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(_cat(vector), 2 * xi_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(_cat(hv), jac @ v0, rtol=0, atol=1e-8 * scale)
    np.testing.assert_allclose(_cat(htv), jac.T @ v0, rtol=0, atol=1e-8 * scale)
    np.testing.assert_allclose(_cat(v), v_ref, rtol=0, atol=1e-8 * max(1.0, scale) ** 2)
    np.testing.assert_allclose(_cat(u), u_ref, rtol=0, atol=1e-8 * np.abs(u_ref).max())


def test_game_linearization_without_jacobian_refuses_hv():
    players, loss_fn = _game(3)
    lin = products.game_linearization(loss_fn, players, jacobian=False, off_diagonal=True)
    with pytest.raises(ValueError, match=r"The block 'jacobian' was not recorded\. Pass it to "
                       r"game_linearization \(`jacobian=True` for H v"):
        lin.hv([tf.zeros(2, tf.float64), tf.zeros(3, tf.float64), tf.zeros(1, tf.float64)])
    with pytest.raises(ValueError, match=r"one tensor per variable of the block \(3\)\. "
                       r"Received: 1 tensors"):
        lin.htv([tf.zeros(2, tf.float64)])


def _lss_reference(xi, jac, regularized: bool, lambda_: float) -> np.ndarray:
    """dir = (xi + H^T u) / 2 with u = H^{-1} xi, or (H^T H + lambda I)^{-1} H^T xi."""
    if regularized:
        u = np.linalg.solve(jac.T @ jac + lambda_ * np.eye(xi.size), jac.T @ xi)
    else:
        u = np.linalg.solve(jac, xi)
    return 0.5 * (xi + jac.T @ u)


@pytest.mark.parametrize("regularize, execution", [
    ("never", "eager"), ("always", "function"), ("auto", "eager"), ("auto", "function")])
@pytest.mark.parametrize("n_players", [2, 3])
def test_lss_first_step_equals_finite_differences(n_players, regularize, execution):
    """One SGD step of LSS (GMRES on H u = xi, or CG on H^T H + lambda I; their loops are
    tf.while_loops, their products through the step's one evaluation) against
    w - lr (xi + H^T u) / 2 with H from differences of xi and u solved densely."""
    players, base_loss_fn = _game(n_players)
    xi_ref, jac = _jacobian(players, base_loss_fn)
    lr, lambda_ = 0.1, 0.3
    expected = _flat_w(players) - lr * _lss_reference(
        xi_ref, jac, regularize == "always", lambda_)
    calls = []

    def loss_fn():
        calls.append(1)
        return base_loss_fn()

    # GMRES ends in at most n iterations; CG on the normal equations, in finite precision,
    # may need more to reach the tolerance: room for 4 n
    opt = LSS(keras.optimizers.SGD(lr), lambda_=lambda_, regularize=regularize, tol=1e-13,
              max_iterations=4 * xi_ref.size)
    game = Game(players, loss_fn)
    step = (lambda: opt.apply_game(game)) if execution == "eager" else tf.function(
        lambda: opt.apply_game(game))
    step()
    assert len(calls) == 1
    # the reference's finite-difference error, amplified by the solved system's conditioning
    cond = np.linalg.cond(jac) if regularize != "always" else np.linalg.cond(
        jac.T @ jac + lambda_ * np.eye(xi_ref.size))
    np.testing.assert_allclose(_flat_w(players), expected, rtol=0,
                               atol=1e-9 * cond * max(1.0, np.abs(jac).max()))
    # the H^T u term matters: the step is not a gradient step
    assert np.abs(_lss_reference(xi_ref, jac, regularize == "always", lambda_) - xi_ref
                  ).max() > 1e-2


@pytest.mark.parametrize("n_players", [2, 3])
def test_lss_forward_mode_step_equals_finite_differences(n_players):
    """hvp_mode="forward": H v by forward-over-reverse, one evaluation per product (xi and
    H^T v from the step's shared evaluation); the same step as the reference."""
    players, base_loss_fn = _game(n_players)
    xi_ref, jac = _jacobian(players, base_loss_fn)
    lr = 0.1
    expected = _flat_w(players) - lr * _lss_reference(xi_ref, jac, False, 0.1)
    calls = []

    def loss_fn():
        calls.append(1)
        return base_loss_fn()

    opt = LSS(keras.optimizers.SGD(lr), regularize="never", tol=1e-13,
              max_iterations=xi_ref.size, hvp_mode="forward")
    opt.apply_game(Game(players, loss_fn))
    assert len(calls) > 1  # eager: one evaluation, then one per GMRES product
    np.testing.assert_allclose(_flat_w(players), expected, rtol=0,
                               atol=1e-9 * np.linalg.cond(jac) * max(1.0, np.abs(jac).max()))
