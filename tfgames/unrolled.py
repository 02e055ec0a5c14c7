"""The unrolled GAN game (Metz et al. 2017) as a :class:`tfgames.GameModel`.

The generator descends its loss against the discriminator it would face after K more
discriminator updates, differentiated through those updates (the math is in
:mod:`tfgames.unrolling`, re-exported here as in tfgames 0.1).

References:
    Metz, Poole, Pfau and Sohl-Dickstein (2017). Unrolled generative adversarial networks.
    ICLR. https://arxiv.org/abs/1611.02163
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import tensorflow as tf

from tfgames.losses import saddle_loss
from tfgames.model import GameModel
from tfgames.unrolling import (
    AdamState,
    adam_update,
    check_unrollable,
    functional_call,
    sgd_update,
    unroll_variables,
)

__all__ = [
    "AdamState",
    "UnrolledGAN",
    "adam_update",
    "functional_call",
    "gan_saddle_loss",
    "sgd_update",
    "unroll_variables",
]

#: The saddle objective L of the unrolled GAN (:func:`tfgames.losses.saddle_loss`).
gan_saddle_loss = saddle_loss


@keras.saving.register_keras_serializable(package="tfgames")
class UnrolledGAN(GameModel):
    """The unrolled GAN game (Metz et al. 2017) as a :class:`tfgames.GameModel`.

        l_D = L(theta_G, theta_D),   l_G = -L(theta_G, theta_D^K(theta_G)),
        L = -E_x log sigmoid(D(x)) - E_z log(1 - sigmoid(D(G(z)))),

    the seed notebook's saddle objective (the discriminator outputs logits), with theta_D^K
    from :func:`unroll_variables`: K = ``unroll_steps`` updates of the discriminator's own
    optimizer, starting from its current state, on the same real batch and noise. K = 0 is
    the plain minimax GAN. Players ``"discriminator"`` and ``"generator"``; the batch is the
    real data, the noise z ~ N(0, I_{latent_dim}) is drawn from :attr:`seed_generator`.

    The optimizer that updates the discriminator must be a ``keras.optimizers.SGD`` or
    ``keras.optimizers.Adam``: the one passed to ``compile``, or the discriminator's entry of
    a per-player optimizer (any optimizer object with an ``optimizers`` mapping from player
    name to Keras optimizer). Give ``unroll_optimizer`` to unroll with a different rule.

    Args:
      generator: maps ``(batch, latent_dim)`` noise to samples.
      discriminator: maps samples to logits ``(batch, 1)``.
      latent_dim: dimension of z.
      unroll_steps: K >= 0.
      unroll_optimizer: the optimizer whose rule and state the unrolled steps use; default
        the discriminator's optimizer from ``compile``.
      **kwargs: passed to :class:`tfgames.GameModel` (e.g. ``seed``).

    References:
      Metz, Poole, Pfau and Sohl-Dickstein (2017). Unrolled generative adversarial networks.
      ICLR.
    """

    def __init__(
        self,
        generator: keras.layers.Layer,
        discriminator: keras.layers.Layer,
        *,
        latent_dim: int,
        unroll_steps: int = 5,
        unroll_optimizer: keras.optimizers.Optimizer | None = None,
        **kwargs: Any,
    ) -> None:
        if isinstance(unroll_steps, bool) or not isinstance(unroll_steps, int) or unroll_steps < 0:
            raise ValueError(
                "Argument `unroll_steps` must be an integer >= 0 (0 is the plain GAN). "
                f"Received: unroll_steps={unroll_steps!r}"
            )
        if isinstance(latent_dim, bool) or not isinstance(latent_dim, int) or latent_dim < 1:
            raise ValueError(
                "Argument `latent_dim` must be an integer >= 1. "
                f"Received: latent_dim={latent_dim!r}"
            )
        if unroll_optimizer is not None:
            check_unrollable(unroll_optimizer)
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = latent_dim
        self.unroll_steps = unroll_steps
        self.unroll_optimizer = unroll_optimizer

    def players(self) -> dict[str, keras.layers.Layer]:
        return {"discriminator": self.discriminator, "generator": self.generator}

    def discriminator_optimizer(self) -> keras.optimizers.Optimizer:
        """The optimizer whose update rule and state the unrolled steps follow."""
        if self.unroll_optimizer is not None:
            return self.unroll_optimizer
        optimizer = self.optimizer
        per_player = getattr(optimizer, "player_optimizers", None)
        if isinstance(per_player, dict) and "discriminator" in per_player:
            optimizer = per_player["discriminator"]
        if optimizer is None:
            raise ValueError(
                "UnrolledGAN needs the discriminator's optimizer to unroll: compile the model "
                "first, or pass unroll_optimizer=..."
            )
        check_unrollable(optimizer)
        return optimizer

    def compile(self, optimizer: Any = "rmsprop", **kwargs: Any) -> None:
        super().compile(optimizer=optimizer, **kwargs)
        if self.unroll_steps:
            optimizer = self.discriminator_optimizer()
            if not optimizer.built:
                optimizer.build(self.discriminator.trainable_variables)

    def generate(self, n: int) -> tf.Tensor:
        """``n`` samples G(z), z ~ N(0, I), drawn from :attr:`seed_generator`."""
        z = keras.random.normal((n, self.latent_dim), seed=self.seed_generator)
        return self.generator(z, training=False)

    def compute_losses(self, data: Any, training: bool = False) -> dict[str, tf.Tensor]:
        x_real = data
        z = keras.random.normal((tf.shape(x_real)[0], self.latent_dim), seed=self.seed_generator)
        x_fake = self.generator(z, training=training)

        def saddle(d: Callable[..., Any]) -> tf.Tensor:
            return gan_saddle_loss(d(x_real, training=training), d(x_fake, training=training))

        loss = saddle(self.discriminator)
        if self.unroll_steps:
            values = unroll_variables(
                self.discriminator, saddle, self.unroll_steps, self.discriminator_optimizer()
            )
            unrolled = saddle(functional_call(self.discriminator, values))
        else:
            unrolled = loss
        return {"discriminator": loss, "generator": -unrolled}

    def get_config(self) -> dict[str, Any]:
        """The sub-models, K, the latent size and the ``unroll_optimizer``'s configuration.

        An explicit ``unroll_optimizer`` is saved by its configuration (its update rule); its
        state is not part of the model: one that also steps a player is saved with the
        model's optimizer, and one that only defines the unrolled rule has none.
        """
        unroll_optimizer = self.unroll_optimizer
        return {
            **super().get_config(),
            "generator": keras.saving.serialize_keras_object(self.generator),
            "discriminator": keras.saving.serialize_keras_object(self.discriminator),
            "latent_dim": self.latent_dim,
            "unroll_steps": self.unroll_steps,
            "unroll_optimizer": None if unroll_optimizer is None
            else keras.optimizers.serialize(unroll_optimizer),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> UnrolledGAN:
        config = dict(config)
        for key in ("generator", "discriminator"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        if config.get("unroll_optimizer") is not None:
            config["unroll_optimizer"] = keras.optimizers.deserialize(config["unroll_optimizer"])
        return cls(**config)
