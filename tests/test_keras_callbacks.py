"""One wrapper design (issue 15.2, 15.6) and Keras' optimizer callbacks (issue 16.1-16.3).

TensorBoard, LearningRateScheduler and ReduceLROnPlateau with every per-player set-up
(effects read back from the players' own optimizers); mixed_float16 with per-player
optimizers and update orders (tracking the float32 run); the refusal of Keras' base
arguments by every wrapper; keyword-only hyperparameters and NumPy scalars; the deprecated
spellings of 0.1 (compile(schedule=...), PerPlayer(schedule=...), dict-style
PerPlayer.optimizers, positional hyperparameters); what ``iterations`` counts; and the two
data layouts of an alternating update order (``batches="fresh"`` / ``"reuse"``) against a
NumPy transcription.
"""

import glob
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import TinyGAN, flat, real_batches

import tfgames
from tfgames.optimizers.base import steps_game
from tfgames.optimizers.per_player import PerPlayer

Adam, SGD, RMSprop = keras.optimizers.Adam, keras.optimizers.SGD, keras.optimizers.RMSprop
LSO = keras.optimizers.LossScaleOptimizer
PLAYERS = ("discriminator", "generator")


def _adams(d=1e-3, g=4e-3):
    return {"discriminator": Adam(d, beta_1=0.5), "generator": Adam(g, beta_1=0.5)}


# Each set-up: (compile kwargs, the leaf optimizers whose learning rates must move).
def _setup(kind, d=1e-3, g=4e-3, make=None):
    adams = make(d, g) if make else _adams(d, g)
    if kind == "dict":
        return {"optimizer": adams}, adams
    if kind == "update_order_5_1":
        return {"optimizer": adams, "update_order": {"discriminator": 5, "generator": 1}}, adams
    if kind == "sga_per_player":
        return {"optimizer": tfgames.SGA(PerPlayer(adams))}, adams
    if kind == "extragradient_per_player":
        return {"optimizer": tfgames.Extragradient(PerPlayer(adams))}, adams
    if kind == "lookahead_alternating":
        return {"optimizer": tfgames.Lookahead(
            PerPlayer(adams, update_order="alternating"), k=2)}, adams
    if kind == "sga_adam":
        inner = Adam(1e-3)
        return {"optimizer": tfgames.SGA(inner)}, {"all": inner}
    raise ValueError(kind)


PER_PLAYER = ["dict", "update_order_5_1", "sga_per_player", "extragradient_per_player",
              "lookahead_alternating"]


def _kinds(default, kinds=PER_PLAYER):
    """``kinds``, those not in ``default`` marked slow (the default run stays short)."""
    return [k if k in default else pytest.param(k, marks=pytest.mark.slow) for k in kinds]


def _rates(leaves):
    return {p: float(o.learning_rate.numpy()) for p, o in leaves.items()}


def _compiled_gan(kind):
    """A TinyGAN (seeded) compiled as ``kind`` sets up, and the leaf optimizers of ``kind``."""
    keras.utils.set_random_seed(1)
    model = TinyGAN(seed=3)
    kwargs, leaves = _setup(kind)
    model.compile(**kwargs)
    return model, leaves


def _scalars(log_dir):
    """{tag: [values]} of every scalar summary in the event files under ``log_dir``."""
    out = {}
    for path in glob.glob(os.path.join(log_dir, "**", "events.out.tfevents.*"), recursive=True):
        for record in tf.data.TFRecordDataset(path):
            event = tf.compat.v1.Event.FromString(record.numpy())
            for value in event.summary.value:
                out.setdefault(value.tag, []).append(float(tf.make_ndarray(value.tensor)))
    return out


# -- TensorBoard (issue 16.1) --------------------------------------------------------------------
@pytest.mark.parametrize("kind", _kinds({"update_order_5_1", "sga_per_player"}))
def test_tensorboard_logs_each_players_learning_rate(kind, tmp_path):
    model, leaves = _compiled_gan(kind)
    model.fit(real_batches(6, 8), epochs=2, verbose=0,
              callbacks=[keras.callbacks.TensorBoard(log_dir=str(tmp_path), write_graph=False)])
    scalars = _scalars(str(tmp_path / "train"))
    for player in PLAYERS:
        assert scalars[f"epoch_learning_rate_{player}"] == pytest.approx(
            [leaves[player].learning_rate.numpy()] * 2)
    assert "epoch_discriminator_loss" in scalars


# -- learning-rate callbacks (issue 16.2, 15 "Keras users are surprised") ------------------------
@pytest.mark.parametrize("kind", _kinds({"dict", "sga_per_player", "sga_adam"},
                                        PER_PLAYER + ["sga_adam"]))
def test_learning_rate_scheduler_changes_every_inner_optimizer(kind):
    model, leaves = _compiled_gan(kind)
    before = _rates(leaves)
    seen = []
    scheduler = keras.callbacks.LearningRateScheduler(lambda epoch, lr: lr * 0.5)
    probe = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: seen.append(_rates(leaves)))
    model.fit(real_batches(3, 8), epochs=2, verbose=0, callbacks=[scheduler, probe])
    for epoch, rates in enumerate(seen):
        for player, rate in rates.items():
            # Each player's own rate is halved (a per-player ratio of 4 is kept).
            assert rate == pytest.approx(before[player] * 0.5 ** (epoch + 1), rel=1e-6)


@pytest.mark.parametrize("kind", _kinds({"extragradient_per_player", "lookahead_alternating"},
                                        PER_PLAYER + ["sga_adam"]))
def test_reduce_lr_on_plateau_changes_every_inner_optimizer(kind):
    model, leaves = _compiled_gan(kind)
    before = _rates(leaves)
    # min_delta too large to ever improve: epoch 2 is a plateau, the rates drop once.
    plateau = keras.callbacks.ReduceLROnPlateau(
        monitor="generator_loss", mode="min", factor=0.1, patience=0, min_delta=1e9)
    history = model.fit(real_batches(3, 8), epochs=2, verbose=0, callbacks=[plateau])
    after = _rates(leaves)
    for player in before:
        assert after[player] == pytest.approx(before[player] * 0.1, rel=1e-6)
    if kind != "sga_adam":
        for player in PLAYERS:  # logged per player (the rate the epoch trained with)
            assert history.history[f"learning_rate_{player}"] == pytest.approx(
                [before[player]] * 2, rel=1e-6)


def test_a_changed_learning_rate_changes_the_traced_step():
    """After the callback, the compiled step uses the new rate: SGD steps scale with it."""
    model = tfgames.games.QuadraticZeroSum()
    opt = PerPlayer({"x": SGD(0.1), "y": SGD(0.1)})
    model.compile(optimizer=opt)
    w = lambda: flat([v.numpy() for v in model.trainable_variables])  # noqa: E731
    w0 = w()
    model.fit(tfgames.datasets.step_dataset(1), epochs=1, verbose=0)
    first = w() - w0
    model2 = tfgames.games.QuadraticZeroSum()
    opt2 = PerPlayer({"x": SGD(0.1), "y": SGD(0.1)})
    model2.compile(optimizer=opt2)
    opt2.learning_rate = {"x": 0.05}  # a per-player mapping: only x changes
    model2.fit(tfgames.datasets.step_dataset(1), epochs=1, verbose=0)
    second = flat([v.numpy() for v in model2.trainable_variables]) - w0
    nx = model.x.numpy().size  # x's block comes first
    np.testing.assert_allclose(second[:nx], 0.5 * first[:nx], rtol=1e-6)
    np.testing.assert_allclose(second[nx:], first[nx:], rtol=1e-6)
    opt2.learning_rate = 0.2  # a number: every player
    assert {p: float(r.numpy()) for p, r in opt2.learning_rate.items()} == pytest.approx(
        {"x": 0.2, "y": 0.2})
    with pytest.raises(ValueError, match=r"keyed by the players \['x', 'y'\]. Unknown: \['z'\]"):
        opt2.learning_rate = {"z": 0.1}


# -- mixed_float16 (issue 16.3) ------------------------------------------------------------------
def _train_policy(kind, policy):
    keras.mixed_precision.set_global_policy(policy)
    keras.utils.set_random_seed(1)
    model = TinyGAN(seed=3)
    # SGD: Adam's normalised steps amplify float16 rounding where a gradient is near zero
    # (Keras' own LossScaleOptimizer(Adam(1e-2)) is 9e-3 off float32 here; see the next test).
    kwargs, _ = _setup(kind, 0.05, 0.1, make=lambda d, g: {
        "discriminator": SGD(d), "generator": SGD(g)})
    model.compile(**kwargs)
    hist = model.fit(real_batches(6, 16, with_noise=True), epochs=2, verbose=0)
    return model, flat([v.numpy() for v in model.trainable_variables]), hist.history


@pytest.mark.parametrize("kind", _kinds({"dict", "update_order_5_1"}))
def test_mixed_float16_with_per_player_optimizers_tracks_float32(kind, policy_guard):
    _, reference, _ = _train_policy(kind, "float32")
    model, weights, history = _train_policy(kind, "mixed_float16")
    assert model.generator.layers[0].compute_dtype == "float16"
    assert all(np.isfinite(v).all() for v in history.values())
    keras.mixed_precision.set_global_policy("float32")
    keras.utils.set_random_seed(1)
    init = flat([v.numpy() for v in TinyGAN(seed=3).trainable_variables])
    assert np.abs(reference - init).max() > 1.5e-2, "training must move the parameters"
    # tests/test_mixed_precision.py's float16 tolerance
    assert np.abs(weights - reference).max() < 3e-3


def test_mixed_float16_per_player_step_equals_keras_loss_scaled_step(policy_guard):
    """Simultaneous per-player Adams (same settings) under mixed_float16: the same weights as
    one Keras Adam that Keras wraps in its own LossScaleOptimizer."""
    keras.mixed_precision.set_global_policy("mixed_float16")
    weights = []
    for make in (lambda: Adam(1e-2, beta_1=0.5),
                 lambda: {"discriminator": Adam(1e-2, beta_1=0.5),
                          "generator": Adam(1e-2, beta_1=0.5)}):
        keras.utils.set_random_seed(1)
        model = TinyGAN(seed=3)
        model.compile(optimizer=make())
        model.fit(real_batches(4, 16, with_noise=True), epochs=1, verbose=0)
        weights.append(flat([v.numpy() for v in model.trainable_variables]))
    np.testing.assert_allclose(weights[1], weights[0], rtol=0, atol=1e-7)


def test_mixed_float16_loss_scale_placement(policy_guard):
    keras.mixed_precision.set_global_policy("mixed_float16")
    model = TinyGAN(seed=3)
    model.compile(optimizer=_adams(), update_order={"discriminator": 2, "generator": 1})
    opt = model.optimizer
    assert isinstance(opt, PerPlayer)  # callbacks see the players, not a LossScaleOptimizer
    assert all(isinstance(o, LSO) for o in opt.player_optimizers.values())
    model.fit(real_batches(3, 16), epochs=1, verbose=0)
    assert all(float(o.dynamic_scale.numpy()) > 1 for o in opt.player_optimizers.values())

    model = TinyGAN(seed=3)
    model.compile(optimizer=tfgames.SGA(PerPlayer(_adams())))
    assert isinstance(model.optimizer.inner_optimizer, LSO)  # one scale for the products
    assert isinstance(model.optimizer.inner_optimizer.inner_optimizer, PerPlayer)
    # compiling again (as loading does) does not wrap twice
    model.compile(optimizer=model.optimizer)
    assert not isinstance(model.optimizer.inner_optimizer.inner_optimizer, LSO)

    model = TinyGAN(seed=3)
    model.compile(optimizer=tfgames.Lookahead(Adam(1e-3)))
    assert isinstance(model.optimizer.inner_optimizer, LSO)
    reference = None
    keras.mixed_precision.set_global_policy("float32")
    for policy in ("float32", "mixed_float16"):  # Lookahead(Adam) scales the step once
        keras.mixed_precision.set_global_policy(policy)
        keras.utils.set_random_seed(1)
        m = TinyGAN(seed=3)
        m.compile(optimizer=tfgames.Lookahead(SGD(0.05), k=2))
        m.fit(real_batches(4, 16, with_noise=True), epochs=1, verbose=0)
        w = flat([v.numpy() for v in m.trainable_variables])
        if reference is None:
            reference = w
    assert np.abs(w - reference).max() < 3e-3


# -- one wrapper design: refusals, names, NumPy scalars, iterations ------------------------------
WRAPPERS = {
    "SGA": lambda **kw: tfgames.SGA(SGD(0.1), **kw),
    "Consensus": lambda **kw: tfgames.Consensus(SGD(0.1), **kw),
    "Extragradient": lambda **kw: tfgames.Extragradient(SGD(0.1), **kw),
    "Lookahead": lambda **kw: tfgames.Lookahead(SGD(0.1), **kw),
    "PerPlayer": lambda **kw: PerPlayer({"x": SGD(0.1), "y": SGD(0.1)}, **kw),
}


@pytest.mark.parametrize("wrapper", sorted(WRAPPERS))
@pytest.mark.parametrize("key, value", [
    ("gradient_accumulation_steps", 4), ("loss_scale_factor", 2.0), ("ema_momentum", 0.5),
    ("use_ema", True), ("weight_decay", 0.01), ("clipnorm", 1.0), ("global_clipnorm", 1.0),
    ("clipvalue", 1.0), ("ema_overwrite_frequency", 3),
])
def test_wrappers_refuse_base_arguments_they_would_ignore(wrapper, key, value):
    with pytest.raises(ValueError, match=(
            rf"{wrapper} does not support `{key}`: the update is applied by its inner "
            rf"optimizer.*Set `{key}` on the inner optimizer.*Received: {key}={value!r}")):
        WRAPPERS[wrapper](**{key: value})


@pytest.mark.parametrize("wrapper", sorted(WRAPPERS))
def test_wrappers_accept_base_defaults_and_refuse_a_learning_rate(wrapper):
    opt = WRAPPERS[wrapper](use_ema=False, ema_momentum=0.99, gradient_accumulation_steps=None)
    assert opt.gradient_accumulation_steps is None and not opt.use_ema
    with pytest.raises(ValueError, match=(
            rf"{wrapper} does not take `learning_rate`: the inner optimizer applies the update"
            r".*Received: learning_rate=0.1")):
        WRAPPERS[wrapper](learning_rate=0.1)
    with pytest.raises(TypeError, match=rf"{wrapper} got unexpected arguments: \['lamda'\]"):
        WRAPPERS[wrapper](lamda=1.0)


def test_names_default_to_keras_auto_names():
    a, b = tfgames.SGA(SGD(0.1)), tfgames.SGA(SGD(0.1))
    assert a.name.startswith("sga") and b.name.startswith("sga") and a.name != b.name
    assert tfgames.Lookahead(SGD(0.1)).name.startswith("lookahead")
    assert PerPlayer({"x": SGD(0.1)}).name.startswith("per_player")
    assert tfgames.SGA(SGD(0.1), name="mine").name == "mine"


def test_numpy_scalars_are_numbers():
    """Issue 17: NumPy scalars were rejected with messages that contradicted themselves."""
    sga = tfgames.SGA(SGD(0.1), lambda_=np.float32(0.5), epsilon=np.float32(0.1))
    assert (sga.lambda_, sga.epsilon) == pytest.approx((0.5, 0.1))
    assert type(sga.lambda_) is float and type(sga.get_config()["epsilon"]) is float
    assert tfgames.Consensus(SGD(0.1), gamma=np.float64(2.0)).gamma == 2.0
    la = tfgames.Lookahead(SGD(0.1), k=np.int64(3), alpha=np.float32(0.25))
    assert (la.k, la.alpha) == (3, 0.25) and type(la.k) is int
    pp = PerPlayer({"d": SGD(0.1), "g": SGD(0.1)}, update_order={"d": np.int64(2), "g": 1})
    assert pp.update_order == {"d": 2, "g": 1} and type(pp.update_order["d"]) is int
    keras.optimizers.deserialize(keras.optimizers.serialize(pp))  # the config is plain JSON


@pytest.mark.parametrize("make, match", [
    (lambda: tfgames.SGA(SGD(0.1), lambda_=float("nan")),
     r"`lambda_` must be a number >= 0 and finite.*Received: lambda_=nan"),
    (lambda: tfgames.SGA(SGD(0.1), epsilon=np.float32("inf")),
     r"`epsilon` must be > 0. Received: epsilon=np.float32\(inf\)"),
    (lambda: tfgames.SGA(SGD(0.1), use_signs="yes"), r"`use_signs` must be a bool"),
    (lambda: tfgames.Consensus(SGD(0.1), gamma=float("nan")),
     r"`gamma` must be a number >= 0. Received: gamma=nan"),
    (lambda: tfgames.Lookahead(SGD(0.1), alpha=float("nan")), r"`alpha` .* Received: alpha=nan"),
    (lambda: tfgames.Lookahead(SGD(0.1), k=2.0), r"`k` .* integer >= 1. Received: k=2.0"),
    (lambda: PerPlayer({"x": SGD(0.1)}, update_order={"x": 1.5}),
     r"integer >= 1 \(a Python or NumPy integer\). Received: update_order\['x'\]=1.5"),
    (lambda: PerPlayer({"x": SGD(0.1)}, batches="twice"),
     r"`batches` must be one of \('fresh', 'reuse'\).*Received: batches='twice'"),
    (lambda: PerPlayer({"x": SGD(0.1)}, batches="reuse"),
     r"batches='reuse' runs a cycle of an alternating update order.*"
     r"update_order='simultaneous', batches='reuse'"),
    (lambda: tfgames.SGA(PerPlayer({"x": SGD(0.1), "y": SGD(0.1)}, update_order="alternating")),
     r"SGA hands its direction to the inner optimizer's apply\(gradients\).*"
     r"update_order='simultaneous'"),
])
def test_bad_values_name_the_constraint(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_steps_game_is_the_one_question():
    alternating = PerPlayer({"x": SGD(0.1), "y": SGD(0.1)}, update_order="alternating")
    simultaneous = PerPlayer({"x": SGD(0.1), "y": SGD(0.1)})
    assert steps_game(tfgames.SGA(SGD(0.1))) and steps_game(tfgames.Extragradient(SGD(0.1)))
    assert steps_game(alternating) and steps_game(tfgames.Lookahead(alternating))
    assert steps_game(tfgames.Lookahead(tfgames.SGA(SGD(0.1))))
    assert not steps_game(simultaneous) and not steps_game(tfgames.Lookahead(SGD(0.1)))
    assert not steps_game(SGD(0.1)) and not steps_game(tfgames.OGD(0.1))
    assert steps_game(PerPlayer({"x": LSO(SGD(0.1))}))  # players scale their own losses


@pytest.mark.parametrize("make", [
    lambda: tfgames.SGA(SGD(0.05)),
    lambda: tfgames.Consensus(SGD(0.05), gamma=0.1),
    lambda: tfgames.Extragradient(SGD(0.05)),
    lambda: tfgames.Lookahead(SGD(0.05), k=2),
    lambda: PerPlayer({"x": SGD(0.05), "y": SGD(0.05)}),
    lambda: PerPlayer({"x": SGD(0.05), "y": SGD(0.05)}, update_order={"x": 2, "y": 1}),
    lambda: PerPlayer({"x": SGD(0.05), "y": SGD(0.05)}, update_order={"x": 2, "y": 1},
                      batches="reuse"),
], ids=["sga", "consensus", "extragradient", "lookahead", "simultaneous", "fresh", "reuse"])
def test_iterations_counts_training_steps(make):
    """Every wrapper's ``iterations`` is its number of training steps (batches in fit)."""
    model = tfgames.games.QuadraticZeroSum()
    model.compile(optimizer=make())
    model.fit(tfgames.datasets.step_dataset(5), epochs=1, verbose=0)
    assert int(model.optimizer.iterations.numpy()) == 5


# -- deprecation path of 0.1's spellings ---------------------------------------------------------
def test_schedule_is_a_deprecated_alias_of_update_order():
    model = tfgames.games.QuadraticZeroSum()
    with pytest.deprecated_call(match=r"`schedule` of GameModel.compile is deprecated.*"
                                      r"update_order=\{'x': 2, 'y': 1\}"):
        model.compile(optimizer={"x": SGD(0.1), "y": SGD(0.1)}, schedule={"x": 2, "y": 1})
    assert model.optimizer.update_order == {"x": 2, "y": 1}
    with pytest.deprecated_call(match="PerPlayer.schedule is deprecated"):
        assert model.optimizer.schedule == {"x": 2, "y": 1}
    with pytest.deprecated_call(match="`schedule` of PerPlayer is deprecated"):
        opt = PerPlayer({"x": SGD(0.1), "y": SGD(0.1)}, schedule="alternating")
    assert opt.update_order == "alternating"
    with pytest.raises(TypeError, match="both `update_order` and its deprecated name"):
        PerPlayer({"x": SGD(0.1)}, update_order="alternating", schedule="alternating")
    # a config written by 0.1 loads
    config = opt.get_config()
    config["schedule"] = config.pop("update_order")
    assert PerPlayer.from_config(config).update_order == "alternating"


def test_dict_style_optimizers_is_deprecated_but_works():
    opt = PerPlayer({"x": SGD(0.1), "y": Adam(0.2)})
    assert [o.name for o in opt.optimizers] == ["x", "y"]  # a list, as Keras' callbacks read
    assert opt.optimizers[1].optimizer is opt.player_optimizers["y"]
    with pytest.deprecated_call(match="use PerPlayer.player_optimizers"):
        assert opt.optimizers["y"] is opt.player_optimizers["y"]
    with pytest.deprecated_call():
        assert dict(opt.optimizers.items()) == opt.player_optimizers


def test_positional_hyperparameters_are_deprecated_but_work():
    with pytest.deprecated_call(match=r"Write SGA\(inner_optimizer, lambda_=0.5, "
                                      r"use_signs=False\)"):
        old = tfgames.SGA(SGD(0.1), 0.5, False)
    new = tfgames.SGA(SGD(0.1, name="inner"), lambda_=0.5, use_signs=False, name=old.name)
    old.inner_optimizer.name = "inner"
    assert old.get_config() == new.get_config()
    with pytest.deprecated_call(match=r"Lookahead\(inner_optimizer, k=3, alpha=0.25\)"):
        la = tfgames.Lookahead(SGD(0.1), 3, 0.25)
    assert (la.k, la.alpha) == (3, 0.25)
    with pytest.deprecated_call():
        assert tfgames.Consensus(SGD(0.1), 2.0).gamma == 2.0
    with pytest.raises(TypeError, match="multiple values for argument `lambda_`"):
        tfgames.SGA(SGD(0.1), 0.5, lambda_=2.0)


# -- alternating orders: a fresh batch per inner step, or one batch per cycle (issue 19.6) -------
@keras.saving.register_keras_serializable(package="tfgames_tests")
class Follow(tfgames.GameModel):
    """x tracks the batch mean b (l_x = (x - b)^2 / 2), y tracks x (l_y = (y - x)^2 / 2)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.x = self.add_weight(shape=(), initializer="zeros", name="x")
        self.y = self.add_weight(shape=(), initializer="zeros", name="y")

    def players(self):
        return {"x": self.x, "y": self.y}

    def compute_losses(self, data, training=False):
        b = tf.reduce_mean(data)
        return {"x": 0.5 * tf.square(self.x - b), "y": 0.5 * tf.square(self.y - self.x)}


BATCH_MEANS = np.array([1.0, -2.0, 4.0, 0.5, 3.0, -1.0])


def _follow(batches, n_batches):
    model = Follow()
    model.compile(optimizer={"x": SGD(0.5), "y": SGD(0.25)}, update_order={"x": 2, "y": 1},
                  batches=batches)
    data = tf.data.Dataset.from_tensor_slices(
        np.repeat(BATCH_MEANS[:n_batches], 2).astype("float32")).batch(2)
    model.fit(data, epochs=1, verbose=0, shuffle=False)
    return model


def test_fresh_batches_give_every_inner_step_its_own_batch():
    model = _follow("fresh", 6)
    x = y = 0.0
    for t, b in enumerate(BATCH_MEANS):  # NumPy: x, x, y, x, x, y; step t sees batch t
        if t % 3 < 2:
            x -= 0.5 * (x - b)
        else:
            y -= 0.25 * (y - x)
    assert (float(model.x.numpy()), float(model.y.numpy())) == pytest.approx((x, y), rel=1e-6)
    counts = {o.name: int(o.iterations.numpy()) for o in model.optimizer.optimizers}
    assert counts == {"x": 4, "y": 2} and int(model.optimizer.iterations.numpy()) == 6


def test_reused_batches_run_a_whole_cycle_on_each_batch():
    model = _follow("reuse", 2)
    x = y = 0.0
    for b in BATCH_MEANS[:2]:  # NumPy: each batch b: x, x, y on the same b
        for _ in range(2):
            x -= 0.5 * (x - b)
        y -= 0.25 * (y - x)
    assert (float(model.x.numpy()), float(model.y.numpy())) == pytest.approx((x, y), rel=1e-6)
    counts = {o.name: int(o.iterations.numpy()) for o in model.optimizer.optimizers}
    assert counts == {"x": 4, "y": 2} and int(model.optimizer.iterations.numpy()) == 2


def test_reused_batches_draw_new_noise_at_every_inner_step(tiny_gan):
    """keras.io's WGAN-GP draws new latent vectors at every critic step: so does "reuse"."""
    tiny_gan.compile(optimizer=_adams(), update_order={"discriminator": 3, "generator": 1},
                     batches="reuse")
    state = tiny_gan.seed_generator.state.numpy().copy()
    tiny_gan.fit(real_batches(1, 8), epochs=1, verbose=0)
    fresh = TinyGAN(seed=3)
    fresh.compile(optimizer=_adams(), update_order={"discriminator": 3, "generator": 1})
    fresh.fit(real_batches(4, 8), epochs=1, verbose=0)
    # 4 inner steps in one training step advance the stream as 4 training steps do
    assert not np.array_equal(tiny_gan.seed_generator.state.numpy(), state)
    np.testing.assert_array_equal(tiny_gan.seed_generator.state.numpy(),
                                  fresh.seed_generator.state.numpy())


def test_batches_round_trips_through_config_and_compile():
    opt = PerPlayer({"x": SGD(0.1), "y": SGD(0.1)}, update_order={"x": 5, "y": 1},
                    batches="reuse")
    clone = keras.optimizers.deserialize(keras.optimizers.serialize(opt))
    assert (clone.update_order, clone.batches) == ({"x": 5, "y": 1}, "reuse")
    model = tfgames.games.QuadraticZeroSum()
    with pytest.raises(ValueError, match="already has its batches"):
        model.compile(optimizer=opt, batches="fresh")
