"""Seed 001, T1.4: the VAE as constrained optimisation, a game with a Lagrange multiplier.

minimise E_x KL(q(z|x) || p(z)) subject to E_x E_q log p_theta(x|z) > alpha, through the
Lagrangian (Rezende and Viola 2018, "Taming VAEs")

    L(theta, phi, lambda) = KL + lambda (alpha - likelihood),   lambda = softplus(lambda_raw) > 0,

a zero-sum two-player game (:func:`tfgames.zero_sum`): player ``"autoencoder"`` (encoder and
decoder) minimises L with Adam(1e-3, beta_1 = 0.9, beta_2 = 0.9), player ``"multiplier"``
(lambda_raw, initialised to log(e - 1) so that lambda starts at 1) maximises it, i.e. minimises
-L, with SGD(1e-3) (the seed's ``lagrangian_optimizer.minimize(-loss)``). While the constraint
is violated (likelihood < alpha) the gradient pushes lambda up, weighting reconstruction more;
once it holds, lambda decays. Both players step simultaneously (one optimizer each:
``compile(optimizer={...})``); the seed updated the multiplier right after the autoencoder.

``--target`` is alpha, the reconstruction level asked for (default -95 nats per digit; the
plain VAE of ``mnist_vae.py`` reaches a likelihood term of about -73 on the offline digits in
10,000 steps, so the constraint trades some reconstruction for a lower KL; a larger alpha asks
for sharper reconstructions at a higher KL).

Figures: the Lagrangian L, KL, likelihood term and lambda over training, data /
reconstructions / samples, latent interpolations. ``metrics.json``: the final terms, lambda and
the classifier scores of the samples.

    python examples/mnist_constrained_vae.py --steps 10000 --out runs/mnist_constrained_vae
"""

from __future__ import annotations

import sys
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _shared
from _mnist_models import BATCH_SIZE, AmortizedModel
from mnist_vae import vae_figures

import tfgames

DEFAULT_TARGET = -95.0


class ConstrainedVAE(AmortizedModel):
    """min_{autoencoder} max_{multiplier} KL + softplus(lambda_raw) (alpha - likelihood)."""

    extra_metric_names = ("lagrangian", "neg_elbo", "kl", "likelihood", "multiplier")

    def __init__(self, target: float = DEFAULT_TARGET, **kwargs) -> None:
        super().__init__(**kwargs)
        self.target = float(target)
        self.multiplier_raw = self.add_weight(
            shape=(), name="multiplier_raw",
            initializer=keras.initializers.Constant(float(np.log(np.e - 1.0))))

    def players(self):
        return {"autoencoder": [self.encoder, self.decoder], "multiplier": self.multiplier_raw}

    @property
    def multiplier(self) -> tf.Tensor:
        """lambda = softplus(lambda_raw)."""
        return tf.nn.softplus(self.multiplier_raw)

    def lagrangian(self, data):
        likelihood, kl = self.bound(data)
        return kl + self.multiplier * (self.target - likelihood), likelihood, kl

    def compute_losses(self, data, training=False):
        value, _, _ = self.lagrangian(data)
        return tfgames.zero_sum(value, min_player="autoencoder", max_player="multiplier")

    def compute_extra_metrics(self, data, losses, training=False):
        value, likelihood, kl = self.lagrangian(data)
        return {"lagrangian": value, "neg_elbo": kl - likelihood, "kl": kl,
                "likelihood": likelihood, "multiplier": self.multiplier}


def main(argv=None) -> dict:
    p = _shared.parser(__doc__.splitlines()[0], steps=10000, mnist_data=True)
    p.add_argument("--target", type=float, default=DEFAULT_TARGET,
                   help="alpha: the likelihood term the constraint asks for (nats per digit)")
    args = p.parse_args(argv)
    out, images, batch = _shared.mnist_setup(args, "mnist_constrained_vae", full_steps=10000,
                                             smoke_steps=4, batch_size=BATCH_SIZE)

    model = ConstrainedVAE(args.target, seed=args.seed)
    _shared.log.info("lambda at initialisation: %.4f", float(model.multiplier))
    model.compile(optimizer={"autoencoder": keras.optimizers.Adam(1e-3, beta_1=0.9, beta_2=0.9),
                             "multiplier": keras.optimizers.SGD(1e-3)},
                  **_shared.compile_kwargs(args))
    curves, steps, seconds = _shared.fit_in_windows(
        model, _shared.image_batches(images, batch, args.seed), args.steps,
        window=2 if args.smoke else 50)

    data = images[np.random.default_rng(args.seed).choice(len(images), BATCH_SIZE, False)]
    extra = {"Lagrangian L": {"L": curves["lagrangian"]},
             "multiplier lambda": {"lambda": curves["multiplier"]}}
    scores = vae_figures(model.decoder, data, model.reconstruct(data), curves, steps, out, args,
                         extra_panels=extra)
    metrics = {"example": "mnist_constrained_vae", "steps": args.steps, "batch_size": batch,
               "target": args.target, "mnist": args.mnist_used, "seconds": seconds,
               "final_lagrangian": curves["lagrangian"][-1],
               "final_neg_elbo": curves["neg_elbo"][-1], "final_kl": curves["kl"][-1],
               "final_likelihood": curves["likelihood"][-1],
               "final_multiplier": curves["multiplier"][-1],
               "max_multiplier": float(np.max(curves["multiplier"])), "sample_scores": scores}
    _shared.write_metrics(out, metrics)
    return metrics


if __name__ == "__main__":
    main()
