"""Heavy-ball momentum that may be negative: negative momentum for games."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

__all__ = ["NegativeMomentum", "heavy_ball_velocity"]


def heavy_ball_velocity(velocity, gradient, learning_rate, momentum):
    """v_{t+1} = beta v_t - eta g_t, the step w_{t+1} - w_t of the heavy-ball method."""
    return ops.subtract(ops.multiply(momentum, velocity), ops.multiply(learning_rate, gradient))


@keras.saving.register_keras_serializable(package="tfgames")
class NegativeMomentum(keras.optimizers.Optimizer):
    """Heavy-ball momentum with beta in (-1, 1): w_{t+1} = w_t - eta g_t + beta (w_t - w_{t-1}).

    eta = ``learning_rate``, beta = ``momentum``, g_t the gradient at w_t, w_{-1} = w_0 (the
    first step is a gradient step). Written as v_{t+1} = beta v_t - eta g_t,
    w_{t+1} = w_t + v_{t+1} (:func:`heavy_ball_velocity`), Keras' SGD momentum, which refuses
    beta < 0 ("`momentum` must be a float between [0, 1]").

    Gidel et al. (2019) show that in games the sign matters: with **alternating** updates
    (each player steps on the gradient at the other's newest parameters), negative momentum
    (e.g. beta = -0.5) makes gradient descent-ascent converge on bilinear games, where it
    cycles without momentum and diverges with positive momentum. Use it with the alternating
    schedule, one copy per player::

        model.compile(optimizer=tfgames.NegativeMomentum(0.1, momentum=-0.5),
                      update_order="alternating")

    which gives, per round, theta_{t+1} = theta_t - eta grad_theta l_1(theta_t, phi_t) +
    beta (theta_t - theta_{t-1}) and phi_{t+1} = phi_t - eta grad_phi l_2(theta_{t+1}, phi_t)
    + beta (phi_t - phi_{t-1}) (their Eq. 6, with each player's own velocity). It is a
    standard Keras optimizer (one gradient evaluation per step) and works in a plain
    ``keras.Model.fit`` too. Under ``tf.distribute.MirroredStrategy`` the alternating and k:1
    orders equal one device on the global batch, and the alternating order does across two
    workers under ``MultiWorkerMirroredStrategy`` (tests/test_alternating_distribute.py).

    Args:
      learning_rate: eta, a float or a ``keras.optimizers.schedules.LearningRateSchedule``.
      momentum: beta, a number in (-1, 1); negative for games, -0.5 by default.
      name: the optimizer's name.
      **kwargs: the base Keras optimizer arguments (``weight_decay``, ``clipnorm``, ...).

    References:
      Gidel, Askari Hemmat, Pezeshki, Le Priol, Huang, Lacoste-Julien, Mitliagkas. Negative
      Momentum for Improved Game Dynamics. AISTATS 2019. Polyak. Some methods of speeding up
      the convergence of iteration methods. USSR Computational Mathematics and Mathematical
      Physics 4(5), 1964.

    Example:
      >>> import tfgames
      >>> from tfgames.optimizers.negative_momentum import NegativeMomentum
      >>> model = tfgames.games.Bilinear()  # f = x * y from (1, 1)
      >>> model.compile(optimizer=NegativeMomentum(0.5, momentum=-0.5),
      ...               update_order="alternating")
      >>> _ = model.fit(tfgames.datasets.step_dataset(300), verbose=0)  # 150 rounds
      >>> model.distance_to_equilibrium() < 0.01  # momentum 0: stays on an orbit
      True
    """

    def __init__(
        self,
        learning_rate: float = 0.01,
        *,
        momentum: float = -0.5,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        if (isinstance(momentum, bool)
                or not isinstance(momentum, (int, float, np.integer, np.floating))
                or not -1.0 < float(momentum) < 1.0):
            raise ValueError(
                "Argument `momentum` must be a number in (-1, 1): |beta| >= 1 makes the "
                f"heavy-ball iteration unstable. Received: momentum={momentum!r}."
            )
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.momentum = float(momentum)

    def build(self, var_list: list) -> None:
        """Create one slot per variable: the velocity v = w_t - w_{t-1}, starting at 0."""
        if self.built:
            return
        super().build(var_list)
        self._velocities = self.add_optimizer_variables(var_list, "velocity")

    def update_step(self, gradient, variable, learning_rate) -> None:
        """V <- beta v - eta g;  w <- w + v."""
        lr = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        velocity = self._velocities[self._get_variable_index(variable)]
        momentum = ops.convert_to_tensor(self.momentum, dtype=variable.dtype)
        step = heavy_ball_velocity(velocity, gradient, lr, momentum)
        self.assign(velocity, step)
        self.assign_add(variable, step)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(momentum=self.momentum)
        return config
