"""Canonical games with known equilibria, for tests, docs and benchmarks.

Each is a :class:`tfgames.GameModel` whose players are plain variables, so it trains with
``fit`` on :func:`tfgames.datasets.step_dataset` (the data are ignored).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tfgames.game import zero_sum
from tfgames.model import GameModel

__all__ = [
    "Bilinear",
    "CyclicThreePlayer",
    "DiracGAN",
    "ImpossibilityGame",
    "IteratedPrisonersDilemma",
    "MatchingPennies",
    "QuadraticZeroSum",
    "Tandem",
]


def _weight(model: keras.Model, name: str, value: Sequence[float] | float) -> keras.Variable:
    value = np.asarray(value, dtype="float32")
    return model.add_weight(
        shape=value.shape,
        initializer=keras.initializers.Constant(value),
        name=name,
        dtype="float32",
    )


class _PairGame(GameModel):
    """What the games of two scalar players ``"x"`` and ``"y"`` share: their variables from
    ``x0`` and ``y0`` (of shape ``_variable_shape``: () or (1,)), ``players`` and the config.
    """

    _variable_shape: tuple[int, ...] = (1,)

    def __init__(self, x0: float, y0: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.x0, self.y0 = float(x0), float(y0)
        self.x = _weight(self, "x", np.full(self._variable_shape, self.x0))
        self.y = _weight(self, "y", np.full(self._variable_shape, self.y0))

    def players(self):
        return {"x": self.x, "y": self.y}

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "x0": self.x0, "y0": self.y0}


@keras.saving.register_keras_serializable(package="tfgames")
class Bilinear(_PairGame):
    """The bilinear zero-sum game min_x max_y f(x, y) = x * y.

    Unique equilibrium (0, 0). The game Jacobian H = [[0, 1], [-1, 0]] is antisymmetric:
    simultaneous gradient descent spirals away (the distance to the equilibrium grows by
    sqrt(1 + eta^2) per step), while SGA, consensus, optimistic and extragradient methods
    converge. Players ``"x"`` (minimises f) and ``"y"`` (maximises f).

    Args:
      x0: initial x.
      y0: initial y.
    """

    _variable_shape = ()

    def __init__(self, x0: float = 1.0, y0: float = 1.0, **kwargs: Any) -> None:
        super().__init__(x0, y0, **kwargs)

    def compute_losses(self, data, training=False):
        return zero_sum(self.x * self.y, min_player="x", max_player="y")

    def distance_to_equilibrium(self) -> float:
        """||(x, y) - (0, 0)||."""
        return float(np.hypot(float(self.x.numpy()), float(self.y.numpy())))


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


# -- The standard games of the opponent-shaping and CGD literature --------------------------


def _vector(model: keras.Model, name: str, value, size: int) -> keras.Variable:
    value = np.asarray(value, dtype="float32").reshape(-1)
    if value.shape != (size,):
        raise ValueError(
            f"`{name}` must hold {size} number(s). Received: {value.tolist()!r} "
            f"({value.size} numbers)."
        )
    return _weight(model, name, value)


@keras.saving.register_keras_serializable(package="tfgames")
class MatchingPennies(GameModel):
    """Matching pennies with sigmoid-parameterised mixed strategies.

    Player i plays heads with probability p_i = sigmoid(theta_i); with x = (p_1, 1 - p_1),
    y = (p_2, 1 - p_2) and payoff matrix M = [[1, -1], [-1, 1]],

        l_1 = x^T M y,     l_2 = -l_1

    (Letcher et al. 2019's reference notebook). The unique Nash equilibrium is
    p_1 = p_2 = 1/2 (theta = 0); naive learning cycles around it, LOLA and SOS converge.
    Players ``"p1"`` and ``"p2"``, each one scalar logit.

    Args:
      theta0: initial logits (theta_1, theta_2).
    """

    def __init__(self, theta0: Sequence[float] = (1.0, -0.5), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.theta0 = [float(t) for t in np.ravel(theta0)]
        if len(self.theta0) != 2:
            raise ValueError(f"`theta0` must hold 2 logits. Received: {theta0!r}.")
        self.t1 = _vector(self, "theta1", self.theta0[:1], 1)
        self.t2 = _vector(self, "theta2", self.theta0[1:], 1)

    def players(self):
        return {"p1": self.t1, "p2": self.t2}

    def compute_losses(self, data, training=False):
        p1, p2 = tf.sigmoid(self.t1[0]), tf.sigmoid(self.t2[0])
        # x^T [[1, -1], [-1, 1]] y = (2 p1 - 1)(2 p2 - 1)
        l1 = p1 * p2 - p1 * (1 - p2) - (1 - p1) * p2 + (1 - p1) * (1 - p2)
        return {"p1": l1, "p2": -l1}

    def probabilities(self) -> np.ndarray:
        """(p_1, p_2), the probabilities of heads."""
        return 1.0 / (1.0 + np.exp(-np.array([self.t1.numpy()[0], self.t2.numpy()[0]])))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "theta0": self.theta0}


@keras.saving.register_keras_serializable(package="tfgames")
class IteratedPrisonersDilemma(GameModel):
    """The infinitely iterated prisoner's dilemma with memory-one policies, exact value.

    Each player has 5 logits: the probability of cooperating at the first move and in each of
    the 4 states (CC, CD, DC, DD) of the previous round. With p0 the distribution of the first
    round's outcome, P the 4 x 4 transition matrix and r_i the per-round rewards
    (r_1 = (-1, -3, 0, -2), r_2 = (-1, 0, -3, -2)), each player's loss is its negative
    discounted return, computed exactly (Foerster et al. 2018; Letcher et al. 2019's notebook):

        l_i = -p0^T (I - gamma P)^{-1} r_i.

    (1 - gamma) l_i is 1 at mutual cooperation and 2 at mutual defection. Naive learning
    defects; LOLA and SOS find tit-for-tat-like cooperation. Players ``"p1"``, ``"p2"``.

    Args:
      theta0: initial logits, two lists of 5 numbers.
      gamma: the discount factor in (0, 1), 0.96 in the papers.
    """

    def __init__(self, theta0: Sequence[Sequence[float]] = ((0.0,) * 5, (0.0,) * 5),
                 gamma: float = 0.96, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 0.0 < float(gamma) < 1.0:
            raise ValueError(f"`gamma` must be in (0, 1). Received: gamma={gamma!r}.")
        self.gamma = float(gamma)
        self.theta0 = [[float(t) for t in np.ravel(row)] for row in theta0]
        if len(self.theta0) != 2:
            raise ValueError(f"`theta0` must hold 2 lists of 5 logits. Received: {theta0!r}.")
        self.t1 = _vector(self, "theta1", self.theta0[0], 5)
        self.t2 = _vector(self, "theta2", self.theta0[1], 5)

    def players(self):
        return {"p1": self.t1, "p2": self.t2}

    def compute_losses(self, data, training=False):
        a, b = tf.sigmoid(self.t1), tf.sigmoid(self.t2)
        p0 = tf.stack([a[0] * b[0], a[0] * (1 - b[0]), (1 - a[0]) * b[0],
                       (1 - a[0]) * (1 - b[0])])
        q1, q2 = a[1:, None], b[1:, None]
        transitions = tf.concat([q1 * q2, q1 * (1 - q2), (1 - q1) * q2,
                                 (1 - q1) * (1 - q2)], axis=1)
        values = tf.linalg.solve(tf.eye(4) - self.gamma * tf.transpose(transitions),
                                 p0[:, None])[:, 0]  # (I - gamma P)^{-T} p0
        r1 = tf.constant([-1.0, -3.0, 0.0, -2.0])
        r2 = tf.constant([-1.0, 0.0, -3.0, -2.0])
        return {"p1": -tf.reduce_sum(values * r1), "p2": -tf.reduce_sum(values * r2)}

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "theta0": self.theta0, "gamma": self.gamma}


@keras.saving.register_keras_serializable(package="tfgames")
class Tandem(_PairGame):
    """The tandem game: l_1 = (x + y)^2 - 2x, l_2 = (x + y)^2 - 2y.

    The fixed points form the line x + y = 1 (Letcher et al. 2019). LOLA's shaping term makes
    it overshoot to a worse outcome; SOS converges to the line. The game Jacobian
    [[2, 2], [2, 2]] is singular everywhere. Players ``"x"``, ``"y"``.

    Args:
      x0: initial x.
      y0: initial y.
    """

    def __init__(self, x0: float = 0.1, y0: float = -0.1, **kwargs: Any) -> None:
        super().__init__(x0, y0, **kwargs)

    def compute_losses(self, data, training=False):
        x, y = self.x[0], self.y[0]
        return {"x": (x + y) ** 2 - 2 * x, "y": (x + y) ** 2 - 2 * y}


@keras.saving.register_keras_serializable(package="tfgames")
class ImpossibilityGame(_PairGame):
    """The zero-sum game on which every reasonable method cycles (Letcher 2020).

        l_1 = f = x y - x^2/2 + y^2/2 + x^4/4 - y^4/4,     l_2 = -f.

    Its only fixed point (0, 0) is a strict maximum of l_1 in x (and of l_2 in y), so no
    reasonable algorithm should converge to it, and there is no other fixed point: gradient
    descent, extragradient, SGA, consensus, CGD, LA, LOLA and SOS all cycle ("On the
    Impossibility of Global Convergence in Multi-Loss Optimization", ICLR 2021).
    Players ``"x"``, ``"y"``.

    Args:
      x0: initial x.
      y0: initial y.
    """

    def __init__(self, x0: float = 1.0, y0: float = 0.5, **kwargs: Any) -> None:
        super().__init__(x0, y0, **kwargs)

    def compute_losses(self, data, training=False):
        x, y = self.x[0], self.y[0]
        f = x * y - x**2 / 2 + y**2 / 2 + x**4 / 4 - y**4 / 4
        return zero_sum(f, min_player="x", max_player="y")


@keras.saving.register_keras_serializable(package="tfgames")
class DiracGAN(GameModel):
    """DiracGAN (Mescheder, Geiger & Nowozin, ICML 2018): data delta_0, generator delta_theta,
    linear discriminator D(x) = psi x.

        f(theta, psi) = h(psi theta) + h(0),     h(t) = -log(1 + exp(-t)),
        l_generator = f,     l_discriminator = -f.

    The unique equilibrium is (theta, psi) = (0, 0), where the game Jacobian has the purely
    imaginary eigenvalues +-i h'(0) = +-i/2: simultaneous gradient descent spirals out,
    consensus, SGA and CGD converge. Players ``"generator"`` (theta) and
    ``"discriminator"`` (psi).

    Args:
      theta0: initial generator position.
      psi0: initial discriminator slope.
    """

    def __init__(self, theta0: float = 1.0, psi0: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.theta0, self.psi0 = float(theta0), float(psi0)
        self.theta = _weight(self, "theta", theta0)
        self.psi = _weight(self, "psi", psi0)

    def players(self):
        return {"generator": self.theta, "discriminator": self.psi}

    def compute_losses(self, data, training=False):
        f = -tf.math.softplus(-self.psi * self.theta) - np.log(2.0).astype("float32")
        return zero_sum(f, min_player="generator", max_player="discriminator")

    def distance_to_equilibrium(self) -> float:
        """||(theta, psi)||."""
        return float(np.hypot(float(self.theta.numpy()), float(self.psi.numpy())))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "theta0": self.theta0, "psi0": self.psi0}
