"""The networks and the bound of seed 001 (latent generative models on MNIST), in Keras 3.

Shared by ``mnist_svi.py``, ``mnist_vae.py``, ``mnist_constrained_vae.py`` (the amortized
VAEs derive from :class:`AmortizedModel`), ``mnist_gan.py`` and ``mnist_wgan_gp.py``.
Architectures follow the seed notebook exactly (``tf.layers`` defaults there are Glorot-uniform
kernels and zero biases, as in Keras):

- decoder / generator: Dense(7*7*64, relu) - (7, 7, 64) - Conv2DTranspose(32, 5, stride 2,
  relu) - Conv2DTranspose(1, 5, stride 2): Bernoulli logits for the VAEs, tanh for the GANs;
- encoder: Conv(8, 5, s2) - Conv(16, 5, s2) - Conv(32, 5, s1), relu, then two Dense(10)
  heads, the mean and the log-scale of q(z|x);
- discriminator: Conv(8, 5, s2) - Conv(16, 5, s1) - Conv(32, 5, s2) - Conv(64, 5, s1) -
  Conv(64, 5, s2), relu, then Dense(1) logits.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

import tfgames

tfd = tfp.distributions

BATCH_SIZE = 64
NUM_LATENTS = 10


def decoder_network(name: str = "decoder", *, tanh: bool = False) -> keras.Model:
    """z (NUM_LATENTS) -> (28, 28, 1) logits (or tanh images for a GAN generator)."""
    layers = [
        keras.Input((NUM_LATENTS,)),
        keras.layers.Dense(7 * 7 * 64, activation="relu"),
        keras.layers.Reshape((7, 7, 64)),
        keras.layers.Conv2DTranspose(32, 5, strides=2, padding="same", activation="relu"),
        keras.layers.Conv2DTranspose(1, 5, strides=2, padding="same"),
    ]
    if tanh:
        layers.append(keras.layers.Activation("tanh"))
    return keras.Sequential(layers, name=name)


def encoder_network(name: str = "encoder") -> keras.Model:
    """x (28, 28, 1) -> (mean, log_scale) of q(z|x), each (NUM_LATENTS,)."""
    x = keras.Input((28, 28, 1))
    h = keras.layers.Conv2D(8, 5, strides=2, padding="same", activation="relu")(x)
    h = keras.layers.Conv2D(16, 5, strides=2, padding="same", activation="relu")(h)
    h = keras.layers.Conv2D(32, 5, strides=1, padding="same", activation="relu")(h)
    h = keras.layers.Flatten()(h)
    mean = keras.layers.Dense(NUM_LATENTS, name="mean")(h)
    log_scale = keras.layers.Dense(NUM_LATENTS, name="log_scale")(h)
    return keras.Model(x, [mean, log_scale], name=name)


def discriminator_network(name: str = "discriminator") -> keras.Model:
    """x (28, 28, 1) in [-1, 1] -> logit (1,)."""
    layers = [keras.Input((28, 28, 1))]
    for filters, stride in ((8, 2), (16, 1), (32, 2), (64, 1), (64, 2)):
        layers.append(keras.layers.Conv2D(filters, 5, strides=stride, padding="same",
                                          activation="relu"))
    layers += [keras.layers.Flatten(), keras.layers.Dense(1)]
    return keras.Sequential(layers, name=name)


def multi_normal(loc: tf.Tensor, log_scale: tf.Tensor) -> tfd.Distribution:
    """Independent Normal(loc, exp(log_scale)) over the last axis (the seed's multi_normal)."""
    return tfd.Independent(tfd.Normal(loc=loc, scale=tf.exp(log_scale)),
                           reinterpreted_batch_ndims=1)


def prior(batch_size: int) -> tfd.Distribution:
    """p(z) = N(0, I), one per example."""
    zeros = tf.zeros((batch_size, NUM_LATENTS))
    return multi_normal(zeros, zeros)


def bernoulli(logits: tf.Tensor) -> tfd.Distribution:
    """p(x|z): independent Bernoulli pixels (images in [0, 1] are their means)."""
    return tfd.Independent(tfd.Bernoulli(logits=logits), reinterpreted_batch_ndims=3)


def bound_terms(x: tf.Tensor, posterior: tfd.Distribution, decoder: keras.Model,
                seed: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """The two terms of the ELBO, averaged over the batch.

        likelihood = E_batch E_{q(z|x)} log p_theta(x|z)   (one reparameterised sample z)
        kl         = E_batch KL(q(z|x) || p(z))            (closed form)

    ``seed`` is a stateless seed tensor for the sample of z.
    """
    z = posterior.sample(seed=seed)
    likelihood = tf.reduce_mean(bernoulli(decoder(z)).log_prob(x))
    kl = tf.reduce_mean(tfd.kl_divergence(posterior, prior(tf.shape(x)[0])))
    return likelihood, kl


def stateless_seed(seed_generator: keras.random.SeedGenerator) -> tf.Tensor:
    """A seed tensor for tfp's stateless samplers drawn from a Keras seed generator."""
    return tf.cast(seed_generator.next(), tf.int32)


class AmortizedModel(tfgames.GameModel):
    """What the amortized VAEs share: encoder and decoder, q(z|x), the bound's terms.

    Subclasses declare the players and losses (``mnist_vae.py``: the ELBO, one player;
    ``mnist_constrained_vae.py``: the Lagrangian, a game with the multiplier).
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.encoder = encoder_network()
        self.decoder = decoder_network()

    def posterior(self, x: tf.Tensor) -> tfd.Distribution:
        """q(z|x) = N(mean(x), diag(exp(log_scale(x))^2))."""
        mean, log_scale = self.encoder(x)
        return multi_normal(mean, log_scale)

    def bound(self, x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """``(likelihood, kl)`` of :func:`bound_terms` on the batch ``x`` (z from the model's
        seed stream)."""
        return bound_terms(x, self.posterior(x), self.decoder, stateless_seed(self.seed_generator))

    def reconstruct(self, x: np.ndarray) -> np.ndarray:
        """Mean of p(x|z) for one z ~ q(z|x)."""
        return bernoulli(self.decoder(self.posterior(x).sample(seed=(1, 2)))).mean().numpy()
