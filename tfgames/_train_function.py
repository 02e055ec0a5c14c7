"""GameModel's compiled train function: Keras' step structure without its per-call overhead.

Keras 3's ``train_function`` (``keras/src/backend/tensorflow/trainer.py``) calls a
``tf.function`` of the iterator, wraps its outputs in a ``tf.experimental.Optional`` and, for
every step, asks that optional in Python whether it holds a value and for the value (two eager
ops); ``GameModel``'s divergence check then read its record variable (a third). On a 2-core
CPU that is about 0.5 ms per step, a tenth of a small GAN's plain step
(``benchmarks/step_time.py``). The function here runs the same graph for the common case
(one step per execution, a ``tf.data`` iterator on one device, compiled): the step traced once
as a concrete function of the iterator, called directly, its outputs the step's logs and the
divergence record. Every other case (``steps_per_execution > 1``, ``tf.distribute``
iterators, ``train_on_batch``'s generators, ``run_eagerly``, functions run eagerly) is Keras'
own function. The end of the data surfaces as ``tf.errors.OutOfRangeError`` from
``get_next``, as in Keras' one-step path, and ``fit`` stops the epoch on it.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import tensorflow as tf
from keras.src.backend.tensorflow.trainer import reduce_per_replica

from tfgames import _divergence

if TYPE_CHECKING:
    from tfgames.model import GameModel

__all__ = ["train_function"]


def _one_device_iterator(iterator: Any) -> bool:
    """A ``tf.data`` iterator (not a ``tf.distribute`` one, not a Python generator)."""
    return isinstance(iterator, tf.data.Iterator) and not isinstance(
        iterator, tf.distribute.DistributedIterator)


def train_function(model: GameModel, keras_function: Callable) -> Callable:
    """``model.train_function``: the direct step where it applies, else ``keras_function``;
    with ``model.check_finite``, :class:`tfgames.TrainingDiverged` is raised after the call
    that ran the first non-finite step.
    """
    check = bool(model.check_finite)
    record = _divergence.divergence_record(model) if check else None
    strategy = model.distribute_strategy
    direct = (
        model.steps_per_execution == 1
        and not model.run_eagerly
        and not tf.distribute.has_strategy()
        and strategy.num_replicas_in_sync == 1
    )
    step = tf.function(model.train_step, reduce_retracing=True, jit_compile=model.jit_compile)

    @tf.autograph.experimental.do_not_convert
    def one_step_on_iterator(iterator):
        outputs = strategy.run(step, args=(iterator.get_next(),))
        outputs = reduce_per_replica(outputs, strategy, reduction="auto")
        return outputs, (record.read_value() if check else tf.zeros([0], tf.float64))

    traced = tf.function(one_step_on_iterator)
    cache: list = [None, None]  # [weak reference to the iterator, its concrete function]

    def function(iterator):
        if direct and _one_device_iterator(iterator) and not tf.config.functions_run_eagerly():
            if cache[0] is None or cache[0]() is not iterator:
                # A new iterator (a new epoch): the same trace when its element spec is unchanged.
                cache[:] = [weakref.ref(iterator), traced.get_concrete_function(iterator)]
            logs, values = cache[1](iterator)
        else:
            logs, values = keras_function(iterator), record
        if check:
            _divergence.raise_if_diverged(model, values.numpy())
        return logs

    function._tfgames_function = True
    return function
