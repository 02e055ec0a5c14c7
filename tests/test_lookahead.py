"""Lookahead-minmax against NumPy: around SGD, ExtraAdam, an alternating PerPlayer and in a
plain keras fit; convergence of LA-GDA on x*y; slow weights saved; config and errors."""

import keras
import numpy as np
import pytest
from test_adamirror_ogd import (
    W0,
    bilinear_field,
    numpy_gd,
    quadratic_field,
    quadratic_model,
    trajectory,
)
from test_extragradient import NumpyAdam

import tfgames


def numpy_lookahead(step, w, steps, k, alpha):
    """Chavdarova et al. 2021: every k steps, slow += alpha (fast - slow); fast = slow."""
    slow, out = w.copy(), []
    for t in range(1, steps + 1):
        w = step(w)
        if t % k == 0:
            slow = slow + alpha * (w - slow)
            w = slow.copy()
        out.append(w)
    return np.array(out)


def sgd_step(field, lr):
    return lambda w: w - lr * field(w)


def extra_adam_step(field, adam):
    def step(w):
        half = adam.step(w, field(w))
        return adam.step(w, field(half))
    return step


@pytest.mark.parametrize("jit", [False, True])
def test_lookahead_gda_equals_numpy(jit):
    opt = tfgames.Lookahead(keras.optimizers.SGD(0.1), k=3, alpha=0.5)
    got = trajectory(quadratic_model(), opt, 7, jit_compile=jit)
    want = numpy_lookahead(sgd_step(quadratic_field, 0.1), W0, 7, 3, 0.5)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    assert int(opt.iterations.numpy()) == 7


def test_lookahead_extra_adam_equals_numpy():
    opt = tfgames.Lookahead(tfgames.Extragradient(keras.optimizers.Adam(0.1, 0.5, 0.9)), k=2,
                            alpha=0.3)
    got = trajectory(quadratic_model(), opt, 5)
    adam = NumpyAdam(0.1, 0.5, 0.9, 1e-7)
    want = numpy_lookahead(extra_adam_step(quadratic_field, adam), W0, 5, 2, 0.3)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_lookahead_synchronises_all_players_of_an_alternating_schedule():
    inner = tfgames.PerPlayer({"x": keras.optimizers.SGD(0.1), "y": keras.optimizers.SGD(0.2)},
                              schedule={"x": 2, "y": 1})
    opt = tfgames.Lookahead(inner, k=4, alpha=0.5)
    got = trajectory(quadratic_model(), opt, 8)
    counter = iter(range(100))

    def alternating(w):
        g = quadratic_field(w)
        if next(counter) % 3 < 2:
            return np.concatenate([w[:2] - 0.1 * g[:2], w[2:]])
        return np.concatenate([w[:2], w[2:] - 0.2 * g[2:]])

    want = numpy_lookahead(alternating, W0, 8, 4, 0.5)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    assert [int(o.iterations.numpy()) for o in inner.optimizers.values()] == [6, 2]


def test_lookahead_in_a_plain_keras_fit_equals_numpy():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((8, 3)).astype("float32")
    y = rng.standard_normal((8, 1)).astype("float32")
    w0 = np.array([[0.5], [-1.0], [0.25]], dtype="float32")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, use_bias=False)])
    model.layers[0].kernel.assign(w0)
    model.compile(optimizer=tfgames.Lookahead(keras.optimizers.SGD(0.05), k=2, alpha=0.5),
                  loss="mse")
    model.fit(x, y, batch_size=8, epochs=5, shuffle=False, verbose=0)

    def field(w):
        return (2.0 / 8.0 * x.T @ (x @ w.reshape(3, 1) - y)).ravel()

    want = numpy_lookahead(sgd_step(field, 0.05), w0.ravel().astype(float), 5, 2, 0.5)[-1]
    np.testing.assert_allclose(model.layers[0].kernel.numpy().ravel(), want, rtol=1e-6,
                               atol=1e-7)


def extragradient_step(field, lr):
    return lambda w: w - lr * field(w - lr * field(w))


@pytest.mark.parametrize("extragradient", [False, True], ids=["la_gda", "la_extragrad"])
def test_lookahead_converges_on_the_bilinear_game(extragradient):
    """GDA with step 0.1 ends ~205 from the equilibrium; LA-GDA (k=5, alpha=0.5) converges."""
    inner = keras.optimizers.SGD(0.1)
    step = sgd_step(bilinear_field, 0.1)
    if extragradient:
        inner, step = tfgames.Extragradient(inner), extragradient_step(bilinear_field, 0.1)
    model = tfgames.games.Bilinear()
    model.compile(optimizer=tfgames.Lookahead(inner, k=5, alpha=0.5))
    model.fit(tfgames.datasets.step_dataset(1000), epochs=1, verbose=0)
    want = float(np.linalg.norm(numpy_lookahead(step, np.ones(2), 1000, 5, 0.5)[-1]))
    got = model.distance_to_equilibrium()
    assert abs(got - want) <= 1e-3 * want + 1e-6, (got, want)
    assert got < 0.05
    assert float(np.linalg.norm(numpy_gd(bilinear_field, np.ones(2), 0.1, 1000)[-1])) > 200


def test_k1_alpha1_is_the_inner_optimizer():
    got = trajectory(quadratic_model(), tfgames.Lookahead(keras.optimizers.Adam(0.1), 1, 1.0), 3)
    want = trajectory(quadratic_model(), keras.optimizers.Adam(0.1), 3)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_game_optimizer_diagnostics_are_reported():
    model = tfgames.games.Bilinear()
    model.compile(optimizer=tfgames.Lookahead(tfgames.SGA(keras.optimizers.SGD(0.1)), k=2))
    hist = model.fit(tfgames.datasets.step_dataset(4), epochs=1, verbose=0)
    assert "sga_lambda" in hist.history and "x_loss" in hist.history


def test_slow_weights_are_saved_and_training_resumes(tmp_path, fixed_sum_order):
    def make():
        return tfgames.Lookahead(keras.optimizers.Adam(0.1, 0.5), k=5, alpha=0.5)

    straight = quadratic_model()
    straight.compile(optimizer=make())
    straight.fit(tfgames.datasets.step_dataset(12), epochs=1, verbose=0)

    first = quadratic_model()
    first.compile(optimizer=make())
    first.fit(tfgames.datasets.step_dataset(7), epochs=1, verbose=0)  # mid-cycle
    slow = [s.numpy() for s in first.optimizer._slot_variables]
    assert not np.allclose(np.concatenate(slow), W0)  # synchronised once, at step 5
    path = str(tmp_path / "lookahead.keras")
    first.save(path)
    resumed = keras.models.load_model(path)
    assert isinstance(resumed.optimizer, tfgames.Lookahead)
    assert int(resumed.optimizer.iterations.numpy()) == 7
    for got, want in zip(resumed.optimizer._slot_variables, slow):
        np.testing.assert_array_equal(got.numpy(), want)
    resumed.fit(tfgames.datasets.step_dataset(5), epochs=1, verbose=0)
    for a, b in zip(resumed.trainable_variables, straight.trainable_variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-7)


def test_config_round_trip():
    opt = tfgames.Lookahead(tfgames.Extragradient(keras.optimizers.Adam(2e-4, 0.0, 0.9)), k=6,
                            alpha=0.4)
    config = opt.get_config()
    assert tfgames.Lookahead.from_config(config).get_config() == config
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(opt))
    assert isinstance(restored.inner_optimizer, tfgames.Extragradient)
    assert restored.get_config() == config


def test_invalid_arguments_are_explained():
    sgd = keras.optimizers.SGD(0.1)
    with pytest.raises(ValueError, match=r"`k` .* must be an integer >= 1. Received: k=0"):
        tfgames.Lookahead(sgd, k=0)
    with pytest.raises(ValueError, match=r"`alpha` .* must be in \(0, 1\].*alpha=1.5"):
        tfgames.Lookahead(sgd, alpha=1.5)
    with pytest.raises(ValueError, match=r"alpha=0"):
        tfgames.Lookahead(sgd, alpha=0)
    wrapped = tfgames.Lookahead(tfgames.Extragradient(keras.optimizers.SGD(0.1)))
    with pytest.raises(TypeError, match="Extragradient needs the game.*apply_game"):
        wrapped.apply([np.zeros(())], [keras.Variable(0.0)])


def test_docs_page_snippets_run():
    """docs/optimizers/first-order.md: its python blocks run in order (gan: a TinyGAN)."""
    import pathlib
    import re

    from conftest import TinyGAN

    page = pathlib.Path(__file__).parents[1] / "docs" / "optimizers" / "first-order.md"
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S)
    assert len(blocks) == 3
    namespace = {"gan": TinyGAN(seed=0)}
    for index, block in enumerate(blocks):
        exec(compile(block, f"first-order.md[python block {index}]", "exec"), namespace)
    assert namespace["model"].distance_to_equilibrium() < 0.01
    assert namespace["gan"].optimizer.schedule == "alternating"
