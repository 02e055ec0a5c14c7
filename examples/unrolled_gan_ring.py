"""Seed 004: the unrolled GAN on a ring of 8 Gaussians, K = 0 vs K = 5 unrolling steps.

The seed's setting (Metz et al. 2017 notebook): data from 8 Gaussians of standard deviation
0.01 on the unit circle (centres with ``endpoint=False``: the notebook's
``linspace(0, 2 pi, 8)`` put two centres on the same point); generator and discriminator are
2 x 128 tanh MLPs with orthogonal(gain 1.4) weights and zero biases; z ~ N(0, I_256); batch
512; discriminator Adam(1e-4, beta_1 = 0.5, epsilon = 1e-8), generator Adam(1e-3, beta_1 =
0.5, epsilon = 1e-8), both updated at every step (simultaneously).

:class:`tfgames.UnrolledGAN` trains the discriminator on the saddle loss L at its current
parameters and the generator on -L at theta_D^K, K discriminator Adam steps ahead, computed
differentiably (:func:`tfgames.unroll_variables`) from the discriminator optimizer's current
state, as the seed's graph rewrite did. K = 0 is the plain GAN.

Figures: the density of generated samples at several steps for each K (the seed's kde rows),
and the loss L and the unrolled loss over training. ``metrics.json``: mode statistics of 5,120
samples per run (:func:`tfgames.lab.metrics.mode_statistics`, high quality = within 3 std of a
centre).

    python examples/unrolled_gan_ring.py --steps 25000 --out runs/unrolled_gan_ring_25k
"""

from __future__ import annotations

import sys
from pathlib import Path

import keras
import tensorflow as tf

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _shared

import tfgames
import tfgames.lab.metrics
import tfgames.lab.models
import tfgames.lab.plotting
import tfgames.lab.samplers

PARAMS = dict(batch_size=512, disc_learning_rate=1e-4, gen_learning_rate=1e-3, beta1=0.5,
              epsilon=1e-8, z_dim=256, x_dim=2, std=0.01)


def mlp(n_in: int, n_out: int, name: str, seed: int, width: int = 128) -> keras.Model:
    """Two tanh layers of ``width`` and a linear output; orthogonal(gain 1.4) weights."""
    return tfgames.lab.models.mlp(
        n_in, [width, width], n_out, name=name, activation="tanh",
        kernel_initializer=lambda i, fan_in: keras.initializers.Orthogonal(gain=1.4, seed=seed + i))


def train(unroll_steps: int, args, steps: int, batch: int, z_dim: int, window: int):
    """One run; returns (model, curves, steps, seconds, density snapshots)."""
    keras.utils.set_random_seed(args.seed)
    model = tfgames.UnrolledGAN(
        mlp(z_dim, PARAMS["x_dim"], "generator", args.seed),
        mlp(PARAMS["x_dim"], 1, "discriminator", args.seed + 10),
        latent_dim=z_dim, unroll_steps=unroll_steps, seed=args.seed)
    adam = keras.optimizers.Adam
    model.compile(optimizer={
        "discriminator": adam(PARAMS["disc_learning_rate"], beta_1=PARAMS["beta1"],
                              epsilon=PARAMS["epsilon"]),
        "generator": adam(PARAMS["gen_learning_rate"], beta_1=PARAMS["beta1"],
                          epsilon=PARAMS["epsilon"])}, **_shared.compile_kwargs(args))
    data_seed = keras.random.SeedGenerator(args.seed + 1)
    dataset = tf.data.Dataset.from_tensors(0).repeat().map(
        lambda _: tfgames.lab.samplers.ring_batch(batch, std=PARAMS["std"], seed=data_seed))
    snapshots = _shared.Snapshots(lambda: model.generate(10 * batch).numpy(),
                                  _shared.snapshot_epochs(steps, window, 5), window)
    curves, done, seconds = _shared.fit_in_windows(model, dataset, steps, window=window,
                                                   callbacks=[snapshots])
    return model, curves, done, seconds, snapshots.items


def main(argv=None) -> dict:
    p = _shared.parser(__doc__.splitlines()[0], steps=5000)
    p.add_argument("--unroll", type=int, nargs="+", default=[0, 5],
                   help="unrolling steps K to compare")
    args = p.parse_args(argv)
    out = _shared.setup(args, "unrolled_gan_ring", full_steps=5000, smoke_steps=3)
    batch = 32 if args.smoke else PARAMS["batch_size"]
    z_dim = 8 if args.smoke else PARAMS["z_dim"]
    window = min(1 if args.smoke else 100, args.steps)
    centres = tfgames.lab.samplers.RING_CENTRES(8)

    metrics = {"example": "unrolled_gan_ring", "steps": args.steps, "batch_size": batch,
               "z_dim": z_dim, "runs": {}}
    loss_panels = {}
    for k in args.unroll:
        model, curves, done, seconds, snaps = train(k, args, args.steps, batch, z_dim, window)
        samples = model.generate(10 * batch).numpy()
        stats = tfgames.lab.metrics.mode_statistics(samples, centres, std=PARAMS["std"])
        metrics["runs"][f"K={k}"] = {**stats, "seconds": seconds,
                                      "seconds_per_step": seconds / args.steps}
        tfgames.lab.plotting.density_snapshots(
            snaps, bbox=(-1.6, 1.6, -1.6, 1.6), centres=centres, cmap="Greens",
            title=f"{k} unrolling steps: {stats['modes_covered']}/8 modes, "
                  f"{100 * stats['high_quality_share']:.0f}% high quality",
            path=out / f"density_K{k}.png")
        # The loss L at theta_D and the unrolled loss L(theta_D^K) = -l_G.
        loss_panels[f"K = {k}"] = {"loss L": curves["discriminator_loss"],
                                   "unrolled loss": -curves["generator_loss"]}
        _shared.log.info("K=%d: %s", k, metrics["runs"][f"K={k}"])
    _shared.curves(loss_panels, done, out / "losses.png")
    _shared.write_metrics(out, metrics)
    return metrics


if __name__ == "__main__":
    main()
