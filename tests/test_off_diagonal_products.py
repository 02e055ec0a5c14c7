"""Shared-primal off-diagonal products (tfgames.products.off_diagonal_products) and the
optimizers that use them, against central finite differences of xi in float64.

The reference game Jacobian H is built column by column from central differences of the
simultaneous gradient xi (a first-order gradient, no second derivative of TensorFlow's is
involved); H_o is H with its diagonal blocks set to zero, in NumPy.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfgames
from tfgames import products
from tfgames.game import Game
from tfgames.optimizers.lead import LEAD

SIZES = {2: {"a": 2, "b": 3}, 3: {"a": 2, "b": 3, "c": 1}}


def _game(n_players: int, keras_variables: bool = True):
    """A smooth non-quadratic n-player game (players of sizes 2, 3 and 1): H depends on w."""
    rng = np.random.default_rng(11 + n_players)
    m_ab = rng.normal(size=(2, 3))
    m_ba = rng.normal(size=(3, 2))
    make = keras.Variable if keras_variables else tf.Variable
    a = make(rng.normal(size=2), dtype="float64") if keras_variables else make(
        rng.normal(size=2), dtype=tf.float64)
    b = make(rng.normal(size=3), dtype="float64") if keras_variables else make(
        rng.normal(size=3), dtype=tf.float64)
    variables = {"a": a, "b": b}
    if n_players == 3:
        c = make(rng.normal(size=1), dtype="float64") if keras_variables else make(
            rng.normal(size=1), dtype=tf.float64)
        variables["c"] = c

    def loss_fn():
        av, bv = tf.convert_to_tensor(a), tf.convert_to_tensor(b)
        cv = tf.convert_to_tensor(variables["c"]) if n_players == 3 else tf.constant(
            [0.7], tf.float64)
        la = tf.reduce_sum(tf.sin(av) * tf.linalg.matvec(tf.constant(m_ab), bv)) + 0.5 * (
            tf.reduce_sum(av**2) * (1.0 + cv[0] ** 2))
        lb = tf.reduce_sum(tf.tanh(tf.linalg.matvec(tf.constant(m_ba), av) + bv)) * cv[0] + (
            tf.reduce_sum(bv**4) / 12.0 - tf.reduce_sum(av) * tf.reduce_sum(bv))
        losses = {"a": la, "b": lb}
        if n_players == 3:
            losses["c"] = cv[0] ** 2 * tf.reduce_sum(av * bv[:2]) + tf.exp(0.3 * cv[0]) * (
                tf.reduce_sum(bv)) + 0.5 * cv[0] ** 2
        return losses

    players = {name: [v] for name, v in variables.items()}
    return players, loss_fn


def _flat_w(players):
    return np.concatenate([v.numpy().ravel() for vs in players.values() for v in vs])


def _set_w(players, w):
    start = 0
    for vs in players.values():
        for v in vs:
            size = int(np.prod(v.shape))
            v.assign(w[start:start + size].reshape(v.shape))
            start += size


def _xi(players, loss_fn) -> np.ndarray:
    _, xi = products.simultaneous_gradient(loss_fn, players)
    return np.concatenate([x.numpy().ravel() for x in xi])


def _reference(players, loss_fn, h=1e-5):
    """(xi, H_o) at the current w: H by central differences of xi, diagonal blocks zeroed."""
    w0 = _flat_w(players)
    columns = []
    for k in range(w0.size):
        step = np.zeros_like(w0)
        step[k] = h
        _set_w(players, w0 + step)
        plus = _xi(players, loss_fn)
        _set_w(players, w0 - step)
        minus = _xi(players, loss_fn)
        columns.append((plus - minus) / (2 * h))
    _set_w(players, w0)
    jac = np.stack(columns, axis=1)
    start = 0
    for vs in players.values():
        size = sum(int(np.prod(v.shape)) for v in vs)
        jac[start:start + size, start:start + size] = 0.0
        start += size
    return _xi(players, loss_fn), jac


def _split(players, flat):
    out, start = [], 0
    for vs in players.values():
        for v in vs:
            size = int(np.prod(v.shape))
            out.append(tf.constant(flat[start:start + size].reshape(v.shape)))
            start += size
    return out


def _cat(tensors):
    return np.concatenate([np.asarray(t).ravel() for t in tensors])


@pytest.mark.parametrize("execution", ["eager", "function"])
@pytest.mark.parametrize("n_players", [2, 3])
def test_off_diagonal_products_equal_finite_differences(n_players, execution):
    players, loss_fn = _game(n_players)
    xi_ref, h_o = _reference(players, loss_fn)
    v = np.random.default_rng(5).normal(size=xi_ref.size)

    def compute():
        given = products.off_diagonal_products(loss_fn, players, _split(players, v))
        along_xi = products.off_diagonal_products(
            loss_fn, players, vector_fn=lambda xs: [2.0 * x for x in xs])
        only_t = products.off_diagonal_products(loss_fn, players, _split(players, v),
                                                hv=False)
        return given, along_xi, only_t

    given, along_xi, only_t = compute() if execution == "eager" else tf.function(compute)()
    scale = np.abs(h_o).max()
    tol = dict(rtol=0, atol=1e-8 * scale)
    np.testing.assert_allclose(_cat(given.xi), xi_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(_cat(given.ho_v), h_o @ v, **tol)
    np.testing.assert_allclose(_cat(given.ho_t_v), h_o.T @ v, **tol)
    # v = vector_fn(xi) of the same pass
    np.testing.assert_allclose(_cat(along_xi.vector), 2 * xi_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(_cat(along_xi.ho_v), h_o @ (2 * xi_ref), **tol)
    np.testing.assert_allclose(_cat(along_xi.ho_t_v), h_o.T @ (2 * xi_ref), **tol)
    assert only_t.ho_v is None
    np.testing.assert_allclose(_cat(only_t.ho_t_v), h_o.T @ v, **tol)
    # the per-player products of the same blocks agree (one pass against n passes)
    np.testing.assert_allclose(
        _cat(products.off_diagonal_hv(loss_fn, players, _split(players, v))), h_o @ v, **tol)


def test_off_diagonal_products_plain_tf_variables_and_bad_vector():
    players, loss_fn = _game(3, keras_variables=False)
    xi_ref, h_o = _reference(players, loss_fn)
    p = products.off_diagonal_products(loss_fn, players)
    np.testing.assert_allclose(_cat(p.ho_v), h_o @ xi_ref, rtol=0,
                               atol=1e-8 * np.abs(h_o).max())
    np.testing.assert_allclose(_cat(p.ho_t_v), h_o.T @ xi_ref, rtol=0,
                               atol=1e-8 * np.abs(h_o).max())
    with pytest.raises(ValueError, match=r"`vector` must have one tensor per variable \(3\)"
                       r"\. Received: 1 tensors"):
        products.off_diagonal_products(loss_fn, players, [tf.zeros(2, tf.float64)])


@pytest.mark.parametrize("n_players", [2, 3])
def test_unaligned_sga_double_backward_step_equals_finite_differences(n_players):
    """SGA(use_signs=False) in double-backward mode uses H_o^T xi - H_o xi; its SGD step
    equals w - lr (xi + lambda/2 (H_o^T - H_o) xi) with H from differences of xi (the diagonal
    blocks cancel in H^T - H, so this is SGA's update)."""
    players, loss_fn = _game(n_players)
    xi_ref, h_o = _reference(players, loss_fn)
    w0 = _flat_w(players)
    lr, lam = 0.5, 0.3
    opt = tfgames.SGA(keras.optimizers.SGD(lr), lambda_=lam, use_signs=False,
                      hvp_mode="double_backward")
    opt.apply_game(Game(players, loss_fn))
    expected = w0 - lr * (xi_ref + 0.5 * lam * (h_o.T @ xi_ref - h_o @ xi_ref))
    np.testing.assert_allclose(_flat_w(players), expected, rtol=0,
                               atol=1e-8 * np.abs(h_o).max())


@pytest.mark.parametrize("n_players", [2, 3])
def test_lead_two_steps_equal_finite_differences(n_players):
    """LEAD's coupling H_o^T (w_t - w_{t-1}) from the gradient's own pass: two SGD steps
    against the NumPy transcription with H from differences of xi at each point."""
    players, loss_fn = _game(n_players)
    lr, alpha = 0.1, 0.6
    opt = LEAD(keras.optimizers.SGD(lr), alpha=alpha)
    game = Game(players, loss_fn)
    previous = _flat_w(players)
    for _ in range(2):
        w = _flat_w(players)
        xi_ref, h_o = _reference(players, loss_fn)
        expected = w - lr * (xi_ref - alpha * h_o.T @ (w - previous))
        opt.apply_game(game)
        np.testing.assert_allclose(_flat_w(players), expected, rtol=0,
                                   atol=1e-8 * max(1.0, np.abs(h_o).max()))
        previous = w


def _cross_gradients(players, loss_fn) -> list[np.ndarray]:
    """grad_w l_i for every player i (first-order gradients)."""
    variables = [v for vs in players.values() for v in vs]
    with tf.GradientTape(persistent=True) as tape:
        losses = loss_fn()
    return [_cat(tape.gradient(losses[name], variables)) for name in players]


def _blocks_of(players):
    out, start = [], 0
    for vs in players.values():
        size = sum(int(np.prod(v.shape)) for v in vs)
        out.append(slice(start, start + size))
        start += size
    return out


def _chi_reference(h_o, grads, blocks):
    """chi_i = sum_{j != i} (d xi_j / d w_i)^T grad_j l_i from the finite-difference blocks."""
    chi = np.zeros(h_o.shape[0])
    for i, bi in enumerate(blocks):
        for j, bj in enumerate(blocks):
            if j != i:
                chi[bi] += h_o[bj, bi].T @ grads[i][bj]
    return chi


@pytest.mark.parametrize("execution", ["eager", "function"])
@pytest.mark.parametrize("n_players", [2, 3])
def test_lola_terms_equal_finite_differences(n_players, execution):
    """chi_i = sum_{j != i} (d xi_j / d w_i)^T grad_j l_i and H_o xi, with the blocks of H from
    differences of xi, against one pass of products.lola_terms."""
    players, loss_fn = _game(n_players)
    xi_ref, h_o = _reference(players, loss_fn)
    grads = _cross_gradients(players, loss_fn)
    blocks = _blocks_of(players)
    chi_ref = _chi_reference(h_o, grads, blocks)
    compute = lambda: products.lola_terms(loss_fn, players)  # noqa: E731
    got = compute() if execution == "eager" else tf.function(compute)()
    tol = dict(rtol=0, atol=1e-8 * np.abs(h_o).max() * max(1.0, np.abs(xi_ref).max()))
    np.testing.assert_allclose(_cat(got.xi), xi_ref, rtol=1e-12, atol=1e-12)
    for g, ref in zip(got.grads, grads):
        np.testing.assert_allclose(_cat(g), ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(_cat(got.ho_xi), h_o @ xi_ref, **tol)
    np.testing.assert_allclose(_cat(got.chi), chi_ref, **tol)
    assert np.abs(chi_ref).max() > 1e-2 and np.abs(h_o @ xi_ref).max() > 1e-2


@pytest.mark.parametrize("name", ["la", "lola", "sos"])
def test_opponent_shaping_step_equals_finite_differences(name):
    """LA, LOLA and SOS (one evaluation of the losses per step) on the 3-player game: one SGD
    step against w - lr (LA - p alpha chi), p = 1 for LOLA, SOS's p in NumPy."""
    from tfgames.optimizers.opponent_shaping import LA, LOLA, SOS

    players, loss_fn = _game(3)
    xi_ref, h_o = _reference(players, loss_fn)
    grads = _cross_gradients(players, loss_fn)
    blocks = _blocks_of(players)
    chi = _chi_reference(h_o, grads, blocks)
    lr, alpha, a, b = 0.1, 0.4, 0.3, 0.2
    la = xi_ref - alpha * h_o @ xi_ref
    p = {"la": 0.0, "lola": 1.0}.get(name)
    if name == "sos":
        dot = -alpha * chi @ la
        p1 = 1.0 if dot >= 0 else min(1.0, -a * (la @ la) / dot)
        p2 = xi_ref @ xi_ref if np.linalg.norm(xi_ref) < b else 1.0
        p = min(p1, p2)
    make = {"la": lambda: LA(keras.optimizers.SGD(lr), alpha=alpha),
            "lola": lambda: LOLA(keras.optimizers.SGD(lr), alpha=alpha),
            "sos": lambda: SOS(keras.optimizers.SGD(lr), alpha=alpha, a=a, b=b)}[name]
    w0 = _flat_w(players)
    make().apply_game(Game(players, loss_fn))
    np.testing.assert_allclose(_flat_w(players), w0 - lr * (la - p * alpha * chi), rtol=0,
                               atol=1e-8 * np.abs(h_o).max())


@pytest.mark.parametrize("execution", ["eager", "function"])
@pytest.mark.parametrize("n_players", [2, 3])
def test_linearization_products_in_a_while_loop_equal_finite_differences(n_players,
                                                                        execution):
    """Three iterations v <- 0.5 v + 0.3 H_o v and u_t <- H_ts v_s inside a tf.while_loop,
    all through one recorded evaluation of the losses, against the NumPy iteration with H from
    differences of xi."""
    players, loss_fn = _game(n_players)
    xi_ref, h_o = _reference(players, loss_fn)
    blocks = _blocks_of(players)
    v0 = np.random.default_rng(8).normal(size=xi_ref.size)
    t, s = n_players - 1, 0  # a block H_ts below the diagonal, and H_st above it
    calls = []

    def compute():
        lin = products.off_diagonal_linearization(loss_fn, players, full=True,
                                                  blocks=[(t, s), (s, t)])
        calls.append(1)

        def body(i, v, u):
            v = [0.5 * a + 0.3 * b for a, b in zip(v, lin.ho_v(v))]
            u = lin.block_v(t, s, lin.block_v(s, t, u))
            return i + 1, v, u

        u0 = _split(players, v0)[t:t + 1]
        _, v, u = tf.while_loop(lambda i, v, u: i < 3, body, (0, _split(players, v0), u0))
        return lin.xi, v, u

    xi, v, u = compute() if execution == "eager" else tf.function(compute)()
    v_ref, u_ref = v0.copy(), v0[blocks[t]]
    for _ in range(3):
        v_ref = 0.5 * v_ref + 0.3 * h_o @ v_ref
        u_ref = h_o[blocks[t], blocks[s]] @ (h_o[blocks[s], blocks[t]] @ u_ref)
    np.testing.assert_allclose(_cat(xi), xi_ref, rtol=1e-12, atol=1e-12)
    scale = max(1.0, np.abs(h_o).max()) ** 2
    np.testing.assert_allclose(_cat(v), v_ref, rtol=0, atol=1e-8 * scale)
    np.testing.assert_allclose(_cat(u), u_ref, rtol=0, atol=1e-8 * scale * np.abs(u_ref).max())
    assert np.abs(u_ref).max() > 1e-5  # the tolerance above is relative to it


def test_linearization_refuses_unrecorded_and_bad_blocks():
    players, loss_fn = _game(3)
    with pytest.raises(ValueError, match=r"`blocks` must hold \(target, source\) pairs of "
                       r"different player indices in \[0, 3\)\. Received: \(1, 1\)"):
        products.off_diagonal_linearization(loss_fn, players, blocks=[(1, 1)])
    lin = products.off_diagonal_linearization(loss_fn, players, blocks=[(0, 1)])
    with pytest.raises(ValueError, match=r"The block 'full' was not recorded.*full=True"):
        lin.ho_v([tf.zeros(2, tf.float64)] * 3)
    with pytest.raises(ValueError, match=r"The block \(1, 0\) was not recorded"):
        lin.block_v(1, 0, [tf.zeros(2, tf.float64)])
    with pytest.raises(ValueError, match=r"one tensor per variable of the block \(1\)\. "
                       r"Received: 2 tensors"):
        lin.block_v(0, 1, [tf.zeros(3, tf.float64)] * 2)
