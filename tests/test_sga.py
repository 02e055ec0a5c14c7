"""SGA and consensus: hand-written NumPy updates, special cases, convergence, config."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import TinyGAN, flat, real_batches
from test_products import _dense_jacobian

import tfgames


def _numpy_sga_step(w, xi, jac, lr, lam0, use_signs, normalizer, eps=0.1):
    """Balduzzi et al. 2018: dir = xi + lambda A^T xi, with sign alignment; then SGD."""
    a_t_xi = 0.5 * (jac.T @ xi - jac @ xi)
    ht_xi = jac.T @ xi
    lam = lam0
    if use_signs:
        lam = np.sign((xi @ ht_xi) * (a_t_xi @ ht_xi) / normalizer + eps) * abs(lam0)
    return w - lr * (xi + lam * a_t_xi), lam


def _quadratic_parts(a, c, B, x, y):
    """xi and H of f = a/2|x|^2 + x^T B y - c/2|y|^2 in closed form (x min, y max)."""
    k = len(x)
    xi = np.concatenate([a * x + B @ y, -B.T @ x + c * y])
    jac = np.block([[a * np.eye(k), B], [-B.T, c * np.eye(k)]])
    return xi, jac


@pytest.mark.parametrize("use_signs", [True, False])
@pytest.mark.parametrize("normalizer", ["scalars", "tensors"])
@pytest.mark.parametrize("hvp_mode", ["forward", "double_backward"])
def test_three_sga_steps_equal_numpy_closed_form(use_signs, normalizer, hvp_mode):
    a, c, lr, lam0 = 0.5, 0.3, 0.1, 1.0
    B = np.array([[1.0, 2.0], [0.0, 1.0]])
    model = tfgames.games.QuadraticZeroSum(a=a, c=c, coupling=B.tolist(),
                                           x0=[1.0, -0.5], y0=[0.3, 2.0])
    model.compile(optimizer=tfgames.SGA(keras.optimizers.SGD(lr), lambda_=lam0,
                                        use_signs=use_signs, normalizer=normalizer,
                                        hvp_mode=hvp_mode))
    w = np.array([1.0, -0.5, 0.3, 2.0])
    lams = []
    for _ in range(3):
        xi, jac = _quadratic_parts(a, c, B, w[:2], w[2:])
        w, lam = _numpy_sga_step(w, xi, jac, lr, lam0, use_signs,
                                 4.0 if normalizer == "scalars" else 2.0)
        lams.append(lam)
    hist = model.fit(tfgames.datasets.step_dataset(3), epochs=1, verbose=0)
    got = np.concatenate([model.x.numpy(), model.y.numpy()])
    np.testing.assert_allclose(got, w, rtol=1e-5, atol=1e-6)
    assert "sga_lambda" in hist.history


@pytest.mark.parametrize("hvp_mode", ["forward", "double_backward"])
@pytest.mark.parametrize("w0, sign", [([1.0, -0.5, 0.3, 2.0], 1.0),
                                      ([-1.4, -1.4, 15.9, 15.9], -1.0)])
def test_sga_diagnostics_equal_numpy_closed_form(hvp_mode, w0, sign):
    """sga_lambda, xi_norm and at_xi_norm of one step against the closed form; the second
    start makes alignment flip lambda's sign (<A^T xi, H^T xi> < 0 when a - c > 2b)."""
    a, c, b = 2.0, 0.1, 0.3
    B = b * np.eye(2)
    model = tfgames.games.QuadraticZeroSum(a=a, c=c, coupling=B.tolist(), x0=w0[:2], y0=w0[2:])
    model.compile(optimizer=tfgames.SGA(keras.optimizers.SGD(0.01), hvp_mode=hvp_mode))
    hist = model.fit(tfgames.datasets.step_dataset(1), epochs=1, verbose=0).history
    w = np.array(w0)
    xi, jac = _quadratic_parts(a, c, B, w[:2], w[2:])
    _, lam = _numpy_sga_step(w, xi, jac, 0.01, 1.0, True, 4.0)
    assert lam == sign
    np.testing.assert_allclose(hist["sga_lambda"], [lam])
    np.testing.assert_allclose(hist["xi_norm"], [np.linalg.norm(xi)], rtol=1e-6)
    at_xi = 0.5 * (jac.T @ xi - jac @ xi)
    np.testing.assert_allclose(hist["at_xi_norm"], [np.linalg.norm(at_xi)], rtol=1e-6)


def test_sga_step_on_a_gan_equals_dense_jacobian_update(tiny_gan):
    """One SGA step on a nonlinear GAN against a NumPy update built from tape.jacobian."""
    x = next(iter(real_batches(1, 16)))
    model = tiny_gan
    players = {k: v.trainable_variables for k, v in model.players().items()}
    state = model.seed_generator.state.numpy()

    def loss_fn():
        model.seed_generator.state.assign(state)
        return model.compute_losses(x)

    jac, xi = _dense_jacobian(players, loss_fn)
    w0 = flat([v.numpy() for vs in players.values() for v in vs])
    expected, _ = _numpy_sga_step(w0, xi, jac, 0.05, 1.0, True, float(w0.size))
    model.seed_generator.state.assign(state)
    model.compile(optimizer=tfgames.SGA(keras.optimizers.SGD(0.05)))
    model.fit(tf.data.Dataset.from_tensors(x), epochs=1, verbose=0)
    got = flat([v.numpy() for vs in players.values() for v in vs])
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("inner", ["rmsprop", "adam"])
def test_lambda_zero_is_exactly_the_inner_optimizer(inner):
    def run(opt):
        keras.utils.set_random_seed(1)
        model = TinyGAN(seed=3)
        model.compile(optimizer=opt)
        model.fit(real_batches(4, 16), epochs=1, verbose=0)
        return flat([v.numpy() for v in model.trainable_variables])

    make = {"rmsprop": lambda: keras.optimizers.RMSprop(1e-2),
            "adam": lambda: keras.optimizers.Adam(1e-2)}[inner]
    plain = run(make())
    sga0 = run(tfgames.SGA(make(), lambda_=0.0))
    np.testing.assert_array_equal(sga0, plain)
    sga1 = run(tfgames.SGA(make(), lambda_=1.0))
    assert not np.allclose(sga1, plain)


def _distance_after(optimizer, steps=300, model=None):
    model = model or tfgames.games.Bilinear()
    model.compile(optimizer=optimizer)
    model.fit(tfgames.datasets.step_dataset(steps), epochs=1, verbose=0)
    return model.distance_to_equilibrium()


def test_bilinear_gradient_descent_diverges_sga_and_consensus_converge():
    start = np.sqrt(2.0)
    gd = _distance_after(keras.optimizers.SGD(0.1))
    # GD on x*y: |w_t| = |w_0| (1 + eta^2)^(t/2).
    np.testing.assert_allclose(gd, start * 1.01 ** 150, rtol=1e-4)
    assert _distance_after(tfgames.SGA(keras.optimizers.SGD(0.1))) < 1e-3
    assert _distance_after(tfgames.Consensus(keras.optimizers.SGD(0.1), gamma=1.0)) < 1e-3


def test_three_player_game_trains_through_fit():
    gd = _distance_after(keras.optimizers.SGD(0.05), 400, tfgames.games.CyclicThreePlayer())
    sga = _distance_after(tfgames.SGA(keras.optimizers.SGD(0.05)), 400,
                          tfgames.games.CyclicThreePlayer())
    start = np.sqrt(4.0)
    assert gd > start, "simultaneous GD must move away from the equilibrium on this game"
    assert sga < 0.05 * start


def test_consensus_step_equals_numpy_closed_form():
    a, c, lr, gamma = 0.5, 0.3, 0.1, 2.0
    B = np.array([[1.0, 2.0], [0.0, 1.0]])
    model = tfgames.games.QuadraticZeroSum(a=a, c=c, coupling=B.tolist())
    w = np.ones(4)
    for _ in range(2):
        xi, jac = _quadratic_parts(a, c, B, w[:2], w[2:])
        w = w - lr * (xi + gamma * jac.T @ xi)
    model.compile(optimizer=tfgames.Consensus(keras.optimizers.SGD(lr), gamma=gamma))
    model.fit(tfgames.datasets.step_dataset(2), epochs=1, verbose=0)
    got = np.concatenate([model.x.numpy(), model.y.numpy()])
    np.testing.assert_allclose(got, w, rtol=1e-5)


@pytest.mark.parametrize("make", [
    lambda: tfgames.SGA(keras.optimizers.RMSprop(1e-3), lambda_=0.5, use_signs=False,
                        epsilon=0.2, normalizer="tensors", hvp_mode="double_backward"),
    lambda: tfgames.Consensus(keras.optimizers.Adam(1e-3), gamma=3.0),
])
def test_config_round_trip(make):
    opt = make()
    config = opt.get_config()
    clone = type(opt).from_config(config)
    assert clone.get_config() == config
    again = keras.optimizers.deserialize(keras.optimizers.serialize(opt))
    assert type(again) is type(opt) and again.get_config() == config
    assert type(clone.inner_optimizer) is type(opt.inner_optimizer)


def test_game_optimizer_without_a_game_says_how_to_use_it():
    opt = tfgames.SGA(keras.optimizers.SGD(0.1))
    v = keras.Variable(1.0)
    with pytest.raises(TypeError, match="needs the game.*GameModel"):
        opt.apply([tf.constant(1.0)], [v])
    with pytest.raises(TypeError, match="needs the game"):
        opt.apply_gradients([(tf.constant(1.0), v)])


@pytest.mark.parametrize("kwargs, match", [
    ({"lambda_": -1.0}, "`lambda_` must be a number >= 0.*Received: lambda_=-1.0"),
    ({"epsilon": 0.0}, "`epsilon` must be > 0. Received: epsilon=0.0"),
    ({"normalizer": "params"}, "`normalizer` must be one of .*Received: normalizer='params'"),
    ({"hvp_mode": "fwd"}, "`hvp_mode` must be one of .*Received: hvp_mode='fwd'"),
])
def test_invalid_sga_hyperparameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tfgames.SGA(keras.optimizers.SGD(0.1), **kwargs)


def test_invalid_consensus_gamma():
    with pytest.raises(ValueError, match="`gamma` must be a number >= 0. Received: gamma=-2"):
        tfgames.Consensus(keras.optimizers.SGD(0.1), gamma=-2)
