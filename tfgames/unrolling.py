"""Unrolled optimisation: a player's parameters after K differentiable optimizer steps.

The pure update math; the unrolled GAN game built on it is :mod:`tfgames.unrolled`.

Unrolled GANs (Metz et al. 2017) train the generator against the discriminator it would face
after K more discriminator updates. With theta_D^0 = theta_D and U the discriminator
optimizer's update rule (state s_0 = the optimizer's current state),

    theta_D^{k+1}, s_{k+1} = U(theta_D^k, grad_{theta_D} l_D(theta_G, theta_D^k), s_k),
    k = 0, ..., K - 1,

the generator minimises l_G(theta_G, theta_D^K(theta_G)) and its gradient is the total
derivative d/d theta_G, which runs back through the K updates (second derivatives of l_D).
The discriminator still descends its own loss at theta_D; only the generator looks ahead.

Keras 3 runs a layer at given parameter values with ``layer.stateless_call`` (used by
:func:`functional_call`), but ``Optimizer.stateless_apply`` raises on the TensorFlow backend,
and ``Optimizer.apply`` assigns to variables, which cuts the gradient. The updates U are
therefore written here as functions of tensors, :func:`sgd_update` and :func:`adam_update`,
matching ``keras.optimizers.SGD`` and ``keras.optimizers.Adam`` step for step (tests compare
them with the Keras optimizers). Python-float hyperparameters are used exactly, while Keras
rounds some of them (the learning rate, Adam's betas in the bias correction, SGD's momentum)
through float32: in float64 the two agree to float32 precision unless the hyperparameters
are float32-representable; in float32 they agree to rounding. :func:`unroll_variables`
starts from the Keras optimizer's *current* state (Adam moments and step count, SGD
momentum), as the seed notebook's graph
rewrite of the Keras updates did, and never changes that state.

References:
    Metz, Poole, Pfau and Sohl-Dickstein (2017). Unrolled generative adversarial networks.
    ICLR. https://arxiv.org/abs/1611.02163
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import keras
import tensorflow as tf

__all__ = [
    "AdamState",
    "adam_update",
    "functional_call",
    "sgd_update",
    "unroll_variables",
]

_UNSUPPORTED_OPTIONS = (
    "weight_decay",
    "clipnorm",
    "clipvalue",
    "global_clipnorm",
    "use_ema",
    "gradient_accumulation_steps",
    "loss_scale_factor",
)


class AdamState(NamedTuple):
    """Adam's state: ``iterations`` t (updates applied so far), first and second moments."""

    iterations: tf.Tensor
    m: list[tf.Tensor]
    v: list[tf.Tensor]


def _scalar(value: float | tf.Tensor, dtype: tf.DType) -> tf.Tensor:
    """A hyperparameter in ``dtype``: Python floats exactly (tf.cast would round via float32)."""
    if isinstance(value, (tf.Tensor, tf.Variable, keras.Variable)):
        return tf.cast(value, dtype)
    return tf.constant(value, dtype)


def sgd_update(
    values: Sequence[tf.Tensor],
    grads: Sequence[tf.Tensor],
    velocities: Sequence[tf.Tensor] | None = None,
    *,
    learning_rate: float | tf.Tensor,
    momentum: float = 0.0,
    nesterov: bool = False,
) -> tuple[list[tf.Tensor], list[tf.Tensor] | None]:
    """One SGD step on tensors, as ``keras.optimizers.SGD``.

        momentum = 0:  w <- w - eta g
        momentum > 0:  u <- mu u - eta g;  w <- w + u             (nesterov=False)
                                            w <- w + mu u - eta g  (nesterov=True)

    with eta = ``learning_rate``, mu = ``momentum``, u = ``velocities``, g = ``grads``.

    Args:
      values: the parameters w.
      grads: their gradients g, aligned with ``values``.
      velocities: the momentum buffers u (ignored, may be None, when momentum = 0).
      learning_rate: eta.
      momentum: mu >= 0.
      nesterov: Nesterov momentum.

    Returns:
      ``(new values, new velocities)``; velocities are None when momentum = 0.
    """
    if momentum == 0:
        return [w - _scalar(learning_rate, w.dtype) * g for w, g in zip(values, grads)], None
    new_values, new_velocities = [], []
    for w, g, u in zip(values, grads, velocities):
        eta, mu = _scalar(learning_rate, w.dtype), _scalar(momentum, w.dtype)
        u = mu * u - eta * g
        new_values.append(w + mu * u - eta * g if nesterov else w + u)
        new_velocities.append(u)
    return new_values, new_velocities


def adam_update(
    values: Sequence[tf.Tensor],
    grads: Sequence[tf.Tensor],
    state: AdamState,
    *,
    learning_rate: float | tf.Tensor,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    epsilon: float = 1e-7,
) -> tuple[list[tf.Tensor], AdamState]:
    """One Adam step on tensors, as ``keras.optimizers.Adam`` (Kingma and Ba 2015).

        t <- t + 1
        m <- m + (1 - beta_1) (g - m);  v <- v + (1 - beta_2) (g^2 - v)
        w <- w - alpha m / (sqrt(v) + epsilon),  alpha = eta sqrt(1 - beta_2^t) / (1 - beta_1^t)

    with eta = ``learning_rate`` and (t, m, v) = ``state``. This is Keras' (and TF1's)
    placement of epsilon, outside the bias correction of v.

    Args:
      values: the parameters w.
      grads: their gradients g, aligned with ``values``.
      state: the step count t and the moments m, v, aligned with ``values``.
      learning_rate: eta.
      beta_1: decay of the first moment.
      beta_2: decay of the second moment.
      epsilon: the denominator's offset.

    Returns:
      ``(new values, new state)``.
    """
    new_values, new_m, new_v = [], [], []
    for w, g, m, v in zip(values, grads, state.m, state.v):
        t = tf.cast(state.iterations + 1, w.dtype)
        b1, b2 = _scalar(beta_1, w.dtype), _scalar(beta_2, w.dtype)
        alpha = (_scalar(learning_rate, w.dtype) * tf.sqrt(1.0 - tf.pow(b2, t))
                 / (1.0 - tf.pow(b1, t)))
        m = m + (g - m) * (1.0 - b1)
        v = v + (tf.square(g) - v) * (1.0 - b2)
        new_values.append(w - alpha * m / (tf.sqrt(v) + _scalar(epsilon, w.dtype)))
        new_m.append(m)
        new_v.append(v)
    return new_values, AdamState(state.iterations + 1, new_m, new_v)


def functional_call(layer: keras.layers.Layer, values: Sequence[tf.Tensor],
                    **call_kwargs: Any) -> Callable[..., Any]:
    """``layer`` as a function of its trainable parameters: ``f(x) = layer(x; values)``.

    Uses ``layer.stateless_call`` with the layer's current non-trainable values (e.g. batch
    normalisation statistics), which are read but not updated. Gradients flow to ``values``.

    Args:
      layer: a built Keras layer or model.
      values: one tensor per ``layer.trainable_variables``, in that order.
      **call_kwargs: keyword arguments of every call, e.g. ``training=True``.

    Returns:
      A callable ``f(*args, **kwargs)`` returning the layer's outputs.
    """
    variables = layer.trainable_variables
    if len(values) != len(variables):
        raise ValueError(
            f"functional_call needs one value per trainable variable of {layer.name!r}: "
            f"{len(variables)} variables, received {len(values)} values. Pass "
            "[v.value for v in layer.trainable_variables] or tensors of the same shapes."
        )

    def call(*args: Any, **kwargs: Any) -> Any:
        non_trainable = [v.value for v in layer.non_trainable_variables]
        outputs, _ = layer.stateless_call(list(values), non_trainable, *args,
                                          **{**call_kwargs, **kwargs})
        return outputs

    return call


def check_unrollable(optimizer: Any) -> None:
    """Raise unless ``optimizer``'s update can be written as tensors here: SGD (with or
    without momentum) or Adam without AMSGrad, weight decay, clipping, EMA, gradient
    accumulation or loss scaling.
    """
    if not isinstance(optimizer, (keras.optimizers.SGD, keras.optimizers.Adam)) or isinstance(
        optimizer, (keras.optimizers.AdamW,)
    ):
        raise TypeError(
            "unroll_variables writes the optimizer's update as tensors and supports "
            "keras.optimizers.SGD (with or without momentum) and keras.optimizers.Adam. "
            f"Received: an object of type {type(optimizer).__name__}. Pass one of those for "
            "the unrolled player."
        )
    if getattr(optimizer, "amsgrad", False):
        raise ValueError(
            "unroll_variables supports Adam without AMSGrad. Received: amsgrad=True. Use "
            "keras.optimizers.Adam(amsgrad=False)."
        )
    for option in _UNSUPPORTED_OPTIONS:
        value = getattr(optimizer, option, None)
        if value:
            raise ValueError(
                f"unroll_variables applies the plain update of {type(optimizer).__name__}, "
                f"without `{option}`. Received: {option}={value!r}. Construct the optimizer "
                f"without `{option}`."
            )


#: The Keras optimizer attributes that hold the state unrolling starts from (Keras 3.10-3.15):
#: Adam's first and second moments, SGD's momentum buffers. They are private to Keras, so a
#: missing one is an error, never a silent zero state.
_STATE_ATTRIBUTES = {"adam": ("_momentums", "_velocities"), "sgd": ("momentums",)}


def _state_slots(optimizer: keras.optimizers.Optimizer, attribute: str) -> list | None:
    """The optimizer's list of slot variables ``attribute``, or None when it is not built.

    Raises:
      RuntimeError: when a built optimizer lacks the attribute (a Keras version whose
        optimizer internals differ from those tfgames was written against).
    """
    if not optimizer.built:
        return None
    slots = getattr(optimizer, attribute, None)
    if slots is None:
        raise RuntimeError(
            f"unroll_variables reads the state of {type(optimizer).__name__} from its "
            f"attribute `{attribute}`, which this Keras version ({keras.__version__}) does not "
            "have, so unrolling would silently start from a zero state. tfgames supports the "
            "optimizer internals of Keras 3.10 to 3.15: install one of those, or report the "
            "Keras version to tfgames."
        )
    return slots


def _slot(optimizer: keras.optimizers.Optimizer, slots: list | None, variable) -> tf.Tensor:
    """The optimizer's slot for ``variable``, or zeros when it holds none (not built yet)."""
    if slots is not None:
        try:
            index = optimizer._get_variable_index(variable)
        except KeyError as error:
            raise ValueError(
                f"The optimizer {optimizer.name!r} was built on other variables than "
                f"{variable.path!r}, so it holds no state for the unrolled player. Pass the "
                "optimizer that updates that player."
            ) from error
        return tf.convert_to_tensor(slots[index].value)
    return tf.zeros(variable.shape, variable.dtype)


def unroll_variables(
    layer: keras.layers.Layer,
    loss_fn: Callable[[Callable[..., Any]], tf.Tensor],
    steps: int,
    optimizer: keras.optimizers.Optimizer,
) -> list[tf.Tensor]:
    """theta^K: ``steps`` differentiable updates of ``layer``'s parameters by ``optimizer``'s rule.

        theta^0 = theta (the layer's current values), s_0 = the optimizer's current state,
        theta^{k+1}, s_{k+1} = U(theta^k, grad_theta loss_fn(f_{theta^k}), s_k),

    where f_theta = :func:`functional_call` (layer, theta) and U is :func:`sgd_update` or
    :func:`adam_update` with ``optimizer``'s hyperparameters and current learning rate. The
    gradients are taken on nested tapes, so an enclosing ``tf.GradientTape`` differentiates
    theta^K with respect to anything ``loss_fn`` depends on (e.g. the generator's variables
    through its samples). Neither the layer nor the optimizer is modified; an optimizer that is
    not built yet contributes a zero state (t = 0, zero moments). ``steps = 0`` returns the
    current values.

    Args:
      layer: the unrolled player, a built Keras layer or model (the discriminator).
      loss_fn: the player's loss as a function of a callable that runs ``layer`` with the
        unrolled parameters, ``loss_fn(d) -> scalar``; it must use the same batch and noise
        at every call.
      steps: K >= 0.
      optimizer: the ``keras.optimizers.SGD`` or ``keras.optimizers.Adam`` that updates
        ``layer`` (the state is read from it); without weight decay, clipping, EMA or
        gradient accumulation.

    Returns:
      theta^K, one tensor per ``layer.trainable_variables``.

    Example:
      One SGD step of a 1-unit linear layer on l(theta) = (theta x - 1)^2 / 2 from theta = 0,
      x = 2: the gradient is (0 - 1) * 2 = -2, so theta^1 = 0 - 0.1 * (-2) = 0.2.

      >>> import keras, tensorflow as tf
      >>> from tfgames.unrolling import unroll_variables
      >>> layer = keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")
      >>> x = tf.constant([[2.0]])
      >>> _ = layer(x)
      >>> (kernel,) = unroll_variables(
      ...     layer, lambda d: 0.5 * tf.reduce_sum((d(x) - 1.0) ** 2), 1,
      ...     keras.optimizers.SGD(0.1))
      >>> round(float(kernel[0, 0]), 4)
      0.2

    References:
      Metz et al. (2017). Unrolled generative adversarial networks. ICLR.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(
            f"Argument `steps` must be an integer >= 0 (the number of unrolled updates). "
            f"Received: steps={steps!r}"
        )
    check_unrollable(optimizer)
    variables = list(layer.trainable_variables)
    if not variables:
        raise ValueError(
            f"Layer {layer.name!r} has no trainable variables to unroll. Build it first (call "
            "it on a batch or give it an Input)."
        )
    values = [tf.identity(v.value) for v in variables]
    if steps == 0:
        return values
    learning_rate = optimizer.learning_rate
    if isinstance(optimizer, keras.optimizers.Adam):
        momentums, velocities = (_state_slots(optimizer, a) for a in _STATE_ATTRIBUTES["adam"])
        state = AdamState(
            tf.cast(optimizer.iterations, tf.int64),
            [_slot(optimizer, momentums, v) for v in variables],
            [_slot(optimizer, velocities, v) for v in variables],
        )
    else:
        momentum = float(optimizer.momentum)
        slots = _state_slots(optimizer, _STATE_ATTRIBUTES["sgd"][0]) if momentum else None
        state = [_slot(optimizer, slots, v) for v in variables] if momentum else None
    for _ in range(steps):
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(values)
            loss = loss_fn(functional_call(layer, values))
        grads = tape.gradient(loss, values, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        if isinstance(optimizer, keras.optimizers.Adam):
            values, state = adam_update(
                values, grads, state, learning_rate=learning_rate, beta_1=optimizer.beta_1,
                beta_2=optimizer.beta_2, epsilon=optimizer.epsilon,
            )
        else:
            values, state = sgd_update(
                values, grads, state, learning_rate=learning_rate, momentum=momentum,
                nesterov=bool(optimizer.nesterov),
            )
    return values
