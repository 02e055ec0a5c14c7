"""OGD and Adamirror against NumPy implementations of the papers' equations.

First three steps, both first-step conventions, optimism (not plain Adam), the bilinear game
x*y (1000 steps from (1, 1), step 0.1), gradient evaluations per step, plain keras fit,
config round trip and resumed training.
"""

import keras
import numpy as np
import oracles
import pytest

import tfgames

A, C = 0.5, 0.3
B = np.array([[1.0, 2.0], [0.0, 1.0]])
X0, Y0 = [1.0, -0.5], [0.3, 2.0]
W0 = np.array(X0 + Y0)


# -- NumPy references ----------------------------------------------------------------------------
def quadratic_field(w):
    """xi of f = a/2 |x|^2 + x^T B y - c/2 |y|^2 (x minimises f, y maximises it)."""
    x, y = w[:2], w[2:]
    return np.concatenate([A * x + B @ y, -B.T @ x + C * y])


def bilinear_field(w):
    """xi of f = x * y (x minimises, y maximises)."""
    return np.array([w[1], -w[0]])


def numpy_gd(field, w, lr, steps):
    return oracles.trajectory(oracles.Simultaneous(oracles.FieldGame(field), oracles.SGD(lr)),
                              w, steps)


def numpy_ogd(field, w, lr, steps, first_step="plain"):
    """Daskalakis et al. 2018: w_{t+1} = w_t - 2 eta g_t + eta g_{t-1}."""
    return oracles.trajectory(oracles.OGDMethod(oracles.FieldGame(field), lr, first_step), w,
                              steps)


def numpy_adam(field, w, lr, steps, b1=0.9, b2=0.999, eps=1e-7):
    """Keras' Adam (epsilon added to sqrt(v), bias correction folded into the step)."""
    return oracles.trajectory(
        oracles.Simultaneous(oracles.FieldGame(field), oracles.Adam(lr, b1, b2, eps)), w, steps)


def numpy_adamirror(field, w, lr, steps, b1=0.9, b2=0.999, eps=1e-7, first_step="plain"):
    """Daskalakis et al. 2018, Algorithm 1 (optimistic Adam)."""
    return oracles.trajectory(
        oracles.AdamirrorMethod(oracles.FieldGame(field), lr, b1, b2, eps, first_step), w, steps)


# -- helpers -------------------------------------------------------------------------------------
def quadratic_model():
    return tfgames.games.QuadraticZeroSum(a=A, c=C, coupling=B.tolist(), x0=X0, y0=Y0)


def trajectory(model, optimizer, steps, **compile_kwargs):
    """Parameters after each of ``steps`` fit steps."""
    model.compile(optimizer=optimizer, **compile_kwargs)
    seen = []

    def record(batch, logs):
        seen.append(np.concatenate([np.ravel(v.numpy()) for v in model.trainable_variables]))

    model.fit(tfgames.datasets.step_dataset(steps), epochs=1, verbose=0,
              callbacks=[keras.callbacks.LambdaCallback(on_train_batch_end=record)])
    return np.array(seen)


# -- the papers' equations, step by step ----------------------------------------------------------
@pytest.mark.parametrize("first_step", ["plain", "double"])
def test_ogd_first_three_steps_equal_numpy(first_step):
    got = trajectory(quadratic_model(), tfgames.OGD(0.1, first_step=first_step), 3)
    np.testing.assert_allclose(got, numpy_ogd(quadratic_field, W0, 0.1, 3, first_step),
                               rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("first_step,jit", [("plain", False), ("double", False), ("plain", True)])
def test_adamirror_first_three_steps_equal_numpy(first_step, jit):
    opt = tfgames.Adamirror(0.1, beta_1=0.5, beta_2=0.9, epsilon=1e-7, first_step=first_step)
    got = trajectory(quadratic_model(), opt, 3, jit_compile=jit)
    want = numpy_adamirror(quadratic_field, W0, 0.1, 3, 0.5, 0.9, 1e-7, first_step)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_first_step_conventions():
    """plain: the first step is SGD's / Adam's; double: it is twice as long."""
    g0 = quadratic_field(W0)
    plain = trajectory(quadratic_model(), tfgames.OGD(0.1), 1)[0]
    double = trajectory(quadratic_model(), tfgames.OGD(0.1, first_step="double"), 1)[0]
    np.testing.assert_allclose(plain, W0 - 0.1 * g0, rtol=1e-6)
    np.testing.assert_allclose(double, W0 - 0.2 * g0, rtol=1e-6)

    adam = trajectory(quadratic_model(), keras.optimizers.Adam(0.1, 0.5, 0.9), 1)[0]
    mirror = trajectory(quadratic_model(), tfgames.Adamirror(0.1, 0.5, 0.9), 1)[0]
    mirror2 = trajectory(quadratic_model(), tfgames.Adamirror(0.1, 0.5, 0.9, first_step="double"),
                         1)[0]
    # Keras adds epsilon to sqrt(v), the paper to sqrt(v^): a 1e-7 relative difference here.
    np.testing.assert_allclose(mirror, adam, rtol=1e-6)
    np.testing.assert_allclose(mirror2 - W0, 2 * (mirror - W0), rtol=1e-5)


def test_adamirror_is_optimistic_not_adam():
    """The seed overwrote d_{t-1} with d_t before reading it: 2 d_t - d_t = d_t, plain Adam."""
    mirror = trajectory(quadratic_model(), tfgames.Adamirror(0.1, 0.0, 0.9), 3)
    adam = numpy_adam(quadratic_field, W0, 0.1, 3, 0.0, 0.9, 0.0)
    np.testing.assert_allclose(mirror[0], adam[0], rtol=1e-6)
    assert np.abs(mirror[1:] - adam[1:]).max() > 1e-2
    np.testing.assert_allclose(
        mirror, numpy_adamirror(quadratic_field, W0, 0.1, 3, 0.0, 0.9), rtol=1e-6, atol=1e-7)


# -- the bilinear game x*y -----------------------------------------------------------------------
BILINEAR = [
    # name, optimizer, NumPy reference, converges (< 0.02 from the equilibrium)
    ("gd", lambda: keras.optimizers.SGD(0.1),
     lambda: numpy_gd(bilinear_field, np.ones(2), 0.1, 1000), False),
    ("adam_b1_0", lambda: keras.optimizers.Adam(0.1, beta_1=0.0),
     lambda: numpy_adam(bilinear_field, np.ones(2), 0.1, 1000, b1=0.0), False),
    ("adam_b1_0.9", lambda: keras.optimizers.Adam(0.1),
     lambda: numpy_adam(bilinear_field, np.ones(2), 0.1, 1000), False),
    ("ogd", lambda: tfgames.OGD(0.1),
     lambda: numpy_ogd(bilinear_field, np.ones(2), 0.1, 1000), True),
    ("ogd_double", lambda: tfgames.OGD(0.1, first_step="double"),
     lambda: numpy_ogd(bilinear_field, np.ones(2), 0.1, 1000, "double"), True),
    ("adamirror_b1_0", lambda: tfgames.Adamirror(0.1, beta_1=0.0),
     lambda: numpy_adamirror(bilinear_field, np.ones(2), 0.1, 1000, b1=0.0), True),
    ("adamirror_b1_0.9", lambda: tfgames.Adamirror(0.1),
     lambda: numpy_adamirror(bilinear_field, np.ones(2), 0.1, 1000), False),
]


@pytest.mark.parametrize("name,make,reference,converges", BILINEAR, ids=[b[0] for b in BILINEAR])
def test_bilinear_game_outcome_matches_numpy(name, make, reference, converges):
    model = tfgames.games.Bilinear()
    model.compile(optimizer=make())
    model.fit(tfgames.datasets.step_dataset(1000), epochs=1, verbose=0)
    got = model.distance_to_equilibrium()
    want = float(np.linalg.norm(reference()[-1]))
    assert abs(got - want) <= 1e-3 * want + 1e-6, (got, want)
    if converges:
        assert got < 0.02
    else:
        assert got > 1.0


def test_documented_bilinear_figures():
    """The figures quoted in the docs, from the NumPy references."""
    dist = lambda traj: float(np.linalg.norm(traj[-1]))  # noqa: E731
    one = np.ones(2)
    assert 200 < dist(numpy_gd(bilinear_field, one, 0.1, 1000)) < 210
    assert 4.6 < dist(numpy_adam(bilinear_field, one, 0.1, 1000, b1=0.0)) < 4.8
    assert 0.008 < dist(numpy_ogd(bilinear_field, one, 0.1, 1000)) < 0.01
    assert dist(numpy_adamirror(bilinear_field, one, 0.1, 1000, b1=0.0)) < 0.02


# -- a plain keras model --------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["ogd", "adamirror"])
def test_plain_keras_fit_equals_numpy(name):
    """Least squares with a bias-free Dense layer in keras.Model.fit."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 3)).astype("float32")
    y = rng.standard_normal((8, 1)).astype("float32")
    w0 = np.array([[0.5], [-1.0], [0.25]], dtype="float32")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, use_bias=False)])
    model.layers[0].kernel.assign(w0)
    opt = tfgames.OGD(0.05) if name == "ogd" else tfgames.Adamirror(0.05, 0.5, 0.9)
    model.compile(optimizer=opt, loss="mse")
    model.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0)

    def field(w):
        w = w.reshape(3, 1)
        return (2.0 / 8.0 * x.T @ (x @ w - y)).ravel()

    if name == "ogd":
        want = numpy_ogd(field, w0.ravel().astype(float), 0.05, 3)[-1]
    else:
        want = numpy_adamirror(field, w0.ravel().astype(float), 0.05, 3, 0.5, 0.9)[-1]
    np.testing.assert_allclose(model.layers[0].kernel.numpy().ravel(), want, rtol=1e-5,
                               atol=1e-6)


# -- config and errors (evaluation counts, save/load and resume: tests/test_registry.py) ----------
@pytest.mark.parametrize("make", [
    lambda: tfgames.OGD(0.03, first_step="double", clipnorm=1.0),
    lambda: tfgames.Adamirror(2e-4, 0.5, 0.9, 1e-8, first_step="double"),
])
def test_config_round_trip(make):
    opt = make()
    config = opt.get_config()
    clone = type(opt).from_config(config)
    assert clone.get_config() == config
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(opt))
    assert type(restored) is type(opt) and restored.get_config() == config


def test_invalid_arguments_are_explained():
    with pytest.raises(ValueError, match=r"`beta_1` must be in the \[0, 1\) range.*beta_1=1.0"):
        tfgames.Adamirror(beta_1=1.0)
    with pytest.raises(ValueError, match=r"`beta_2` must be in the \[0, 1\).*beta_2=-0.1"):
        tfgames.Adamirror(beta_2=-0.1)
    with pytest.raises(ValueError, match=r"`epsilon` must be >= 0.*epsilon=-1"):
        tfgames.Adamirror(epsilon=-1)
    for cls in (tfgames.OGD, tfgames.Adamirror):
        with pytest.raises(ValueError, match=r"`first_step` must be one of \('plain', 'double'\)"
                                             r".*first_step='zero'"):
            cls(first_step="zero")


def test_learning_rate_schedule_uses_the_current_rate():
    """Both terms use eta_t: with eta_t = 0.1 / (t + 1), check two OGD steps."""
    schedule = keras.optimizers.schedules.InverseTimeDecay(0.1, decay_steps=1, decay_rate=1.0)
    got = trajectory(quadratic_model(), tfgames.OGD(schedule), 2)
    g0 = quadratic_field(W0)
    w1 = W0 - 0.1 * g0
    g1 = quadratic_field(w1)
    w2 = w1 - 0.05 * (2 * g1 - g0)
    np.testing.assert_allclose(got, np.array([w1, w2]), rtol=1e-6, atol=1e-7)
