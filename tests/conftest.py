"""Shared fixtures: small games built from real Keras layers."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfgames
import tfgames.lab.samplers
from tfgames import repeatability


@keras.saving.register_keras_serializable(package="tfgames_tests")
class TinyGAN(tfgames.GameModel):
    """The seed's GAN losses (sigmoid cross-entropy) on small MLPs; data = real samples."""

    def __init__(self, generator=None, discriminator=None, z_dim=3, x_dim=2, width=8, **kw):
        super().__init__(**kw)
        self.z_dim, self.x_dim, self.width = z_dim, x_dim, width
        self.generator = generator or keras.Sequential(
            [keras.Input((z_dim,)), keras.layers.Dense(width, activation="relu"),
             keras.layers.Dense(x_dim)], name="generator")
        self.discriminator = discriminator or keras.Sequential(
            [keras.Input((x_dim,)), keras.layers.Dense(width, activation="relu"),
             keras.layers.Dense(1)], name="discriminator")

    def players(self):
        return {"discriminator": self.discriminator, "generator": self.generator}

    def compute_losses(self, data, training=False):
        if isinstance(data, (tuple, list)):  # (x_real, z): noise given with the data
            x_real, z = data
        else:
            x_real = data
            z = keras.random.normal((tf.shape(x_real)[0], self.z_dim), seed=self.seed_generator)
        real = self.discriminator(x_real, training=training)
        fake = self.discriminator(self.generator(z, training=training), training=training)
        return tfgames.losses.gan_losses(real, fake)

    def get_config(self):
        return {**super().get_config(), "z_dim": self.z_dim, "x_dim": self.x_dim,
                "width": self.width,
                "generator": keras.saving.serialize_keras_object(self.generator),
                "discriminator": keras.saving.serialize_keras_object(self.discriminator)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("generator", "discriminator"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


@pytest.fixture
def tiny_gan():
    keras.utils.set_random_seed(1)
    return TinyGAN(seed=3)


def real_batches(n_batches=6, batch=16, seed=0, with_noise=False, z_dim=3):
    """Grid samples; with_noise=True also yields the generator's noise z with each batch."""
    rng = np.random.default_rng(seed)
    x = tfgames.lab.samplers.GRID_CENTRES[rng.integers(0, 16, n_batches * batch)]
    x = (x + 0.02 * rng.standard_normal(x.shape)).astype("float32")
    if with_noise:
        z = rng.standard_normal((len(x), z_dim)).astype("float32")
        return tf.data.Dataset.from_tensor_slices((x, z)).batch(batch)
    return tf.data.Dataset.from_tensor_slices(x).batch(batch)


def flat(tensors):
    return np.concatenate([np.asarray(t).ravel() for t in tensors])


def batchnorm_players(seed: int, hidden: int) -> tuple[keras.Sequential, keras.Sequential]:
    """A discriminator on 2-d inputs with BatchNorm (momentum 0.5) after its hidden layer, and a
    tanh generator from 2-d noise, built from ``keras.utils.set_random_seed(seed)``."""
    keras.utils.set_random_seed(seed)
    d = keras.Sequential([keras.Input((2,)), keras.layers.Dense(hidden),
                          keras.layers.BatchNormalization(momentum=0.5), keras.layers.Dense(1)])
    g = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, activation="tanh")])
    return d, g


def batchnorm_losses(d, g, x, z) -> dict:
    """The losses of :func:`batchnorm_players` (both networks in training mode, so BatchNorm's
    moving statistics move at every evaluation): a quadratic-penalised critic and its generator."""
    real, fake = d(x, training=True), d(g(z), training=True)
    return {"d": tf.reduce_mean(fake - real + 0.1 * real**2), "g": -tf.reduce_mean(fake)}


@pytest.fixture
def float64():
    """Keras' float type and dtype policy float64 for the test, restored after it (both: a
    test that set the global policy explicitly, e.g. back to "float32" after a mixed-precision
    run, would otherwise win over floatx)."""
    previous, previous_policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    yield
    keras.config.set_dtype_policy(previous_policy)
    keras.config.set_floatx(previous)


@pytest.fixture
def policy_guard():
    """Restore Keras' global dtype policy "float32" after a test that sets another."""
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.fixture
def fixed_sum_order():
    """Every sum of three or more gradient contributions in a fixed order, for one test that
    compares two runs bitwise (:func:`tfgames.repeatability.fixed_sum_order`: the tape adds
    them two at a time, Grappler's arithmetic optimizer is off). Otherwise TensorFlow's CPU
    ``AddN`` may pick its summation order, so the last bit, by thread scheduling.

    Used by the tests that train two runs and compare them bit for bit, first- and
    second-order alike (save / load / resume of the README's GAN, GameModel, the registry,
    the per-player, first- and second-order families, lookahead, UnrolledGAN, the TF1
    SymplecticOptimizer, the diagnostics callback; the fault tests' worker sets it itself).
    The tutorial's own check runs on TensorFlow's defaults, as its readers do.
    """
    with repeatability.fixed_sum_order():
        yield


def free_ports(n: int) -> list[int]:
    """``n`` free localhost ports (for the multi-worker tests' TF_CONFIG)."""
    import socket

    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports
