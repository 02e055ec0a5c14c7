"""H v and H^T v against dense Jacobians (tape.jacobian) on small games of real layers."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import batchnorm_losses, batchnorm_players, flat

import tfgames
from tfgames import products


def _conv_game():
    """A 2-player game: a Conv2DTranspose 'generator' against a Conv2D 'critic'."""
    keras.utils.set_random_seed(7)
    gen = keras.Sequential([
        keras.Input((2, 2, 2)),
        keras.layers.Conv2DTranspose(3, 3, strides=2, padding="same", activation="tanh"),
        keras.layers.Conv2D(1, 1),
    ])
    critic = keras.Sequential([
        keras.Input((4, 4, 1)),
        keras.layers.Conv2D(2, 3, activation="softplus"),
        keras.layers.Flatten(),
        keras.layers.Dense(1),
    ])
    z = tf.random.normal((3, 2, 2, 2), seed=1)
    real = tf.random.normal((3, 4, 4, 1), seed=2)

    def loss_fn():
        f = tf.reduce_mean(critic(real)) - tf.reduce_mean(critic(gen(z)))
        reg = 0.1 * tf.reduce_mean(critic(gen(z)) ** 2)
        return {"critic": -f + reg, "gen": f + 0.05 * tf.reduce_mean(gen(z) ** 2)}

    return {"critic": critic.trainable_variables, "gen": gen.trainable_variables}, loss_fn


def _dense_game():
    keras.utils.set_random_seed(3)
    g = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, activation="tanh"),
                          keras.layers.Dense(2)])
    d = keras.Sequential([keras.Input((2,)), keras.layers.Dense(4, activation="sigmoid"),
                          keras.layers.Dense(1)])
    z = tf.random.normal((5, 3), seed=4)
    x = tf.random.normal((5, 2), seed=5)

    def loss_fn():
        bce = tf.nn.sigmoid_cross_entropy_with_logits
        real, fake = d(x), d(g(z))
        ld = tf.reduce_mean(bce(tf.ones_like(real), real) + bce(tf.zeros_like(fake), fake))
        return {"d": ld, "g": tf.reduce_mean(bce(tf.ones_like(fake), fake))}

    return {"d": d.trainable_variables, "g": g.trainable_variables}, loss_fn


def _dense_jacobian(players, loss_fn):
    """J = d xi / d w as a dense matrix, from tape.jacobian (independent of products.py)."""
    values = [v.value for vs in players.values() for v in vs]
    with tf.GradientTape() as outer:
        with tf.GradientTape(persistent=True) as inner:
            losses = loss_fn()
        xi = []
        for name, vs in players.items():
            xi += [tf.reshape(g, [-1]) for g in inner.gradient(losses[name], [v.value for v in vs])]
        xi = tf.concat(xi, 0)
    blocks = outer.jacobian(xi, values)
    n = int(xi.shape[0])
    return np.concatenate([tf.reshape(b, [n, -1]).numpy() for b in blocks], 1), xi.numpy()


GAMES = {"dense": _dense_game, "conv": _conv_game}
EXECUTION = ["eager", "function", "xla"]


def _run(fn, execution):
    if execution == "eager":
        return fn()
    return tf.function(fn, jit_compile=execution == "xla")()


def _dense_jacobian_cases():
    """Every game x execution x mode; conv games outside tf.function under `make test-slow`
    (the default run keeps conv in tf.function and every game in every mode)."""
    for mode in ("forward", "double_backward"):
        for execution in EXECUTION:
            for game in sorted(GAMES):
                slow = "conv" in game and execution != "function"
                yield pytest.param(game, execution, mode, id=f"{mode}-{execution}-{game}",
                                   marks=(pytest.mark.slow,) if slow else ())


@pytest.mark.parametrize("game,execution,mode", list(_dense_jacobian_cases()))
def test_products_match_dense_jacobian(game, execution, mode):
    players, loss_fn = GAMES[game]()
    jac, xi = _dense_jacobian(players, loss_fn)
    assert not np.allclose(jac, jac.T, atol=1e-4), "the game must be non-symmetric"
    rng = np.random.default_rng(0)
    shapes = [v.shape for vs in players.values() for v in vs]
    vec = [tf.constant(rng.standard_normal(s), tf.float32) for s in shapes]
    v = flat(vec)

    out = _run(lambda: products.game_products(loss_fn, players, vec, mode=mode), execution)
    scale = np.abs(jac).max() * np.abs(v).max()
    np.testing.assert_allclose(flat(out.xi), xi, atol=1e-5)
    np.testing.assert_allclose(flat(out.hv), jac @ v, atol=2e-5 * scale)
    np.testing.assert_allclose(flat(out.htv), jac.T @ v, atol=2e-5 * scale)


@pytest.mark.parametrize("game", sorted(GAMES))
def test_forward_and_double_backward_agree_with_vector_xi(game):
    players, loss_fn = GAMES[game]()
    jac, xi = _dense_jacobian(players, loss_fn)
    fwd = products.game_products(loss_fn, players, None, mode="forward")
    dbl = products.game_products(loss_fn, players, None, mode="double_backward")
    np.testing.assert_allclose(flat(fwd.vector), xi, atol=1e-6)
    np.testing.assert_allclose(flat(fwd.hv), flat(dbl.hv), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(flat(fwd.htv), flat(dbl.htv), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(flat(dbl.hv), jac @ xi, rtol=1e-4, atol=1e-6)


def test_only_requested_products_are_computed():
    players, loss_fn = _dense_game()
    out = products.game_products(loss_fn, players, None, hv=False, htv=True)
    assert out.hv is None and out.htv is not None


def test_unknown_mode_is_rejected():
    players, loss_fn = _dense_game()
    with pytest.raises(ValueError, match="`mode` must be one of .*Received: mode='reverse'"):
        products.game_products(loss_fn, players, None, mode="reverse")


def test_loss_independent_of_its_player_is_rejected():
    players, loss_fn = _dense_game()
    with pytest.raises(ValueError, match="loss of player 'g' does not depend"):
        products.simultaneous_gradient(lambda: {"d": loss_fn()["d"], "g": tf.constant(1.0)},
                                       players)


def _linear_quadratic_game(keras_y: bool):
    """l_x = x.(B y) + a/2 |x|^2, l_y = -x.(B y) + c/2 |y|^2, with x a plain ``tf.Variable``:
    xi = (B y + a x, -B^T x + c y) and H = [[a I, B], [-B^T, c I]] in closed form."""
    a, c = 0.3, 0.7
    B = np.array([[1.0, 2.0], [-0.5, 1.5]], "float32")
    x = tf.Variable([0.4, -1.2])
    y = keras.Variable([1.1, 0.3]) if keras_y else tf.Variable([1.1, 0.3])

    def loss_fn():
        bilinear = tf.tensordot(x, tf.linalg.matvec(B, tf.convert_to_tensor(y)), 1)
        return {"x": bilinear + 0.5 * a * tf.reduce_sum(x * x),
                "y": -bilinear + 0.5 * c * tf.reduce_sum(tf.convert_to_tensor(y) ** 2)}

    jac = np.block([[a * np.eye(2), B], [-B.T, c * np.eye(2)]])
    return {"x": [x], "y": [y]}, loss_fn, jac


@pytest.mark.parametrize("keras_y", [False, True], ids=["tf-variables", "mixed"])
@pytest.mark.parametrize("execution", ["eager", "function"])
@pytest.mark.parametrize("mode", ["forward", "double_backward"])
def test_plain_tf_variable_players_match_the_closed_form(keras_y, execution, mode):
    """Players given as plain tf.Variables (alone or next to Keras variables) are watched as
    variables, not read into a StatelessScope; the products are still exact."""
    players, loss_fn, jac = _linear_quadratic_game(keras_y)
    w = np.array([0.4, -1.2, 1.1, 0.3])
    vec = [tf.constant([1.0, -2.0]), tf.constant([0.5, 3.0])]
    out = _run(lambda: products.game_products(loss_fn, players, vec, mode=mode), execution)
    np.testing.assert_allclose(flat(out.xi), jac @ w, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(flat(out.hv), jac @ flat(vec), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(flat(out.htv), jac.T @ flat(vec), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("execution", ["eager", "function"])
@pytest.mark.parametrize("mode", ["forward", "double_backward"])
def test_state_updates_in_the_losses_happen_once_per_products_call(execution, mode, float64):
    """The losses are evaluated twice in forward mode, once by double backward; either way a
    counter assigned in the losses, BatchNorm's moving statistics and the noise seed advance as
    after one ordinary evaluation, and the products see the same noise in every pass. (In
    float64: the rows of the bias before BatchNorm are exactly 0 in exact arithmetic, and float32
    rounding leaves ~1e-6 there.)"""

    def build():
        d, g = batchnorm_players(seed=11, hidden=3)
        return d, g, keras.Variable(0.0, trainable=False), keras.random.SeedGenerator(5)

    x = tf.random.normal((8, 2), seed=3, dtype=tf.float64)

    def losses_of(d, g, counter, seed):
        def loss_fn():
            counter.assign_add(1.0)
            return batchnorm_losses(d, g, x, keras.random.normal((8, 2), seed=seed))
        return loss_fn

    d, g, counter, seed = build()  # reference: one ordinary evaluation
    losses_of(d, g, counter, seed)()
    ref_stats = [v.numpy() for v in d.non_trainable_variables]
    ref_seed = seed.state.numpy()

    d, g, counter, seed = build()
    game = tfgames.Game({"d": d, "g": g}, losses_of(d, g, counter, seed), seed_generator=seed)
    out = _run(lambda: game.products(None, mode=mode), execution)
    assert counter.numpy() == 1.0
    for got, ref in zip(d.non_trainable_variables, ref_stats):
        np.testing.assert_allclose(got.numpy(), ref, rtol=1e-6)
    np.testing.assert_array_equal(seed.state.numpy(), ref_seed)

    # The products are those of the losses at the step's noise and statistics.
    d2, g2, counter2, seed2 = build()
    players = {"d": d2.trainable_variables, "g": g2.trainable_variables}
    state, stats = seed2.state.numpy(), [v.numpy() for v in d2.non_trainable_variables]

    def replayed():
        seed2.state.assign(state)
        for v, s in zip(d2.non_trainable_variables, stats):
            v.assign(s)
        return losses_of(d2, g2, counter2, seed2)()

    # tape.jacobian differentiates BatchNorm's tf.nn.moments, whose stop_gradient makes its
    # second derivatives wrong; the products use exact moments, so the reference must too
    # (tests/test_products_exact.py checks both against finite differences).
    with products.exact_moments():
        jac, xi = _dense_jacobian(players, replayed)
    np.testing.assert_allclose(flat(out.xi), xi, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(flat(out.hv), jac @ xi, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(flat(out.htv), jac.T @ xi, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("mode,times", [("forward", 2), ("double_backward", 1)])
def test_assignments_to_plain_tf_variables_happen_at_every_evaluation(mode, times):
    """Only Keras variables' assignments are recorded and applied once: a plain ``tf.Variable``
    assigned in the losses moves at every evaluation, twice per products call in forward mode
    (documented in docs/games.md; keep such state in Keras variables)."""
    keras_counter, plain_counter = keras.Variable(0.0, trainable=False), tf.Variable(0.0)
    x, y = keras.Variable(1.0), keras.Variable(2.0)

    def loss_fn():
        keras_counter.assign_add(1.0)
        plain_counter.assign_add(1.0)
        return tfgames.zero_sum(x * y, min_player="x", max_player="y")

    game = tfgames.Game({"x": x, "y": y}, loss_fn)
    game.products(None, mode=mode)
    assert keras_counter.numpy() == 1.0
    assert plain_counter.numpy() == times


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_norm_and_dot_equal_numpy(dtype):
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal(s).astype(dtype) for s in [(3, 4), (5,), ()]]
    ys = [rng.standard_normal(x.shape).astype(dtype) for x in xs]
    x64 = np.concatenate([np.ravel(x).astype("float64") for x in xs])
    y64 = np.concatenate([np.ravel(y).astype("float64") for y in ys])
    tensors = [tf.constant(x) for x in xs]
    norm = products.norm(tensors)
    assert norm.dtype == tf.float32  # half-precision tensors are summed in float32
    np.testing.assert_allclose(norm.numpy(), np.linalg.norm(x64), rtol=1e-6)
    np.testing.assert_allclose(products.dot(tensors, [tf.constant(y) for y in ys]).numpy(),
                               x64 @ y64, rtol=1e-5)
