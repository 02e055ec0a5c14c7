"""A catalogue of bad inputs: each gets a clear early error (constraint, received value, fix)
before any state changes. Every case is asserted by its message; the model-level cases also
check that no weight, optimizer variable or noise-stream state changed. Issue 17 point 5.
"""


import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import TinyGAN, real_batches

import tfgames
from tfgames.callbacks import BackupAndRestore, TrainingDiverged

S = keras.optimizers.SGD
NAN = float("nan")


class _Game(tfgames.GameModel):
    """Two players a (2,) and b (); losses from a function of the model."""

    def __init__(self, losses_fn=None, players_fn=None, **kwargs):
        super().__init__(**kwargs)
        self.a = self.add_weight(shape=(2,), initializer="ones", name="a")
        self.b = self.add_weight(shape=(), initializer="ones", name="b")
        self.n = self.add_weight(shape=(), initializer="zeros", name="n", trainable=False)
        self._losses_fn = losses_fn or (lambda m: tfgames.zero_sum(
            tf.reduce_sum(m.a) * m.b, min_player="p", max_player="q"))
        self._players_fn = players_fn or (lambda m: {"p": m.a, "q": m.b})

    def players(self):
        return self._players_fn(self)

    def compute_losses(self, data, training=False):
        return self._losses_fn(self)


def _ids(cases):
    return [c.values[0] if hasattr(c, "values") else c[0] for c in cases]


def _state(model):
    variables = list(model.variables)
    if getattr(model, "optimizer", None) is not None:
        variables += list(model.optimizer.variables)
    return [np.array(v.numpy()) for v in variables]


def _assert_same(before, after):
    assert len(before) == len(after)
    for x, y in zip(before, after):
        np.testing.assert_array_equal(x, y)


# -- constructors: (label, call, exception, message) ---------------------------------------------
CONSTRUCTORS = [
    ("SGA lambda_ nan", lambda: tfgames.SGA(S(0.1), lambda_=NAN), ValueError,
     r"`lambda_` must be .*finite.*Received: lambda_=nan"),
    ("SGA lambda_ < 0", lambda: tfgames.SGA(S(0.1), lambda_=-1.0), ValueError,
     r"`lambda_` must be a number >= 0.*Received: lambda_=-1"),
    ("SGA lambda_ text", lambda: tfgames.SGA(S(0.1), lambda_="1"), (ValueError, TypeError),
     r"`lambda_`.*Received: lambda_='1'"),
    ("SGA epsilon nan", lambda: tfgames.SGA(S(0.1), epsilon=NAN), ValueError,
     r"`epsilon` must be > 0. Received: epsilon=nan"),
    ("SGA epsilon 0", lambda: tfgames.SGA(S(0.1), epsilon=0.0), ValueError,
     r"`epsilon` must be > 0. Received: epsilon=0"),
    ("SGA hvp_mode", lambda: tfgames.SGA(S(0.1), hvp_mode="x"), ValueError,
     r"`hvp_mode` must be one of .*Received: hvp_mode='x'"),
    ("SGA normalizer", lambda: tfgames.SGA(S(0.1), normalizer="x"), ValueError,
     r"`normalizer` must be one of .*Received: normalizer='x'"),
    ("SGA inner is a string", lambda: tfgames.SGA("rmsprop"), TypeError,
     r"must be a Keras 3 optimizer instance.*Received: an object of type builtins.str"),
    ("SGA inner is a class", lambda: tfgames.SGA(keras.optimizers.Adam), TypeError,
     r"Pass an instance, e.g. Adam\(learning_rate\), not the class"),
    ("SGA inner is TF1", lambda: tfgames.SGA(tf.compat.v1.train.AdamOptimizer(0.1)), TypeError,
     r"AdamOptimizer is a TF1 optimizer"),
    ("SGA nested", lambda: tfgames.SGA(tfgames.Consensus(S(0.1))), TypeError,
     r"Nesting game adjustments is not defined"),
    ("SGA weight_decay", lambda: tfgames.SGA(S(0.1), weight_decay=0.1), ValueError,
     r"does not support `weight_decay`.*Set `weight_decay` on the inner optimizer.*Received: "
     r"weight_decay=0.1"),
    ("SGA unknown keyword", lambda: tfgames.SGA(S(0.1), bogus=1), TypeError,
     r"unexpected .*bogus"),
    ("Consensus gamma nan", lambda: tfgames.Consensus(S(0.1), gamma=NAN), ValueError,
     r"`gamma` must be a number >= 0. Received: gamma=nan"),
    ("Consensus gamma < 0", lambda: tfgames.Consensus(S(0.1), gamma=-1.0), ValueError,
     r"`gamma` must be a number >= 0. Received: gamma=-1"),
    ("Extragradient beta nan", lambda: tfgames.Extragradient(S(0.1), beta=NAN), ValueError,
     r"`beta` must be a number > 0 and <= 1.0.*Received: beta=nan"),
    ("Extragradient beta > 1", lambda: tfgames.Extragradient(S(0.1), beta=2.0), ValueError,
     r"`beta` must be a number > 0 and <= 1.0.*Received: beta=2"),
    ("Extragradient past + fresh_noise",
     lambda: tfgames.Extragradient(S(0.1), past=True, fresh_noise=True), ValueError,
     r"Past extragradient evaluates the game once per step.*fresh_noise=True"),
    ("Extragradient two step sizes",
     lambda: tfgames.Extragradient(S(0.1), beta=0.5, extrapolation_learning_rate=0.1),
     ValueError, r"Pass at most one of `extrapolation_learning_rate`"),
    ("Extragradient curvature with Adam",
     lambda: tfgames.Extragradient(keras.optimizers.Adam(0.1), curvature=0.5), ValueError,
     r"CurvatureEG\+ .*keras.optimizers.SGD\(gamma_max\) without momentum.*Adam"),
    ("Extragradient power_iterations 0",
     lambda: tfgames.Extragradient(S(0.1), power_iterations=0), ValueError,
     r"`power_iterations` must be an integer >= 1. Received: power_iterations=0"),
    ("Lookahead k 0", lambda: tfgames.Lookahead(tfgames.SGA(S(0.1)), k=0), ValueError,
     r"`k` .*must be an integer >= 1. Received: k=0"),
    ("Lookahead alpha 2", lambda: tfgames.Lookahead(tfgames.SGA(S(0.1)), alpha=2.0),
     ValueError, r"`alpha` .*must be in \(0, 1\].*Received: alpha=2"),
    ("OGD first_step", lambda: tfgames.OGD(0.1, first_step="x"), ValueError,
     r"`first_step` must be one of \('plain', 'double'\)"),
    ("TerminateOnDivergence threshold 0", lambda: tfgames.TerminateOnDivergence(threshold=0),
     ValueError, r"`threshold` must be > 0. Received: threshold=0"),
    ("TerminateOnDivergence threshold nan",
     lambda: tfgames.TerminateOnDivergence(threshold=NAN), ValueError,
     r"`threshold` must be > 0. Received: threshold=nan"),
    ("BackupAndRestore empty folder", lambda: BackupAndRestore(""), ValueError,
     r"`backup_dir` must be a non-empty folder path. Received: backup_dir=''"),
    ("BackupAndRestore folder is a file", lambda: BackupAndRestore(__file__), ValueError,
     r"`backup_dir` must be a folder, but .* is a file"),
    ("step_dataset steps 0", lambda: tfgames.datasets.step_dataset(0), ValueError,
     r"`steps` must be a positive integer.*Received: steps=0"),
    ("step_dataset batch_size -1", lambda: tfgames.datasets.step_dataset(2, batch_size=-1),
     ValueError, r"`batch_size` must be a positive integer.*Received: batch_size=-1"),
    ("GameModel seed text", lambda: TinyGAN(seed="a"), ValueError,
     r"`seed` must be an integer. Received: seed=a"),
    ("zero_sum one player",
     lambda: tfgames.zero_sum(tf.constant(1.0), min_player="x", max_player="x"), ValueError,
     r"two different players. Received: min_player='x', max_player='x'"),
    ("GameOptimizer.apply without a game",
     lambda: tfgames.SGA(S(0.1)).apply([tf.ones(1)], [keras.Variable([1.0])]), TypeError,
     r"needs the game, not only gradients"),
    ("GameOptimizer.minimize", lambda: tfgames.SGA(S(0.1)).minimize(tf.constant(1.0), []),
     TypeError, r"has no minimize\(loss, var_list\)"),
    pytest.param("compat.v1 RMSPropOptimizer.minimize",
                 lambda: tfgames.compat.v1.RMSPropOptimizer(0.1).minimize(tf.constant(1.0)),
                 TypeError, r"minimize"),
    pytest.param("Adamirror learning_rate nan", lambda: tfgames.Adamirror(NAN), ValueError,
                 r"learning_rate.*nan"),
    pytest.param("OGD learning_rate < 0", lambda: tfgames.OGD(-1.0), ValueError,
                 r"learning_rate.*-1"),
]


@pytest.mark.parametrize("label, call, error, message", CONSTRUCTORS,
                         ids=_ids(CONSTRUCTORS))
def test_bad_constructor_arguments(label, call, error, message):
    with pytest.raises(error, match=message):
        call()


# -- compile: the model is untouched ---------------------------------------------------------------
def _inner_built_elsewhere():
    inner = keras.optimizers.RMSprop(1e-3)
    inner.build([keras.Variable(np.zeros(3, "float32"))])
    return {"optimizer": tfgames.SGA(inner)}


COMPILE = [
    ("loss given", lambda: {"optimizer": S(0.1), "loss": "mse"}, ValueError,
     r"does not take `loss` in compile.*Received: loss='mse'"),
    ("TF1 optimizer", lambda: {"optimizer": tf.compat.v1.train.AdamOptimizer(0.1)}, TypeError,
     r"AdamOptimizer is a TF1 optimizer"),
    ("optimizer class", lambda: {"optimizer": keras.optimizers.Adam}, TypeError,
     r"Pass an instance, e.g. Adam\(learning_rate\)"),
    ("per-player mapping misses a player", lambda: {"optimizer": {"discriminator": S(0.1)}},
     ValueError, r"Players without an optimizer: \['generator'\]"),
    ("per-player mapping has a stranger",
     lambda: {"optimizer": {"discriminator": S(0.1), "generator": S(0.1), "z": S(0.1)}},
     ValueError, r"but the game's players are \['discriminator', 'generator'\]"),
    ("schedule steps 0",
     lambda: {"optimizer": S(0.1), "schedule": {"discriminator": 0, "generator": 1}},
     ValueError, r"integer >= 1.*Received: .*\['discriminator'\]=0"),
    ("schedule text", lambda: {"optimizer": S(0.1), "schedule": "sometimes"}, ValueError,
     r"must be one of \('simultaneous', 'alternating'\) or a mapping"),
    ("inner optimizer built on other variables", _inner_built_elsewhere, ValueError,
     r"already built on other variables.*fresh optimizer"),
    pytest.param("optimizer='sga' string", lambda: {"optimizer": "sga"}, ValueError,
                 r"tfgames.SGA\("),
]


@pytest.mark.parametrize("label, kwargs, error, message", COMPILE,
                         ids=_ids(COMPILE))
def test_bad_compile_arguments_change_nothing(label, kwargs, error, message):
    keras.utils.set_random_seed(1)
    model = TinyGAN(seed=3)
    before = [np.array(v.numpy()) for v in model.variables]
    with pytest.raises(error, match=message):
        model.compile(**kwargs())
    _assert_same(before, [np.array(v.numpy()) for v in model.variables])


# -- players ---------------------------------------------------------------------------------------
PLAYERS = [
    ("no players", lambda m: {}, ValueError, "needs a non-empty mapping"),
    ("player without trainable variables", lambda m: {"p": m.a, "q": m.n}, ValueError,
     "Player 'q' has no trainable variables"),
    ("variable of two players", lambda m: {"p": [m.a, m.b], "q": m.b}, ValueError,
     "owned by two players, 'p' and 'q'"),
    ("variable twice for one player", lambda m: {"p": [m.a, m.a], "q": m.b}, ValueError,
     "Player 'p' lists variable 'a' twice"),
    ("player is a string", lambda m: {"p": m.a, "q": "b"}, TypeError,
     "Player 'q' must be a Keras layer.*str"),
    ("player is an unbuilt layer", lambda m: {"p": m.a, "q": keras.layers.Dense(2)},
     ValueError, "is not built"),
    ("player variable not tracked", lambda m: {"p": m.a, "q": keras.Variable(1.0)},
     ValueError, "does not track"),
    ("player name not a string", lambda m: {"p": m.a, 3: m.b}, TypeError,
     "Player names must be strings. Received: 3"),
]


@pytest.mark.parametrize("label, players_fn, error, message", PLAYERS,
                         ids=[c[0] for c in PLAYERS])
def test_bad_players_are_rejected_at_compile(label, players_fn, error, message):
    model = _Game(players_fn=players_fn)
    before = _state(model)
    with pytest.raises(error, match=message):
        model.compile(optimizer=S(0.1))
    _assert_same(before, [np.array(v.numpy()) for v in model.variables])


def test_integer_variable_is_rejected():
    with pytest.raises(TypeError, match="dtype int32.*must be floating point"):
        tfgames.resolve_players({"p": tf.Variable([1, 2], dtype=tf.int32)})


# -- losses: fit fails at the first step, before any variable changes -----------------------
LOSSES = [
    ("a player's loss missing", lambda m: {"p": tf.reduce_sum(m.a)}, r"Missing: \['q'\]"),
    ("an unknown player's loss", lambda m: {"p": m.b, "q": -m.b, "r": m.b},
     r"unexpected: \['r'\]"),
    ("non-scalar loss", lambda m: {"p": m.a * m.b, "q": -m.b},
     r"loss of player 'p' must be a scalar.*\(2,\)"),
    ("loss independent of its player",
     lambda m: {"p": tf.reduce_sum(m.a), "q": tf.reduce_sum(m.a)},
     "player 'q' does not depend"),
    ("losses not a dict", lambda m: [m.b, m.b], "must return a dict"),
    pytest.param("None loss", lambda m: {"p": tf.reduce_sum(m.a) * m.b, "q": None},
                 r"loss of player 'q'.*None"),
    ("integer loss", lambda m: {"p": tf.reduce_sum(m.a) * m.b, "q": 3},
     r"loss of player 'q'.*(int|constant|does not depend)"),
]


@pytest.mark.parametrize("optimizer", ["sgd", pytest.param("sga", marks=pytest.mark.slow)])
@pytest.mark.parametrize("label, losses_fn, message", LOSSES, ids=_ids(LOSSES))
def test_bad_losses_fail_before_any_state_changes(label, losses_fn, message, optimizer):
    model = _Game(losses_fn=losses_fn)
    model.compile(optimizer=S(0.1) if optimizer == "sgd" else tfgames.SGA(S(0.1)))
    before = _state(model)
    with pytest.raises((ValueError, TypeError), match=message):
        model.fit(tfgames.datasets.step_dataset(2), epochs=1, verbose=0)
    _assert_same(before, _state(model))


# -- divergence: stopped at the step, named, state kept, nothing bad saved -------------------------
def _nan_at(iteration, where):
    def losses(m):
        bad = tf.where(tf.equal(m.optimizer.iterations, iteration), NAN, 0.0)
        f = tf.reduce_sum(m.a) * m.b
        if where == "loss":
            return {"p": f + bad, "q": -f}
        # A finite loss whose gradient is NaN: the norm at 0 (n is a variable = 0), from the
        # step of `iteration` on.
        at_zero = tf.norm(m.a * m.n) * tf.cast(m.optimizer.iterations >= iteration, tf.float32)
        return {"p": f + at_zero, "q": -f}
    return losses


@pytest.mark.parametrize("optimizer, steps_per_execution", [
    ("sgd", 1), ("sgd", 4), ("sga", 4), pytest.param("sga", 1, marks=pytest.mark.slow)])
def test_nan_loss_stops_at_its_step_and_keeps_the_last_finite_state(optimizer,
                                                                     steps_per_execution):
    model = _Game(losses_fn=_nan_at(5, "loss"))
    model.compile(optimizer=S(0.1) if optimizer == "sgd" else tfgames.SGA(S(0.1)),
                  steps_per_execution=steps_per_execution)
    model.fit(tfgames.datasets.step_dataset(5), epochs=1, verbose=0)  # 5 good steps
    kept = _state(model)
    with pytest.raises(TrainingDiverged,
                       match=r"at step 1 of this fit\(\) call: player 'p''s loss \(p_loss\) = nan"):
        model.fit(tfgames.datasets.step_dataset(8), epochs=1, verbose=0)
    _assert_same(kept, _state(model))


def test_nan_gradient_with_finite_loss_is_named_as_a_weight():
    model = _Game(losses_fn=_nan_at(0, "gradient"))
    model.compile(optimizer=S(0.1))
    before = _state(model)
    with pytest.raises(TrainingDiverged, match=r"at step 1 .*a weight of player 'p'"):
        model.fit(tfgames.datasets.step_dataset(3), epochs=1, verbose=0)
    _assert_same(before, _state(model))


def test_check_finite_opt_out_trains_on():
    model = _Game(losses_fn=_nan_at(1, "gradient"))
    model.check_finite = False
    model.compile(optimizer=S(0.1))
    model.fit(tfgames.datasets.step_dataset(3), epochs=1, verbose=0)
    assert not np.isfinite(model.a.numpy()).all()


@pytest.mark.parametrize("method, suffix", [("save_weights", ".weights.h5"),
                                            ("save", ".keras")])
def test_non_finite_weights_are_never_saved(tmp_path, method, suffix):
    model = tfgames.games.Bilinear()
    model.compile(optimizer=S(0.1))
    model.y.assign(NAN)
    path = tmp_path / f"m{suffix}"
    with pytest.raises(ValueError, match=rf"GameModel.{method} refuses to write non-finite "
                                         r"weights: \['bilinear(_\d+)?/y'\]"):
        getattr(model, method)(path)
    assert not path.exists()


def test_model_checkpoint_cannot_save_non_finite_weights(tmp_path):
    model = tfgames.games.Bilinear()
    model.check_finite = False  # let the NaN through training: the checkpoint must refuse
    model.compile(optimizer=S(0.1))
    path = tmp_path / "last.weights.h5"
    poison = keras.callbacks.LambdaCallback(
        on_train_batch_begin=lambda b, logs: model.y.assign(NAN) if b == 2 else None)
    with pytest.raises(ValueError, match="refuses to write non-finite weights"):
        model.fit(tfgames.datasets.step_dataset(4), epochs=1, verbose=0, callbacks=[
            poison, keras.callbacks.ModelCheckpoint(str(path), save_weights_only=True,
                                                    save_freq=1)])
    restored = tfgames.games.Bilinear()
    restored.compile(optimizer=S(0.1))
    restored.load_weights(path)
    assert np.isfinite(restored.y.numpy())


# -- loading: all or nothing --------------------------------------------------------------------
@pytest.mark.parametrize("other", [{"width": 16}, {"z_dim": 5}])
def test_load_weights_of_another_size_changes_nothing(tmp_path, other):
    keras.utils.set_random_seed(1)
    source = TinyGAN(seed=3)
    source.compile(optimizer=tfgames.SGA(keras.optimizers.Adam(1e-2)))
    source.fit(real_batches(2, 16), epochs=1, verbose=0)
    path = tmp_path / "source.weights.h5"
    source.save_weights(path)
    target = TinyGAN(seed=4, **other)
    target.compile(optimizer=tfgames.SGA(keras.optimizers.Adam(1e-2)))
    target.fit(real_batches(1, 16), epochs=1, verbose=0)
    before = _state(target)
    with pytest.raises(ValueError, match="does not fit this TinyGAN; nothing was changed"):
        target.load_weights(path)
    _assert_same(before, _state(target))


def test_load_weights_missing_file_changes_nothing(tmp_path):
    model = tfgames.games.Bilinear()
    model.compile(optimizer=S(0.1))
    before = _state(model)
    with pytest.raises((ValueError, FileNotFoundError, OSError), match="missing.weights.h5"):
        model.load_weights(tmp_path / "missing.weights.h5")
    _assert_same(before, _state(model))


# -- NumPy scalars are accepted wherever Python numbers are ------------------------------------
@pytest.mark.parametrize("make", [
    lambda: tfgames.SGA(S(0.1), lambda_=np.float32(0.5), epsilon=np.float32(0.1)),
    lambda: tfgames.Consensus(S(0.1), gamma=np.float64(0.5)),
    lambda: tfgames.Lookahead(tfgames.SGA(S(0.1)), k=np.int64(3), alpha=np.float32(0.5)),
    lambda: tfgames.Extragradient(S(0.1), beta=np.float32(0.5)),
    lambda: tfgames.TerminateOnDivergence(threshold=np.float32(10.0)),
    lambda: tfgames.datasets.step_dataset(np.int64(3)),
])
def test_numpy_scalars_are_accepted(make):
    make()


def test_numpy_schedule_is_accepted():
    model = TinyGAN(seed=3)
    model.compile(optimizer=S(0.1), schedule={"discriminator": np.int64(2), "generator": 1})
    model.fit(real_batches(1, 16), epochs=1, verbose=0)


# -- XLA and recurrent layers that are not unrolled -----------------------------------------------
class _RecurrentGame(tfgames.GameModel):
    """A sequence 'discriminator' (an LSTM) against a generator of sequences."""

    def __init__(self, unroll: bool, **kwargs):
        super().__init__(**kwargs)
        self.generator = keras.Sequential([keras.Input((3,)), keras.layers.Dense(8),
                                           keras.layers.Reshape((4, 2))])
        self.discriminator = keras.Sequential([keras.Input((4, 2)),
                                               keras.layers.LSTM(3, unroll=unroll, name="lstm"),
                                               keras.layers.Dense(1)])

    def players(self):
        return {"discriminator": self.discriminator, "generator": self.generator}

    def compute_losses(self, data, training=False):
        z = keras.random.normal((4, 3), seed=self.seed_generator)
        real = self.discriminator(tf.reshape(data, (4, 4, 2)), training=training)
        fake = self.discriminator(self.generator(z, training=training), training=training)
        return tfgames.losses.gan_losses(real, fake)


_SECOND_ORDER = {"sga": lambda: tfgames.SGA(S(0.1)), "cgd": lambda: tfgames.CGD(S(0.1)),
                 "lola": lambda: tfgames.LOLA(S(0.1))}


def _sequences():
    return tf.data.Dataset.from_tensors(np.ones((4, 8), "float32")).repeat(2)


@pytest.mark.parametrize("optimizer", list(_SECOND_ORDER))
def test_second_order_under_xla_names_a_recurrent_layer_that_is_not_unrolled(optimizer):
    model = _RecurrentGame(unroll=False, seed=0)
    model.compile(optimizer=_SECOND_ORDER[optimizer](), jit_compile=True)
    weights = [v.numpy() for v in model.variables]
    with pytest.raises(ValueError, match=(
            r"XLA cannot compile the second gradient of a recurrent layer's while_loop.*"
            r"not unrolled: \['lstm \(LSTM, unroll=False\)'\].*unroll=True.*"
            r"jit_compile=False")):
        model.fit(_sequences(), epochs=1, verbose=0)
    _assert_same(weights, [v.numpy() for v in model.variables])  # nothing ran


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", list(_SECOND_ORDER))
@pytest.mark.parametrize("unroll, jit_compile", [(False, False), (True, True)])
def test_recurrent_layer_alternatives_the_error_names_train(optimizer, unroll, jit_compile):
    model = _RecurrentGame(unroll=unroll, seed=0)
    model.compile(optimizer=_SECOND_ORDER[optimizer](), jit_compile=jit_compile)
    model.fit(_sequences(), epochs=1, verbose=0)
    before = _state(model)
    model.fit(_sequences(), epochs=1, verbose=0)
    assert any(not np.array_equal(a, b) for a, b in zip(before, _state(model)))
