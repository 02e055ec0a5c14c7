"""Seed 003, example 1: the Keras dense MNIST GAN, as a two-player GameModel.

The seed's networks (latent dimension 100, images scaled to [-1, 1]):

- generator: Dense(256) - LeakyReLU(0.2) - BatchNorm(momentum 0.8) - Dense(512) - LeakyReLU -
  BatchNorm - Dense(1024) - LeakyReLU - BatchNorm - Dense(784, tanh) - (28, 28, 1);
- discriminator: Flatten - Dense(512) - LeakyReLU(0.2) - Dense(256) - LeakyReLU - Dense(1,
  sigmoid).

Losses (binary cross-entropy on D's probabilities, as Keras' ``binary_crossentropy``):

    l_D = (BCE(D(x), 1) + BCE(D(G(z)), 0)) / 2,     l_G = BCE(D(G(z')), 1),

each player with its own Adam(2e-4, beta_1 = 0.5), batch 32, alternating one discriminator step
and one generator step (``update_order="alternating"``), each on a fresh batch and fresh noise. The
seed took the discriminator's real and fake halves as two consecutive ``train_on_batch`` calls
and generated the fake batch with the generator in inference mode; here they are one step on the
averaged loss, with the generator in training mode.

Figures: samples of a fixed noise batch (5 x 5, the seed's ``sample_images``) at several
iterations, and the losses and the discriminator's accuracy over training. ``metrics.json``:
classes covered and classifier score of 1,000 samples (:func:`tfgames.lab.mnist.sample_scores`).

    python examples/mnist_dense_gan.py --steps 10000 --out runs/mnist_dense_gan
"""

from __future__ import annotations

import sys
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _shared

import tfgames
import tfgames.lab.mnist

LATENT_DIM = 100


def generator_network() -> keras.Model:
    layers = [keras.Input((LATENT_DIM,))]
    for width in (256, 512, 1024):
        layers += [keras.layers.Dense(width), keras.layers.LeakyReLU(negative_slope=0.2),
                   keras.layers.BatchNormalization(momentum=0.8)]
    layers += [keras.layers.Dense(28 * 28, activation="tanh"), keras.layers.Reshape((28, 28, 1))]
    return keras.Sequential(layers, name="generator")


def discriminator_network() -> keras.Model:
    return keras.Sequential([
        keras.Input((28, 28, 1)), keras.layers.Flatten(),
        keras.layers.Dense(512), keras.layers.LeakyReLU(negative_slope=0.2),
        keras.layers.Dense(256), keras.layers.LeakyReLU(negative_slope=0.2),
        keras.layers.Dense(1, activation="sigmoid"),
    ], name="discriminator")


class DenseGAN(tfgames.GameModel):
    """l_D = (BCE(D(x), 1) + BCE(D(G(z)), 0)) / 2,  l_G = BCE(D(G(z)), 1); batch = real images."""

    extra_metric_names = ("d_accuracy",)

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.generator = generator_network()
        self.discriminator = discriminator_network()

    def players(self):
        return {"discriminator": self.discriminator, "generator": self.generator}

    def compute_losses(self, data, training=False):
        real = 2.0 * data - 1.0
        z = keras.random.normal((tf.shape(real)[0], LATENT_DIM), seed=self.seed_generator)
        d_real = self.discriminator(real, training=training)
        d_fake = self.discriminator(self.generator(z, training=training), training=training)
        bce = keras.losses.binary_crossentropy
        d_loss = 0.5 * (tf.reduce_mean(bce(tf.ones_like(d_real), d_real))
                        + tf.reduce_mean(bce(tf.zeros_like(d_fake), d_fake)))
        g_loss = tf.reduce_mean(bce(tf.ones_like(d_fake), d_fake))
        return {"discriminator": d_loss, "generator": g_loss}

    def compute_extra_metrics(self, data, losses, training=False):
        """The discriminator's accuracy on the batch and as many samples (the seed's acc).

        Evaluated after the step's update, on the step's noise (GameModel replays it)."""
        z = keras.random.normal((tf.shape(data)[0], LATENT_DIM), seed=self.seed_generator)
        d_real = self.discriminator(2.0 * data - 1.0)
        d_fake = self.discriminator(self.generator(z))
        correct = tf.concat([tf.cast(d_real > 0.5, tf.float32),
                             tf.cast(d_fake <= 0.5, tf.float32)], 0)
        return {"d_accuracy": tf.reduce_mean(correct)}


def main(argv=None) -> dict:
    p = _shared.parser(__doc__.splitlines()[0], steps=10000, mnist_data=True)
    args = p.parse_args(argv)
    out, images, batch = _shared.mnist_setup(args, "mnist_dense_gan", full_steps=10000,
                                             smoke_steps=4, batch_size=32, smoke_batch_size=8)

    model = DenseGAN(seed=args.seed)
    model.compile(optimizer={"discriminator": keras.optimizers.Adam(2e-4, beta_1=0.5),
                             "generator": keras.optimizers.Adam(2e-4, beta_1=0.5)},
                  update_order="alternating", **_shared.compile_kwargs(args))
    fixed_z = np.random.default_rng(args.seed).standard_normal((25, LATENT_DIM)).astype("f4")
    train_steps = 2 * args.steps  # one iteration = a discriminator step + a generator step
    window = min(2 if args.smoke else 200, train_steps)
    snapshots = _shared.Snapshots(
        lambda: (model.generator(fixed_z, training=False).numpy() + 1.0) / 2.0,
        _shared.snapshot_epochs(train_steps, window, 4), window)
    curves, steps, seconds = _shared.fit_in_windows(
        model, _shared.image_batches(images, batch, args.seed), train_steps, window=window,
        callbacks=[snapshots])

    iterations = steps // 2
    _shared.curves({"discriminator loss": {"D": curves["discriminator_loss"]},
                    "generator loss": {"G": curves["generator_loss"]},
                    "discriminator accuracy": {"accuracy": curves["d_accuracy"]}},
                   iterations, out / "training.png", xlabel="iteration (D step + G step)")
    _shared.digit_panels({f"iteration {s // 2}": x for s, x in snapshots.items},
                         out / "samples.png")
    rng = np.random.default_rng(args.seed + 1)
    z = rng.standard_normal((_shared.scored_samples(args), LATENT_DIM)).astype("f4")
    samples = (model.generator.predict(z, batch_size=250, verbose=0) + 1.0) / 2.0
    scores = _shared.digit_scores(samples, args, out)
    metrics = {"example": "mnist_dense_gan", "iterations": args.steps, "batch_size": batch,
               "mnist": args.mnist_used, "seconds": seconds,
               "final_discriminator_loss": curves["discriminator_loss"][-1],
               "final_generator_loss": curves["generator_loss"][-1],
               "final_d_accuracy": curves["d_accuracy"][-1], "sample_scores": scores}
    _shared.write_metrics(out, metrics)
    return metrics


if __name__ == "__main__":
    main()
