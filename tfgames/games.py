"""Canonical games with known equilibria, for tests, docs and benchmarks.

Each is a :class:`tfgames.GameModel` whose players are plain variables, so it trains with
``fit`` on :func:`tfgames.datasets.step_dataset` (the data are ignored).
"""

from __future__ import annotations

from typing import Any, Sequence

import keras
import numpy as np
import tensorflow as tf

from tfgames.game import zero_sum
from tfgames.model import GameModel

__all__ = ["Bilinear", "CyclicThreePlayer", "QuadraticZeroSum"]


def _weight(model: keras.Model, name: str, value: Sequence[float] | float) -> keras.Variable:
    value = np.asarray(value, dtype="float32")
    return model.add_weight(
        shape=value.shape,
        initializer=keras.initializers.Constant(value),
        name=name,
        dtype="float32",
    )


@keras.saving.register_keras_serializable(package="tfgames")
class Bilinear(GameModel):
    """The bilinear zero-sum game min_x max_y f(x, y) = x * y.

    Unique equilibrium (0, 0). The game Jacobian H = [[0, 1], [-1, 0]] is antisymmetric:
    simultaneous gradient descent spirals away (the distance to the equilibrium grows by
    sqrt(1 + eta^2) per step), while SGA, consensus, optimistic and extragradient methods
    converge. Players ``"x"`` (minimises f) and ``"y"`` (maximises f).

    Args:
      x0: initial x.
      y0: initial y.
    """

    def __init__(self, x0: float = 1.0, y0: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.x0, self.y0 = float(x0), float(y0)
        self.x = _weight(self, "x", x0)
        self.y = _weight(self, "y", y0)

    def players(self):
        return {"x": self.x, "y": self.y}

    def compute_losses(self, data, training=False):
        return zero_sum(self.x * self.y, min_player="x", max_player="y")

    def distance_to_equilibrium(self) -> float:
        """||(x, y) - (0, 0)||."""
        return float(np.hypot(float(self.x.numpy()), float(self.y.numpy())))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "x0": self.x0, "y0": self.y0}


@keras.saving.register_keras_serializable(package="tfgames")
class QuadraticZeroSum(GameModel):
    """min_x max_y f = (a/2) ||x||^2 + x^T B y - (c/2) ||y||^2, x, y in R^k.

    Unique equilibrium (0, 0) for a, c >= 0 and B of full rank. H = [[a I, B], [-B^T, c I]].
    Players ``"x"`` (minimises f) and ``"y"`` (maximises f).

    Args:
      a: curvature of the min player.
      c: curvature of the max player.
      coupling: the matrix B (k x k), default [[1, 2], [0, 1]].
      x0: initial x; default ones.
      y0: initial y; default ones.
    """

    def __init__(
        self,
        a: float = 0.5,
        c: float = 0.5,
        coupling: Sequence[Sequence[float]] = ((1.0, 2.0), (0.0, 1.0)),
        x0: Sequence[float] | None = None,
        y0: Sequence[float] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.a, self.c = float(a), float(c)
        self.coupling = [list(map(float, row)) for row in coupling]
        k = len(self.coupling)
        self.x0 = list(x0) if x0 is not None else [1.0] * k
        self.y0 = list(y0) if y0 is not None else [1.0] * k
        self.B = tf.constant(self.coupling, tf.float32)
        self.x = _weight(self, "x", self.x0)
        self.y = _weight(self, "y", self.y0)

    def players(self):
        return {"x": self.x, "y": self.y}

    def compute_losses(self, data, training=False):
        x, y = self.x, self.y
        f = (
            0.5 * self.a * tf.reduce_sum(x * x)
            + tf.tensordot(x, tf.linalg.matvec(self.B, y), 1)
            - 0.5 * self.c * tf.reduce_sum(y * y)
        )
        return zero_sum(f, min_player="x", max_player="y")

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "a": self.a, "c": self.c, "coupling": self.coupling, "x0": self.x0, "y0": self.y0,
        }


@keras.saving.register_keras_serializable(package="tfgames")
class CyclicThreePlayer(GameModel):
    """Three players in a cycle: player i minimises l_i = <x_i, x_{i+1}> + (a/2) ||x_i||^2.

    Indices mod 3. The unique equilibrium is x = 0 (for a != -1). The game Jacobian is
    a I + P with P the cyclic block permutation, with eigenvalues a + 1 and a + exp(+-2 pi i/3):
    for 0 <= a < 1/2 two eigenvalues have negative real part, so simultaneous gradient descent
    diverges, while SGA converges. Players ``"p0"``, ``"p1"``, ``"p2"``.

    Args:
      a: each player's own curvature.
      x0: initial values, one vector per player; default [[1, 0], [0, 1], [1, 1]].
    """

    def __init__(
        self,
        a: float = 0.1,
        x0: Sequence[Sequence[float]] = ((1.0, 0.0), (0.0, 1.0), (1.0, 1.0)),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.a = float(a)
        self.x0 = [list(map(float, row)) for row in x0]
        if len(self.x0) != 3:
            raise ValueError(f"`x0` must hold 3 vectors, one per player. Received: {x0!r}.")
        self.xs = [_weight(self, f"x{i}", v) for i, v in enumerate(self.x0)]

    def players(self):
        return {f"p{i}": x for i, x in enumerate(self.xs)}

    def compute_losses(self, data, training=False):
        xs = self.xs
        return {
            f"p{i}": tf.reduce_sum(xs[i] * xs[(i + 1) % 3])
            + 0.5 * self.a * tf.reduce_sum(xs[i] * xs[i])
            for i in range(3)
        }

    def distance_to_equilibrium(self) -> float:
        """||(x_0, x_1, x_2)||."""
        return float(np.sqrt(sum(float(tf.reduce_sum(x * x)) for x in self.xs)))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "a": self.a, "x0": self.x0}
