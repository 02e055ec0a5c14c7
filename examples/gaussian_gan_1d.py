"""Seed 003, example 2: a GAN learns N(-1, 1) in 1-D, with a pre-trained discriminator.

The seed's setting: D and G are 1-6-5-1 tanh perceptrons (weights N(0, 1), zero biases),
G(z) = 5 * mlp(z), D(x) = clip(mlp(x), 0.01, 0.99); minibatches of M = 200; the data are
sorted samples of N(-1, 1) and the noise is stratified, z = linspace(-5, 5, M) + 0.01 U[0, 1).

1. Pre-training: D is regressed on the density, min E (D(x) - N(x; -1, 1))^2 with x ~ U[-5, 5],
   1,000 steps.
2. The game (Goodfellow et al. 2014, Algorithm 1, k = 1), alternating one discriminator step and
   one generator step (``update_order="alternating"``), each on a fresh minibatch:

       l_D = 1 - E[log D(x) + log(1 - D(G(z)))],     l_G = 1 - E log D(G(z))

   (the non-saturating generator loss). Each player has its own SGD with momentum 0.6 and the
   learning rate 0.001 * 0.95^floor(t / 2500) in its own step count t, as in the seed.

Figures: ``pretraining.png`` (the decision boundary before and after pre-training, and the
pre-training loss) and ``gan.png`` (p_data, D and the density of G(z) before and after training,
and both objectives over training). ``metrics.json``: mean and standard deviation of G(z).

    python examples/gaussian_gan_1d.py --steps 10000 --out runs/gaussian_gan_1d
"""

from __future__ import annotations

import sys
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from scipy.stats import norm

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _shared

import tfgames
import tfgames.lab.models

MU, SIGMA = -1.0, 1.0
M = 200
TRAIN_ITERS = 10000
PRETRAIN_STEPS = 1000


def mlp(name: str, seed: int) -> keras.Model:
    """The seed's 1-6-5-1 perceptron with tanh everywhere, N(0, 1) weights and zero biases."""
    return tfgames.lab.models.mlp(
        1, [6, 5], 1, name=name, activation="tanh", output_activation="tanh",
        kernel_initializer=lambda i, fan_in: keras.initializers.RandomNormal(stddev=1.0,
                                                                             seed=seed + i))


def momentum_optimizer() -> keras.optimizers.Optimizer:
    """The seed's MomentumOptimizer(0.001 * 0.95^floor(t / 2500), momentum 0.6)."""
    schedule = keras.optimizers.schedules.ExponentialDecay(
        1e-3, decay_steps=TRAIN_ITERS // 4, decay_rate=0.95, staircase=True)
    return keras.optimizers.SGD(schedule, momentum=0.6)


def clip_probability(d: tf.Tensor) -> tf.Tensor:
    return tf.clip_by_value(d, 0.01, 0.99)


class GaussianGAN(tfgames.GameModel):
    """min_D 1 - E[log D(x) + log(1 - D(G(z)))],  min_G 1 - E log D(G(z)); data drawn inside."""

    def __init__(self, discriminator: keras.Model, generator: keras.Model, batch: int = M,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.discriminator, self.generator, self.batch = discriminator, generator, batch

    def players(self):
        return {"discriminator": self.discriminator, "generator": self.generator}

    def sample_noise(self) -> tf.Tensor:
        """Stratified noise: M equally spaced points in [-5, 5], jittered by 0.01 U[0, 1)."""
        jitter = keras.random.uniform((self.batch,), seed=self.seed_generator)
        return (tf.linspace(-5.0, 5.0, self.batch) + 0.01 * jitter)[:, None]

    def compute_losses(self, data, training=False):
        x = tf.sort(MU + SIGMA * keras.random.normal((self.batch,), seed=self.seed_generator))
        d_real = clip_probability(self.discriminator(x[:, None]))
        d_fake = clip_probability(self.discriminator(5.0 * self.generator(self.sample_noise())))
        objective_d = tf.reduce_mean(tf.math.log(d_real) + tf.math.log(1.0 - d_fake))
        objective_g = tf.reduce_mean(tf.math.log(d_fake))
        return {"discriminator": 1.0 - objective_d, "generator": 1.0 - objective_g}


def pretrain(discriminator: keras.Model, steps: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Regress D on N(x; -1, 1) for x ~ U[-5, 5] (the seed's D_pre); returns the loss curve."""
    rng = np.random.default_rng(seed)
    x = ((rng.random((steps * M, 1)) - 0.5) * 10.0).astype(np.float32)
    y = norm.pdf(x, loc=MU, scale=SIGMA).astype(np.float32)
    discriminator.compile(optimizer=momentum_optimizer(), loss="mse")
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(M)
    window = max(1, steps // 100)
    history = discriminator.fit(dataset.repeat(), epochs=steps // window, steps_per_epoch=window,
                                verbose=0, shuffle=False)
    return np.asarray(history.history["loss"]), window * np.arange(1, steps // window + 1)


def density_panel(ax, discriminator, generator, title: str, clip: bool) -> None:
    """p_data, the decision boundary D(x) and (if given) the density of G(z) on [-5, 5]."""
    xs = np.linspace(-5.0, 5.0, 1000, dtype=np.float32)[:, None]
    ax.plot(xs, norm.pdf(xs, loc=MU, scale=SIGMA), label="p_data")
    d = discriminator.predict(xs, batch_size=1000, verbose=0)
    ax.plot(xs, clip_probability(d) if clip else d, label="decision boundary D(x)")
    if generator is not None:
        zs = np.linspace(-5.0, 5.0, 5000, dtype=np.float32)[:, None]
        samples = 5.0 * generator.predict(zs, batch_size=5000, verbose=0)[:, 0]
        ax.hist(samples, bins=50, range=(-5, 5), density=True, histtype="step", linewidth=1.4,
                label="p_g (density of G(z))")
    ax.set_ylim(0.0, 1.1)
    ax.set_xlim(-5.0, 5.0)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="upper right")


def main(argv=None) -> dict:
    p = _shared.parser(__doc__.splitlines()[0], steps=TRAIN_ITERS)
    args = p.parse_args(argv)
    out = _shared.setup(args, "gaussian_gan_1d", full_steps=TRAIN_ITERS, smoke_steps=6)
    pretrain_steps = 20 if args.smoke else PRETRAIN_STEPS

    discriminator = mlp("discriminator", seed=args.seed)
    generator = mlp("generator", seed=args.seed + 10)
    figure = _shared.new_figure(13.0, 3.4)
    axes = figure.subplots(1, 3)
    density_panel(axes[0], discriminator, None, "Initial decision boundary", clip=False)
    loss, loss_steps = pretrain(discriminator, pretrain_steps, args.seed)
    axes[1].plot(loss_steps, loss)
    axes[1].set_title("Pre-training loss (MSE)", fontsize=10)
    axes[1].set_xlabel("step")
    density_panel(axes[2], discriminator, None, "Pre-trained decision boundary", clip=False)
    figure.tight_layout()
    _shared.save(figure, out / "pretraining.png")

    figure = _shared.new_figure(13.0, 3.4)
    axes = figure.subplots(1, 3)
    density_panel(axes[0], discriminator, generator, "Before training", clip=True)
    model = GaussianGAN(discriminator, generator, seed=args.seed)
    model.compile(optimizer={"discriminator": momentum_optimizer(),
                             "generator": momentum_optimizer()},
                  update_order="alternating", **_shared.compile_kwargs(args))
    # One iteration of the seed = one discriminator step + one generator step.
    curves, steps, seconds = _shared.fit_in_windows(
        model, tfgames.datasets.step_dataset(1).repeat(), 2 * args.steps,
        window=2 if args.smoke else 200)
    iterations = steps // 2
    axes[1].plot(iterations, 1.0 - curves["discriminator_loss"], label="obj_d")
    axes[1].plot(iterations, 1.0 - curves["generator_loss"], label="obj_g")
    axes[1].set_title("Objectives (means over 100 iterations)", fontsize=10)
    axes[1].set_xlabel("iteration (D step + G step)")
    axes[1].legend(fontsize=8)
    density_panel(axes[2], discriminator, generator, "After training", clip=True)
    figure.tight_layout()
    _shared.save(figure, out / "gan.png")

    zs = np.linspace(-5.0, 5.0, 5000, dtype=np.float32)[:, None]
    samples = 5.0 * generator.predict(zs, batch_size=5000, verbose=0)[:, 0]
    metrics = {"example": "gaussian_gan_1d", "iterations": args.steps,
               "pretrain_steps": pretrain_steps, "seconds": seconds,
               "target_mean": MU, "target_std": SIGMA,
               "generated_mean": float(samples.mean()), "generated_std": float(samples.std()),
               "final_obj_d": float(1.0 - curves["discriminator_loss"][-1]),
               "final_obj_g": float(1.0 - curves["generator_loss"][-1])}
    _shared.write_metrics(out, metrics)
    return metrics


if __name__ == "__main__":
    main()
