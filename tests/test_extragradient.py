"""Extragradient, ExtraAdam and past extragradient against NumPy implementations.

First three steps (eager, graph, XLA), the extrapolation step size, same or fresh noise,
gradient evaluations per step, the bilinear game x*y, the error without a game, config
round trip and resumed training.
"""

import keras
import numpy as np
import oracles
import pytest
import tensorflow as tf
from conftest import batchnorm_losses, batchnorm_players, flat
from test_adamirror_ogd import (
    W0,
    bilinear_field,
    numpy_ogd,
    quadratic_field,
    quadratic_model,
    trajectory,
)

import tfgames

# -- NumPy references ----------------------------------------------------------------------------
NumpyAdam, NumpySGD = oracles.Adam, oracles.SGD


def numpy_extragradient(field, w, steps, inner, lr_e=None, past=False):
    """Korpelevich 1976 / Gidel et al. 2019; ``past``: Popov 1980 with F(w_{-1/2}) = 0."""
    return oracles.trajectory(
        oracles.ExtragradientMethod(oracles.FieldGame(field), inner, lr_e, past), w, steps)


# -- helpers -------------------------------------------------------------------------------------
@keras.saving.register_keras_serializable(package="tfgames_tests")
class NoisyBilinear(tfgames.games.Bilinear):
    """f = x*y + eps*x with eps ~ N(0, 1) from the model's seed generator; records eps."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.draws = []

    def compute_losses(self, data, training=False):
        eps = keras.random.normal((), seed=self.seed_generator)
        self.draws.append(float(eps))
        return tfgames.zero_sum(self.x * self.y + eps * self.x, min_player="x", max_player="y")


def scalar_game(loss=lambda x, y: x * y):
    x, y = keras.Variable(1.0, name="x"), keras.Variable(1.0, name="y")
    game = tfgames.Game({"x": x, "y": y},
                        lambda: tfgames.zero_sum(loss(x, y), min_player="x", max_player="y"))
    return game, x, y


# -- the papers' equations, step by step ----------------------------------------------------------
CASES = {
    "extragradient": (lambda: tfgames.Extragradient(keras.optimizers.SGD(0.1)),
                      lambda: dict(inner=NumpySGD(0.1))),
    "extrapolation_lr": (
        lambda: tfgames.Extragradient(keras.optimizers.SGD(0.1), extrapolation_learning_rate=0.3),
        lambda: dict(inner=NumpySGD(0.1), lr_e=0.3)),
    "past": (lambda: tfgames.Extragradient(keras.optimizers.SGD(0.1), past=True),
             lambda: dict(inner=NumpySGD(0.1), past=True)),
    "extra_adam": (
        lambda: tfgames.Extragradient(keras.optimizers.Adam(0.1, 0.5, 0.9)),
        lambda: dict(inner=NumpyAdam(0.1, 0.5, 0.9, 1e-7))),
    "extra_adam_extrapolation_lr": (
        lambda: tfgames.Extragradient(keras.optimizers.Adam(0.1, 0.5, 0.9),
                                      extrapolation_learning_rate=0.05),
        lambda: dict(inner=NumpyAdam(0.1, 0.5, 0.9, 1e-7), lr_e=0.05)),
    "past_extrapolation_lr": (
        lambda: tfgames.Extragradient(keras.optimizers.SGD(0.1), past=True,
                                      extrapolation_learning_rate=0.3),
        lambda: dict(inner=NumpySGD(0.1), lr_e=0.3, past=True)),
    "past_extra_adam": (
        lambda: tfgames.Extragradient(keras.optimizers.Adam(0.1, 0.5, 0.9), past=True),
        lambda: dict(inner=NumpyAdam(0.1, 0.5, 0.9, 1e-7), past=True)),
}


@pytest.mark.parametrize("name,jit", [(n, False) for n in CASES]
                         + [("extra_adam_extrapolation_lr", True), ("past_extra_adam", True)])
def test_first_three_steps_equal_numpy(name, jit):
    make, reference = CASES[name]
    opt = make()
    got = trajectory(quadratic_model(), opt, 3, jit_compile=jit)
    want = numpy_extragradient(quadratic_field, W0, 3, **reference())
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    assert int(opt.iterations.numpy()) == 3
    assert int(opt.inner_optimizer.iterations.numpy()) == 6
    np.testing.assert_allclose(float(opt.inner_optimizer.learning_rate.numpy()), 0.1)


def test_past_extragradient_extrapolates_along_ogd():
    """With SGD, the points w_{t+1/2} of past extragradient follow OGD ('double' start)."""
    game, x, y = scalar_game()
    opt = tfgames.Extragradient(keras.optimizers.SGD(0.1), past=True)
    half_points = []
    for _ in range(4):
        opt.apply_game(game)
        # F(w_{t+1/2}) = (y_half, -x_half) is stored: recover w_{t+1/2} from it.
        f = [p.numpy() for p in opt._past_gradients]
        half_points.append(np.array([-f[1], f[0]]))
    ogd = numpy_ogd(bilinear_field, np.ones(2), 0.1, 3, first_step="double")
    np.testing.assert_allclose(half_points[0], np.ones(2), rtol=1e-6)
    np.testing.assert_allclose(np.array(half_points[1:]), ogd, rtol=1e-6)


# -- noise and evaluations -----------------------------------------------------------------------
@pytest.mark.parametrize("fresh", [False, True])
def test_second_evaluation_same_or_fresh_noise(fresh):
    model = NoisyBilinear(seed=4)
    model.compile(optimizer=tfgames.Extragradient(keras.optimizers.SGD(0.1), fresh_noise=fresh),
                  run_eagerly=True)
    model.fit(tfgames.datasets.step_dataset(1), epochs=1, verbose=0)
    e1, e2 = model.draws
    assert (e1 != e2) if fresh else (e1 == e2)
    half = np.array([1.0 - 0.1 * (1.0 + e1), 1.0 + 0.1 * 1.0])
    want = np.array([1.0 - 0.1 * (half[1] + e2), 1.0 + 0.1 * half[0]])
    np.testing.assert_allclose([float(model.x.numpy()), float(model.y.numpy())], want, rtol=1e-6)


@pytest.mark.parametrize("past,per_step", [(False, 2), (True, 1)])
def test_gradient_evaluations_per_step(past, per_step):
    game, _, _ = scalar_game()
    opt = tfgames.Extragradient(keras.optimizers.SGD(0.1), past=past)
    for step in range(1, 4):
        opt.apply_game(game)
        assert game.evaluations == per_step * step


@pytest.mark.parametrize("past", [False, True])
def test_batchnorm_statistics_move_at_every_evaluation(past):
    """State that the losses change moves at each of the step's evaluations: twice per step
    (at w_t, then at w_{t+1/2}) for extragradient, once for past extragradient, as in Gidel et
    al.'s train_extraadam.py, which runs its BatchNorm generator in training mode at both
    points. Reference: ordinary evaluations at w_0 and at w_0 - eta xi(w_0), by hand."""
    x = tf.random.normal((16, 2), seed=7)

    def build():
        d, g = batchnorm_players(seed=3, hidden=4)
        z = tf.random.stateless_normal((16, 2), seed=(1, 2))
        return d, g, lambda: batchnorm_losses(d, g, x, z)

    d, g, loss_fn = build()
    players = {"d": d.trainable_variables, "g": g.trainable_variables}
    _, xi = tfgames.products.simultaneous_gradient(loss_fn, players)  # evaluation at w_0
    once = [v.numpy() for v in d.non_trainable_variables]
    for v, f in zip(d.trainable_variables + g.trainable_variables, xi):
        v.assign_sub(0.1 * f)
    loss_fn()  # evaluation at w_{1/2}
    twice = [v.numpy() for v in d.non_trainable_variables]
    assert not np.allclose(once[0], twice[0])

    d, g, loss_fn = build()
    game = tfgames.Game({"d": d, "g": g}, loss_fn)
    tfgames.Extragradient(keras.optimizers.SGD(0.1), past=past).apply_game(game)
    # Past extragradient's first extrapolation does not move (F(w_{-1/2}) = 0): its one
    # evaluation is at w_0.
    for got, want in zip(d.non_trainable_variables, once if past else twice):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-7)

# -- the bilinear game x*y -----------------------------------------------------------------------
BILINEAR = [
    ("extragradient", lambda: tfgames.Extragradient(keras.optimizers.SGD(0.1)),
     lambda: dict(inner=NumpySGD(0.1)), True),
    ("past_extragradient", lambda: tfgames.Extragradient(keras.optimizers.SGD(0.1), past=True),
     lambda: dict(inner=NumpySGD(0.1), past=True), True),
    ("extra_adam_b1_0",
     lambda: tfgames.Extragradient(keras.optimizers.Adam(0.1, beta_1=0.0)),
     lambda: dict(inner=NumpyAdam(0.1, 0.0, 0.999, 1e-7)), True),
    ("extra_adam_b1_0.9", lambda: tfgames.Extragradient(keras.optimizers.Adam(0.1)),
     lambda: dict(inner=NumpyAdam(0.1, 0.9, 0.999, 1e-7)), False),
]


@pytest.mark.parametrize("name,make,reference,converges", BILINEAR, ids=[b[0] for b in BILINEAR])
def test_bilinear_game_outcome_matches_numpy(name, make, reference, converges):
    model = tfgames.games.Bilinear()
    model.compile(optimizer=make())
    model.fit(tfgames.datasets.step_dataset(1000), epochs=1, verbose=0)
    got = model.distance_to_equilibrium()
    want = float(np.linalg.norm(
        numpy_extragradient(bilinear_field, np.ones(2), 1000, **reference())[-1]))
    assert abs(got - want) <= 1e-3 * want + 1e-6, (got, want)
    if converges:
        assert got < 0.02
    else:
        assert got > 1.0


# -- errors --------------------------------------------------------------------------------------
def test_without_a_game_the_error_says_what_to_do():
    opt = tfgames.Extragradient(keras.optimizers.SGD(0.1))
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=opt, loss="mse")
    with pytest.raises(TypeError, match="Extragradient needs the game.*tfgames.GameModel"):
        model.fit(np.ones((4, 3)), np.ones((4, 1)), verbose=0)
    with pytest.raises(TypeError, match="Extragradient needs the game.*re-evaluates.*OGD"):
        opt.apply([tf.ones((3, 1))], model.trainable_variables[:1])


def test_invalid_arguments_are_explained():
    sgd = keras.optimizers.SGD
    with pytest.raises(ValueError, match="no second evaluation.*past=True, fresh_noise=True"):
        tfgames.Extragradient(sgd(0.1), past=True, fresh_noise=True)
    with pytest.raises(ValueError, match="`extrapolation_learning_rate` must be a number > 0"):
        tfgames.Extragradient(sgd(0.1), extrapolation_learning_rate=-1.0)
    decay = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)
    with pytest.raises(ValueError, match="one constant learning rate.*SGD"):
        tfgames.Extragradient(sgd(decay), extrapolation_learning_rate=0.1)
    with pytest.raises(TypeError, match="`past` must be a bool"):
        tfgames.Extragradient(sgd(0.1), past="yes")
    alternating = tfgames.PerPlayer({"x": sgd(0.1), "y": sgd(0.1)}, schedule="alternating")
    with pytest.raises(ValueError, match="schedule='simultaneous'.*'alternating'"):
        tfgames.Extragradient(alternating)
    with pytest.raises(TypeError, match="Keras 3 optimizer"):
        tfgames.Extragradient("sgd")


# -- config and saving ---------------------------------------------------------------------------
def test_config_round_trip():
    opt = tfgames.Extragradient(keras.optimizers.Adam(2e-4, 0.5, 0.9),
                                extrapolation_learning_rate=1e-4, fresh_noise=True)
    config = opt.get_config()
    clone = tfgames.Extragradient.from_config(config)
    assert clone.get_config() == config
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(opt))
    assert isinstance(restored.inner_optimizer, keras.optimizers.Adam)
    assert restored.get_config() == config


@pytest.mark.slow
def test_mirrored_strategy_equals_one_device():
    """Both variants on 2 logical CPUs under MirroredStrategy (tests/distributed_worker.py)."""
    import json
    import os
    import subprocess
    import sys

    here = os.path.dirname(__file__)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.dirname(here), here])}
    proc = subprocess.run(
        [sys.executable, os.path.join(here, "distributed_worker.py"),
         "extragradient,past_extragradient"],
        capture_output=True, text=True, env=env, timeout=600)
    line = [entry for entry in proc.stdout.splitlines() if entry.startswith("RESULT ")]
    assert line, proc.stderr[-4000:]
    for name, result in json.loads(line[0][len("RESULT "):]).items():
        single, mirrored, init = (flat(result[k]) for k in ("single", "mirrored", "init"))
        assert np.abs(single - init).max() > 1e-3, name
        np.testing.assert_allclose(mirrored, single, rtol=1e-5, atol=1e-6, err_msg=name)
