"""GameModel: fit/evaluate, metrics, callbacks, saving and resuming, XLA, tracing."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import TinyGAN, flat, real_batches

import tfgames


def _weights(model):
    return flat([v.numpy() for v in model.trainable_variables])


def _sga():
    return tfgames.SGA(keras.optimizers.RMSprop(1e-2))


def test_fit_reports_player_losses_and_sga_diagnostics(tiny_gan):
    tiny_gan.compile(optimizer=_sga())
    hist = tiny_gan.fit(real_batches(), epochs=2, verbose=0)
    assert set(hist.history) == {"discriminator_loss", "generator_loss", "sga_lambda",
                                 "xi_norm", "at_xi_norm"}
    assert all(np.isfinite(v).all() for v in hist.history.values())
    assert all(-1.0 <= lam <= 1.0 for lam in hist.history["sga_lambda"])  # epoch means
    lam = tiny_gan.evaluate(real_batches(2), verbose=0, return_dict=True)
    # evaluate reports what it computes: no optimizer diagnostics (issue 16, point 7)
    assert set(lam) == {"discriminator_loss", "generator_loss"}


def test_stock_optimizer_is_simultaneous_gradient_descent(tiny_gan):
    """One step with SGD equals w - lr * xi computed outside the model."""
    x = next(iter(real_batches(1, 16)))
    state = tiny_gan.seed_generator.state.numpy()
    game = tiny_gan.make_game(x)
    _, xi = game.gradient()
    expected = flat([v.numpy() - 0.1 * g.numpy() for v, g in zip(game.variables, xi)])
    tiny_gan.seed_generator.state.assign(state)
    tiny_gan.compile(optimizer=keras.optimizers.SGD(0.1))
    tiny_gan.fit(tf.data.Dataset.from_tensors(x), epochs=1, verbose=0)
    got = flat([v.numpy() for v in game.variables])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)


def test_no_retracing_after_the_first_step(tiny_gan):
    tiny_gan.compile(optimizer=_sga())
    tiny_gan.fit(real_batches(6, 16), epochs=3, verbose=0)
    assert tiny_gan.train_step_traces == 1


@pytest.mark.parametrize("make", [_sga, lambda: tfgames.Consensus(keras.optimizers.Adam(1e-2))])
def test_jit_compile_matches_graph_mode(make):
    """XLA and graph mode agree (noise comes with the data: XLA's RNG differs)."""
    results = []
    for jit in (False, True):
        keras.utils.set_random_seed(1)
        model = TinyGAN(seed=3)
        model.compile(optimizer=make(), jit_compile=jit)
        model.fit(real_batches(3, 16, with_noise=True), epochs=1, verbose=0)
        results.append(_weights(model))
    assert not np.allclose(results[0], TinyGAN_initial_weights())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-4, atol=1e-5)


def TinyGAN_initial_weights():
    keras.utils.set_random_seed(1)
    return _weights(TinyGAN(seed=3))


def test_callbacks_progress_bar_and_tensorboard(tiny_gan, tmp_path, capsys):
    tiny_gan.compile(optimizer=_sga())
    seen = []
    cb = keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: seen.append(dict(logs)))
    tiny_gan.fit(real_batches(), epochs=2, verbose=1,
                 callbacks=[cb, keras.callbacks.TensorBoard(str(tmp_path / "tb"))])
    assert len(seen) == 2 and "sga_lambda" in seen[0]
    assert "generator_loss" in capsys.readouterr().out
    events = [f for _, _, fs in os.walk(tmp_path / "tb") for f in fs if "tfevents" in f]
    assert events


def test_save_load_and_resume_equals_uninterrupted(tmp_path, fixed_sum_order):
    def fresh():
        keras.utils.set_random_seed(1)
        return TinyGAN(seed=3)

    data = real_batches(4, 16)
    straight = fresh()
    straight.compile(optimizer=_sga())
    straight.fit(data, epochs=4, verbose=0)

    first = fresh()
    first.compile(optimizer=_sga())
    first.fit(data, epochs=2, verbose=0)
    path = str(tmp_path / "gan.keras")
    first.save(path)
    resumed = keras.models.load_model(path)
    assert isinstance(resumed.optimizer, tfgames.SGA)
    assert int(resumed.optimizer.iterations.numpy()) == 8
    inner_state = [v.numpy() for v in resumed.optimizer.inner_optimizer.variables]
    assert np.any([np.abs(s).sum() > 0 for s in inner_state[1:]]), "RMSprop state restored"
    resumed.fit(data, epochs=2, verbose=0)
    np.testing.assert_allclose(_weights(resumed), _weights(straight), rtol=1e-6, atol=1e-7)


def test_canonical_game_save_load(tmp_path):
    model = tfgames.games.Bilinear(x0=0.5, y0=-1.0)
    model.compile(optimizer=tfgames.Consensus(keras.optimizers.SGD(0.1), gamma=1.0))
    model.fit(tfgames.datasets.step_dataset(5), epochs=1, verbose=0)
    path = str(tmp_path / "bilinear.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.x0 == 0.5 and float(loaded.x.numpy()) == float(model.x.numpy())
    assert loaded.optimizer.gamma == 1.0


GAME_OPTIMIZERS = {
    "sga": lambda: tfgames.SGA(keras.optimizers.SGD(0.1)),
    "sga-double-backward": lambda: tfgames.SGA(keras.optimizers.SGD(0.1),
                                               hvp_mode="double_backward"),
    "consensus": lambda: tfgames.Consensus(keras.optimizers.SGD(0.1)),
    "extragradient": lambda: tfgames.Extragradient(keras.optimizers.SGD(0.1)),
    "lookahead": lambda: tfgames.Lookahead(keras.optimizers.SGD(0.1)),
    "ogd": lambda: tfgames.OGD(0.1),
    "adamirror": lambda: tfgames.Adamirror(0.1),
}


@pytest.mark.parametrize("name", sorted(GAME_OPTIMIZERS))
def test_plain_tf_variable_players_step_like_keras_variables(name):
    """A game declared with plain tf.Variables follows the same trajectory as with Keras
    variables (x * y from (1, 1), 5 steps); the two variable kinds take different code paths
    in tfgames.products."""

    def run(make_variable):
        x, y = make_variable(1.0), make_variable(1.0)
        game = tfgames.Game({"x": x, "y": y},
                            lambda: tfgames.zero_sum(x * y, min_player="x", max_player="y"))
        optimizer = GAME_OPTIMIZERS[name]()
        path = []
        for _ in range(5):
            if isinstance(optimizer, tfgames.GameOptimizer):
                optimizer.apply_game(game)
            else:  # a first-order optimizer steps on xi
                optimizer.apply(game.gradient()[1], game.variables)
            path.append([float(x.numpy()), float(y.numpy())])
        return np.array(path)

    keras_path = run(keras.Variable)
    np.testing.assert_array_equal(run(tf.Variable), keras_path)
    assert np.abs(keras_path[-1] - 1.0).max() > 0.05  # the players did move
