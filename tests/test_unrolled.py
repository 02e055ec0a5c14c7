"""Unrolled optimisation: functional SGD/Adam vs Keras, unrolled values vs real optimizer steps,
the generator's gradient through K steps vs finite differences (float64), UnrolledGAN."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import flat

import tfgames
import tfgames.lab.samplers
from tfgames import unrolled


def _mlp(sizes, name, dtype="float64", seed=0):
    layers = [keras.Input((sizes[0],), dtype=dtype)]
    for i, width in enumerate(sizes[1:]):
        last = i == len(sizes) - 2
        layers.append(keras.layers.Dense(
            width, activation=None if last else "tanh", dtype=dtype,
            kernel_initializer=keras.initializers.GlorotNormal(seed=seed + i),
            bias_initializer=keras.initializers.RandomNormal(stddev=0.3, seed=seed + 10 + i)))
    return keras.Sequential(layers, name=name)


def _tiny(seed=0):
    """A generator R^2 -> R^2 and a discriminator R^2 -> logit (float64), with a fixed batch."""
    g = _mlp([2, 3, 2], "g", seed=seed)
    d = _mlp([2, 4, 1], "d", seed=seed + 100)
    rng = np.random.default_rng(seed)
    x = tf.constant(rng.normal(size=(6, 2)), tf.float64)
    z = tf.constant(rng.normal(size=(6, 2)), tf.float64)
    return g, d, x, z


def _saddle(x, x_fake):
    return lambda d: unrolled.gan_saddle_loss(d(x), d(x_fake))


def _warm(optimizer, d, loss_fn, steps=2):
    """Take real optimizer steps so that the unroll starts from a non-trivial state."""
    for _ in range(steps):
        with tf.GradientTape() as tape:
            loss = loss_fn(d)
        optimizer.apply(tape.gradient(loss, d.trainable_variables), d.trainable_variables)


# Hyperparameters representable in float32, which Keras rounds them to (see the module notes),
# so that float64 comparisons with Keras can be exact to rounding.
OPTIMIZERS = {
    "sgd": lambda: keras.optimizers.SGD(0.25),
    "sgd_momentum": lambda: keras.optimizers.SGD(0.25, momentum=0.75),
    "sgd_nesterov": lambda: keras.optimizers.SGD(0.25, momentum=0.75, nesterov=True),
    "adam": lambda: keras.optimizers.Adam(0.0625, beta_1=0.5, beta_2=0.875, epsilon=1e-8),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_unrolled_values_equal_real_optimizer_steps(name):
    """theta^K from the tensor updates equals K applications of the Keras optimizer itself."""
    g, d, x, z = _tiny()
    loss_fn = _saddle(x, g(z))
    optimizer = OPTIMIZERS[name]()
    _warm(optimizer, d, loss_fn)
    state_before = flat([v.numpy() for v in optimizer.variables])
    values = unrolled.unroll_variables(d, loss_fn, 3, optimizer)
    np.testing.assert_array_equal(flat([v.numpy() for v in optimizer.variables]), state_before)
    _warm(optimizer, d, loss_fn, steps=3)
    np.testing.assert_allclose(flat(values), flat(d.trainable_variables), rtol=1e-12, atol=1e-14)


def test_adam_update_against_hand_written_numpy():
    """One step from a given state, against Kingma and Ba's equations written in NumPy."""
    rng = np.random.default_rng(3)
    w, g, m, v = (rng.normal(size=4) for _ in range(4))
    v = np.abs(v)
    lr, b1, b2, eps, t = 0.01, 0.5, 0.9, 1e-8, 7
    new, state = unrolled.adam_update(
        [tf.constant(w)], [tf.constant(g)],
        unrolled.AdamState(tf.constant(t, tf.int64), [tf.constant(m)], [tf.constant(v)]),
        learning_rate=lr, beta_1=b1, beta_2=b2, epsilon=eps)
    m1 = b1 * m + (1 - b1) * g
    v1 = b2 * v + (1 - b2) * g**2
    alpha = lr * np.sqrt(1 - b2 ** (t + 1)) / (1 - b1 ** (t + 1))
    np.testing.assert_allclose(new[0].numpy(), w - alpha * m1 / (np.sqrt(v1) + eps), rtol=1e-13)
    np.testing.assert_allclose(state.m[0].numpy(), m1, rtol=1e-13)
    assert int(state.iterations) == t + 1


def _unrolled_generator_loss(g, d, x, z, steps, optimizer):
    x_fake = g(z)
    loss_fn = _saddle(x, x_fake)
    values = unrolled.unroll_variables(d, loss_fn, steps, optimizer)
    return -loss_fn(unrolled.functional_call(d, values))


def _generator_gradient(g, d, x, z, steps, optimizer):
    with tf.GradientTape() as tape:
        loss = _unrolled_generator_loss(g, d, x, z, steps, optimizer)
    return flat(tape.gradient(loss, g.trainable_variables))


@pytest.mark.parametrize("name", ["sgd_momentum", "adam"])
def test_generator_gradient_matches_finite_differences(name):
    """d/d theta_G of -L(theta_G, theta_D^K(theta_G)), K = 3, by central differences."""
    g, d, x, z = _tiny()
    optimizer = OPTIMIZERS[name]()
    _warm(optimizer, d, _saddle(x, g(z)))
    analytic = _generator_gradient(g, d, x, z, 3, optimizer)

    h = 1e-6
    numeric = []
    for variable in g.trainable_variables:
        base = variable.numpy()
        for index in np.ndindex(base.shape):
            values = []
            for sign in (1.0, -1.0):
                shifted = base.copy()
                shifted[index] += sign * h
                variable.assign(shifted)
                values.append(float(_unrolled_generator_loss(g, d, x, z, 3, optimizer)))
            variable.assign(base)
            numeric.append((values[0] - values[1]) / (2 * h))
    np.testing.assert_allclose(analytic, np.array(numeric), rtol=1e-6, atol=1e-9)


def test_unrolling_changes_the_generator_gradient():
    g, d, x, z = _tiny()
    optimizer = OPTIMIZERS["adam"]()
    _warm(optimizer, d, _saddle(x, g(z)))
    plain = _generator_gradient(g, d, x, z, 0, optimizer)
    with tf.GradientTape() as tape:
        reference = -unrolled.gan_saddle_loss(d(x), d(g(z)))
    np.testing.assert_allclose(plain, flat(tape.gradient(reference, g.trainable_variables)),
                               rtol=1e-12)
    ahead = _generator_gradient(g, d, x, z, 5, optimizer)
    assert np.linalg.norm(ahead - plain) > 1e-3 * np.linalg.norm(plain)


def _gan(steps, seed=0):
    keras.utils.set_random_seed(seed)
    g = _mlp([3, 8, 2], "generator", dtype="float32", seed=seed)
    d = _mlp([2, 8, 1], "discriminator", dtype="float32", seed=seed + 50)
    return unrolled.UnrolledGAN(g, d, latent_dim=3, unroll_steps=steps, seed=seed)


def test_unrolled_gan_losses_and_gradients():
    """l_D is the plain saddle loss; xi_G is the gradient of -L at theta_D^K."""
    x = tfgames.lab.samplers.ring_batch(32, seed=1)
    model = _gan(4)
    model.compile(optimizer=keras.optimizers.Adam(1e-2, beta_1=0.5))
    state = model.seed_generator.state.numpy()
    game = model.make_game(x)
    losses, xi = game.gradient()
    model.seed_generator.state.assign(state)  # replay the step's noise
    z = keras.random.normal((32, 3), seed=model.seed_generator)
    x_fake = model.generator(z)
    np.testing.assert_allclose(
        float(losses["discriminator"]),
        float(unrolled.gan_saddle_loss(model.discriminator(x), model.discriminator(x_fake))),
        rtol=1e-6)
    with tf.GradientTape() as tape:
        x_fake = model.generator(z)
        loss_fn = _saddle(x, x_fake)
        values = unrolled.unroll_variables(model.discriminator, loss_fn, 4, model.optimizer)
        g_loss = -loss_fn(unrolled.functional_call(model.discriminator, values))
    expected = flat(tape.gradient(g_loss, model.generator.trainable_variables))
    np.testing.assert_allclose(flat(game.split(xi)["generator"]), expected, rtol=1e-5,
                               atol=1e-7)
    np.testing.assert_allclose(float(losses["generator"]), float(g_loss), rtol=1e-6)


def test_unrolled_gan_fit_traces_once_and_leaves_optimizer_state_to_real_steps():
    model = _gan(2)
    model.compile(optimizer=keras.optimizers.Adam(1e-3, beta_1=0.5))
    data = tf.data.Dataset.from_tensors(tfgames.lab.samplers.ring_batch(16, seed=2)).repeat(4)
    history = model.fit(data, epochs=1, verbose=0)
    assert int(model.optimizer.iterations) == 4  # the unrolled steps advance no state
    assert model.train_step_traces == 1
    assert np.isfinite(history.history["generator_loss"]).all()
    assert model.generate(5).shape == (5, 2)


def test_unrolled_gan_saving_round_trip(tmp_path):
    model = _gan(1)
    model.compile(optimizer=keras.optimizers.SGD(1e-2))
    path = tmp_path / "unrolled.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, unrolled.UnrolledGAN) and loaded.unroll_steps == 1
    np.testing.assert_array_equal(flat(loaded.trainable_variables),
                                  flat(model.trainable_variables))


def test_errors_name_the_constraint():
    g, d, x, z = _tiny()
    with pytest.raises(TypeError, match="supports keras.optimizers.SGD .* Received: .*RMSprop"):
        unrolled.unroll_variables(d, _saddle(x, g(z)), 1, keras.optimizers.RMSprop())
    with pytest.raises(ValueError, match="without `clipnorm`. Received: clipnorm=1.0"):
        unrolled.unroll_variables(d, _saddle(x, g(z)), 1, keras.optimizers.SGD(clipnorm=1.0))
    with pytest.raises(ValueError, match="integer >= 0 .* Received: steps=-1"):
        unrolled.unroll_variables(d, _saddle(x, g(z)), -1, keras.optimizers.SGD())
    with pytest.raises(ValueError, match="one value per trainable variable"):
        unrolled.functional_call(d, [])
    with pytest.raises(ValueError, match="Received: unroll_steps=-2"):
        unrolled.UnrolledGAN(g, d, latent_dim=2, unroll_steps=-2)


def test_unrolled_gan_unrolls_with_the_discriminators_own_per_player_optimizer():
    model = _gan(3)
    d_opt = keras.optimizers.Adam(1e-4, beta_1=0.5)
    model.compile(optimizer={"discriminator": d_opt, "generator": keras.optimizers.Adam(1e-3)})
    assert model.discriminator_optimizer() is d_opt
    assert d_opt.built
    with pytest.raises(TypeError, match="Received: an object of type RMSprop"):
        _gan(1).compile(optimizer={"discriminator": keras.optimizers.RMSprop(),
                                   "generator": keras.optimizers.Adam()})
