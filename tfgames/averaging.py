"""Parameter averaging: uniform and exponential moving averages of the players' iterates."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Literal

import keras
import tensorflow as tf

from tfgames import products
from tfgames.optimizers.base import SlotWrapper, check_bool, checked, config_of

__all__ = ["AVERAGING_METHODS", "Averaging", "averaged_weights", "update_average"]

AVERAGING_METHODS = ("uniform", "ema")


def update_average(average, value, count, *, method: str, decay: float):
    """The new average after the iterate ``value``, the ``count``-th one averaged (1-based).

    uniform: w_bar <- w_bar + (w - w_bar) / count   (the mean of the averaged iterates)
    ema:     w_bar <- decay w_bar + (1 - decay) w    (w_bar = w at count = 1)
    """
    count = tf.cast(count, average.dtype)
    if method == "uniform":
        return average + (value - average) / tf.maximum(count, 1.0)
    decay = tf.constant(decay, average.dtype)
    return tf.where(count <= 1.0, value, decay * average + (1.0 - decay) * value)


@keras.saving.register_keras_serializable(package="tfgames")
class Averaging(SlotWrapper):
    """Averages of the iterates beside the iterates: w_bar_t, uniform or exponential.

        uniform: w_bar_t = (1 / (t - s)) sum_{j=s+1}^{t} w_j
        ema:     w_bar_t = beta w_bar_{t-1} + (1 - beta) w_t,  w_bar_{s+1} = w_{s+1}

    w_t are the parameters after the t-th step of ``inner_optimizer`` (any optimizer: a Keras
    optimizer, a game optimizer such as :class:`tfgames.Extragradient`, or a
    :class:`tfgames.PerPlayer` container), s = ``start`` (steps before it are not averaged;
    until then w_bar = w), beta = ``decay``. Training is unchanged: the iterates follow the
    inner optimizer, and the averages are optimizer variables, saved with the model and
    restored by ``keras.models.load_model``, so resumed training continues the same average.

    On games the average can converge where the last iterate does not: on f = x y the
    iterates of simultaneous gradient descent spiral outwards while their uniform average
    approaches the equilibrium (Gidel et al. 2019, Sec. 3 and Fig. 2); Yazici et al. (2019)
    evaluate GAN generators at their EMA or uniform average.

    Use the averages with :meth:`averaged_weights` (or :func:`averaged_weights` on a model):
    ``with model.optimizer.averaged_weights(): model.evaluate(...)`` swaps the averages into
    the model's variables and restores the iterates on exit. ``overwrite_at_end=True`` writes
    the averages into the model at the end of ``fit`` (as Keras' ``use_ema`` does).

    Args:
      inner_optimizer: the optimizer whose iterates are averaged.
      method: ``"uniform"`` or ``"ema"``.
      decay: beta in [0, 1), the EMA's decay (used by ``method="ema"``).
      start: s >= 0, the number of steps before averaging starts.
      overwrite_at_end: write the averages into the model when ``fit`` ends.
      name: the optimizer's name.

    References:
      Gidel, Berard, Vignoud, Vincent, Lacoste-Julien. A Variational Inequality Perspective
      on Generative Adversarial Networks. ICLR 2019. Yazici, Foo, Winkler, Yap, Piliouras,
      Chandrasekhar. The Unusual Effectiveness of Averaging in GAN Training. ICLR 2019.

    Example:
      >>> import keras, tfgames
      >>> from tfgames.averaging import Averaging, averaged_weights
      >>> model = tfgames.games.Bilinear()  # f = x * y from (1, 1)
      >>> model.compile(optimizer=Averaging(keras.optimizers.SGD(0.1), method="uniform"))
      >>> _ = model.fit(tfgames.datasets.step_dataset(300), verbose=0)
      >>> round(model.distance_to_equilibrium(), 2)  # the last iterate spirals out
      6.29
      >>> with averaged_weights(model):
      ...     round(model.distance_to_equilibrium(), 2)
      0.21
    """

    slot_name = "average"

    def __init__(
        self,
        inner_optimizer: keras.optimizers.Optimizer,
        *,
        method: Literal["uniform", "ema"] = "uniform",
        decay: float = 0.999,
        start: int = 0,
        overwrite_at_end: bool = False,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        if method not in AVERAGING_METHODS:
            raise ValueError(
                f"Argument `method` must be one of {AVERAGING_METHODS}. Received: "
                f"method={method!r}."
            )
        real = checked("decay", decay, float, lambda r: 0.0 <= r < 1.0,
                       "must be a number in [0, 1) (1 would never move the average)")
        count = checked("start", start, int, lambda c: c >= 0, "must be an integer >= 0")
        check_bool("overwrite_at_end", overwrite_at_end)
        super().__init__(inner_optimizer, name=name, **kwargs)
        self.method = method
        self.decay = real
        self.start = count
        self.overwrite_at_end = overwrite_at_end

    def _after_step(self, variables: list) -> None:
        """Count the step and fold the new iterates into the averages."""
        self._iterations.assign_add(1)
        count = self._iterations - self.start
        for slot, variable in zip(self._slots(variables), variables):
            value = products.read_value(variable)
            slot.assign(update_average(tf.convert_to_tensor(slot), value, count,
                                       method=self.method, decay=self.decay))

    # -- using the averages ------------------------------------------------------------------
    def average_values(self, variables: list | None = None) -> list[tf.Tensor]:
        """The averages w_bar of ``variables`` (default: every averaged variable)."""
        variables = self._trainable_variables if variables is None else list(variables)
        return [tf.convert_to_tensor(slot) for slot in self._slots(variables)]

    @contextlib.contextmanager
    def averaged_weights(self, variables: list | None = None) -> Iterator[None]:
        """Within the block, ``variables`` (default: all averaged ones) hold their averages."""
        if not self.built:
            raise ValueError(
                "This Averaging optimizer has taken no step yet, so there is no average to "
                "swap in. Train first (model.fit) or load a saved model."
            )
        variables = self._trainable_variables if variables is None else list(variables)
        iterates = [products.read_value(v) for v in variables]
        averages = self.average_values(variables)
        for variable, average in zip(variables, averages):
            variable.assign(average)
        try:
            yield
        finally:
            for variable, iterate in zip(variables, iterates):
                variable.assign(iterate)

    def finalize_variable_values(self, var_list) -> None:
        """With ``overwrite_at_end=True``, write the averages into ``var_list``."""
        super().finalize_variable_values(var_list)
        if self.overwrite_at_end and self.built:
            for variable, average in zip(var_list, self.average_values(var_list)):
                variable.assign(average)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(),
                **config_of(self, ("method", "decay", "start", "overwrite_at_end"))}


def _find_averaging(optimizer: Any) -> Averaging | None:
    seen = set()
    while optimizer is not None and id(optimizer) not in seen:
        seen.add(id(optimizer))
        if isinstance(optimizer, Averaging):
            return optimizer
        optimizer = getattr(optimizer, "inner_optimizer", None)
    return None


@contextlib.contextmanager
def averaged_weights(model: keras.Model) -> Iterator[None]:
    """Swap the averaged parameters into ``model`` for a block (e.g. around ``evaluate``).

    ``with averaged_weights(model): model.evaluate(...)``. Finds the :class:`Averaging`
    optimizer in ``model.optimizer`` (or the optimizers it wraps) and swaps its averages into
    the model's variables for the block; the iterates are restored on exit.
    """
    averaging = _find_averaging(getattr(model, "optimizer", None))
    if averaging is None:
        raise ValueError(
            "averaged_weights(model) needs a model compiled with a tfgames.Averaging optimizer "
            "(e.g. model.compile(optimizer=tfgames.Averaging(keras.optimizers.SGD(0.01)))). "
            f"Received: a model whose optimizer is "
            f"{type(getattr(model, 'optimizer', None)).__name__}."
        )
    with averaging.averaged_weights():
        yield
