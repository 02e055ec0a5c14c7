"""Adamirror: optimistic Adam."""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf
from keras import ops

from tfgames.optimizers.base import config_of
from tfgames.optimizers.ogd import FirstStep, check_first_step, check_learning_rate

__all__ = ["Adamirror", "adamirror_update"]


def _check_beta(name: str, value: Any) -> None:
    if isinstance(value, (int, float)) and not 0.0 <= value < 1.0:
        raise ValueError(
            f"Argument `{name}` must be in the [0, 1) range: it is the decay rate of a moving "
            f"average, and 1 would freeze it at zero. Received: {name}={value!r}."
        )


@tf.function(jit_compile=True, reduce_retracing=True)
def adamirror_update(
    gradient: tf.Tensor,
    m: tf.Tensor,
    v: tf.Tensor,
    previous: tf.Tensor,
    *,
    learning_rate: tf.Tensor,
    beta_1: tf.Tensor,
    beta_2: tf.Tensor,
    epsilon: tf.Tensor,
    step: tf.Tensor,
    first: tf.Tensor,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
    """One optimistic Adam step as a pure function: ``(m_t, v_t, d_t, w_{t-1} - w_t)``.

        m_t = b1 m + (1 - b1) g,  v_t = b2 v + (1 - b2) g^2,
        d_t = (m_t / (1 - b1^t)) / (sqrt(v_t / (1 - b2^t)) + eps),
        w_{t-1} - w_t = eta (2 d_t - d_{t-1}),  with d_{t-1} = d_t where ``first`` is true.

    Compiled with XLA so that the elementwise math runs as one fused loop (on CPU without
    XLA it would be about fifteen passes over each parameter tensor).

    Args:
      gradient: g_t.
      m: m_{t-1}.
      v: v_{t-1}.
      previous: d_{t-1}.
      learning_rate: eta.
      beta_1: b1.
      beta_2: b2.
      epsilon: eps.
      step: t >= 1, as a float of the variable's dtype.
      first: a scalar bool; true: take d_{t-1} = d_t (the "plain" first step).

    Returns:
      ``(m_t, v_t, d_t, delta)``: the new moments and direction, and the decrement of w.
    """
    m_t = m + (gradient - m) * (1.0 - beta_1)
    v_t = v + (tf.square(gradient) - v) * (1.0 - beta_2)
    m_hat = m_t / (1.0 - tf.pow(beta_1, step))
    v_hat = v_t / (1.0 - tf.pow(beta_2, step))
    direction = m_hat / (tf.sqrt(v_hat) + epsilon)
    past = tf.where(first, direction, previous)
    return m_t, v_t, direction, learning_rate * (2.0 * direction - past)


@keras.saving.register_keras_serializable(package="tfgames")
class Adamirror(keras.optimizers.Optimizer):
    """Optimistic Adam: w_t = w_{t-1} - 2 eta d_t + eta d_{t-1}, d_t = m^_t / (sqrt(v^_t) + eps).

        m_t = b1 m_{t-1} + (1 - b1) g_t,       v_t = b2 v_{t-1} + (1 - b2) g_t^2,
        m^_t = m_t / (1 - b1^t),               v^_t = v_t / (1 - b2^t),
        w_t = w_{t-1} - 2 eta m^_t / (sqrt(v^_t) + eps) + eta m^_{t-1} / (sqrt(v^_{t-1}) + eps)

    (Daskalakis et al. 2018, Algorithm 1), with eta = ``learning_rate``, b1 = ``beta_1``,
    b2 = ``beta_2``, eps = ``epsilon`` and t the optimizer's step (``iterations + 1``). The
    previous direction d_{t-1} is kept in a slot and read before it is overwritten (the seed
    notebook's TF1 version overwrote it first, which made the update plain Adam). As in the
    paper, eps is added to sqrt(v^_t), not to sqrt(v_t) as in Keras' Adam.

    First step: d_0 does not exist. With ``first_step="plain"`` (default) d_0 = d_1, so the
    first step is exactly an Adam step w_1 = w_0 - eta d_1; with ``first_step="double"``
    d_0 = 0 (the zero-initialised slot of the authors' code) and w_1 = w_0 - 2 eta d_1.
    With a learning-rate schedule both terms use the current eta_t.

    On the bilinear game min_x max_y x*y with eta = 0.1, Adamirror with ``beta_1=0``
    converges to the equilibrium while Adam does not; with ``beta_1=0.9`` neither converges
    (see the docs' table). It is a standard Keras optimizer: it works in ``keras.Model.fit``
    and as the optimizer of a :class:`tfgames.GameModel` (all players step at once on the
    simultaneous gradient, one gradient evaluation per step).

    Args:
      learning_rate: eta, a float or a ``keras.optimizers.schedules.LearningRateSchedule``.
      beta_1: b1 in [0, 1), decay of the first moment.
      beta_2: b2 in [0, 1), decay of the second moment.
      epsilon: eps, added to sqrt(v^_t). Defaults to Keras' 1e-7 (the paper's code: 1e-8).
      first_step: ``"plain"`` or ``"double"``, the convention above.
      name: the optimizer's name.
      **kwargs: the base Keras optimizer arguments (``weight_decay``, ``clipnorm``, ...).

    References:
      Daskalakis, Ilyas, Syrgkanis, Zeng. Training GANs with Optimism. ICLR 2018,
      Algorithm 1 (Optimistic Adam).

    Example:
      >>> import tfgames
      >>> model = tfgames.games.Bilinear()  # f = x * y from (1, 1)
      >>> model.compile(optimizer=tfgames.Adamirror(0.1, beta_1=0.0))
      >>> _ = model.fit(tfgames.datasets.step_dataset(300), verbose=0)
      >>> model.distance_to_equilibrium() < 0.01  # Adam itself ends farther than it started
      True
    """

    def __init__(
        self,
        learning_rate: float = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        *,
        first_step: FirstStep = "plain",
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        _check_beta("beta_1", beta_1)
        _check_beta("beta_2", beta_2)
        if isinstance(epsilon, (int, float)) and epsilon < 0:
            raise ValueError(f"Argument `epsilon` must be >= 0. Received: epsilon={epsilon!r}.")
        check_first_step(first_step)
        check_learning_rate(learning_rate)
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.first_step = first_step

    def build(self, var_list: list) -> None:
        """Create three slots per variable: m, v and the previous direction d_{t-1}."""
        if self.built:
            return
        super().build(var_list)
        self._momentums, self._velocities, self._previous_directions = (
            self.add_optimizer_variables(
                var_list, ["momentum", "velocity", "previous_direction"]
            )
        )

    def update_step(self, gradient, variable, learning_rate) -> None:
        """One optimistic Adam step of ``variable`` (the math: :func:`adamirror_update`)."""
        dtype = variable.dtype
        index = self._get_variable_index(variable)
        m = self._momentums[index]
        v = self._velocities[index]
        previous = self._previous_directions[index]
        first = tf.equal(tf.convert_to_tensor(self.iterations), 0)
        if self.first_step == "double":
            first = tf.zeros((), tf.bool)
        m_t, v_t, direction, delta = adamirror_update(
            tf.convert_to_tensor(ops.cast(gradient, dtype)),
            tf.convert_to_tensor(m),
            tf.convert_to_tensor(v),
            tf.convert_to_tensor(previous),
            learning_rate=tf.identity(ops.cast(learning_rate, dtype)),
            beta_1=tf.identity(ops.cast(self.beta_1, dtype)),
            beta_2=tf.identity(ops.cast(self.beta_2, dtype)),
            epsilon=tf.identity(ops.cast(self.epsilon, dtype)),
            step=tf.identity(ops.cast(self.iterations + 1, dtype)),
            first=first,
        )
        self.assign(m, m_t)
        self.assign(v, v_t)
        self.assign(previous, direction)
        self.assign_sub(variable, delta)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(),
                **config_of(self, ("beta_1", "beta_2", "epsilon", "first_step"))}
