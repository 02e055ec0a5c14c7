"""Drop-in Keras 3 equivalents of the TF1 optimizers of the seed notebooks.

Each class takes the constructor arguments of its TF1 namesake and reproduces its update,
initial slot values and float32 constants included, so that a TF1 experiment ported to
:class:`tfgames.GameModel` gives the same numbers (the tests compare 20 training steps of the
seed's TF1 graph and of the port):

- :class:`RMSPropOptimizer`: ``tf.compat.v1.train.RMSPropOptimizer`` (mean-square slot starting
  at ones, epsilon 1e-10), a plain Keras optimizer.
- :class:`SymplecticOptimizer`: the seed's SGA optimizer, i.e. :class:`tfgames.SGA` configured
  as the seed (TF1 RMSProp inside, alignment normalised by the number of variable tensors).
- :class:`AdamirrorOptimizer`: the seed's optimistic Adam, corrected (the seed's version never
  ran), i.e. :class:`tfgames.Adamirror` with TF1 argument names and epsilon 1e-8.

They are thin configurations of the main optimizers, which hold the math. New code should use
:class:`tfgames.SGA` with any Keras optimizer directly; this module is for reproducing TF1
results.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import keras
import tensorflow as tf
from keras import ops

from tfgames.optimizers.adamirror import Adamirror
from tfgames.optimizers.base import config_of
from tfgames.optimizers.ogd import FirstStep
from tfgames.optimizers.sga import SGA

__all__ = ["AdamirrorOptimizer", "RMSPropOptimizer", "SymplecticOptimizer"]

_PACKAGE = "tfgames.compat.v1"


def _tf1_constant(value: float, dtype) -> tf.Tensor:
    """A TF1 optimizer hyperparameter: a float32 tensor, then cast to the variable dtype.

    TF1 optimizers convert Python floats with ``tf.convert_to_tensor`` (float32) in
    ``_prepare`` and cast them in ``_apply_dense``, so in float64 the constants are
    float32-rounded. Doing the same keeps float64 runs bit-comparable with TF1.
    """
    return tf.cast(tf.constant(value, tf.float32), dtype)


def _handle(variable) -> tf.Tensor:
    """The resource handle of a Keras or TF variable (of this replica, under a strategy)."""
    if isinstance(variable, keras.Variable):
        variable = variable.value
    return variable.handle


def _deduplicate(slices: tf.IndexedSlices) -> tuple[tf.Tensor, tf.Tensor]:
    """Sum the rows of duplicate indices, as TF1's ``_apply_sparse_duplicate_indices``."""
    unique, positions = tf.unique(slices.indices)
    summed = tf.math.unsorted_segment_sum(slices.values, positions, tf.shape(unique)[0])
    return summed, unique


def _check_use_locking(use_locking: bool, owner: str) -> None:
    if use_locking:
        raise ValueError(
            f"{owner} does not support `use_locking=True`: Keras 3 optimizers update "
            "variables without TF1's per-variable mutexes. Remove the argument (TF1's "
            "default is False, which is what this optimizer does). Received: "
            f"use_locking={use_locking!r}."
        )


def _learning_rate(learning_rate: Any, owner: str) -> Any:
    """TF1 accepted ints; Keras wants a float, a schedule or a callable."""
    if isinstance(learning_rate, bool):
        raise TypeError(
            f"{owner}: `learning_rate` must be a float, a Keras LearningRateSchedule or a "
            f"callable. Received: learning_rate={learning_rate!r}."
        )
    if isinstance(learning_rate, int):
        return float(learning_rate)
    if isinstance(learning_rate, (tf.Tensor, tf.Variable)):
        raise TypeError(
            f"{owner}: `learning_rate` must be a Python float, a "
            "keras.optimizers.schedules.LearningRateSchedule or a zero-argument callable; a "
            "TF1 learning-rate tensor (e.g. tf.train.exponential_decay(..., global_step)) "
            "becomes keras.optimizers.schedules.ExponentialDecay(...), whose step is the "
            f"optimizer's own `iterations`. Received: a {type(learning_rate).__name__}."
        )
    return learning_rate


def _no_minimize(optimizer: Any) -> TypeError:
    return TypeError(
        f"{type(optimizer).__name__} has no minimize(loss, var_list): Keras 3 optimizers do "
        "not minimize a loss tensor (that was TF1's API). Declare the players and their losses "
        "in a tfgames.GameModel and call model.compile(optimizer=...) and model.fit(...), or "
        "apply gradients with optimizer.apply(grads, variables). See the migration guide "
        "(\"Migrating from TF1\")."
    )


@keras.saving.register_keras_serializable(package=_PACKAGE)
class RMSPropOptimizer(keras.optimizers.Optimizer):
    """TF1's RMSProp as a Keras 3 optimizer: ``tf.compat.v1.train.RMSPropOptimizer`` exactly.

        ms  <- ms + (g^2 - ms) (1 - rho)              (= rho ms + (1 - rho) g^2; ms_0 = 1)
        mg  <- mg + (g - mg) (1 - rho)                (centered only; mg_0 = 0)
        mom <- momentum mom + eta g / sqrt(ms - mg^2 + epsilon)   (mg = 0 if not centered)
        w   <- w - mom

    eta is ``learning_rate``, rho is ``decay``, ``momentum`` and ``epsilon`` as named. The
    update runs TF1's own kernels (``ResourceApplyRMSProp``, ``ResourceApplyCenteredRMSProp``
    and, for ``tf.IndexedSlices`` gradients, their sparse versions after summing duplicate
    indices, which update only the rows that have a gradient), with the hyperparameters as
    float32 constants cast to the variable dtype, as TF1 does; the results are bitwise those
    of ``tf.compat.v1.train.RMSPropOptimizer``. (The same equations written as elementwise
    ops differ by an ulp inside ``tf.function``, where grappler may rewrite a / sqrt(b) as
    a * rsqrt(b).) Under XLA (``jit_compile``, Keras' default on GPU) XLA's lowering of these
    ops runs instead, equal up to rounding.

    Differences from ``keras.optimizers.RMSprop`` that change results: the mean-square slot
    ``ms`` starts at **ones** (Keras: zeros), so early steps are about ``eta * g`` instead of
    ``eta * g / |g|``; ``epsilon`` defaults to 1e-10 (Keras: 1e-7); Keras' ``rho`` is TF1's
    ``decay``. Slots are created per variable in TF1's order (rms, [mg], momentum).

    Args:
      learning_rate: eta: a float, a ``keras.optimizers.schedules.LearningRateSchedule`` or a
        zero-argument callable.
      decay: rho in [0, 1], the discount of the mean square.
      momentum: momentum >= 0.
      epsilon: epsilon >= 0, added to the mean square under the square root.
      use_locking: TF1 argument; only ``False`` (TF1's default) is supported.
      centered: subtract the squared mean gradient (TF1's centered RMSProp).
      name: the optimizer's name (TF1's default ``"RMSProp"``).
      **kwargs: Keras optimizer arguments (``clipnorm``, ``weight_decay``, ...).

    References:
      Tieleman and Hinton, Lecture 6.5 - RMSProp, COURSERA: Neural Networks for Machine
      Learning, 2012. TensorFlow 1.x ``tf.train.RMSPropOptimizer``.

    Example:
      >>> import tfgames
      >>> opt = tfgames.compat.v1.RMSPropOptimizer(1e-4)  # was tf.train.RMSPropOptimizer(1e-4)
      >>> opt.get_config()["epsilon"]  # TF1's default, not Keras' 1e-7
      1e-10
    """

    def __init__(
        self,
        learning_rate: Any,
        decay: float = 0.9,
        momentum: float = 0.0,
        epsilon: float = 1e-10,
        use_locking: bool = False,
        centered: bool = False,
        name: str = "RMSProp",
        **kwargs: Any,
    ) -> None:
        owner = type(self).__name__
        _check_use_locking(use_locking, owner)
        if not isinstance(decay, (int, float)) or not 0.0 <= decay <= 1.0:
            raise ValueError(
                f"{owner}: argument `decay` (rho) must be in [0, 1]. Received: decay={decay!r}."
            )
        if not isinstance(momentum, (int, float)) or momentum < 0.0:
            raise ValueError(
                f"{owner}: argument `momentum` must be >= 0. Received: momentum={momentum!r}."
            )
        if not isinstance(epsilon, (int, float)) or epsilon < 0.0:
            raise ValueError(
                f"{owner}: argument `epsilon` must be >= 0. Received: epsilon={epsilon!r}."
            )
        super().__init__(learning_rate=_learning_rate(learning_rate, owner), name=name, **kwargs)
        self.decay = float(decay)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.centered = bool(centered)

    def build(self, var_list: list) -> None:
        if self.built:
            return
        super().build(var_list)
        names, initializers = ["rms"], ["ones"]
        if self.centered:
            names.append("mg")
            initializers.append("zeros")
        names.append("momentum")
        initializers.append("zeros")
        slots = self.add_optimizer_variables(var_list, names, initializers)
        self._mean_squares = slots[0]
        self._mean_gradients = slots[1] if self.centered else []
        self._moments = slots[-1]

    def update_step(self, gradient, variable, learning_rate) -> None:
        dtype = variable.dtype
        index = self._get_variable_index(variable)
        handles = [_handle(variable)]
        if self.centered:
            handles.append(_handle(self._mean_gradients[index]))
        handles += [_handle(self._mean_squares[index]), _handle(self._moments[index])]
        hyper = dict(
            lr=ops.cast(learning_rate, dtype),
            rho=_tf1_constant(self.decay, dtype),
            momentum=_tf1_constant(self.momentum, dtype),
            epsilon=_tf1_constant(self.epsilon, dtype),
        )
        names = ("var", "mg", "ms", "mom") if self.centered else ("var", "ms", "mom")
        slots = dict(zip(names, handles))
        if isinstance(gradient, tf.IndexedSlices):
            # TF1 sums duplicate indices, then updates only the rows that have a gradient.
            grad, indices = _deduplicate(gradient)
            op = (
                tf.raw_ops.ResourceSparseApplyCenteredRMSProp
                if self.centered
                else tf.raw_ops.ResourceSparseApplyRMSProp
            )
            op(**slots, **hyper, grad=tf.cast(grad, dtype), indices=indices)
        else:
            op = (
                tf.raw_ops.ResourceApplyCenteredRMSProp
                if self.centered
                else tf.raw_ops.ResourceApplyRMSProp
            )
            op(**slots, **hyper, grad=tf.cast(gradient, dtype))

    def minimize(self, *args: Any, **kwargs: Any) -> None:
        """Not in Keras 3: raises a ``TypeError`` that says what to do instead."""
        raise _no_minimize(self)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(),
                **config_of(self, ("decay", "momentum", "epsilon", "centered"))}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class SymplecticOptimizer(SGA):
    """The seed's TF1 ``SymplecticOptimizer``: :class:`tfgames.SGA` over TF1 RMSProp.

        dir = xi + lambda A^T xi,      A^T xi = (H^T xi - H xi) / 2,
        lambda = sign(<xi, H^T xi> <A^T xi, H^T xi> / n + 0.1) * reg_params   (use_signs)
        lambda = reg_params                                                   (otherwise)
        w <- RMSPropOptimizer(learning_rate) step on dir    (TF1 RMSProp, ms_0 = 1, eps 1e-10)

    xi is the simultaneous gradient of the game (the seed's ``Xi = disc_grads + gen_grads``),
    H its Jacobian, ``reg_params`` is lambda_0 and n is the number of variable **tensors**
    (the seed's ``n = len(vars_)``; :class:`tfgames.SGA`'s default divides by the number of
    scalars). It is exactly ``tfgames.SGA(RMSPropOptimizer(learning_rate),
    lambda_=reg_params, use_signs=use_signs, epsilon=0.1, normalizer="tensors")``; H xi uses
    the double-backward trick by default, as the seed's ``kfac.utils.fwd_gradients``.

    TF1 code built ``xi`` itself and called ``optimizer.apply_gradients(zip(Xi, xs))``; here
    the optimizer needs the game (it re-differentiates the losses), so declare the players and
    losses in a :class:`tfgames.GameModel` and ``compile(optimizer=SymplecticOptimizer(...))``.
    The player order of ``players()`` is the order of xi (the seed's ``xs = disc_vars +
    gen_vars``); it does not change the update, and n counts the tensors of all players.

    Args:
      learning_rate: RMSProp's learning rate (the seed used 1e-4 on the 4x4 grid).
      reg_params: lambda_0 >= 0 (seed default 1.0).
      use_signs: sign alignment (seed default True).
      use_locking: TF1 argument; only ``False`` (the seed's value) is supported.
      name: the optimizer's name.
      hvp_mode: how H xi is computed, ``"double_backward"`` (default, as the seed) or
        ``"forward"`` (forward-over-reverse; equal up to rounding).

    References:
      Balduzzi, Racaniere, Martens, Foerster, Tuyls, Graepel. The Mechanics of n-Player
      Differentiable Games. ICML 2018.

    Example:
      >>> import tfgames
      >>> opt = tfgames.compat.v1.SymplecticOptimizer(1e-4)  # seed: SymplecticOptimizer(1e-4)
      >>> type(opt.inner_optimizer).__name__  # the seed wraps TF1 RMSProp
      'RMSPropOptimizer'
    """

    def __init__(
        self,
        learning_rate: Any,
        reg_params: float = 1.0,
        use_signs: bool = True,
        use_locking: bool = False,
        name: str = "symplectic_optimizer",
        *,
        hvp_mode: Literal["forward", "double_backward"] = "double_backward",
        **kwargs,
    ) -> None:
        owner = type(self).__name__
        _check_use_locking(use_locking, owner)
        if isinstance(reg_params, bool) or not isinstance(reg_params, (int, float)) or (
            reg_params < 0
        ):
            raise ValueError(
                f"{owner}: argument `reg_params` (lambda_0) must be a number >= 0; with "
                "use_signs the sign of the adjustment is chosen by alignment. Received: "
                f"reg_params={reg_params!r}."
            )
        super().__init__(
            RMSPropOptimizer(learning_rate),
            lambda_=float(reg_params),
            use_signs=use_signs,
            epsilon=0.1,
            normalizer="tensors",
            hvp_mode=hvp_mode,
            name=name,
            **kwargs,
        )

    @property
    def reg_params(self) -> float:
        """lambda_0, the seed's name for :attr:`tfgames.SGA.lambda_`."""
        return self.lambda_

    def get_config(self) -> dict[str, Any]:
        inner = self.inner_optimizer.get_config()
        return {
            "learning_rate": inner["learning_rate"],
            "reg_params": self.lambda_,
            "use_signs": self.use_signs,
            "name": self.name,
            "hvp_mode": self.hvp_mode,
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any], custom_objects=None):
        config = dict(config)
        if isinstance(config["learning_rate"], dict):
            config["learning_rate"] = keras.saving.deserialize_keras_object(
                config["learning_rate"], custom_objects=custom_objects
            )
        return cls(**config)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class AdamirrorOptimizer(Adamirror):
    """The seed's ``AdamirrorOptimizer`` (optimistic Adam), corrected: :class:`tfgames.Adamirror`.

        m_t = b1 m_{t-1} + (1 - b1) g_t,       v_t = b2 v_{t-1} + (1 - b2) g_t^2,
        m^_t = m_t / (1 - b1^t),               v^_t = v_t / (1 - b2^t),
        d_t = m^_t / (sqrt(v^_t) + epsilon),   w_t = w_{t-1} - 2 eta d_t + eta d_{t-1},  d_0 = 0

    with eta = ``learning_rate``, b1 = ``beta1``, b2 = ``beta2`` (TF1 names) and t the step.
    This is the update the seed notebook intended (Daskalakis et al. 2018, Algorithm 1, with the
    previous direction slot initialised to zeros, hence ``first_step="double"``: the first
    step is w_1 = w_0 - 2 eta d_1). The seed's TF1 code never ran: its step counter was a
    constant int32 tensor, so ``tf.pow(beta, t)`` raised the TypeError shown in the notebook
    (and t would have been 1 at every step: a constant cannot be assigned); the ``epsilon``
    argument was ignored (1e-8 was hard-coded); and the previous-direction slot was assigned
    before (or racing with) its read, which reduces the update to w_t = w_{t-1} - eta d_t,
    Adam with epsilon outside the bias correction. Here t is the optimizer's
    ``iterations + 1``, ``epsilon`` is used (TF1's 1e-8 by default; Keras' default is 1e-7)
    and d_{t-1} is read before it is replaced.

    Args:
      learning_rate: eta (seed default 0.001).
      beta1: b1 in [0, 1).
      beta2: b2 in [0, 1).
      epsilon: added to sqrt(v^_t) (TF1 default 1e-8).
      use_locking: TF1 argument; only ``False`` (the seed's value) is supported.
      name: the optimizer's name (seed default ``"Adamirror"``).
      first_step: ``"double"`` (d_0 = 0, as the seed's zero-initialised slot) or ``"plain"``
        (d_0 = d_1, a plain Adam first step); see :class:`tfgames.Adamirror`.
      **kwargs: Keras optimizer arguments (``clipnorm``, ``weight_decay``, ...).

    References:
      Daskalakis, Ilyas, Syrgkanis, Zeng. Training GANs with Optimism. ICLR 2018.

    Example:
      >>> import tfgames
      >>> opt = tfgames.compat.v1.AdamirrorOptimizer(1e-4)  # seed: AdamirrorOptimizer(lr)
      >>> opt.get_config()["epsilon"]  # TF1 Adam's default
      1e-08
    """

    def __init__(
        self,
        learning_rate: Any = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-8,
        use_locking: bool = False,
        name: str = "Adamirror",
        *,
        first_step: FirstStep = "double",
        **kwargs: Any,
    ) -> None:
        owner = type(self).__name__
        _check_use_locking(use_locking, owner)
        for argument, value in (("beta1", beta1), ("beta2", beta2)):
            if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise ValueError(
                    f"{owner}: argument `{argument}` must be in [0, 1). Received: "
                    f"{argument}={value!r}."
                )
        super().__init__(
            learning_rate=_learning_rate(learning_rate, owner),
            beta_1=float(beta1),
            beta_2=float(beta2),
            epsilon=epsilon,
            first_step=first_step,
            name=name,
            **kwargs,
        )

    @property
    def beta1(self) -> float:
        """b1, TF1's name for :attr:`tfgames.Adamirror.beta_1`."""
        return self.beta_1

    @property
    def beta2(self) -> float:
        """b2, TF1's name for :attr:`tfgames.Adamirror.beta_2`."""
        return self.beta_2

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["beta1"] = config.pop("beta_1")
        config["beta2"] = config.pop("beta_2")
        return config
