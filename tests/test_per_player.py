"""Per-player optimizers and schedules: own hyperparameters and step counters, alternating
k:1 through fit, compile config round trip, saving and resuming, composition with
extragradient, a plain keras model, and the errors."""

import keras
import numpy as np
import pytest
from conftest import TinyGAN, flat, real_batches
from test_adamirror_ogd import W0, quadratic_field, quadratic_model, trajectory
from test_extragradient import NumpyAdam

import tfgames

SGD, Adam = keras.optimizers.SGD, keras.optimizers.Adam


def counters(optimizer):
    return {p: int(o.iterations.numpy()) for p, o in optimizer.optimizers.items()}


def test_each_player_its_own_adam_equals_numpy():
    """x: Adam(1e-2, 0.5, 0.9), y: Adam(3e-2, 0.9, 0.9), simultaneous: per-player NumPy Adam."""
    got = trajectory(quadratic_model(), {"x": Adam(1e-2, 0.5, 0.9), "y": Adam(3e-2, 0.9, 0.9)}, 3)
    adam_x, adam_y = NumpyAdam(1e-2, 0.5, 0.9, 1e-7), NumpyAdam(3e-2, 0.9, 0.9, 1e-7)
    w, want = W0.copy(), []
    for _ in range(3):
        g = quadratic_field(w)
        w = np.concatenate([adam_x.step(w[:2], g[:2]), adam_y.step(w[2:], g[2:])])
        want.append(w)
    np.testing.assert_allclose(got, np.array(want), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("jit", [False, True])
def test_alternating_schedule_equals_numpy(jit):
    model = quadratic_model()
    got = trajectory(model, {"x": SGD(0.1), "y": SGD(0.2)}, 7, schedule={"x": 2, "y": 1},
                     jit_compile=jit)
    w, want = W0.copy(), []
    for t in range(7):
        g = quadratic_field(w)
        if t % 3 < 2:
            w = np.concatenate([w[:2] - 0.1 * g[:2], w[2:]])
        else:
            w = np.concatenate([w[:2], w[2:] - 0.2 * g[2:]])
        want.append(w)
    np.testing.assert_allclose(got, np.array(want), rtol=1e-6, atol=1e-7)
    assert counters(model.optimizer) == {"x": 5, "y": 2}
    assert int(model.optimizer.iterations.numpy()) == 7
    assert model.train_step_traces == 1


def test_wgan_gp_five_to_one_through_fit(tiny_gan):
    """5 discriminator steps per generator step with the seeds' Adam settings."""
    tiny_gan.compile(
        optimizer={"discriminator": Adam(1e-4, 0.5, 0.9), "generator": Adam(3e-4, 0.9, 0.9)},
        schedule={"discriminator": 5, "generator": 1})
    generator = tiny_gan.generator.trainable_variables
    start = flat(generator)
    seen = []
    record = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: seen.append(flat(generator)))
    hist = tiny_gan.fit(real_batches(12, 16), epochs=1, verbose=0, callbacks=[record])
    assert counters(tiny_gan.optimizer) == {"discriminator": 10, "generator": 2}
    assert int(tiny_gan.optimizer.iterations.numpy()) == 12
    moved = [not np.array_equal(w, prev) for w, prev in zip(seen, [start] + seen[:-1])]
    assert moved == [False] * 5 + [True] + [False] * 5 + [True]
    assert set(hist.history) == {"discriminator_loss", "generator_loss"}
    opts = tiny_gan.optimizer.optimizers
    assert (opts["discriminator"].beta_1, opts["generator"].beta_1) == (0.5, 0.9)


def test_alternating_is_one_step_each_in_order():
    model = quadratic_model()
    model.compile(optimizer={"y": SGD(0.1), "x": SGD(0.1)}, schedule="alternating")
    model.fit(tfgames.datasets.step_dataset(3), epochs=1, verbose=0)
    assert counters(model.optimizer) == {"y": 2, "x": 1}


def test_one_optimizer_with_a_schedule_is_copied_per_player():
    model = quadratic_model()
    model.compile(optimizer=Adam(0.05, 0.5), schedule={"x": 3, "y": 1})
    opt = model.optimizer
    assert isinstance(opt, tfgames.PerPlayer) and opt.player_names == ["x", "y"]
    assert all(isinstance(o, Adam) and o.beta_1 == 0.5 for o in opt.optimizers.values())
    assert opt.optimizers["x"] is not opt.optimizers["y"]
    model.fit(tfgames.datasets.step_dataset(8), epochs=1, verbose=0)
    assert counters(opt) == {"x": 6, "y": 2}


def test_extragradient_with_per_player_step_sizes_equals_numpy():
    """Gidel et al.'s per-player ExtraAdam, here with SGD: one step size per player."""
    inner = tfgames.PerPlayer({"x": SGD(0.1), "y": SGD(0.05)})
    got = trajectory(quadratic_model(), tfgames.Extragradient(inner), 3)
    lr = np.array([0.1, 0.1, 0.05, 0.05])
    w, want = W0.copy(), []
    for _ in range(3):
        half = w - lr * quadratic_field(w)
        w = w - lr * quadratic_field(half)
        want.append(w)
    np.testing.assert_allclose(got, np.array(want), rtol=1e-6, atol=1e-7)
    assert counters(inner) == {"x": 6, "y": 6}


def test_plain_keras_model_with_bound_players():
    """Outside a game: bind the players' variables, then fit a plain keras model."""
    inputs = keras.Input((2,))
    a = keras.layers.Dense(2, use_bias=False, name="a")
    b = keras.layers.Dense(1, use_bias=False, name="b")
    model = keras.Model(inputs, b(a(inputs)))
    a.kernel.assign(np.array([[1.0, 0.5], [-0.5, 1.0]], "float32"))
    b.kernel.assign(np.array([[0.3], [-0.2]], "float32"))
    opt = tfgames.PerPlayer({"a": SGD(0.1), "b": SGD(0.01)})
    opt.bind_players({"a": a.trainable_variables, "b": b.trainable_variables})
    model.compile(optimizer=opt, loss="mse")
    x = np.array([[1.0, 2.0], [-1.0, 0.5]], "float32")
    y = np.array([[1.0], [0.0]], "float32")
    wa, wb = a.kernel.numpy().astype(float), b.kernel.numpy().astype(float)
    model.fit(x, y, batch_size=2, epochs=1, shuffle=False, verbose=0)
    residual = x @ wa @ wb - y
    grad_b = (wa.T @ x.T @ residual) * 2 / 2
    grad_a = (x.T @ residual @ wb.T) * 2 / 2
    np.testing.assert_allclose(a.kernel.numpy(), wa - 0.1 * grad_a, rtol=1e-6)
    np.testing.assert_allclose(b.kernel.numpy(), wb - 0.01 * grad_b, rtol=1e-6)
    assert counters(opt) == {"a": 1, "b": 1}


# -- compile config, saving ----------------------------------------------------------------------
def test_compile_config_round_trip():
    model = quadratic_model()
    model.compile(optimizer={"x": Adam(1e-4, 0.5, 0.9), "y": tfgames.Adamirror(3e-4, 0.9, 0.9)},
                  schedule={"x": 5, "y": 1})
    config = model.get_compile_config()
    other = quadratic_model()
    other.compile_from_config(config)
    opt = other.optimizer
    assert isinstance(opt, tfgames.PerPlayer) and opt.schedule == {"x": 5, "y": 1}
    assert opt.get_config() == model.optimizer.get_config()
    assert opt.built and len(opt.variables) == len(model.optimizer.variables)


def test_save_load_resume_equals_uninterrupted(tmp_path, fixed_sum_order):
    def fresh():
        keras.utils.set_random_seed(1)
        model = TinyGAN(seed=3)
        model.compile(optimizer={"discriminator": Adam(1e-2, 0.5, 0.9),
                                 "generator": Adam(3e-2, 0.9, 0.9)},
                      schedule={"discriminator": 5, "generator": 1})
        return model

    data = real_batches(12, 16)
    straight = fresh()
    straight.fit(data, epochs=1, verbose=0)
    first = fresh()
    first.fit(data.take(7), epochs=1, verbose=0)  # mid-cycle: D 6 steps, G 1
    path = str(tmp_path / "gan.keras")
    first.save(path)
    resumed = keras.models.load_model(path)
    assert isinstance(resumed.optimizer, tfgames.PerPlayer)
    assert counters(resumed.optimizer) == {"discriminator": 6, "generator": 1}
    assert int(resumed.optimizer.iterations.numpy()) == 7
    for a, b in zip(resumed.optimizer.variables, first.optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    resumed.fit(data.skip(7), epochs=1, verbose=0)
    assert counters(resumed.optimizer) == counters(straight.optimizer)
    np.testing.assert_allclose(flat(resumed.trainable_variables),
                               flat(straight.trainable_variables), rtol=1e-6, atol=1e-7)


# -- errors --------------------------------------------------------------------------------------
def test_errors_name_the_constraint_and_the_fix():
    model = quadratic_model()
    with pytest.raises(ValueError,
                       match=r"optimizers for \['x'\].*without an optimizer: \['y'\]"):
        model.compile(optimizer={"x": SGD(0.1)})
    sgd = SGD(0.1)
    with pytest.raises(ValueError, match="same optimizer instance"):
        tfgames.PerPlayer({"x": sgd, "y": sgd})
    with pytest.raises(TypeError, match="game optimizer.*Extragradient.*Wrap the container"):
        tfgames.PerPlayer({"x": tfgames.Extragradient(SGD(0.1)), "y": SGD(0.1)})
    with pytest.raises(ValueError, match="schedule.*game optimizer.*Extragradient"):
        model.compile(optimizer=tfgames.Extragradient(SGD(0.1)), schedule="alternating")
    with pytest.raises(ValueError, match=r"schedule\['x'\]=0"):
        tfgames.PerPlayer({"x": SGD(0.1), "y": SGD(0.1)}, schedule={"x": 0, "y": 1})
    with pytest.raises(ValueError, match=r"Missing: \['y'\]"):
        tfgames.PerPlayer({"x": SGD(0.1), "y": SGD(0.1)}, schedule={"x": 5})
    with pytest.raises(ValueError, match="must be one of.*schedule='round_robin'"):
        tfgames.PerPlayer({"x": SGD(0.1), "y": SGD(0.1)}, schedule="round_robin")
    given = tfgames.PerPlayer({"x": SGD(0.1), "y": SGD(0.1)})
    with pytest.raises(ValueError, match="already has its schedule"):
        model.compile(optimizer=given, schedule="alternating")
    unbound = tfgames.PerPlayer({"a": SGD(0.1)})
    with pytest.raises(ValueError, match="does not know which variables.*bind_players"):
        unbound.apply([np.zeros(())], [keras.Variable(0.0)])
    alternating = tfgames.PerPlayer({"x": SGD(0.1), "y": SGD(0.1)}, schedule="alternating")
    with pytest.raises(ValueError, match="apply_game"):
        alternating.apply([np.zeros(())], [keras.Variable(0.0)])


DISTRIBUTED = r"""
import os, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras, numpy as np, tfgames
from conftest import TinyGAN, real_batches

def run(strategy, schedule):
    with strategy.scope():
        keras.utils.set_random_seed(1)
        model = TinyGAN(seed=3)
        model.compile(optimizer={"discriminator": keras.optimizers.Adam(1e-2),
                                 "generator": keras.optimizers.SGD(0.05)}, schedule=schedule)
    model.fit(real_batches(3, 16, with_noise=True), epochs=1, verbose=0)  # z in the data
    return np.concatenate([v.numpy().ravel() for v in model.trainable_variables])

mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
single = run(tf.distribute.OneDeviceStrategy("/cpu:0"), "simultaneous")
print("DIFF", np.abs(run(mirrored, "simultaneous") - single).max())
alternating = run(tf.distribute.OneDeviceStrategy("/cpu:0"), "alternating")
print("ALTERNATING", np.abs(run(mirrored, "alternating") - alternating).max(),
      np.abs(alternating - single).max())
"""


@pytest.mark.slow
def test_mirrored_strategy_simultaneous_and_alternating_equal_one_device():
    """Also every alternating order: tests/test_alternating_distribute.py."""
    import os
    import subprocess
    import sys

    here = os.path.dirname(__file__)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.dirname(here), here]),
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([sys.executable, "-c", DISTRIBUTED], capture_output=True, text=True,
                          env=env, timeout=600)
    out = dict(line.split(" ", 1) for line in proc.stdout.splitlines()
               if line.startswith(("DIFF ", "ALTERNATING ")))
    assert "DIFF" in out and "ALTERNATING" in out, proc.stderr[-4000:]
    assert float(out["DIFF"]) < 1e-6
    difference, moved = (float(x) for x in out["ALTERNATING"].split())
    assert difference < 1e-6 and moved > 1e-3  # the alternating run is not the simultaneous one
