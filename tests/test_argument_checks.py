"""The shared argument checks (tfgames.optimizers.base.checked / check_bool, game.mismatched_names,
base.unknown_names): the exact messages each caller gave before they were shared, and NumPy
scalars accepted where Python numbers are."""

import re

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfgames
from tfgames.game import mismatched_names


def SGD():
    return keras.optimizers.SGD(0.1)


CASES = [
    (lambda: tfgames.Averaging(SGD(), decay=1.0), ValueError,
     "Argument `decay` must be a number in [0, 1) (1 would never move the average). "
     "Received: decay=1.0."),
    (lambda: tfgames.Averaging(SGD(), decay="0.5"), ValueError,
     "Argument `decay` must be a number in [0, 1) (1 would never move the average). "
     "Received: decay='0.5'."),
    (lambda: tfgames.Averaging(SGD(), start=-1), ValueError,
     "Argument `start` must be an integer >= 0. Received: start=-1."),
    (lambda: tfgames.Averaging(SGD(), start=2.0), ValueError,
     "Argument `start` must be an integer >= 0. Received: start=2.0."),
    (lambda: tfgames.Averaging(SGD(), overwrite_at_end=1), TypeError,
     "Argument `overwrite_at_end` must be a bool. Received: overwrite_at_end=1."),
    (lambda: tfgames.Lookahead(SGD(), k=0), ValueError,
     "Argument `k` (fast steps per synchronisation) must be an integer >= 1. Received: k=0."),
    (lambda: tfgames.Lookahead(SGD(), k=True), ValueError,
     "Argument `k` (fast steps per synchronisation) must be an integer >= 1. "
     "Received: k=True."),
    (lambda: tfgames.Lookahead(SGD(), alpha=0.0), ValueError,
     "Argument `alpha` (the slow weights' step) must be in (0, 1]: 0 would never move the "
     "slow weights. Received: alpha=0.0."),
    (lambda: tfgames.Lookahead(SGD(), alpha=float("nan")), ValueError,
     "Argument `alpha` (the slow weights' step) must be in (0, 1]: 0 would never move the "
     "slow weights. Received: alpha=nan."),
    (lambda: tfgames.Extragradient(SGD(), max_backtracks=-1), ValueError,
     "Argument `max_backtracks` must be an integer >= 0. Received: max_backtracks=-1."),
    (lambda: tfgames.Extragradient(SGD(), power_iterations=True), ValueError,
     "Argument `power_iterations` must be an integer >= 1. Received: power_iterations=True."),
    (lambda: tfgames.Extragradient(SGD(), past=1), TypeError,
     "Argument `past` must be a bool. Received: past=1."),
    (lambda: tfgames.RungeKutta(SGD(), fresh_noise="yes"), TypeError,
     "Argument `fresh_noise` must be a bool. Received: fresh_noise='yes'."),
]


@pytest.mark.parametrize("call, error, message", CASES)
def test_messages(call, error, message):
    with pytest.raises(error) as info:
        call()
    assert str(info.value) == message


def test_numpy_scalars_are_accepted_and_stored_as_python_numbers():
    averaging = tfgames.Averaging(SGD(), method="ema", decay=np.float32(0.5), start=np.int64(3))
    assert (averaging.decay, averaging.start) == (0.5, 3)
    assert type(averaging.decay) is float and type(averaging.start) is int
    lookahead = tfgames.Lookahead(SGD(), k=np.int32(2), alpha=np.float64(0.25))
    assert (lookahead.k, lookahead.alpha) == (2, 0.25)
    assert type(lookahead.k) is int and type(lookahead.alpha) is float
    assert tfgames.Extragradient(SGD(), power_iterations=np.int64(3)).power_iterations == 3


def test_mismatched_names():
    assert mismatched_names(["a", "b"], {"b": 0, "c": 1}) == (["a"], ["c"])
    assert mismatched_names(("a",), ["a"]) == ([], [])


def test_player_mismatch_messages():
    x, y = tf.Variable(1.0, name="x"), tf.Variable(1.0, name="y")
    game = tfgames.Game({"x": [x], "y": [y]}, lambda: {"x": x * y, "z": -x * y})
    with pytest.raises(ValueError) as info:
        game.gradient()
    assert str(info.value) == (
        "The losses must have exactly one entry per player ['x', 'y']. Missing: ['y']; "
        "unexpected: ['z']. Return {player: loss} for every declared player (use "
        "tfgames.zero_sum for a min-max payoff)."
    )
    per_player = tfgames.PerPlayer({"x": SGD(), "y": SGD()})
    with pytest.raises(ValueError) as info:
        per_player.bind_players({"x": [x], "w": [y]})
    assert str(info.value) == (
        "PerPlayer has optimizers for ['x', 'y'] but the game's players are ['x', 'w']. "
        "Players without an optimizer: ['w']; optimizers of no player: ['y']. Give exactly one "
        "optimizer per player."
    )


def test_inner_optimizer_built_on_other_variables():
    known, stranger = keras.Variable(1.0, name="known"), keras.Variable(2.0, name="stranger")
    inner = SGD()
    inner.build([known])
    with pytest.raises(ValueError, match=re.escape(
            f"The inner optimizer {inner.name!r} of Lookahead is already built on other "
            f"variables (it does not know {[stranger.name]}...). Pass a fresh optimizer "
            "instance.")):
        tfgames.Lookahead(inner).build([stranger])
    tfgames.Lookahead(inner).build([known])  # the variables it knows: no error
