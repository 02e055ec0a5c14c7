"""Exact equilibrium measures for normal-form (matrix) games, and softmax players to train.

For an n-player normal-form game with payoff tensors u_1, ..., u_n (player i *maximises* the
expected payoff u_i; its tensor has one axis per player, axis j indexing player j's actions)
and a mixed-strategy profile sigma = (sigma_1, ..., sigma_n) (each sigma_i a probability vector
over player i's actions), player i's *regret* (its gain from deviating to a best response) is

    delta_i(sigma) = max_a u_i(a, sigma_{-i}) - u_i(sigma)  >= 0,

where u_i(a, sigma_{-i}) contracts u_i with every other player's strategy. Then

    NashConv(sigma) = sum_i delta_i(sigma),     exploitability(sigma) = NashConv(sigma) / n,

both zero exactly at the Nash equilibria and positive elsewhere (Lanctot et al., "A Unified
Game-Theoretic Approach to Multiagent Reinforcement Learning", NeurIPS 2017, define NashConv;
OpenSpiel's ``exploitability`` of a two-player zero-sum game is NashConv / 2, the convention
used here for any n). Everything is exact arithmetic on the payoff tensors (NumPy float64):
no equilibrium solver is involved, so the measure can check a solver (the tests compare it with
Nashpy's support enumeration) and score game optimizers.

:class:`SoftmaxMatrixGame` turns a bimatrix game into a :class:`tfgames.GameModel` whose players
hold logits theta_i with sigma_i = softmax(theta_i) and minimise l_1 = -sigma_1^T A sigma_2,
l_2 = -sigma_1^T B sigma_2, so that any game optimizer can be trained on it and scored with
:func:`nash_conv` (:func:`train_and_score`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tfgames.model import GameModel

__all__ = [
    "MATCHING_PENNIES",
    "ROCK_PAPER_SCISSORS",
    "SoftmaxMatrixGame",
    "bimatrix_nash_conv",
    "exploitability",
    "nash_conv",
    "regrets",
    "train_and_score",
]

#: Row player's payoff of matching pennies (the column player's is its negative).
MATCHING_PENNIES = np.array([[1.0, -1.0], [-1.0, 1.0]])
#: Row player's payoff of rock-paper-scissors (actions rock, paper, scissors; zero-sum).
ROCK_PAPER_SCISSORS = np.array([[0.0, -1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]])

_SIMPLEX_TOLERANCE = 1e-6


def _payoff_tensors(payoffs: Sequence[Any]) -> list[np.ndarray]:
    if isinstance(payoffs, np.ndarray) or not isinstance(payoffs, (list, tuple)):
        raise TypeError(
            "Argument `payoffs` must be a list with one payoff tensor per player (u_i of shape "
            "(n_1, ..., n_n), player i maximises it). Received: an object of type "
            f"{type(payoffs).__name__}. For a bimatrix game pass [A, B]."
        )
    tensors = [np.asarray(u, dtype=np.float64) for u in payoffs]
    n = len(tensors)
    if n < 1:
        raise ValueError("Argument `payoffs` must hold at least one payoff tensor. Received: [].")
    shape = tensors[0].shape
    for i, u in enumerate(tensors):
        if u.ndim != n or u.shape != shape or 0 in u.shape:
            raise ValueError(
                f"Every payoff tensor must have one non-empty axis per player ({n} players) and "
                f"the same shape. Received: payoffs[{i}] with shape {u.shape}, payoffs[0] with "
                f"shape {shape}."
            )
        if not np.all(np.isfinite(u)):
            raise ValueError(f"payoffs[{i}] must be finite. Received non-finite entries.")
    return tensors


def _strategies(strategies: Sequence[Any], shape: tuple[int, ...]) -> list[np.ndarray]:
    if len(strategies) != len(shape):
        raise ValueError(
            f"Argument `strategies` must hold one mixed strategy per player ({len(shape)}). "
            f"Received: {len(strategies)} strategies."
        )
    out = []
    for i, (s, n_actions) in enumerate(zip(strategies, shape)):
        p = np.asarray(s, dtype=np.float64)
        if p.shape != (n_actions,):
            raise ValueError(
                f"strategies[{i}] must be a probability vector of shape ({n_actions},). "
                f"Received: shape {p.shape}."
            )
        if (not np.all(np.isfinite(p)) or p.min() < -_SIMPLEX_TOLERANCE
                or abs(p.sum() - 1.0) > _SIMPLEX_TOLERANCE):
            raise ValueError(
                f"strategies[{i}] must lie on the probability simplex (entries >= 0 summing to "
                f"1 within {_SIMPLEX_TOLERANCE}). Received: {p.tolist()} (sum {p.sum()!r}). "
                "Normalise it, e.g. with a softmax."
            )
        out.append(p)
    return out


def _action_values(u: np.ndarray, strategies: list[np.ndarray], player: int) -> np.ndarray:
    """u_i(a, sigma_{-i}) for every action a of ``player``: u contracted with the others."""
    values = u
    for j in reversed(range(len(strategies))):  # contract the last axes first
        if j != player:
            values = np.tensordot(values, strategies[j], axes=([j], [0]))
    return values


def regrets(payoffs: Sequence[Any], strategies: Sequence[Any]) -> np.ndarray:
    """delta_i = max_a u_i(a, sigma_{-i}) - u_i(sigma) for each player i (float64, >= 0).

    Args:
      payoffs: one payoff tensor per player, each of shape (n_1, ..., n_n); player i maximises
        ``payoffs[i]``. For a bimatrix game, ``[A, B]`` with A, B of shape (n_1, n_2).
      strategies: one probability vector per player, ``strategies[i]`` of shape (n_i,).

    Returns:
      The regrets, shape (n,).
    """
    tensors = _payoff_tensors(payoffs)
    sigma = _strategies(strategies, tensors[0].shape)
    out = []
    for i, u in enumerate(tensors):
        values = _action_values(u, sigma, i)
        out.append(max(float(values.max() - values @ sigma[i]), 0.0))
    return np.array(out)


def nash_conv(payoffs: Sequence[Any], strategies: Sequence[Any]) -> float:
    """NashConv(sigma) = sum_i [max_a u_i(a, sigma_{-i}) - u_i(sigma)] (Lanctot et al. 2017).

    Zero exactly at a Nash equilibrium, positive elsewhere. See :func:`regrets` for the
    arguments.
    """
    return float(regrets(payoffs, strategies).sum())


def exploitability(payoffs: Sequence[Any], strategies: Sequence[Any]) -> float:
    """NashConv(sigma) / n for n players (OpenSpiel's exploitability in two-player zero-sum
    games: the mean gain of a best-responding player). See :func:`regrets`.
    """
    r = regrets(payoffs, strategies)
    return float(r.sum() / r.size)


def bimatrix_nash_conv(row_payoff: Any, column_payoff: Any, x: Any, y: Any) -> float:
    """NashConv of (x, y) in the bimatrix game (A, B): max_i (A y)_i - x^T A y +
    max_j (B^T x)_j - x^T B y. The row player maximises x^T A y, the column player x^T B y
    (a zero-sum game has B = -A).
    """
    return nash_conv([row_payoff, column_payoff], [x, y])


@keras.saving.register_keras_serializable(package="tfgames")
class SoftmaxMatrixGame(GameModel):
    """A bimatrix game (A, B) with softmax-parameterised mixed strategies, as a GameModel.

    Players ``"row"`` and ``"column"`` hold logits theta_r, theta_c; sigma_r = softmax(theta_r),
    sigma_c = softmax(theta_c), and they minimise

        l_row = -sigma_r^T A sigma_c,        l_column = -sigma_r^T B sigma_c,

    i.e. each maximises its expected payoff. ``fit`` it on any data set of the right length
    (the losses ignore the data), e.g. :func:`tfgames.datasets.step_dataset`.

    Args:
      row_payoff: A, shape (n_r, n_c).
      column_payoff: B, shape (n_r, n_c); ``None`` for a zero-sum game (B = -A).
      row_logits: initial theta_r (default zeros: the uniform strategy).
      column_logits: initial theta_c (default zeros).
      dtype: variable and payoff dtype, ``"float32"`` or ``"float64"``.
    """

    def __init__(self, row_payoff: Any, column_payoff: Any = None, *,
                 row_logits: Any = None, column_logits: Any = None,
                 dtype: str = "float64", **kwargs) -> None:
        super().__init__(**kwargs)
        a = np.asarray(row_payoff, dtype=np.float64)
        b = -a if column_payoff is None else np.asarray(column_payoff, dtype=np.float64)
        _payoff_tensors([a, b])
        if a.ndim != 2:
            raise ValueError(
                f"Argument `row_payoff` must be a matrix. Received: shape {a.shape}."
            )
        self.row_payoff, self.column_payoff = a, b
        self._dtype_name = dtype
        n_r, n_c = a.shape

        def init(value, n, name):
            v = np.zeros(n) if value is None else np.asarray(value, dtype=np.float64)
            if v.shape != (n,):
                raise ValueError(f"Argument `{name}` must have shape ({n},). Received: {v.shape}.")
            return keras.initializers.Constant(v)

        self.row_logits = self.add_weight(shape=(n_r,), initializer=init(row_logits, n_r,
                                          "row_logits"), dtype=dtype, name="row_logits")
        self.column_logits = self.add_weight(shape=(n_c,), initializer=init(
            column_logits, n_c, "column_logits"), dtype=dtype, name="column_logits")

    def players(self) -> dict[str, Any]:
        return {"row": self.row_logits, "column": self.column_logits}

    def strategies(self) -> tuple[np.ndarray, np.ndarray]:
        """The current mixed strategies (sigma_r, sigma_c) as float64 arrays."""
        return tuple(
            np.asarray(tf.nn.softmax(tf.cast(v, tf.float64)), dtype=np.float64)
            for v in (self.row_logits, self.column_logits)
        )

    def nash_conv(self) -> float:
        """NashConv of the current strategies (:func:`bimatrix_nash_conv`)."""
        return bimatrix_nash_conv(self.row_payoff, self.column_payoff, *self.strategies())

    def compute_losses(self, data: Any, training: bool = False) -> dict[str, tf.Tensor]:
        dtype = self._dtype_name
        x = tf.nn.softmax(tf.convert_to_tensor(self.row_logits))
        y = tf.nn.softmax(tf.convert_to_tensor(self.column_logits))
        a = tf.constant(self.row_payoff, dtype=dtype)
        b = tf.constant(self.column_payoff, dtype=dtype)
        return {
            "row": -tf.tensordot(x, tf.linalg.matvec(a, y), 1),
            "column": -tf.tensordot(x, tf.linalg.matvec(b, y), 1),
        }


def train_and_score(
    model: SoftmaxMatrixGame,
    optimizer: Any,
    *,
    steps: int,
    record_every: int = 1,
    callback: Callable[[int, SoftmaxMatrixGame], None] | None = None,
) -> np.ndarray:
    """Train ``model`` with ``optimizer`` for ``steps`` steps; NashConv along the way.

    Args:
      model: the softmax game (its players start where it was built).
      optimizer: a Keras optimizer (simultaneous gradient descent on both players) or a tfgames
        game optimizer.
      steps: training steps, >= 1.
      record_every: record NashConv every this many steps.
      callback: optional ``callback(step, model)`` after each recording.

    Returns:
      NashConv at steps 0, record_every, 2 record_every, ..., ``steps`` (float64 array).
    """
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"Argument `steps` must be an integer >= 1. Received: steps={steps!r}.")
    if (isinstance(record_every, bool) or not isinstance(record_every, (int, np.integer))
            or record_every < 1):
        raise ValueError(
            f"Argument `record_every` must be an integer >= 1. Received: {record_every!r}."
        )
    model.compile(optimizer=optimizer)
    dummy = tf.zeros((1,))
    step_fn = tf.function(model.train_step)
    out = [model.nash_conv()]
    for step in range(1, int(steps) + 1):
        step_fn(dummy)
        if step % record_every == 0 or step == steps:
            out.append(model.nash_conv())
            if callback is not None:
                callback(step, model)
    return np.array(out)
