"""Bad input fails early, before any variable changes, with the constraint, value and fix."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import flat

import tfgames


class _Game(tfgames.GameModel):
    """A configurable two-player game for error tests."""

    def __init__(self, players_fn, losses_fn, **kwargs):
        super().__init__(**kwargs)
        self.a = self.add_weight(shape=(2,), initializer="ones", name="a")
        self.b = self.add_weight(shape=(), initializer="ones", name="b")
        self.n = self.add_weight(shape=(), initializer="zeros", name="n", trainable=False)
        self._players_fn, self._losses_fn = players_fn, losses_fn

    def players(self):
        return self._players_fn(self)

    def compute_losses(self, data, training=False):
        return self._losses_fn(self)


def _ok_losses(m):
    f = tf.reduce_sum(m.a) * m.b
    return {"p": f, "q": -f}


@pytest.mark.parametrize("players_fn, error, match", [
    (lambda m: {}, ValueError, "needs a non-empty mapping"),
    (lambda m: {"p": m.a, "q": m.n}, ValueError, "Player 'q' has no trainable variables"),
    (lambda m: {"p": [m.a, m.b], "q": m.b}, ValueError, "owned by two players, 'p' and 'q'"),
    (lambda m: {"p": m.a, "q": "b"}, TypeError, "Player 'q' must be a Keras layer.*str"),
    (lambda m: {"p": m.a, "q": keras.layers.Dense(2)}, ValueError, "is not built"),
    (lambda m: {"p": m.a, "q": keras.Variable(1.0)}, ValueError, "does not track"),
])
def test_bad_players_are_rejected_at_compile(players_fn, error, match):
    model = _Game(players_fn, _ok_losses)
    with pytest.raises(error, match=match):
        model.compile(optimizer=keras.optimizers.SGD(0.1))


def test_non_float_variable_is_rejected():
    v = tf.Variable([1, 2], dtype=tf.int32)
    with pytest.raises(TypeError, match="dtype int32.*must be floating point"):
        tfgames.resolve_players({"p": v})


@pytest.mark.parametrize("losses_fn, match", [
    (lambda m: {"p": tf.reduce_sum(m.a)}, r"Missing: \['q'\]"),
    (lambda m: {**_ok_losses(m), "r": m.b}, r"unexpected: \['r'\]"),
    (lambda m: {"p": m.a * m.b, "q": -m.b}, r"loss of player 'p' must be a scalar.*\(2,\)"),
    (lambda m: {"p": tf.reduce_sum(m.a), "q": tf.reduce_sum(m.a)}, "player 'q' does not depend"),
    (lambda m: [m.b, m.b], "must return a dict"),
])
@pytest.mark.parametrize("optimizer", ["sgd", "sga"])
def test_bad_losses_fail_before_any_variable_changes(losses_fn, match, optimizer):
    model = _Game(lambda m: {"p": m.a, "q": m.b}, losses_fn)
    opt = (keras.optimizers.SGD(0.1) if optimizer == "sgd"
           else tfgames.SGA(keras.optimizers.SGD(0.1)))
    model.compile(optimizer=opt)
    before = flat([v.numpy() for v in model.trainable_variables])
    with pytest.raises((ValueError, TypeError), match=match):
        model.fit(tfgames.datasets.step_dataset(2), epochs=1, verbose=0)
    np.testing.assert_array_equal(flat([v.numpy() for v in model.trainable_variables]), before)


def test_compile_rejects_loss_and_metrics():
    model = _Game(lambda m: {"p": m.a, "q": m.b}, _ok_losses)
    with pytest.raises(ValueError, match="does not take `loss` in compile"):
        model.compile(optimizer="sgd", loss="mse")


def test_zero_sum_needs_two_players():
    with pytest.raises(ValueError, match="two different players"):
        tfgames.zero_sum(tf.constant(1.0), min_player="x", max_player="x")


def test_game_optimizer_rejects_non_keras_inner():
    with pytest.raises(TypeError, match="must be a Keras 3 optimizer instance.*Received"):
        tfgames.SGA("rmsprop")


def test_game_optimizer_rejects_nested_game_optimizer():
    with pytest.raises(TypeError, match="Nesting game adjustments is not defined"):
        tfgames.SGA(tfgames.Consensus(keras.optimizers.SGD(0.1)))


def test_inner_optimizer_built_on_other_variables(tiny_gan):
    inner = keras.optimizers.RMSprop(1e-3)
    inner.build([keras.Variable(np.zeros(3, "float32"))])
    with pytest.raises(ValueError, match="already built on other variables.*fresh optimizer"):
        tiny_gan.compile(optimizer=tfgames.SGA(inner))


def test_unimplemented_game_methods_say_what_to_write():
    with pytest.raises(NotImplementedError, match="must implement `players"):
        tfgames.GameModel().players()
