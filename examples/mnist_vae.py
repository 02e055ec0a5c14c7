"""Seed 001, T1.2 and T1.3: the amortized VAE on MNIST, and KL annealing.

Amortized variational inference (Kingma and Welling 2014): an encoder maps each digit x to
the parameters of q(z|x) = N(mu(x), diag(sigma(x)^2)), and encoder and decoder maximise

    ELBO = E_x E_{q(z|x)} log p_theta(x|z) - E_x KL(q(z|x) || p(z)),   p(z) = N(0, I),

with Adam(1e-3, beta_1 = 0.9, beta_2 = 0.9), batch 64, 10 latents, as in the seed. With
``--kl-annealing`` the loss is -(likelihood - alpha KL) with alpha = step / total steps, a
non-trainable ``keras.Variable`` that a callback assigns before every step (a Python number
would be frozen into the traced train step).

The model is a one-player :class:`tfgames.GameModel` (player ``"autoencoder"`` owns the encoder
and the decoder); the bound uses ``tensorflow_probability`` distributions. Figures: negative
ELBO, KL and likelihood term over training (and alpha), data / reconstructions / samples, and
latent interpolations; ``metrics.json`` holds the final terms and the classifier scores of the
samples.

    python examples/mnist_vae.py --steps 3000 --out runs/mnist_vae
    python examples/mnist_vae.py --kl-annealing --steps 3000 --out runs/mnist_vae_kl
"""

from __future__ import annotations

import sys
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _shared
from _mnist_models import BATCH_SIZE, NUM_LATENTS, AmortizedModel


class AmortizedVAE(AmortizedModel):
    """Encoder + decoder trained on -(likelihood - alpha KL); alpha = ``kl_weight`` (1 = ELBO)."""

    extra_metric_names = ("neg_elbo", "kl", "likelihood", "kl_weight")

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.kl_weight = keras.Variable(1.0, trainable=False, name="kl_weight")

    def players(self):
        return {"autoencoder": [self.encoder, self.decoder]}

    def compute_losses(self, data, training=False):
        likelihood, kl = self.bound(data)
        return {"autoencoder": self.kl_weight * kl - likelihood}

    def compute_extra_metrics(self, data, losses, training=False):
        likelihood, kl = self.bound(data)
        return {"neg_elbo": kl - likelihood, "kl": kl, "likelihood": likelihood,
                "kl_weight": tf.convert_to_tensor(self.kl_weight)}


class KLAnnealing(keras.callbacks.Callback):
    """alpha = n_iter / N: before step n_iter (0-based) of N, ``variable`` is set to n_iter / N."""

    def __init__(self, variable: keras.Variable, total_steps: int) -> None:
        super().__init__()
        self.variable, self.total_steps, self.step = variable, total_steps, 0

    def on_train_batch_begin(self, batch, logs=None) -> None:
        self.variable.assign(self.step / self.total_steps)
        self.step += 1


def vae_figures(decoder: keras.Model, data: np.ndarray, reconstructions: np.ndarray, curves,
                steps, out: Path, args, *, extra_panels=None,
                xlabel: str = "training step") -> dict:
    """The seed's figures and the scores of the samples (shared with SVI and constrained)."""
    panels = {"negative ELBO": {"negative ELBO": curves["neg_elbo"]},
              "KL": {"KL": curves["kl"]},
              "likelihood term": {"E log p(x|z)": curves["likelihood"]}}
    panels.update(extra_panels or {})
    _shared.curves(panels, steps, out / "training.png", xlabel=xlabel)

    rng = np.random.default_rng(args.seed)
    z = rng.standard_normal((_shared.scored_samples(args), NUM_LATENTS)).astype(np.float32)
    samples = tf.sigmoid(decoder.predict(z, batch_size=250, verbose=0)).numpy()
    _shared.digit_panels({"Data": data, "Reconstructions": reconstructions,
                          "Samples": samples[:BATCH_SIZE]}, out / "digits.png")
    interpolation = _shared.gaussian_interpolation(NUM_LATENTS, BATCH_SIZE, args.seed + 1)
    _shared.digit_panels(
        {"Latent space interpolations": tf.sigmoid(decoder(interpolation)).numpy()},
        out / "interpolations.png")
    return _shared.digit_scores(samples, args, out)


def main(argv=None) -> dict:
    p = _shared.parser(__doc__.splitlines()[0], steps=3000, mnist_data=True)
    p.add_argument("--kl-annealing", action="store_true",
                   help="weight the KL term by alpha = step / total steps (T1.3)")
    args = p.parse_args(argv)
    name = "mnist_vae_kl_annealing" if args.kl_annealing else "mnist_vae"
    out, images, batch = _shared.mnist_setup(args, name, full_steps=3000, smoke_steps=4,
                                             batch_size=BATCH_SIZE)

    model = AmortizedVAE(seed=args.seed)
    model.compile(optimizer=keras.optimizers.Adam(1e-3, beta_1=0.9, beta_2=0.9),
                  **_shared.compile_kwargs(args))
    callbacks = [KLAnnealing(model.kl_weight, args.steps)] if args.kl_annealing else []
    curves, steps, seconds = _shared.fit_in_windows(
        model, _shared.image_batches(images, batch, args.seed), args.steps,
        window=2 if args.smoke else 50, callbacks=callbacks)

    extra = {"alpha (KL weight)": {"alpha": curves["kl_weight"]}} if args.kl_annealing else {}
    data = images[np.random.default_rng(args.seed).choice(len(images), BATCH_SIZE, False)]
    scores = vae_figures(model.decoder, data, model.reconstruct(data), curves, steps, out, args,
                         extra_panels=extra)
    metrics = {"example": name, "steps": args.steps, "batch_size": batch,
               "mnist": args.mnist_used, "seconds": seconds,
               "final_neg_elbo": curves["neg_elbo"][-1], "final_kl": curves["kl"][-1],
               "final_likelihood": curves["likelihood"][-1], "sample_scores": scores}
    _shared.write_metrics(out, metrics)
    return metrics


if __name__ == "__main__":
    main()
