"""The configurations of tests/test_alternating_distribute.py's workers, and one training run.

Imported by tests/alternating_distribute_worker.py (2 logical CPUs, MirroredStrategy) and
tests/alternating_multiworker_worker.py (MultiWorkerMirroredStrategy); it imports TensorFlow,
so a worker configures its devices before importing it.
"""

import keras
import numpy as np
import tensorflow as tf
from conftest import TinyGAN, real_batches

import tfgames
from tfgames.optimizers.alex_gda import AlexGDA
from tfgames.optimizers.negative_momentum import NegativeMomentum

SGD = keras.optimizers.SGD


def _adam():
    return keras.optimizers.Adam(1e-2, beta_1=0.5)


#: name: (optimizer factory, compile keyword arguments).
CASES = {
    "alex_gda_sgd": (lambda: AlexGDA(SGD(0.05), extrapolation=2.0), {}),
    "alex_gda_adam": (lambda: AlexGDA(_adam()), {}),
    "alex_gda_per_player": (
        lambda: AlexGDA(tfgames.PerPlayer({"discriminator": _adam(), "generator": SGD(0.1)}),
                        extrapolation={"discriminator": 1.0, "generator": 2.0}), {}),
    "negative_momentum_alternating": (lambda: NegativeMomentum(0.05, momentum=-0.5),
                                      {"update_order": "alternating"}),
    "negative_momentum_2to1": (lambda: NegativeMomentum(0.05, momentum=-0.5),
                               {"update_order": {"discriminator": 2, "generator": 1}}),
    "negative_momentum_2to1_reuse": (
        lambda: NegativeMomentum(0.05, momentum=-0.5),
        {"update_order": {"discriminator": 2, "generator": 1}, "batches": "reuse"}),
    "adam_generator_first_1to3": (
        lambda: {"generator": _adam(), "discriminator": _adam()},
        {"update_order": {"generator": 1, "discriminator": 3}}),
    "lookahead_alternating": (
        lambda: tfgames.Lookahead(tfgames.PerPlayer(
            {"discriminator": SGD(0.05), "generator": SGD(0.05)}, update_order="alternating"),
            k=2), {}),
}


class RecordingGAN(TinyGAN):
    """TinyGAN that appends every (x, z) batch its losses are computed on, as one array
    [x | z] of this process' rows, to ``self.record`` (a Python list; ``tf.py_function``, so
    the values are exactly the ones the step receives)."""

    def __init__(self, record, **kw):
        super().__init__(**kw)
        self._record_fn = lambda x, z: record.append(np.concatenate([x.numpy(), z.numpy()], 1))

    def compute_losses(self, data, training=False):
        x, z = data
        token = tf.py_function(lambda x, z: (self._record_fn(x, z), 0.0)[1], [x, z], tf.float32)
        with tf.control_dependencies([token]):
            x = tf.identity(x)
        return super().compute_losses((x, z), training)


def run(name, strategy, steps, options=None, record=None):
    """Train TinyGAN(seed=3) with ``name`` under ``strategy`` for ``steps`` batches of 16 (x, z)
    pairs (``options``: the dataset's tf.data.Options); returns (weights, logs per batch).
    With a list ``record``, every batch the losses see is appended to it (:class:`RecordingGAN`;
    same weights)."""
    make, compile_kwargs = CASES[name]
    with strategy.scope():
        keras.utils.set_random_seed(1)
        model = TinyGAN(seed=3) if record is None else RecordingGAN(record, seed=3)
        model.compile(optimizer=make(), **compile_kwargs)
    logs = []
    record = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs=None, out=logs: out.append(
            {k: float(v) for k, v in logs.items()}))
    data = real_batches(steps, 16, with_noise=True)
    if options is not None:
        data = data.with_options(options)
    model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=[record])
    return [v.numpy().tolist() for v in model.trainable_variables], logs
