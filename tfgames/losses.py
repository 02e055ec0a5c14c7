"""GAN losses on discriminator logits, written once.

With D(.) the discriminator's logit and sigma the logistic function, the saddle objective of
Goodfellow et al. (2014) is

    L(G, D) = -E_x log sigma(D(x)) - E_z log(1 - sigma(D(G(z)))),

which the discriminator minimises. The generator either maximises it (``"minimax"``:
l_G = -L) or, as in most code since the paper, minimises the non-saturating loss
(``"non_saturating"``: l_G = -E_z log sigma(D(G(z)))). At the equilibrium D = 1/2 everywhere,
L = 2 ln 2 and the non-saturating loss is ln 2. Both are computed with
``tf.nn.sigmoid_cross_entropy_with_logits`` (stable for large logits).

References:
    Goodfellow, Pouget-Abadie, Mirza, Xu, Warde-Farley, Ozair, Courville and Bengio (2014).
    Generative adversarial nets. NeurIPS.
"""

from __future__ import annotations

from typing import Literal

import tensorflow as tf

__all__ = ["GENERATOR_LOSSES", "gan_losses", "saddle_loss"]

GENERATOR_LOSSES = ("non_saturating", "minimax")


def _bce_mean(labels_like_one: bool, logits: tf.Tensor) -> tf.Tensor:
    labels = tf.ones_like(logits) if labels_like_one else tf.zeros_like(logits)
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels, logits))


def saddle_loss(real_logits: tf.Tensor, fake_logits: tf.Tensor) -> tf.Tensor:
    """L = -mean log sigma(D(x)) - mean log(1 - sigma(D(G(z)))), the discriminator's loss.

    Args:
      real_logits: D(x) on a real batch.
      fake_logits: D(G(z)) on a generated batch.

    Returns:
      The scalar L.

    Example:
      >>> import tensorflow as tf
      >>> from tfgames.losses import saddle_loss
      >>> round(float(saddle_loss(tf.zeros(4), tf.zeros(4))), 4)  # 2 ln 2 at D = 1/2
      1.3863
    """
    return _bce_mean(True, real_logits) + _bce_mean(False, fake_logits)


def gan_losses(
    real_logits: tf.Tensor,
    fake_logits: tf.Tensor,
    *,
    generator: Literal["non_saturating", "minimax"] = "non_saturating",
) -> dict[str, tf.Tensor]:
    """``{"discriminator": L, "generator": l_G}`` of the GAN game on logits.

    l_D = L = -mean log sigma(D(x)) - mean log(1 - sigma(D(G(z)))); l_G = -mean log
    sigma(D(G(z))) (``generator="non_saturating"``) or l_G = -L (``"minimax"``, a zero-sum
    game).

    Args:
      real_logits: D(x) on a real batch.
      fake_logits: D(G(z)) on a generated batch.
      generator: the generator's loss, one of :data:`GENERATOR_LOSSES`.

    Returns:
      The players' losses, keyed ``"discriminator"`` and ``"generator"``.

    Raises:
      ValueError: for an unknown ``generator``.

    Example:
      >>> import tensorflow as tf
      >>> from tfgames.losses import gan_losses
      >>> losses = gan_losses(tf.zeros(4), tf.zeros(4))
      >>> [round(float(losses[p]), 4) for p in ("discriminator", "generator")]
      [1.3863, 0.6931]
    """
    if generator not in GENERATOR_LOSSES:
        raise ValueError(
            f"Argument `generator` must be one of {GENERATOR_LOSSES}. Received: "
            f"generator={generator!r}. Use 'non_saturating' (the common choice) or 'minimax' "
            "(the zero-sum game)."
        )
    loss = saddle_loss(real_logits, fake_logits)
    if generator == "minimax":
        return {"discriminator": loss, "generator": -loss}
    return {"discriminator": loss, "generator": _bce_mean(True, fake_logits)}
