"""The SGA notebook's GAN as a :class:`tfgames.GameModel`, and the size of a run.

- :class:`GanConfig`: the sizes and schedule of one training run; :func:`preset_config` picks
  an experiment's preset.
- :class:`MLPGAN`: ReLU MLPs with Sonnet-1 initialisation (:func:`mlp`), real data and noise
  drawn inside the train step, the seed's sigmoid cross-entropy losses (:func:`gan_losses`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import keras
import tensorflow as tf

import tfgames
from tfgames.lab import models, samplers
from tfgames.model import GameModel

__all__ = ["MLPGAN", "GanConfig", "gan_losses", "mlp", "preset_config"]


@dataclass(frozen=True)
class GanConfig:
    """Size and schedule of one GAN training run.

    Attributes:
        target: ``"grid"`` (4x4 mixture, x_dim 2) or ``"gaussian"`` (N(0, I_x_dim)).
        x_dim: data dimension.
        depth: hidden layers of both MLPs.
        width: units per hidden layer.
        z_dim: generator noise dimension.
        batch_size: real and generated samples per step.
        learning_rate: the optimizers' step size.
        steps: training steps.
        snapshot_every: steps between snapshots (a last one is taken at ``steps``).
        eval_batches: batches of ``batch_size`` generated (and real) samples per snapshot.
        std: standard deviation of each grid component (``target="grid"``).
    """

    target: str = "grid"
    x_dim: int = 2
    depth: int = 6
    width: int = 384
    z_dim: int = 64
    batch_size: int = 256
    learning_rate: float = 1e-4
    steps: int = 10_000
    snapshot_every: int = 2_000
    eval_batches: int = 10
    std: float = 0.02

    def __post_init__(self) -> None:
        if self.target not in ("grid", "gaussian"):
            raise ValueError(
                f"GanConfig.target must be 'grid' or 'gaussian'. Received: {self.target!r}"
            )
        for name in ("x_dim", "depth", "width", "z_dim", "batch_size", "steps",
                     "snapshot_every", "eval_batches"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"GanConfig.{name} must be an integer >= 1. Received: {name}={value!r}"
                )
        if not self.learning_rate > 0:
            raise ValueError(
                f"GanConfig.learning_rate must be > 0. Received: {self.learning_rate!r}"
            )

    def snapshot_steps(self) -> list[int]:
        """0, snapshot_every, 2 snapshot_every, ..., and ``steps``."""
        return sorted(set(range(0, self.steps, self.snapshot_every)) | {self.steps})


def preset_config(presets: Mapping[str, GanConfig], preset: str,
                  steps: int | None) -> GanConfig:
    """The preset's :class:`GanConfig`, with ``steps`` instead of its own when given
    (snapshots keep their spacing, capped at ``steps``).
    """
    if preset not in presets:
        raise ValueError(f"Unknown preset {preset!r}; choose from {sorted(presets)}.")
    config = presets[preset]
    if steps is not None:
        config = dataclasses.replace(config, steps=steps,
                                     snapshot_every=min(config.snapshot_every, steps))
    return config


def mlp(in_dim: int, depth: int, width: int, out_dim: int, *, name: str) -> keras.Sequential:
    """The seed's MLP: ``depth`` ReLU layers of ``width`` units and a linear output layer
    (:func:`tfgames.lab.models.mlp` with Sonnet 1's initialisation, as the seed).
    """
    return models.mlp(in_dim, [width] * depth, out_dim, name=name)


def gan_losses(discriminator: Callable, generator: Callable, x_real: tf.Tensor,
               z: tf.Tensor, training: bool = False) -> dict[str, tf.Tensor]:
    """The seed's GAN losses with logits D(.) (sigmoid cross-entropy, non-saturating G).

    L_D = -mean log sigma(D(x)) - mean log(1 - sigma(D(G(z)))),
    L_G = -mean log sigma(D(G(z))).
    At the equilibrium D = 1/2 everywhere: L_D = 2 ln 2, L_G = ln 2.
    """
    real = discriminator(x_real, training=training)
    fake = discriminator(generator(z, training=training), training=training)
    return tfgames.losses.gan_losses(real, fake)


@keras.saving.register_keras_serializable(package="tfgames.lab.experiments")
class MLPGAN(GameModel):
    """The SGA notebook's GAN: MLP generator and discriminator, data sampled in the step.

    Players, in the seed's order ``xs = disc_vars + gen_vars``: ``discriminator`` minimises
    L_D and ``generator`` minimises L_G (:func:`gan_losses`). Each train step draws
    ``batch_size`` real samples (:func:`tfgames.lab.samplers.grid_batch` or
    :func:`tfgames.lab.samplers.gaussian_batch`) and z ~ N(0, I_z_dim) from the model's noise
    stream, so ``fit`` needs only a dummy data set (:func:`tfgames.datasets.step_dataset`).

    Args:
        config: the sizes (:class:`GanConfig`; the schedule fields are not used here).
        seed: seed of the noise stream.
    """

    def __init__(self, config: GanConfig | Mapping[str, Any] = GanConfig(), **kwargs) -> None:
        super().__init__(**kwargs)
        self.config = config if isinstance(config, GanConfig) else GanConfig(**config)
        c = self.config
        self.discriminator = mlp(c.x_dim, c.depth, c.width, 1, name="discriminator")
        self.generator = mlp(c.z_dim, c.depth, c.width, c.x_dim, name="generator")

    def players(self) -> dict[str, keras.Model]:
        return {"discriminator": self.discriminator, "generator": self.generator}

    def sample_real(self, n: int, seed: keras.random.SeedGenerator | int | None) -> tf.Tensor:
        """``n`` samples of the target distribution."""
        c = self.config
        if c.target == "grid":
            return samplers.grid_batch(n, seed, std=c.std)
        return samplers.gaussian_batch(n, c.x_dim, seed)

    def replica_batch_size(self, data: Any) -> int:
        """Every replica draws ``batch_size`` samples in the step (the data set is a dummy):
        equal shares under a strategy.
        """
        return self.config.batch_size

    def compute_losses(self, data: Any, training: bool = False) -> dict[str, tf.Tensor]:
        c = self.config
        x_real = self.sample_real(c.batch_size, self.seed_generator)
        z = keras.random.normal((c.batch_size, c.z_dim), seed=self.seed_generator)
        return gan_losses(self.discriminator, self.generator, x_real, z, training)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "config": asdict(self.config)}
