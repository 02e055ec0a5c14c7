"""Seed 001, T2.2: WGAN-GP on MNIST, five critic updates per generator update.

The Wasserstein GAN value with the gradient penalty of Gulrajani et al. (2017):

    l_D = E_z D(G(z)) - E_x D(x) + lambda E_{x^} (||grad_{x^} D(x^)||_eps - 1)^2,
    l_G = -E_z D(G(z)),

x^ = e x + (1 - e) G(z) with e ~ U[0, 1] per example, ||v||_eps = sqrt(eps + sum v^2) with
eps = 1e-5 (the seed's ``batch_l2_norms``), lambda = 10. Same networks as ``mnist_gan.py``;
both players use Adam(1e-4, beta_1 = 0.5, beta_2 = 0.9), and the critic takes 5 steps per
generator step, each on fresh data and noise: ``update_order={"discriminator": 5,
"generator": 1}``. The penalty's gradient with respect to the critic's parameters is a
second derivative (a tape inside the loss).

Figures: both losses over training (0 marks the critic being fooled), data and samples, latent
interpolations. ``metrics.json``: classes covered and classifier score of 1,000 samples.

    python examples/mnist_wgan_gp.py --steps 1000 --out runs/mnist_wgan_gp
"""

from __future__ import annotations

import sys
from pathlib import Path

import keras
import tensorflow as tf

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _shared
from mnist_gan import ConvGAN, run

GRADIENT_PENALTY_COEFF = 10.0
NUM_DISC_UPDATES_PER_GEN_UPDATE = 5


def batch_l2_norms(x: tf.Tensor, eps: float = 1e-5) -> tf.Tensor:
    """sqrt(eps + sum of squares) over all axes but the first."""
    return tf.sqrt(eps + tf.reduce_sum(tf.square(x), axis=list(range(1, x.shape.rank))))


class WGANGP(ConvGAN):
    """l_D = E D(G(z)) - E D(x) + lambda GP,  l_G = -E D(G(z)); the batch holds real digits."""

    def gradient_penalty(self, real: tf.Tensor, fake: tf.Tensor, training: bool) -> tf.Tensor:
        """E (||grad D(x^)|| - 1)^2 on x^ = e real + (1 - e) fake, e ~ U[0, 1] per example."""
        e = keras.random.uniform((tf.shape(real)[0], 1, 1, 1), seed=self.seed_generator)
        interpolates = e * real + (1.0 - e) * fake
        with tf.GradientTape() as tape:
            tape.watch(interpolates)
            scores = self.discriminator(interpolates, training=training)
        gradients = tape.gradient(scores, interpolates)
        return tf.reduce_mean(tf.square(batch_l2_norms(gradients) - 1.0))

    def compute_losses(self, data, training=False):
        real = 2.0 * data - 1.0
        fake = self.fake(tf.shape(real)[0])
        real_scores = self.discriminator(real, training=training)
        fake_scores = self.discriminator(fake, training=training)
        wasserstein = tf.reduce_mean(fake_scores) - tf.reduce_mean(real_scores)
        penalty = self.gradient_penalty(real, fake, training)
        return {"discriminator": wasserstein + GRADIENT_PENALTY_COEFF * penalty,
                "generator": -tf.reduce_mean(fake_scores)}


def main(argv=None) -> dict:
    args = _shared.parser(__doc__.splitlines()[0], steps=1000, mnist_data=True).parse_args(argv)
    keras.utils.set_random_seed(args.seed)
    optimizers = {"discriminator": keras.optimizers.Adam(1e-4, beta_1=0.5, beta_2=0.9),
                  "generator": keras.optimizers.Adam(1e-4, beta_1=0.5, beta_2=0.9)}
    schedule = {"discriminator": NUM_DISC_UPDATES_PER_GEN_UPDATE, "generator": 1}
    return run(WGANGP(seed=args.seed), optimizers, schedule, args, "mnist_wgan_gp",
               full_steps=1000, fooled=0.0)


if __name__ == "__main__":
    main()
