"""Data for ``fit`` when a game draws its own data inside the train step.

A game whose losses sample their data (noise from the model's seed generator, real samples
from a sampler) still needs ``Model.fit`` to run a number of steps: :func:`step_dataset`
gives it a data set of dummy batches of a fixed length. The lab's samplers (a 4x4 grid and a
ring of Gaussians, N(0, I)) are in :mod:`tfgames.lab.samplers`.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

__all__ = ["check_positive_int", "step_dataset"]


def check_positive_int(name: str, value: int) -> None:
    """Raise a ``ValueError`` naming ``name`` unless ``value`` is an int (or NumPy int) >= 1."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(
            f"Argument `{name}` must be a positive integer. Pass an int >= 1. "
            f"Received: {name}={value!r}"
        )


def step_dataset(steps: int, batch_size: int = 1) -> tf.data.Dataset:
    """A data set of ``steps`` dummy batches, to drive ``fit`` when data come from train_step.

    Element k (k = 0, ..., steps - 1) is ``tf.zeros((batch_size, 1), tf.float32)``; the data
    set has known cardinality ``steps``, so ``model.fit(step_dataset(n), epochs=1)`` runs
    exactly ``n`` train steps.

    Args:
        steps: number of batches (train steps per epoch), >= 1.
        batch_size: leading dimension of each dummy batch, >= 1.

    Returns:
        A ``tf.data.Dataset`` of ``steps`` float32 tensors of shape ``(batch_size, 1)``.

    Example:
        >>> import tfgames
        >>> int(tfgames.datasets.step_dataset(3).cardinality())
        3

    References:
        Keras guide "Customizing what happens in fit() with TensorFlow" (GAN section).
    """
    check_positive_int("steps", steps)
    check_positive_int("batch_size", batch_size)
    return tf.data.Dataset.from_tensors(tf.zeros((int(batch_size), 1), tf.float32)).repeat(
        int(steps)
    )
