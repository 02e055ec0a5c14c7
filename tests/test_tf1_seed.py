"""Checks of the TF1 seed reference (tfgames.lab.tf1_seed) against independent TF2/NumPy."""

import numpy as np
import pytest
import tensorflow as tf

from tfgames.lab import tf1_seed

Z_DIM, X_DIM, BATCH = 3, 2, 8


def make_weights(seed, depth, width, z_dim=Z_DIM, x_dim=X_DIM, dtype=np.float32):
    rng = np.random.default_rng(seed)

    def mlp(sizes):
        out = []
        for a, b in zip(sizes[:-1], sizes[1:]):
            out.append((rng.standard_normal((a, b)) / np.sqrt(a)).astype(dtype))
            out.append((0.1 * rng.standard_normal(b)).astype(dtype))
        return out

    hidden = [width] * depth
    return {"discriminator": mlp([x_dim] + hidden + [1]),
            "generator": mlp([z_dim] + hidden + [x_dim])}


def make_batches(seed, n, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((BATCH, X_DIM)).astype(dtype),
             rng.standard_normal((BATCH, Z_DIM)).astype(dtype)) for _ in range(n)]


def eager_xi(params, n_disc, x_real, z):
    """Independent TF2 computation of Xi = [dL_D/d disc_vars, dL_G/d gen_vars]."""
    def mlp(h, ps):
        for i in range(len(ps) // 2):
            h = h @ ps[2 * i] + ps[2 * i + 1]
            if i < len(ps) // 2 - 1:
                h = tf.nn.relu(h)
        return h

    disc, gen = params[:n_disc], params[n_disc:]
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(params)
        out_real, out_fake = mlp(x_real, disc), mlp(mlp(z, gen), disc)
        bce = tf.nn.sigmoid_cross_entropy_with_logits
        d_loss = (tf.reduce_mean(bce(logits=out_real, labels=tf.ones_like(out_real)))
                  + tf.reduce_mean(bce(logits=out_fake, labels=tf.zeros_like(out_fake))))
        g_loss = tf.reduce_mean(bce(logits=out_fake, labels=tf.ones_like(out_fake)))
    xi = tape.gradient(d_loss, disc) + tape.gradient(g_loss, gen)
    del tape
    return xi


def flat_weights(w):
    return w["discriminator"] + w["generator"]


def test_rms_step_matches_numpy_tf1_rmsprop():
    w = make_weights(0, depth=1, width=8)
    (x, z), = make_batches(1, 1)
    lr = 1e-2
    params, losses = tf1_seed.run_seed_gan(w, [(x, z)], "RMS", lr, depth=1, width=8)
    p0 = flat_weights(w)
    g = [t.numpy() for t in eager_xi([tf.constant(p) for p in p0], 4, x, z)]
    for got, p, gi in zip(params[0], p0, g):
        ms = 0.9 * np.ones_like(p) + 0.1 * gi ** 2  # TF1 RMSProp: ms starts at ONES
        expected = p - lr * gi / np.sqrt(ms + 1e-10)
        assert got.shape == p.shape and got.dtype == np.float32
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert len(losses) == 1 and all(np.isfinite(losses[0]))


def test_sgd_step_and_other_modes_run():
    w = make_weights(2, depth=2, width=8)
    batches = make_batches(3, 2)
    params, _ = tf1_seed.run_seed_gan(w, batches[:1], "SGD", 0.1, depth=2, width=8)
    p0 = flat_weights(w)
    g = eager_xi([tf.constant(p) for p in p0], 6, *batches[0])
    for got, p, gi in zip(params[0], p0, g):
        np.testing.assert_allclose(got, p - 0.1 * gi.numpy(), rtol=1e-5, atol=1e-6)
    for mode in ("ADA", "ADG", "SGA"):
        params, losses = tf1_seed.run_seed_gan(w, batches, mode, 1e-3, depth=2, width=8)
        assert len(params) == 2 and len(params[0]) == 12
        assert np.isfinite(losses).all()
    with pytest.raises(ValueError):
        tf1_seed.build_seed_gan_graph(w, "XYZ", 1e-3, depth=2, width=8)


def dense_jacobian(p0, n_disc, x, z):
    """Dense J = d Xi / d theta (flattened) with tf.GradientTape.jacobian, float64."""
    shapes = [p.shape for p in p0]
    sizes = [p.size for p in p0]
    theta = tf.Variable(np.concatenate([p.ravel() for p in p0]))
    with tf.GradientTape() as tape:
        params = [tf.reshape(t, s) for t, s in zip(tf.split(theta, sizes), shapes)]
        xi = tf.concat([tf.reshape(g, [-1]) for g in eager_xi(params, n_disc, x, z)], 0)
    return tape.jacobian(xi, theta).numpy(), xi.numpy()


@pytest.fixture(scope="module")
def sga_graph_values():
    w = make_weights(4, depth=1, width=4, dtype=np.float64)
    (x, z), = make_batches(5, 1, dtype=np.float64)
    g = tf1_seed.build_seed_gan_graph(w, "SGA", 1e-2, depth=1, width=4, dtype=tf.float64)
    try:
        dbg = g.optimizer.debug_tensors
        vals = g.session.run(
            {"xi": g.grads, "h_v": dbg["h_v"], "ht_v": dbg["ht_v"], "lambda": dbg["lambda_"]},
            g.feed_dict(x, z))
        g.session.run(g.train_op, g.feed_dict(x, z))
        vals["after"] = g.session.run(g.variables)
    finally:
        g.session.close()
    J, xi = dense_jacobian(flat_weights(w), 4, x, z)
    return w, vals, J, xi


def test_hv_double_backward_matches_dense_jacobian(sga_graph_values):
    _, vals, J, xi = sga_graph_values
    flat = lambda ts: np.concatenate([np.ravel(t) for t in ts])  # noqa: E731
    np.testing.assert_allclose(flat(vals["xi"]), xi, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(flat(vals["h_v"]), J @ xi, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(flat(vals["ht_v"]), J.T @ xi, rtol=1e-9, atol=1e-12)
    # The game is not a potential game: H is not symmetric, so the check is not vacuous.
    assert np.abs(J - J.T).max() > 1e-3


def test_sga_step_matches_dense_numpy(sga_graph_values):
    w, vals, J, xi = sga_graph_values
    p0 = flat_weights(w)
    n = len(p0)  # number of variable tensors, as in the seed
    at_v = 0.5 * (J.T @ xi - J @ xi)
    mult = (xi @ (J.T @ xi)) * (at_v @ (J.T @ xi))
    lam = np.sign(mult / n + 0.1) * 1.0
    assert vals["lambda"] == lam
    adj = xi + lam * at_v
    # TF1 RMSProp turns its Python-float hyperparameters into float32 tensors and then casts them
    # to the variable dtype, so in float64 the constants are float32-rounded.
    lr, decay, eps = (np.float64(np.float32(c)) for c in (1e-2, 0.9, 1e-10))
    ms = decay * 1.0 + (1 - decay) * adj ** 2
    expected = np.concatenate([p.ravel() for p in p0]) - lr * adj / np.sqrt(ms + eps)
    got = np.concatenate([np.ravel(v) for v in vals["after"]])
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


def test_sga_with_zero_reg_equals_rms_exactly():
    w = make_weights(6, depth=1, width=8)
    batches = make_batches(7, 3)
    rms, rms_losses = tf1_seed.run_seed_gan(w, batches, "RMS", 1e-2, depth=1, width=8)
    sga, sga_losses = tf1_seed.run_seed_gan(
        w, batches, "SGA", 1e-2, depth=1, width=8, reg_params=0.0)
    assert rms_losses == sga_losses
    for step_rms, step_sga in zip(rms, sga):
        for a, b in zip(step_rms, step_sga):
            np.testing.assert_array_equal(a, b)
    # and reg_params=1 does move the parameters differently
    sga1, _ = tf1_seed.run_seed_gan(w, batches, "SGA", 1e-2, depth=1, width=8)
    assert any(not np.array_equal(a, b) for a, b in zip(rms[-1], sga1[-1]))


def test_seed_gan_graph_unpacks_and_orders_variables():
    w = make_weights(8, depth=2, width=4)
    graph, sess, train_op, feeds = g = tf1_seed.build_seed_gan_graph(
        w, "RMS", 1e-3, depth=2, width=4, batch_size=BATCH)
    try:
        assert set(feeds) == {"x_real", "z"}
        assert feeds["x_real"].shape.as_list() == [BATCH, X_DIM]
        assert [v.name for v in g.variables][:2] == ["discriminator/linear/w:0",
                                                     "discriminator/linear/b:0"]
        for v, a in zip(sess.run(g.variables), flat_weights(w)):
            np.testing.assert_array_equal(v, a)
        x, z = make_batches(9, 1)[0]
        sess.run(train_op, g.feed_dict(x, z))
    finally:
        sess.close()
    assert tf.executing_eagerly()
