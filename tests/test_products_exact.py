"""xi, H v and H^T v against central finite differences of xi, in float64, on every common layer.

The reference never uses tfgames, ``tape.jacobian`` or TensorFlow's second derivatives: it is
the dense game Jacobian built column by column from central finite differences of xi,

    H e_k ~= (xi(w + h e_k) - xi(w - h e_k)) / 2h,

where xi (each player's gradient of its own loss) comes from a plain ``tf.GradientTape``
(first derivatives only, which Keras' moments get right). Every evaluation of the reference
restores the same seed-generator states and BatchNorm statistics, so it sees the same noise
and masks as the products' step. Then ||H v - H_fd v|| / ||H_fd v|| and the same for H^T v must
be below 1e-7 (measured: ~1e-9 to 1e-10; before the fixes BatchNorm was off by 0.25,
LayerNorm by 0.02 and Dropout(seed=7) in forward mode by 0.6).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfgames
from tfgames import products
from tfgames.game import Game

TOL = 1e-7
H_STEP = 1e-6


#: Every test of this file runs in float64 (the fixture is in conftest.py).
pytestmark = pytest.mark.usefixtures("float64")


# -- tiny float64 games, one per layer, and one GAN with all of them -----------------------------
@dataclasses.dataclass
class Case:
    players: dict  # {name: keras model}
    loss_fn: Callable[[], dict]
    state: list  # variables every evaluation must start from (seed states, BN statistics)
    seed_generator: keras.random.SeedGenerator | None = None


def _gan_losses(real, fake):
    """A non-zero-sum GAN (softplus = sigmoid cross-entropy) with a small critic penalty."""
    d = tf.reduce_mean(tf.nn.softplus(-real)) + tf.reduce_mean(tf.nn.softplus(fake))
    d = d + 0.1 * tf.reduce_mean(real**2)
    return {"d": d, "g": tf.reduce_mean(tf.nn.softplus(-fake))}


def _mlp(input_shape, *layers):
    return keras.Sequential([keras.Input(input_shape), *layers])


def _rng_input(shape, seed):
    return tf.constant(np.random.RandomState(seed).standard_normal(shape))


def _simple(d_layers, g_layers, x_shape, z_dim=2, batch=4):
    """D(x) against G(z) with fixed data and noise; ``*_layers`` are the hidden layers."""
    d = _mlp(x_shape, *d_layers())
    g = _mlp((z_dim,), *g_layers())
    x, z = _rng_input((batch, *x_shape), 1), _rng_input((batch, z_dim), 2)

    def loss_fn():
        return _gan_losses(d(x, training=True), d(g(z, training=True), training=True))

    return {"d": d, "g": g}, loss_fn


def _flat_dense_g(x_shape):
    """G: Dense -> tanh -> reshape to x_shape."""
    size = int(np.prod(x_shape))
    return lambda: [keras.layers.Dense(size, activation="tanh"), keras.layers.Reshape(x_shape)]


def _game_dense():
    return _simple(lambda: [keras.layers.Dense(3, activation="tanh"), keras.layers.Dense(1)],
                   lambda: [keras.layers.Dense(3, activation="tanh"), keras.layers.Dense(2)],
                   (2,))


def _game_conv2d():
    return _simple(lambda: [keras.layers.Conv2D(2, 2, activation="tanh"),
                            keras.layers.Flatten(), keras.layers.Dense(1)],
                   _flat_dense_g((3, 3, 1)), (3, 3, 1))


def _game_conv2d_transpose():
    def g_layers():
        return [keras.layers.Dense(2, activation="tanh"), keras.layers.Reshape((1, 1, 2)),
                keras.layers.Conv2DTranspose(1, 3, strides=2, padding="same", activation="tanh"),
                keras.layers.Reshape((2, 2, 1))]

    return _simple(lambda: [keras.layers.Flatten(), keras.layers.Dense(2, activation="tanh"),
                            keras.layers.Dense(1)], g_layers, (2, 2, 1))


def _game_batchnorm():
    return _simple(
        lambda: [keras.layers.Dense(3), keras.layers.BatchNormalization(momentum=0.5),
                 keras.layers.Activation("tanh"), keras.layers.Dense(1)],
        lambda: [keras.layers.Dense(3), keras.layers.BatchNormalization(),
                 keras.layers.Activation("tanh"), keras.layers.Dense(2)], (2,))


def _game_layernorm():
    return _simple(
        lambda: [keras.layers.Dense(3), keras.layers.LayerNormalization(),
                 keras.layers.Activation("tanh"), keras.layers.Dense(1)],
        lambda: [keras.layers.Dense(3, activation="tanh"), keras.layers.LayerNormalization(),
                 keras.layers.Dense(2)], (2,))


def _game_dropout(seed):
    return _simple(lambda: [keras.layers.Dense(4, activation="tanh"),
                            keras.layers.Dropout(0.4, seed=seed), keras.layers.Dense(1)],
                   lambda: [keras.layers.Dense(3, activation="tanh"),
                            keras.layers.Dropout(0.3), keras.layers.Dense(2)], (2,))


def _conditional(classes=3, batch=4, z_dim=2):
    """A conditional GAN whose players both embed the class label (Embedding)."""
    labels = tf.constant(np.arange(batch) % classes, tf.int32)

    def player(input_dim, output_dim, activation):
        inputs, label = keras.Input((input_dim,)), keras.Input((), dtype="int32")
        embedded = keras.layers.Embedding(classes, 2)(label)
        h = keras.layers.Dense(3, activation="tanh")(
            keras.layers.Concatenate()([inputs, embedded]))
        return keras.Model([inputs, label], keras.layers.Dense(output_dim, activation)(h))

    d, g = player(2, 1, None), player(z_dim, 2, "tanh")
    x, z = _rng_input((batch, 2), 1), _rng_input((batch, z_dim), 2)

    def loss_fn():
        fake = g([z, labels], training=True)
        return _gan_losses(d([x, labels], training=True), d([fake, labels], training=True))

    return {"d": d, "g": g}, loss_fn


def _game_rnn(cell, unroll):
    steps, features = 3, 2
    rnn = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[cell]
    return _simple(lambda: [rnn(3, unroll=unroll), keras.layers.Dense(1)],
                   _flat_dense_g((steps, features)), (steps, features))


def _game_gan():
    """Every layer at once, noise from a seed generator and a stateless draw in the losses."""
    classes, batch, z_dim = 3, 4, 3
    labels = tf.constant(np.arange(batch) % classes, tf.int32)
    x = _rng_input((batch, 4, 4, 1), 1)
    z_in, label_in = keras.Input((z_dim,)), keras.Input((), dtype="int32")
    h = keras.layers.Concatenate()([z_in, keras.layers.Embedding(classes, 2)(label_in)])
    h = keras.layers.BatchNormalization()(keras.layers.Dense(8)(h))
    h = keras.layers.Reshape((2, 2, 2))(keras.layers.Activation("tanh")(h))
    h = keras.layers.Conv2DTranspose(2, 2, strides=2, activation="tanh")(h)
    g = keras.Model([z_in, label_in], keras.layers.Conv2D(1, 1)(h), name="g")

    x_in, label_in = keras.Input((4, 4, 1)), keras.Input((), dtype="int32")
    h = keras.layers.Conv2D(2, 2, strides=2)(x_in)
    h = keras.layers.Activation("tanh")(keras.layers.LayerNormalization()(h))
    h = keras.layers.Dropout(0.3, seed=7)(h)
    h = keras.layers.Reshape((2, 4))(h)
    h = keras.layers.LSTM(3, unroll=True, return_sequences=True)(h)
    h = keras.layers.Dropout(0.2)(keras.layers.GRU(2, unroll=True)(h))
    h = keras.layers.Concatenate()([h, keras.layers.Embedding(classes, 2)(label_in)])
    d = keras.Model([x_in, label_in], keras.layers.Dense(1)(h), name="d")
    noise = keras.random.SeedGenerator(11)

    def loss_fn():
        z = keras.random.normal((batch, z_dim), seed=noise)
        jitter = 0.05 * tf.random.stateless_uniform((batch, 1, 1, 1), seed=[3, 4],
                                                    dtype=tf.float64)
        fake = g([z, labels], training=True)
        return _gan_losses(d([x + jitter, labels], training=True),
                           d([fake, labels], training=True))

    return {"d": d, "g": g}, loss_fn, noise


GAMES = {
    "dense": _game_dense,
    "conv2d": _game_conv2d,
    "conv2d_transpose": _game_conv2d_transpose,
    "batchnorm": _game_batchnorm,
    "layernorm": _game_layernorm,
    "dropout": lambda: _game_dropout(None),
    "dropout_seeded": lambda: _game_dropout(7),
    "embedding": _conditional,
    "gru_unrolled": lambda: _game_rnn("gru", True),
    "lstm_unrolled": lambda: _game_rnn("lstm", True),
    "gru": lambda: _game_rnn("gru", False),
    "lstm": lambda: _game_rnn("lstm", False),
    "gan": _game_gan,
}


def _build(name) -> Case:
    keras.utils.set_random_seed(5)
    built = GAMES[name]()
    players, loss_fn = built[0], built[1]
    seed_generator = built[2] if len(built) > 2 else None
    state = [v for m in players.values() for v in m.non_trainable_variables]
    if seed_generator is not None:
        state.append(seed_generator.state)
    return Case(players, loss_fn, state, seed_generator)


# -- the finite-difference reference ------------------------------------------------------------
class Reference:
    """xi from a plain tape, and H from central differences of it (float64): the dense H,
    column by column, on games with at most ``DENSE_MAX`` parameters; on larger ones
    H v = (xi(w + h v) - xi(w - h v)) / 2h along the vector itself, and H^T v through its
    projections on random directions u_k, <u_k, H^T v> = <H u_k, v>.

    ``jit_compile`` evaluates xi with XLA, which draws other numbers than TensorFlow's kernels
    from the same stateless seeds (its own RNG algorithm): the reference of an XLA step must
    draw them the same way.
    """

    DENSE_MAX = 80
    PROJECTIONS = 4

    def __init__(self, case: Case, jit_compile: bool = False, eager: bool = False) -> None:
        self.case = case
        self.variables = [v for m in case.players.values() for v in m.trainable_variables]
        self.shapes = [tuple(v.shape) for v in self.variables]
        self.w0 = np.concatenate([v.numpy().ravel() for v in self.variables])
        self.state0 = [v.numpy() for v in case.state]

        def xi():
            with tf.GradientTape(persistent=True) as tape:
                losses = case.loss_fn()
            out = []
            for name, model in case.players.items():
                grads = tape.gradient(losses[name], model.trainable_variables)
                out += [tf.reshape(tf.convert_to_tensor(g), [-1]) for g in grads]
            return tf.concat(out, 0)

        self._xi = xi if eager else tf.function(xi, jit_compile=jit_compile)
        self.xi0 = self.xi_at(self.w0)
        n = self.w0.size
        self.H = None
        if n <= self.DENSE_MAX:
            self.H = np.stack([self.fd(e) for e in np.eye(n)], axis=1)
        self.restore()

    def fd(self, v) -> np.ndarray:
        """H v by central differences of xi, step h along the unit vector v / |v|."""
        scale = np.linalg.norm(v)
        u = v / scale
        return scale * (self.xi_at(self.w0 + H_STEP * u) - self.xi_at(self.w0 - H_STEP * u)) / (
            2 * H_STEP)

    def check(self, hv, htv, v) -> tuple[float, float]:
        """Relative errors of H v and H^T v against the finite differences."""
        if self.H is not None:
            return rel(hv, self.H @ v), rel(htv, self.H.T @ v)
        hv_error = rel(hv, self.fd(v))
        u = np.random.RandomState(1).standard_normal((self.PROJECTIONS, self.w0.size))
        projected = np.array([self.fd(uk) @ v for uk in u])  # <H u_k, v>
        htv_error = rel(u @ htv, projected)
        self.restore()
        return hv_error, htv_error

    def split(self, flat):
        out, i = [], 0
        for shape in self.shapes:
            size = int(np.prod(shape))
            out.append(flat[i : i + size].reshape(shape))
            i += size
        return out

    def restore(self, w=None) -> None:
        for v, value in zip(self.variables, self.split(self.w0 if w is None else w)):
            v.assign(value)
        for v, value in zip(self.case.state, self.state0):
            v.assign(value)

    def xi_at(self, w) -> np.ndarray:
        self.restore(w)
        return self._xi().numpy()


_REFERENCES: dict[tuple, Reference] = {}


def reference(name, xla: bool = False) -> Reference:
    if (name, xla) not in _REFERENCES:
        case = _REFERENCES[name, not xla].case if (name, not xla) in _REFERENCES else (
            _build(name))
        _REFERENCES[name, xla] = Reference(case, jit_compile=xla)
    ref = _REFERENCES[name, xla]
    ref.restore()
    return ref


def flat(tensors) -> np.ndarray:
    return np.concatenate([np.ravel(tf.convert_to_tensor(t).numpy()) for t in tensors])


def rel(a, b) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def _run(fn, execution):
    if execution == "eager":
        return fn()
    return tf.function(fn, jit_compile=execution == "xla")()


def _products(ref: Reference, vec, mode, execution, **kwargs):
    case = ref.case

    def step():
        game = Game(case.players, case.loss_fn, seed_generator=case.seed_generator)
        return game.products(vec, mode=mode, **kwargs)

    return _run(step, execution)


# One case per layer in the default run (modes and executions spread over them); the whole
# grid (every layer x both modes x eager, tf.function, XLA) under `make test-slow`.
_DEFAULT = {
    ("dense", "forward", "function"), ("conv2d", "double_backward", "eager"),
    ("conv2d_transpose", "forward", "function"), ("batchnorm", "forward", "function"),
    ("batchnorm", "double_backward", "eager"), ("layernorm", "forward", "eager"),
    ("dropout", "forward", "function"), ("dropout_seeded", "forward", "function"),
    ("embedding", "forward", "eager"), ("gru_unrolled", "double_backward", "eager"),
    ("lstm_unrolled", "forward", "eager"), ("gru", "forward", "eager"),
    ("lstm", "double_backward", "eager"), ("gan", "double_backward", "eager"),
}
_NO_FORWARD_IN_FUNCTION = {"gru", "lstm"}  # TensorFlow's forward mode and while_loop
# XLA cannot compile the gradient of the gradient of a non-unrolled RNN's while_loop: "Input 1
# to node .../while_grad_grad/.../Reshape_1 with op Reshape must be a compile-time constant".
_NO_DOUBLE_BACKWARD_UNDER_XLA = {"gru", "lstm"}


def _grid():
    for name in GAMES:
        for mode in ("forward", "double_backward"):
            for execution in ("eager", "function", "xla"):
                if name in _NO_FORWARD_IN_FUNCTION and mode == "forward" and (
                        execution != "eager"):
                    continue
                default = (name, mode, execution) in _DEFAULT
                marks = () if default else (pytest.mark.slow,)
                if (name in _NO_DOUBLE_BACKWARD_UNDER_XLA and mode == "double_backward"
                        and execution == "xla"):
                    marks += (pytest.mark.xfail(
                        strict=True, reason="XLA cannot compile a while_loop's second "
                        "gradient (TensorFlow limitation)"),)
                yield pytest.param(name, mode, execution, marks=marks,
                                   id=f"{name}-{mode}-{execution}")


@pytest.mark.parametrize("name,mode,execution", list(_grid()))
def test_products_equal_finite_differences(name, mode, execution):
    ref = reference(name, xla=execution == "xla")
    v = np.random.RandomState(0).standard_normal(ref.w0.size)
    vec = [tf.constant(a) for a in ref.split(v)]
    p = _products(ref, vec, mode, execution)
    for t in p.xi + p.hv + p.htv:  # dense tensors, never tf.IndexedSlices
        assert isinstance(t, tf.Tensor) and t.dtype == tf.float64
    np.testing.assert_allclose(flat(p.xi), ref.xi0, rtol=1e-12, atol=1e-14)
    hv_error, htv_error = ref.check(flat(p.hv), flat(p.htv), v)
    assert hv_error < TOL and htv_error < TOL, (hv_error, htv_error)


@pytest.mark.parametrize("execution", ["eager", pytest.param("function", marks=pytest.mark.slow)])
def test_products_along_xi_equal_finite_differences_and_state_moves_once(execution):
    """v = xi (what SGA and consensus use), on the GAN: H xi and H^T xi are exact, and the
    step leaves every seed state and BatchNorm statistic where one evaluation would."""
    ref = reference("gan")
    case = ref.case
    case.loss_fn()  # one ordinary evaluation: the state the step must end in
    after_one = [v.numpy() for v in case.state]
    ref.restore()
    p = _products(ref, None, "forward", execution)
    after_step = [v.numpy() for v in case.state]
    hv_error, htv_error = ref.check(flat(p.hv), flat(p.htv), ref.xi0)
    assert hv_error < TOL and htv_error < TOL, (hv_error, htv_error)
    for got, expected in zip(after_step, after_one):
        np.testing.assert_allclose(got, expected, rtol=1e-14, atol=0)


def test_non_unrolled_lstm_in_forward_mode_inside_tf_function_names_the_fallback():
    ref = reference("lstm")
    with pytest.raises(NotImplementedError, match=(
            r"hvp_mode='forward' cannot differentiate.*LSTM.*not unrolled.*"
            r"hvp_mode='double_backward'.*unroll=True")):
        _products(ref, None, "forward", "function")


def test_exact_moments_restores_keras_and_nests():
    from keras.src.backend.tensorflow import nn as keras_nn

    original = keras_nn._compute_moments
    with products.exact_moments():
        with products.exact_moments():
            assert keras_nn._compute_moments is not original
        assert keras_nn._compute_moments is not original
    assert keras_nn._compute_moments is original
    x = _rng_input((5, 3), 0)
    with tf.GradientTape() as outer:
        outer.watch(x)
        with tf.GradientTape() as inner:
            inner.watch(x)
            with products.exact_moments():
                _, variance = keras.ops.moments(x, axes=[0])
            var_sum = tf.reduce_sum(variance)
        grad_sum = tf.reduce_sum(inner.gradient(var_sum, x))
    # V = sum of the columns' variances: dV/dx_ij = 2 (x_ij - mean_j) / n sums to 0 for every x,
    # so its gradient is 0; with tf.nn.moments' stop_gradient(mean) it would be 2/n everywhere.
    hessian_sum = outer.gradient(grad_sum, x)
    np.testing.assert_allclose(hessian_sum.numpy(), np.zeros((5, 3)), atol=1e-12)
    with products.exact_moments():
        _, variance = keras.ops.moments(x, axes=[0])
    np.testing.assert_array_equal(variance.numpy(), tf.nn.moments(x, [0])[1].numpy())


# -- randomness the losses draw outside the players' layers -------------------------------------
def _noisy_case(draw):
    """The dense game with ``draw(shape)`` noise added to the fake samples in the losses."""
    keras.utils.set_random_seed(5)
    players, _ = _game_dense()
    d, g = players["d"], players["g"]
    x, z = _rng_input((4, 2), 1), _rng_input((4, 2), 2)

    def loss_fn():
        fake = g(z, training=True) + 0.1 * draw((4, 2))
        return _gan_losses(d(x, training=True), d(fake, training=True))

    return players, loss_fn


@pytest.mark.parametrize("execution", ["eager", "function"])
@pytest.mark.parametrize("draw", [
    lambda s: tf.random.uniform(s, dtype=tf.float64),
    lambda s: tf.random.normal(s, seed=3, dtype=tf.float64),
    lambda s: tf.nn.dropout(tf.ones(s, tf.float64), 0.5),
], ids=["uniform", "normal_op_seed", "nn_dropout"])
def test_forward_mode_refuses_stateful_tf_random_ops_before_any_change(draw, execution):
    players, loss_fn = _noisy_case(draw)
    seed = keras.random.SeedGenerator(3)
    counter = keras.Variable(0.0, trainable=False)

    def counted():
        counter.assign_add(1.0)
        keras.random.normal((1,), seed=seed)
        return loss_fn()

    weights = [v.numpy() for m in players.values() for v in m.weights]
    opt = tfgames.SGA(keras.optimizers.SGD(0.1), hvp_mode="forward")
    opt.build([v for m in players.values() for v in m.trainable_variables])
    with pytest.raises(products.UnreplayableRandomnessError, match=(
            r"hvp_mode='forward'.*stateful random ops.*Random.*keras\.random.*SeedGenerator.*"
            r"hvp_mode='double_backward'")):
        _run(lambda: opt.apply_game(Game(players, counted, seed_generator=seed)), execution)
    assert counter.numpy() == 0.0 and seed.state.numpy().tolist() == [3, 0]
    for v, w in zip([v for m in players.values() for v in m.weights], weights):
        np.testing.assert_array_equal(v.numpy(), w)


@pytest.mark.parametrize("execution", ["eager", "function"])
def test_forward_mode_looks_into_functions_traced_before(execution):
    """A tf.function traced before the step shows up as one call op: its body is inspected."""
    x, y = keras.Variable(1.0, dtype="float64"), keras.Variable(2.0, dtype="float64")
    noisy = tf.function(lambda: tf.random.uniform((), dtype=tf.float64))
    clean = tf.function(lambda: tf.constant(0.5, tf.float64))
    noisy(), clean()

    def losses(draw):
        return lambda: tfgames.zero_sum(x * y + draw() * x * x, min_player="x", max_player="y")

    def step(draw):
        return _run(lambda: products.game_products(losses(draw), {"x": [x], "y": [y]}), execution)

    with pytest.raises(products.UnreplayableRandomnessError, match="RandomUniform"):
        step(noisy)
    p = step(clean)  # no false alarm: H = [[1, 1], [-1, 0]] at (x, y) = (1, 2), v = xi = (3, -1)
    np.testing.assert_allclose(flat(p.hv), [2.0, -3.0], rtol=1e-15)
    np.testing.assert_allclose(flat(p.htv), [4.0, 3.0], rtol=1e-15)


def test_double_backward_is_exact_with_tf_random_ops():
    """One evaluation per step: the products are those of the losses at the drawn sample (the
    reference replays it with tf.random.set_seed before every evaluation)."""
    players, loss_fn = _noisy_case(lambda s: tf.random.uniform(s, dtype=tf.float64))

    def replayed():
        tf.random.set_seed(17)
        return loss_fn()

    ref = Reference(Case(players, replayed, []), eager=True)
    v = np.random.RandomState(0).standard_normal(ref.w0.size)
    tf.random.set_seed(17)
    p = Game(players, loss_fn).products([tf.constant(a) for a in ref.split(v)],
                                        mode="double_backward")
    assert rel(flat(p.hv), ref.H @ v) < TOL
    assert rel(flat(p.htv), ref.H.T @ v) < TOL


@pytest.mark.parametrize("execution", [pytest.param("eager", marks=pytest.mark.slow), "function"])
def test_forward_mode_replays_keras_random_with_the_global_generator(execution):
    """keras.random with seed=None draws from Keras' global SeedGenerator, which no player owns;
    forward mode's two passes still read the same state (and it advances once)."""
    from keras.src.random.seed_generator import global_seed_generator

    players, loss_fn = _noisy_case(lambda s: keras.random.normal(s, dtype="float64"))
    state = global_seed_generator().state  # (after set_random_seed, which replaces it)
    ref = Reference(Case(players, loss_fn, [state]))
    v = np.random.RandomState(0).standard_normal(ref.w0.size)
    p = _products(ref, [tf.constant(a) for a in ref.split(v)], "forward", execution)
    assert rel(flat(p.hv), ref.H @ v) < TOL
    assert rel(flat(p.htv), ref.H.T @ v) < TOL
    ref.restore()
    loss_fn()
    assert state.numpy().tolist() != ref.state0[0].tolist()


# -- a GameModel with Dropout(seed=7): forward and double backward train alike -----------------
class DropoutGAN(tfgames.GameModel):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.discriminator = _mlp((2,), keras.layers.Dense(4, activation="tanh"),
                                  keras.layers.Dropout(0.4, seed=7), keras.layers.Dense(1))
        self.generator = _mlp((2,), keras.layers.Dense(3, activation="tanh"),
                              keras.layers.Dense(2))

    def players(self):
        return {"d": self.discriminator, "g": self.generator}

    def compute_losses(self, data, training=False):
        z = keras.random.normal((tf.shape(data)[0], 2), seed=self.seed_generator)
        real = self.discriminator(data, training=training)
        fake = self.discriminator(self.generator(z, training=training), training=training)
        return _gan_losses(real, fake)


def test_fit_with_a_seeded_dropout_is_the_same_in_both_modes():
    """Issue 21: one fit step differed by 24% between the modes (8e-17 without Dropout)."""
    x = np.random.RandomState(0).standard_normal((16, 2))
    weights = {}
    for mode in ("forward", "double_backward"):
        keras.utils.set_random_seed(1)
        model = DropoutGAN(seed=2)
        model.compile(optimizer=tfgames.SGA(keras.optimizers.SGD(0.1), lambda_=1.0,
                                            hvp_mode=mode))
        model.fit(x, batch_size=8, epochs=1, shuffle=False, verbose=0)
        weights[mode] = flat(model.trainable_variables)
    keras.utils.set_random_seed(1)
    start = flat(DropoutGAN(seed=2).trainable_variables)
    moved = np.linalg.norm(weights["forward"] - start)
    assert moved > 1e-3
    assert np.linalg.norm(weights["forward"] - weights["double_backward"]) < 1e-12 * moved


# -- layers that cannot be exact are refused before anything changes ----------------------------
@pytest.mark.skipif(
    "renorm" not in inspect.signature(keras.layers.BatchNormalization).parameters,
    reason="this Keras' BatchNormalization has no renorm (Keras 3.10, the declared floor): "
           "there is nothing to refuse",
)
def test_second_order_optimizers_refuse_batchnorm_renorm_before_any_change():
    keras.utils.set_random_seed(5)
    d = _mlp((2,), keras.layers.Dense(3), keras.layers.BatchNormalization(renorm=True,
                                                                         name="bn_renorm"),
             keras.layers.Dense(1))
    g = _mlp((2,), keras.layers.Dense(2))
    x, z = _rng_input((4, 2), 1), _rng_input((4, 2), 2)
    players = {"d": d, "g": g}
    before = [v.numpy() for v in d.variables + g.variables]
    from test_second_order_family import MAKERS  # every other second-order optimizer

    for opt in [tfgames.SGA(keras.optimizers.SGD(0.1)),
                tfgames.SGA(keras.optimizers.SGD(0.1), use_signs=False),
                tfgames.Consensus(keras.optimizers.SGD(0.1))] + [m() for m in MAKERS.values()]:
        game = Game(players, lambda: _gan_losses(d(x, training=True), d(g(z), training=True)))
        with pytest.raises(ValueError, match=(
                r"need exact second derivatives.*bn_renorm \(BatchNormalization with "
                r"renorm=True\).*renorm=False.*first-order optimizer")):
            opt.apply_game(game)
        assert game.evaluations == 0, type(opt).__name__
    for v, w in zip(d.variables + g.variables, before):
        np.testing.assert_array_equal(v.numpy(), w)


# -- the persistent-tape warning (issue 16, item 11) --------------------------------------------
@pytest.mark.parametrize("execution", ["eager", "function"])
def test_no_gradient_is_taken_inside_its_own_persistent_tape(execution, monkeypatch):
    """TensorFlow warns (once per process, so the call itself is recorded here) when a
    persistent tape's gradient is taken inside its context; neither mode does that."""
    from tensorflow.python.eager import backprop

    messages = []
    original = backprop.logging.log_first_n

    def record(level, msg, n, *args):
        messages.append(msg)
        return original(level, msg, n, *args)

    monkeypatch.setattr(backprop.logging, "log_first_n", record)
    ref = reference("dense")
    for mode in ("double_backward", "forward"):
        _products(ref, None, mode, execution)
        ref.restore()
    with tf.GradientTape(persistent=True) as tape:  # the recorder sees the warning's cause
        x = tf.constant(1.0, tf.float64)
        tape.watch(x)
        tape.gradient(x * x, x)
    assert sum("inside its context" in m for m in messages) == 1


# -- float64 hyperparameters stay float64 -------------------------------------------------------
A, C = 0.7, 0.3
B = np.array([[0.5, -1.2], [0.8, 0.4]])


def _quadratic_game():
    """l_x = a|x|^2/2 + x.By, l_y = -x.By + c|y|^2/2: xi and H in closed form."""
    x = keras.Variable(np.array([0.3, -0.9]), dtype="float64")
    y = keras.Variable(np.array([1.1, 0.6]), dtype="float64")

    def loss_fn():
        bilinear = tf.reduce_sum(x * tf.linalg.matvec(tf.constant(B), y))
        return {"x": 0.5 * A * tf.reduce_sum(x**2) + bilinear,
                "y": -bilinear + 0.5 * C * tf.reduce_sum(y**2)}

    w0 = np.concatenate([x.numpy(), y.numpy()])
    jac = np.block([[A * np.eye(2), B], [-B.T, C * np.eye(2)]])
    return Game({"x": x, "y": y}, loss_fn), (x, y), w0, jac


@pytest.mark.parametrize("optimizer", ["consensus", "sga_unaligned", "lookahead"])
def test_float64_hyperparameters_are_not_rounded_through_float32(optimizer):
    """0.1, 0.3 are not float32 numbers: rounded through float32 they moved the update by 1e-9
    to 4e-8 relative. The NumPy float64 transcription of the update agrees to 1e-14."""
    game, (x, y), w0, jac = _quadratic_game()
    xi = jac @ w0
    lr = 0.5  # a float32 number, so that Keras' float32 learning rate is exact
    if optimizer == "consensus":
        opt = tfgames.Consensus(keras.optimizers.SGD(lr), gamma=0.1)
        expected = w0 - lr * (xi + 0.1 * jac.T @ xi)
    elif optimizer == "sga_unaligned":
        opt = tfgames.SGA(keras.optimizers.SGD(lr), lambda_=0.3, use_signs=False,
                          hvp_mode="double_backward")
        expected = w0 - lr * (xi + 0.3 * 0.5 * (jac.T @ xi - jac @ xi))
    else:
        opt = tfgames.Lookahead(keras.optimizers.SGD(lr), k=1, alpha=0.3)
        expected = w0 + 0.3 * ((w0 - lr * xi) - w0)
    opt.apply_game(game)
    got = np.concatenate([x.numpy(), y.numpy()])
    np.testing.assert_allclose(got, expected, rtol=1e-14, atol=0)


# -- an unrolled GAN with a BatchNorm discriminator ---------------------------------------------
def test_unrolled_gan_generator_gradient_with_batchnorm_equals_finite_differences():
    """The generator's gradient runs back through K discriminator updates (second derivatives
    of BatchNorm's statistics); issue 21 measured it off by 0.165 before the fix."""
    from tfgames.unrolled import UnrolledGAN

    keras.utils.set_random_seed(3)
    d = _mlp((2,), keras.layers.Dense(4), keras.layers.BatchNormalization(),
             keras.layers.Activation("tanh"), keras.layers.Dense(1))
    g = _mlp((2,), keras.layers.Dense(3, activation="tanh"), keras.layers.Dense(2))
    model = UnrolledGAN(g, d, latent_dim=2, unroll_steps=2, seed=4)
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    x = _rng_input((6, 2), 1)
    state = [model.seed_generator.state] + d.non_trainable_variables
    state0 = [v.numpy() for v in state]

    def restore():
        for v, s in zip(state, state0):
            v.assign(s)

    _, xi = model.make_game(x).gradient()
    restore()
    got = flat(xi[len(d.trainable_variables):])
    variables = g.trainable_variables
    w0 = flat(variables)
    loss = tf.function(lambda: model.compute_losses(x, training=True)["generator"])

    def loss_at(w):
        i = 0
        for v in variables:
            size = int(np.prod(v.shape))
            v.assign(w[i : i + size].reshape(v.shape))
            i += size
        restore()
        return float(loss())

    fd = np.array([(loss_at(w0 + step) - loss_at(w0 - step)) / (2 * H_STEP)
                   for step in np.eye(w0.size) * H_STEP])
    loss_at(w0)
    assert rel(got, fd) < TOL
