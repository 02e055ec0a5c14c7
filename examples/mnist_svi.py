"""Seed 001, T1.1: stochastic variational inference on MNIST with per-example posteriors.

Every training digit x_i has its own variational parameters phi_i = (mu_i, log sigma_i) of
q_i(z) = N(mu_i, diag(sigma_i^2)) (Hoffman et al. 2013), initialised at the prior (0, 0), and
the decoder theta is shared. Both minimise the negative ELBO of the batch,

    -ELBO = -E_batch E_{q_i} log p_theta(x_i|z) + E_batch KL(q_i || N(0, I)),

as a two-player (common-payoff) :class:`tfgames.GameModel`: player ``"variational"`` owns the
(N, 10) tables of mu and log sigma (a batch reads its rows with a gather), player ``"decoder"``
the decoder. The seed's loop takes 10 updates of the batch's variational parameters with
SGD(0.05), then one decoder update with Adam(1e-3, beta_1 = 0.9, beta_2 = 0.9), all on the
same batch. Here that is the per-player schedule ``{"variational": 10, "decoder": 1}`` with
each batch repeated 11 times in the data pipeline: one outer iteration = 11 train steps.

Figures: negative ELBO, KL and likelihood term after each decoder update (means over 50
iterations), data / reconstructions (from each digit's learned q_i) / samples, latent
interpolations. ``metrics.json``: the final terms and the classifier scores of 1,000 samples.

    python examples/mnist_svi.py --steps 2000 --out runs/mnist_svi
"""

from __future__ import annotations

import sys
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _shared
from _mnist_models import (
    BATCH_SIZE,
    NUM_LATENTS,
    bernoulli,
    bound_terms,
    decoder_network,
    multi_normal,
    stateless_seed,
)
from mnist_vae import vae_figures

import tfgames

NUM_SVI_UPDATES = 10


class SVI(tfgames.GameModel):
    """Per-example q_i (tables of mu and log sigma) and a shared decoder; batch = (indices, x)."""

    extra_metric_names = ("neg_elbo", "kl", "likelihood")

    def __init__(self, num_examples: int, inner_steps: int = NUM_SVI_UPDATES, **kwargs) -> None:
        super().__init__(**kwargs)
        self.inner_steps = inner_steps
        self.decoder = decoder_network()
        self.q_loc = self.add_weight(shape=(num_examples, NUM_LATENTS), initializer="zeros",
                                     name="q_loc")
        self.q_log_scale = self.add_weight(shape=(num_examples, NUM_LATENTS),
                                           initializer="zeros", name="q_log_scale")

    def players(self):
        return {"variational": [self.q_loc, self.q_log_scale], "decoder": self.decoder}

    def posterior(self, indices):
        return multi_normal(tf.gather(self.q_loc, indices), tf.gather(self.q_log_scale, indices))

    def compute_losses(self, data, training=False):
        likelihood, kl = self.compute_bound(data)
        return {"variational": kl - likelihood, "decoder": kl - likelihood}

    def compute_bound(self, data):
        indices, x = data
        return bound_terms(x, self.posterior(indices), self.decoder,
                           stateless_seed(self.seed_generator))

    def compute_extra_metrics(self, data, losses, training=False):
        """The bound's terms, once per outer iteration, right after its decoder update: each
        is a (value, weight) pair, weight 0 (and no evaluation) on the other steps."""
        position = tf.math.floormod(self.optimizer.iterations, self.inner_steps + 1)
        weight = tf.cast(tf.equal(position, 0), tf.float32)

        def terms():
            likelihood, kl = self.compute_bound(data)
            return [kl - likelihood, kl, likelihood]

        values = tf.cond(weight > 0, terms, lambda: [tf.zeros(())] * 3)
        return {name: (value, weight) for name, value in zip(self.extra_metric_names, values)}

    def reconstruct(self, indices: np.ndarray) -> np.ndarray:
        """Mean of p(x|z) for one z ~ q_i of each digit i."""
        z = self.posterior(indices).sample(seed=(1, 2))
        return bernoulli(self.decoder(z)).mean().numpy()


def main(argv=None) -> dict:
    p = _shared.parser(__doc__.splitlines()[0], steps=2000, mnist_data=True)
    p.add_argument("--inner-steps", type=int, default=NUM_SVI_UPDATES,
                   help="variational updates per decoder update")
    args = p.parse_args(argv)
    out, images, batch = _shared.mnist_setup(args, "mnist_svi", full_steps=2000, smoke_steps=2,
                                             batch_size=BATCH_SIZE)
    repeats = args.inner_steps + 1

    model = SVI(len(images), args.inner_steps, seed=args.seed)
    model.compile(optimizer={"variational": keras.optimizers.SGD(0.05),
                             "decoder": keras.optimizers.Adam(1e-3, beta_1=0.9, beta_2=0.9)},
                  update_order={"variational": args.inner_steps, "decoder": 1},
                  **_shared.compile_kwargs(args))
    # Each batch is repeated for the inner variational updates and the decoder update.
    dataset = _shared.image_batches(images, batch, args.seed, with_index=True).flat_map(
        lambda i, x: tf.data.Dataset.from_tensors((i, x)).repeat(repeats))
    window = 1 if args.smoke else 50
    curves, steps, seconds = _shared.fit_in_windows(
        model, dataset, repeats * args.steps, window=repeats * window)

    indices = np.random.default_rng(args.seed).choice(len(images), BATCH_SIZE, replace=False)
    scores = vae_figures(model.decoder, images[indices], model.reconstruct(indices), curves,
                         steps // repeats, out, args,
                         xlabel="outer iteration (variational updates + 1 decoder update)")
    metrics = {"example": "mnist_svi", "outer_iterations": args.steps,
               "inner_steps": args.inner_steps, "batch_size": batch, "mnist": args.mnist_used,
               "seconds": seconds, "final_neg_elbo": curves["neg_elbo"][-1],
               "final_kl": curves["kl"][-1], "final_likelihood": curves["likelihood"][-1],
               "sample_scores": scores}
    _shared.write_metrics(out, metrics)
    return metrics


if __name__ == "__main__":
    main()
