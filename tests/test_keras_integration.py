"""What a Keras user expects of a model, with a GameModel and every kind of optimizer.

Each scenario runs with SGA, per-player Adams in a 5:1 update order, and Extragradient
(issue 16, points 4-8): sample and class weights, save / load / ModelCheckpoint and exact
resumption of the README's GAN, callbacks with ``mode="auto"``, validation data that does
not change training, predict / generate, and the extra-metrics hook.
"""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfgames


# -- the README's GAN, verbatim ------------------------------------------------------------
class GAN(tfgames.GameModel):
    def __init__(self, generator, discriminator, **kwargs):
        super().__init__(**kwargs)
        self.generator, self.discriminator = generator, discriminator

    def players(self):
        return {"discriminator": self.discriminator, "generator": self.generator}

    def compute_losses(self, x_real, training=False):
        z = keras.random.normal((keras.ops.shape(x_real)[0], 64), seed=self.seed_generator)
        real, fake = self.discriminator(x_real), self.discriminator(self.generator(z))
        bce = keras.losses.BinaryCrossentropy(from_logits=True)
        return {"discriminator": bce(keras.ops.ones_like(real), real)
                                 + bce(keras.ops.zeros_like(fake), fake),
                "generator": bce(keras.ops.ones_like(fake), fake)}


def generator_and_discriminator(seed: int = 0):
    keras.utils.set_random_seed(seed)
    generator = keras.Sequential([keras.Input((64,)), keras.layers.Dense(2)])
    discriminator = keras.Sequential([keras.Input((2,)), keras.layers.Dense(4, activation="tanh"),
                                      keras.layers.Dense(1)])
    return generator, discriminator


def readme_gan(seed: int = 0, cls=GAN) -> GAN:
    return cls(*generator_and_discriminator(seed), seed=seed + 1)


X = np.random.default_rng(0).normal(size=(32, 2)).astype("float32") + 1.0
X_VAL = np.random.default_rng(1).normal(size=(16, 2)).astype("float32")

OPTIMIZERS = {
    "sga": lambda: {"optimizer": tfgames.SGA(keras.optimizers.RMSprop(1e-2))},
    "per_player_adam_5_1": lambda: {
        "optimizer": {"discriminator": keras.optimizers.Adam(1e-2),
                      "generator": keras.optimizers.Adam(1e-2)},
        "update_order": {"discriminator": 5, "generator": 1}},
    "extragradient": lambda: {"optimizer": tfgames.Extragradient(keras.optimizers.SGD(0.1))},
}
KINDS = list(OPTIMIZERS)


def compiled(kind: str, seed: int = 0, cls=GAN) -> GAN:
    model = readme_gan(seed, cls)
    model.compile(**OPTIMIZERS[kind]())
    return model


def weights(model: keras.Model) -> list[np.ndarray]:
    return [np.array(v) for v in model.weights]


def assert_bitwise_equal(a: list, b: list) -> None:
    assert len(a) == len(b)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)


def assert_equal_to_rounding(a: list, b: list, ulps: int = 4) -> None:
    """Equal up to ``ulps`` float rounding steps of each array's largest entry.

    For two runs through *different* graphs or input pipelines (a step that also computes
    extra metrics; class weights gathered in tf.data vs sample weights given): TensorFlow does
    not promise bitwise equal results across them on CPU, and on a loaded 2-core machine they
    once differed by one ulp in one weight (CI, extra metrics) and by 1.5e-8 after four SGA
    steps (class weights). Any real leak into training (a changed noise draw, an extra update,
    a weight on the wrong class) moves the weights by the step's size, ~1e-3 here, orders of
    magnitude above this bound. Save / load / resume stays bitwise (assert_bitwise_equal).
    """
    assert len(a) == len(b)
    for u, v in zip(a, b):
        bound = ulps * np.finfo(v.dtype).eps * np.abs(v).max()
        np.testing.assert_allclose(u, v, rtol=0, atol=bound)


def differs(a: list, b: list) -> bool:
    return any(not np.array_equal(u, v) for u, v in zip(a, b))


FIT = {"batch_size": 8, "verbose": 0, "shuffle": False}


# -- point 5: saving --------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_readme_gan_saves_loads_and_resumes_bitwise(kind, tmp_path, fixed_sum_order):
    model = compiled(kind)
    checkpoint = tmp_path / "checkpoint.keras"
    model.fit(X, epochs=1, callbacks=[keras.callbacks.ModelCheckpoint(checkpoint)], **FIT)
    model.save(tmp_path / "model.keras")
    for path in (tmp_path / "model.keras", checkpoint):  # no custom_objects needed
        loaded = keras.models.load_model(path)
        assert type(loaded) is GAN
        assert_bitwise_equal(weights(loaded), weights(model))
        assert_bitwise_equal([np.array(v) for v in loaded.optimizer.variables],
                             [np.array(v) for v in model.optimizer.variables])
    assert isinstance(loaded.generator, keras.Sequential)
    np.testing.assert_array_equal(loaded.seed_generator.state.numpy(),
                                  model.seed_generator.state.numpy())
    model.fit(X, epochs=2, **FIT)
    loaded.fit(X, epochs=2, **FIT)
    assert_bitwise_equal(weights(loaded), weights(model))


class Unserializable(GAN):
    def __init__(self, generator, discriminator, sampler=None, **kwargs):
        super().__init__(generator, discriminator, **kwargs)
        self.sampler = sampler


class HandWritten(Unserializable):
    """The uncommon case: an argument Keras cannot serialize, rebuilt by the subclass."""

    def get_config(self):
        config = super().get_config()  # the sub-models are recorded automatically
        config["sampler"] = None  # rebuilt below instead
        return config

    @classmethod
    def from_config(cls, config):
        model = super().from_config(config)
        model.sampler = np.random.default_rng(0)
        return model


def test_unserializable_argument_is_named_and_a_hand_written_config_works(tmp_path):
    model = Unserializable(*generator_and_discriminator(), sampler=np.random.default_rng(0),
                           seed=1)
    model.compile(optimizer=tfgames.SGA(keras.optimizers.SGD(0.1)))
    with pytest.raises(NotImplementedError, match=r"constructor argument `sampler` \(of type "
                       r"Generator\) is not serializable.*Implement `get_config`"):
        model.save(tmp_path / "bad.keras")
    model = HandWritten(*generator_and_discriminator(), sampler=np.random.default_rng(0), seed=1)
    model.compile(optimizer=tfgames.SGA(keras.optimizers.SGD(0.1)))
    model.fit(X, epochs=1, **FIT)
    model.save(tmp_path / "good.keras")
    loaded = keras.models.load_model(tmp_path / "good.keras")
    assert type(loaded) is HandWritten and isinstance(loaded.sampler, np.random.Generator)
    assert_bitwise_equal(weights(loaded), weights(model))


# -- point 4: sample and class weights --------------------------------------------------------
class WeightedGAN(GAN):
    """The README's GAN with the documented sample-weight contract."""

    seen_weight_sums: list

    def compute_losses(self, data, training=False, sample_weight=None):
        x_real = data[0] if isinstance(data, tuple) else data  # (x, y) when fit got a y
        z = keras.random.normal((keras.ops.shape(x_real)[0], 64), seed=self.seed_generator)
        real, fake = self.discriminator(x_real), self.discriminator(self.generator(z))
        bce = keras.losses.BinaryCrossentropy(from_logits=True)
        w = sample_weight
        return {"discriminator": bce(keras.ops.ones_like(real), real, sample_weight=w)
                                 + bce(keras.ops.zeros_like(fake), fake, sample_weight=w),
                "generator": bce(keras.ops.ones_like(fake), fake, sample_weight=w)}


@pytest.mark.parametrize("kind", KINDS)
def test_sample_and_class_weights_weight_the_losses(kind):
    plain = compiled(kind, cls=WeightedGAN)
    plain.fit(X, epochs=1, **FIT)
    ones = compiled(kind, cls=WeightedGAN)
    ones.fit(X, sample_weight=np.ones(len(X)), epochs=1, **FIT)
    # Unit weights are the unweighted mean; anything else moves the players.
    np.testing.assert_allclose(np.concatenate([w.ravel() for w in weights(ones)]),
                               np.concatenate([w.ravel() for w in weights(plain)]),
                               rtol=1e-6, atol=1e-7)
    sample_weight = np.where(np.arange(len(X)) % 4 == 0, 3.0, 0.5)
    weighted = compiled(kind, cls=WeightedGAN)
    weighted.fit(X, sample_weight=sample_weight, epochs=1, **FIT)
    assert differs(weights(weighted), weights(plain))
    assert differs(weights(plain), weights(readme_gan()))  # and both runs trained


def test_class_weight_is_the_sample_weight_of_each_class():
    """class_weight is Keras' sample weight per class of y: the same run as those weights,
    which is the run without y (y does not enter this game)."""
    y = (np.arange(len(X)) % 4 == 0).astype("int32")
    sample_weight = np.where(y == 1, 3.0, 0.5)
    by_class = compiled("sga", cls=WeightedGAN)
    by_class.fit(X, y, class_weight={0: 0.5, 1: 3.0}, epochs=1, **FIT)
    with_y = compiled("sga", cls=WeightedGAN)
    with_y.fit(X, y, sample_weight=sample_weight, epochs=1, **FIT)
    without_y = compiled("sga", cls=WeightedGAN)
    without_y.fit(X, sample_weight=sample_weight, epochs=1, **FIT)
    # Different input pipelines (class weights gathered in tf.data vs given): equal up to
    # float rounding; a weight applied to the wrong class would move them by ~1e-3.
    assert_equal_to_rounding(weights(by_class), weights(with_y))
    assert_equal_to_rounding(weights(with_y), weights(without_y))
    assert differs(weights(by_class), weights(compiled("sga", cls=WeightedGAN)))


def test_weights_reach_compute_losses_exactly():
    """The batch's weights arrive as given (checked against the NumPy slices)."""
    seen = []

    class Spy(WeightedGAN):
        def compute_losses(self, data, training=False, sample_weight=None):
            seen.append((data, sample_weight))
            return super().compute_losses(data, training, sample_weight)

    model = readme_gan(cls=Spy)
    model.compile(optimizer=tfgames.SGA(keras.optimizers.SGD(0.1)), run_eagerly=True)
    sample_weight = np.linspace(0.1, 3.2, len(X))
    model.fit(X, sample_weight=sample_weight, epochs=1, **FIT)
    # SGA evaluates the losses twice per step (xi, then the forward-mode products).
    def key(w):
        return tuple(np.round(np.asarray(w, np.float64), 4).tolist())

    batches = {key(w) for _, w in seen}
    expected = {key(sample_weight[i:i + 8]) for i in range(0, len(X), 8)}
    assert batches == expected
    assert all(np.array(x).shape == (8, 2) for x, _ in seen)  # x alone, no placeholder y
    seen.clear()
    model.evaluate(X, sample_weight=sample_weight, batch_size=16, verbose=0)
    assert {key(w) for _, w in seen} == {key(sample_weight[:16]), key(sample_weight[16:])}


def test_weights_are_refused_when_compute_losses_cannot_take_them():
    model = compiled("sga")
    fix = r"define `compute_losses\(self, data, training=False, sample_weight=None\)`"
    with pytest.raises(ValueError, match=r"GAN.fit received sample_weight, but its "
                       r"compute_losses does not take `sample_weight`.*" + fix):
        model.fit(X, sample_weight=np.ones(len(X)), **FIT)
    with pytest.raises(ValueError, match=r"GAN.fit received class_weight.*" + fix):
        model.fit(X, np.zeros(len(X)), class_weight={0: 1.0}, **FIT)
    with pytest.raises(ValueError, match=r"validation_data\[2\] \(validation sample weights\)"):
        model.fit(X, validation_data=(X_VAL, None, np.ones(len(X_VAL))), **FIT)
    with pytest.raises(ValueError, match=r"GAN.evaluate received sample_weight"):
        model.evaluate(X, sample_weight=np.ones(len(X)), verbose=0)
    assert int(model.optimizer.iterations) == 0  # refused before any step


# -- point 7: evaluate and validation ---------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_validation_reports_only_losses_and_does_not_change_training(kind):
    alone = compiled(kind)
    alone.fit(X, epochs=2, **FIT)
    validated = compiled(kind)
    history = validated.fit(X, epochs=2, validation_data=(X_VAL,), **FIT)
    assert_equal_to_rounding(weights(validated), weights(alone))
    np.testing.assert_array_equal(validated.seed_generator.state.numpy(),
                                  alone.seed_generator.state.numpy())
    val_keys = sorted(k for k in history.history if k.startswith("val_"))
    assert val_keys == ["val_discriminator_loss", "val_generator_loss"]
    before = validated.seed_generator.state.numpy()
    evaluation_before = validated.evaluation_seed_generator.state.numpy()
    logs = validated.evaluate(X_VAL, batch_size=8, verbose=0, return_dict=True)
    assert sorted(logs) == ["discriminator_loss", "generator_loss"]
    np.testing.assert_array_equal(validated.seed_generator.state.numpy(), before)
    assert not np.array_equal(validated.evaluation_seed_generator.state.numpy(),
                              evaluation_before)  # evaluation draws from its own stream


# -- point 6: callbacks with mode="auto" ------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_player_losses_have_a_direction_for_mode_auto(kind, tmp_path):
    model = compiled(kind)
    stop = keras.callbacks.EarlyStopping(monitor="generator_loss", patience=0,
                                         min_delta=1e9)  # no step improves by 1e9: stops
    best = keras.callbacks.ModelCheckpoint(tmp_path / "best.keras", save_best_only=True,
                                           monitor="val_discriminator_loss")
    plateau = keras.callbacks.ReduceLROnPlateau(monitor="discriminator_loss", patience=100)
    history = model.fit(X, epochs=5, validation_data=(X_VAL,),
                        callbacks=[stop, best, plateau], **FIT)
    for callback in (stop, best, plateau):
        assert callback.monitor_op is keras.ops.less
    assert len(history.history["generator_loss"]) == 2  # stopped after patience 0
    assert keras.models.load_model(tmp_path / "best.keras").optimizer is not None
    if kind == "sga":  # diagnostics: norms of xi fall; sga_lambda has no direction
        keras.callbacks.EarlyStopping(monitor="xi_norm").set_model(model)
        norm = keras.callbacks.EarlyStopping(monitor="xi_norm")
        norm.set_model(model)
        norm._set_monitor_op()
        assert norm.monitor_op is keras.ops.less
        lam = keras.callbacks.EarlyStopping(monitor="sga_lambda")
        lam.set_model(model)
        with pytest.raises(ValueError, match="automatically determine"):
            lam._set_monitor_op()


# -- point 7: predict and generate ------------------------------------------------------------
class Sampler(GAN):
    latent_dim = 64

    def call(self, inputs, training=False):
        return self.generator(inputs, training=training)


def test_predict_names_what_to_implement_and_generate_samples():
    model = compiled("sga")
    with pytest.raises(NotImplementedError, match=r"GAN does not define `call`.*Implement "
                       r"`call\(self, inputs, training=False\)`"):
        model.predict(X, verbose=0)
    with pytest.raises(ValueError, match=r"has no `latent_dim`.*model.generate\(noise=z\)"):
        model.generate(3)
    sampler = compiled("sga", cls=Sampler)
    sampler.fit(X, epochs=1, **FIT)
    z = np.random.default_rng(5).standard_normal((6, 64)).astype("float32")
    kernel, bias = (np.array(w, dtype=np.float64) for w in sampler.generator.weights)
    np.testing.assert_allclose(sampler.generate(noise=z), z @ kernel + bias, rtol=1e-5,
                               atol=1e-5)  # NumPy float64 forward pass of the Dense layer
    np.testing.assert_allclose(sampler.generate(6, seed=5), z @ kernel + bias, rtol=1e-5,
                               atol=1e-5)  # generate(n, seed) draws that noise
    state = sampler.seed_generator.state.numpy()
    assert sampler.generate(4).shape == (4, 2)
    np.testing.assert_array_equal(sampler.seed_generator.state.numpy(), state)
    with pytest.raises(ValueError, match="exactly one of `n`"):
        sampler.generate()


# -- point 8: the metrics hook ----------------------------------------------------------------
class Scored(GAN):
    """Logs the discriminator's mean logit on the real batch and on the step's fakes."""

    extra_metric_names = ("real_logit", "fake_logit")

    def compute_extra_metrics(self, data, losses, training=False):
        z = keras.random.normal((keras.ops.shape(data)[0], 64), seed=self.seed_generator)
        return {"real_logit": keras.ops.mean(self.discriminator(data)),
                "fake_logit": keras.ops.mean(self.discriminator(self.generator(z)))}


def dense_forward(x: np.ndarray, model: keras.Model) -> np.ndarray:
    """NumPy float64 forward pass of a Sequential of Dense layers (tanh or linear)."""
    h = x.astype(np.float64)
    for layer in model.layers:
        kernel, bias = (np.array(w, dtype=np.float64) for w in layer.weights)
        h = h @ kernel + bias
        if layer.activation is keras.activations.tanh:
            h = np.tanh(h)
    return h


@pytest.mark.parametrize("kind", KINDS)
def test_extra_metrics_are_logged_after_the_update_and_do_not_change_training(kind):
    plain = compiled(kind)
    plain.fit(X, epochs=1, batch_size=32, verbose=0)
    scored = compiled(kind, cls=Scored)
    history = scored.fit(X, epochs=1, batch_size=32, verbose=0, validation_data=(X_VAL,))
    assert_equal_to_rounding(weights(scored), weights(plain))  # metrics never move training
    assert differs(weights(plain), weights(compiled(kind)))  # the step moved the weights
    # One step on the whole batch: the logged value is D's mean logit at the updated weights.
    expected = dense_forward(X, scored.discriminator).mean()
    np.testing.assert_allclose(history.history["real_logit"][0], expected, rtol=1e-5)
    np.testing.assert_allclose(history.history["val_real_logit"][0],
                               dense_forward(X_VAL, scored.discriminator).mean(), rtol=1e-5)
    assert "val_fake_logit" in history.history and "val_sga_lambda" not in history.history


def test_extra_metric_mistakes_are_named():
    class Wrong(Scored):
        def compute_extra_metrics(self, data, losses, training=False):
            return {"real_logit": 0.0}

    model = compiled("sga", cls=Wrong)
    with pytest.raises(ValueError, match=r"must return a dict with exactly the names in "
                       r"`extra_metric_names` \['real_logit', 'fake_logit'\]. Received: "
                       r"\['real_logit'\]"):
        model.fit(X, epochs=1, **FIT)

    class Clash(Scored):
        extra_metric_names = ("generator_loss",)

    with pytest.raises(ValueError, match=r"extra_metric_names=\('generator_loss',\)"):
        compiled("sga", cls=Clash)
    with pytest.raises(ValueError, match="override `compute_extra_metrics`"):
        readme_gan().compile(optimizer="sgd", metrics=["accuracy"])


def test_schedule_keeps_working_with_a_deprecation_warning():
    new = compiled("per_player_adam_5_1")
    new.fit(X, epochs=1, **FIT)
    old = readme_gan()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old.compile(optimizer={"discriminator": keras.optimizers.Adam(1e-2),
                               "generator": keras.optimizers.Adam(1e-2)},
                    schedule={"discriminator": 5, "generator": 1})
    assert any(issubclass(w.category, DeprecationWarning) for w in caught)
    old.fit(X, epochs=1, **FIT)
    assert_bitwise_equal(weights(old), weights(new))


def test_sample_monitor_writes_pngs_and_tensorboard_images(tmp_path):
    from tfgames.monitor import SampleMonitor

    model = compiled("sga", cls=Sampler)
    monitor = SampleMonitor(tmp_path / "samples", num_samples=4, seed=0,
                            to_image=lambda s: np.tile(s[:, None, :1], (1, 3, 1)),
                            log_dir=tmp_path / "logs")
    model.fit(X, epochs=2, callbacks=[monitor], **FIT)
    pngs = sorted(p.name for p in (tmp_path / "samples").glob("*.png"))
    assert pngs == ["epoch_0001.png", "epoch_0002.png"]
    image = tf.io.decode_png(tf.io.read_file(str(tmp_path / "samples" / pngs[-1])))
    assert image.shape[-1] == 1 and image.shape[0] >= 3
    events = list((tmp_path / "logs").rglob("events.out.tfevents.*"))
    assert events
    tags = {v.tag for e in tf.compat.v1.train.summary_iterator(str(events[0]))
            for v in e.summary.value}
    assert "samples" in tags


def test_loss_curves_plot_players_losses_together_and_diagnostics_apart(tmp_path):
    from tfgames.lab.plotting import loss_curves

    history = {"discriminator_loss": [1.4, 1.3, 1.35], "generator_loss": [0.7, 0.8, 0.75],
               "sga_lambda": [1.0, 1.0, 1.0], "xi_norm": [0.9, 0.5, 0.2],
               "val_discriminator_loss": [1.5, 1.4, 1.4], "val_generator_loss": [0.6, 0.7, 0.7]}
    figure = loss_curves(history, tmp_path / "curves.png", log_y=False)
    titles = [ax.get_title() for ax in figure.axes if ax.axison]
    assert titles == ["players' losses", "sga_lambda", "xi_norm"]
    losses = figure.axes[0]
    assert [line.get_label() for line in losses.get_lines()] == [
        "discriminator_loss", "val_discriminator_loss", "generator_loss", "val_generator_loss"]
    np.testing.assert_array_equal(losses.get_lines()[3].get_ydata(), [0.6, 0.7, 0.7])
    assert (tmp_path / "curves.png").stat().st_size > 0
    with pytest.raises(ValueError, match=r"not logged: \['d_loss'\]"):
        loss_curves(history, metrics=["d_loss"])
