"""Optimistic gradient descent (OGD)."""

from __future__ import annotations

from typing import Any, Literal

import keras
import numpy as np
from keras import ops

__all__ = ["FIRST_STEPS", "OGD", "check_first_step", "check_learning_rate"]

#: First-step conventions of the optimistic methods (:class:`OGD`, :class:`tfgames.Adamirror`).
FIRST_STEPS = ("plain", "double")

FirstStep = Literal["plain", "double"]


def check_learning_rate(learning_rate: Any) -> Any:
    """Refuse a learning rate that is a number but not a finite number >= 0 (NaN, inf,
    negative); schedules, callables and tensors pass through to Keras.
    """
    if isinstance(learning_rate, bool):
        raise TypeError(
            f"Argument `learning_rate` must be a number or a schedule. Received: "
            f"learning_rate={learning_rate!r}."
        )
    if isinstance(learning_rate, (int, float, np.integer, np.floating)) and not (
        np.isfinite(learning_rate) and learning_rate >= 0
    ):
        raise ValueError(
            "Argument `learning_rate` must be a finite number >= 0 (or a learning-rate "
            f"schedule): a NaN, infinite or negative step ruins the weights at the first step. "
            f"Received: learning_rate={learning_rate!r}."
        )
    return learning_rate


def check_first_step(first_step: Any) -> str:
    """Validate ``first_step`` with an error that lists the conventions."""
    if first_step not in FIRST_STEPS:
        raise ValueError(
            f"Argument `first_step` must be one of {FIRST_STEPS}: 'plain' takes the missing "
            "previous direction equal to the first one (the first step is a plain step), "
            "'double' takes it as zero (the first step is twice as long). "
            f"Received: first_step={first_step!r}."
        )
    return first_step


@keras.saving.register_keras_serializable(package="tfgames")
class OGD(keras.optimizers.Optimizer):
    """Optimistic gradient descent: w_{t+1} = w_t - 2 eta g_t + eta g_{t-1}.

    g_t is the gradient at w_t and eta = ``learning_rate``. The step is a gradient step plus
    an extrapolation from the past, eta (g_t - g_{t-1}). In a game, used as the optimizer of
    :class:`tfgames.GameModel`, g is the simultaneous gradient xi and every player steps
    at once; with one gradient evaluation per step, OGD converges on bilinear games such as
    min_x max_y x*y, where simultaneous gradient descent spirals out. OGD is the
    extrapolation sequence of past extragradient (Popov 1980); see
    :class:`tfgames.Extragradient`. It is a standard Keras optimizer and works in a plain
    ``keras.Model.fit`` too.

    First step: there is no g_{-1}. With ``first_step="plain"`` (default) g_{-1} = g_0, so
    the first step is the plain gradient step w_1 = w_0 - eta g_0; with
    ``first_step="double"`` g_{-1} = 0 (a zero-initialised slot, as in the authors' code) and
    w_1 = w_0 - 2 eta g_0. With a learning-rate schedule both terms use the current eta_t.

    Args:
      learning_rate: eta, a float or a ``keras.optimizers.schedules.LearningRateSchedule``.
      first_step: ``"plain"`` or ``"double"``, the convention above.
      name: the optimizer's name.
      **kwargs: the base Keras optimizer arguments (``weight_decay``, ``clipnorm``,
        ``clipvalue``, ``global_clipnorm``, ``use_ema``, ``ema_momentum``,
        ``ema_overwrite_frequency``, ``loss_scale_factor``, ``gradient_accumulation_steps``).

    References:
      Daskalakis, Ilyas, Syrgkanis, Zeng. Training GANs with Optimism. ICLR 2018 (Eq. 2).
      Rakhlin, Sridharan. Optimization, Learning, and Games with Predictable Sequences.
      NeurIPS 2013.

    Example:
      >>> import tfgames
      >>> model = tfgames.games.Bilinear()
      >>> model.compile(optimizer=tfgames.OGD(0.1))
      >>> _ = model.fit(tfgames.datasets.step_dataset(300), verbose=0)
      >>> round(model.distance_to_equilibrium(), 2)  # from sqrt(2); gradient descent: 6.29
      0.31
    """

    def __init__(
        self,
        learning_rate: float = 0.01,
        *,
        first_step: FirstStep = "plain",
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        check_first_step(first_step)
        check_learning_rate(learning_rate)
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        self.first_step = first_step

    def build(self, var_list: list) -> None:
        """Create one slot per variable: the previous gradient g_{t-1}."""
        if self.built:
            return
        super().build(var_list)
        self._previous_gradients = self.add_optimizer_variables(var_list, "previous_gradient")

    def update_step(self, gradient, variable, learning_rate) -> None:
        """W <- w - eta (2 g_t - g_{t-1}); then g_{t-1} <- g_t."""
        lr = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        previous = self._previous_gradients[self._get_variable_index(variable)]
        past = ops.convert_to_tensor(previous)
        if self.first_step == "plain":
            past = ops.where(ops.equal(self.iterations, 0), gradient, past)
        self.assign_sub(
            variable, ops.multiply(lr, ops.subtract(ops.multiply(2.0, gradient), past))
        )
        self.assign(previous, gradient)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(first_step=self.first_step)
        return config
