"""The lab's one MLP builder, for the experiments, examples and benchmarks.

    h_0 = x,   h_{k+1} = a(h_k W_k + b_k)  for k < len(hidden),   y = o(h_L W_L + b_L),

with ``a`` the hidden activation and ``o`` the output activation (linear by default). The
default initialisation is the SGA notebook's (Sonnet 1's ``snt.Linear``): kernels from a
normal truncated at 2 standard deviations with stddev 1/sqrt(fan_in), zero biases.

References:
    Balduzzi, Racaniere, Martens, Foerster, Tuyls and Graepel (2018). The mechanics of
    n-player differentiable games. ICML. (The seed notebook's 6x384 ReLU MLPs.)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np

__all__ = ["mlp", "sonnet_initializer"]

Initializer = Callable[[int, int], Any]


def sonnet_initializer(index: int, fan_in: int) -> keras.initializers.Initializer:
    """Truncated normal (2 std) with stddev 1/sqrt(fan_in): Sonnet 1's ``snt.Linear``."""
    return keras.initializers.TruncatedNormal(stddev=1.0 / math.sqrt(fan_in))


def mlp(
    in_dim: int,
    hidden: Sequence[int],
    out_dim: int,
    *,
    name: str | None = None,
    activation: str | None = "relu",
    output_activation: str | None = None,
    kernel_initializer: Initializer = sonnet_initializer,
    weights: Sequence[np.ndarray] | None = None,
) -> keras.Sequential:
    """A dense network ``in_dim -> hidden[0] -> ... -> hidden[-1] -> out_dim``.

    Args:
      in_dim: input size.
      hidden: the hidden layers' widths, e.g. ``[384] * 6`` for the seed's MLPs.
      out_dim: output size.
      name: the model's name.
      activation: the hidden layers' activation.
      output_activation: the last layer's activation (None: linear).
      kernel_initializer: ``(layer index, fan_in) -> initializer`` for each kernel; biases
        start at zero.
      weights: kernels and biases ``[W_0, b_0, W_1, b_1, ...]`` to set instead of drawing
        them (e.g. weights shared with a TF1 reference graph).

    Returns:
      The ``keras.Sequential`` model, built.

    Example:
      >>> from tfgames.lab.models import mlp
      >>> net = mlp(2, [384] * 6, 1, name="discriminator")
      >>> [layer.units for layer in net.layers]
      [384, 384, 384, 384, 384, 384, 1]
    """
    layers: list[Any] = [keras.Input((in_dim,))]
    widths = [*list(hidden), out_dim]
    fan_in = in_dim
    for index, units in enumerate(widths):
        last = index == len(widths) - 1
        layers.append(keras.layers.Dense(
            units, activation=output_activation if last else activation,
            kernel_initializer=kernel_initializer(index, fan_in), bias_initializer="zeros",
        ))
        fan_in = units
    model = keras.Sequential(layers, name=name)
    if weights is not None:
        model.set_weights(list(weights))
    return model
