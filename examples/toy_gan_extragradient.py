"""Seed 002: a two-parameter toy GAN, simultaneous gradient descent vs extragradient.

Real data x ~ U[0, 1], noise z ~ U[1, 2] (n = 1,000 fixed samples of each, full batch at every
step, as in the seed), a generator G(z) = clip(z + b_G, -5, 5) and a discriminator
D(x) = exp(-(x + b_D)^2); the game is min_{b_G} max_{b_D} V with

    V(b_D, b_G) = 1/(2n) [ sum_i log D(x_i) + sum_i log(1 - D~(G(z_i))) ],

where D~ = 0.001 + 0.998 D keeps log(1 - D~) finite (the seed's margins). As a
:class:`tfgames.GameModel` the players are the two scalars, ``"discriminator"`` (b_D, loss
-V) and ``"generator"`` (b_G, loss V). The generator reproduces the data at b_G = -1.

From (b_D, b_G) = (-3, 0), step 0.1 (seed: 10,000 iterations):

- simultaneous gradient descent, w <- w - eta xi(w) (``keras.optimizers.SGD(0.1)``);
- extragradient (Korpelevich 1976), w_{+1/2} = w - eta xi(w), w <- w - eta xi(w_{+1/2})
  (``tfgames.Extragradient(keras.optimizers.SGD(0.1))``).

Figures, with :func:`tfgames.lab.plotting.vector_field`: the update field -xi (streamlines) with
both trajectories (the seed's ``make_plot``), the norm of the field on the seed's window
[0, 3] x [-3, 0], and ||xi|| along both trajectories. ``metrics.json``: the final iterates,
their gradient norms and the step from which ||xi|| stays below 1e-3.

    python examples/toy_gan_extragradient.py --out runs/toy_gan_extragradient
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
import tfgames.lab.plotting

N_SAMPLES = 1000
STEP_SIZE = 0.1
START = (-3.0, 0.0)


def toy_losses(b_d: tf.Tensor, b_g: tf.Tensor, real: tf.Tensor, noise: tf.Tensor
               ) -> dict[str, tf.Tensor]:
    """{"discriminator": -V, "generator": V}; b_d, b_g may be arrays of equal shape (a grid)."""
    b_d = tf.convert_to_tensor(b_d)[..., None]
    b_g = tf.convert_to_tensor(b_g)[..., None]
    log_d_real = -tf.square(real + b_d)
    fake = tf.clip_by_value(noise + b_g, -5.0, 5.0)
    d_fake = 0.001 + 0.998 * tf.exp(-tf.square(fake + b_d))
    n = tf.cast(tf.shape(real)[-1], real.dtype)
    value = (tf.reduce_sum(log_d_real, -1) + tf.reduce_sum(tf.math.log(1.0 - d_fake), -1)) / (
        2.0 * n)
    return {"discriminator": -value, "generator": value}


class ToyGAN(tfgames.GameModel):
    """The two-scalar game; each batch is ``(real, noise)``, two vectors of samples."""

    def __init__(self, b_d: float = START[0], b_g: float = START[1], **kwargs) -> None:
        super().__init__(**kwargs)
        self.b_d = self.add_weight(shape=(), name="b_d",
                                   initializer=keras.initializers.Constant(b_d))
        self.b_g = self.add_weight(shape=(), name="b_g",
                                   initializer=keras.initializers.Constant(b_g))

    def players(self):
        return {"discriminator": self.b_d, "generator": self.b_g}

    def compute_losses(self, data, training=False):
        real, noise = data
        return toy_losses(self.b_d, self.b_g, real, noise)


class Trajectory(keras.callbacks.Callback):
    """Records (b_D, b_G) before training and after every step."""

    def on_train_begin(self, logs=None) -> None:
        self.points = [self._point()]

    def on_train_batch_end(self, batch, logs=None) -> None:
        self.points.append(self._point())

    def _point(self) -> tuple[float, float]:
        return float(self.model.b_d.numpy()), float(self.model.b_g.numpy())


def update_field(real: np.ndarray, noise: np.ndarray):
    """(b_D, b_G) grids -> (u, v) = -xi, the direction gradient descent moves each player."""
    real_t, noise_t = tf.constant(real), tf.constant(noise)

    def field(b_d: np.ndarray, b_g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        b_d_t = tf.constant(b_d, tf.float32)
        b_g_t = tf.constant(b_g, tf.float32)
        with tf.GradientTape(persistent=True) as tape:
            tape.watch([b_d_t, b_g_t])
            losses = toy_losses(b_d_t, b_g_t, real_t, noise_t)
            # The losses are independent across grid points: the gradient of their sum
            # is the grid of partial derivatives.
            l_d = tf.reduce_sum(losses["discriminator"])
            l_g = tf.reduce_sum(losses["generator"])
        return -tape.gradient(l_d, b_d_t).numpy(), -tape.gradient(l_g, b_g_t).numpy()

    return field


def run(optimizer, real, noise, steps, seed, args) -> np.ndarray:
    model = ToyGAN(seed=seed)
    model.compile(optimizer=optimizer, **_shared.compile_kwargs(args))
    trajectory = Trajectory()
    data = tf.data.Dataset.from_tensors((real, noise)).repeat(steps)
    model.fit(data, epochs=1, verbose=0, shuffle=False, callbacks=[trajectory])
    return np.asarray(trajectory.points)


def main(argv=None) -> dict:
    p = _shared.parser(__doc__.splitlines()[0], steps=10000)
    p.add_argument("--grid", type=int, default=27, help="field mesh points per axis")
    args = p.parse_args(argv)
    out = _shared.setup(args, "toy_gan_extragradient", full_steps=10000, smoke_steps=20)
    rng = np.random.default_rng(args.seed)
    real = rng.uniform(0.0, 1.0, N_SAMPLES).astype(np.float32)
    noise = rng.uniform(1.0, 2.0, N_SAMPLES).astype(np.float32)

    paths = {
        "simultaneous GD": run(keras.optimizers.SGD(STEP_SIZE), real, noise, args.steps,
                               args.seed, args),
        "extragradient": run(tfgames.Extragradient(keras.optimizers.SGD(STEP_SIZE)), real,
                             noise, args.steps, args.seed, args),
    }
    field = update_field(real, noise)
    grid = 9 if args.smoke else args.grid
    tfgames.lab.plotting.vector_field(
        field, (-3.1, 2.1), (-3.1, 2.1), paths, grid=grid, density=2.0,
        xlabel="discriminator b_D", ylabel="generator b_G",
        title=f"Toy GAN: update field and {args.steps} steps of size {STEP_SIZE}",
        path=out / "field_trajectories.png")
    tfgames.lab.plotting.vector_field(
        field, (0.0, 3.0), (-3.0, 0.0), paths, grid=grid, norm_map=True,
        xlabel="discriminator b_D", ylabel="generator b_G", title="Norm of the update field",
        path=out / "gradient_norm.png")

    metrics = {"example": "toy_gan_extragradient", "steps": args.steps,
               "step_size": STEP_SIZE, "start": START}
    figure = _shared.new_figure(5.5, 3.6)
    ax = figure.subplots()
    shown = min(args.steps + 1, 1001)
    for index, (label, points) in enumerate(paths.items()):
        u, v = field(points[:, 0], points[:, 1])
        norms = np.hypot(u, v)
        # Colours as in vector_field's trajectories; the first 1,000 steps hold the transient.
        ax.semilogy(np.arange(shown), norms[:shown], color=f"C{index + 1}", label=label,
                    linewidth=1.2)
        key = label.replace(" ", "_")
        above = np.flatnonzero(norms >= 1e-3)
        metrics[f"{key}_final"] = points[-1].tolist()
        metrics[f"{key}_final_gradient_norm"] = float(norms[-1])
        # The step from which ||xi|| stays below 1e-3 (None: it never settles).
        settled = int(above[-1]) + 1 if above.size else 0
        metrics[f"{key}_steps_to_gradient_norm_1e-3"] = (
            settled if settled < len(norms) else None)
    ax.set_xlabel("step")
    ax.set_ylabel("||xi(b_D, b_G)||")
    ax.set_title("Gradient norm along the trajectories", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    figure.tight_layout()
    _shared.save(figure, out / "convergence.png")
    _shared.write_metrics(out, metrics)
    return metrics


if __name__ == "__main__":
    main()
