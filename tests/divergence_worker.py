"""Divergence under MirroredStrategy on 2 logical CPUs; prints JSON.

Used by tests/test_distribute.py in a subprocess (logical devices must be configured before
TensorFlow initialises). Each case trains the TinyGAN of tests/conftest.py (data and noise in
the batch, global batch 16) with a non-finite quantity injected at step 6 (optimizer iteration
5), snapshots every replica's copy of every model and optimizer variable before that step, and
reports the raised error and whether each copy after the error equals its snapshot bitwise.
Cases (argv[1], comma-separated):

- ``<optimizer>_loss``: every replica's losses NaN at step 6 (the gradients are NaN too);
- ``<optimizer>_replica1``: replica 1's losses NaN through a stop_gradient term (gradients,
  hence weights, stay finite; only that replica's logged loss is NaN);
- ``<optimizer>_weight``: a finite loss whose gradient is NaN (the gradient of sqrt at 0), so
  only the updated weights are not finite.

<optimizer> is ``sga`` (SGA over RMSprop) or ``adam`` (a stock Keras optimizer).
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import two_logical_cpus  # noqa: F401, I001 (first: splits the CPU before TensorFlow starts)

import keras
import numpy as np
import tensorflow as tf
from conftest import TinyGAN, real_batches

import tfgames
from tfgames._divergence import state_variables


class Poisoned(TinyGAN):
    """TinyGAN with a non-finite quantity at optimizer iteration 5 (the 6th step)."""

    def __init__(self, how="loss", **kwargs):
        super().__init__(**kwargs)
        self.how = how

    def compute_losses(self, data, training=False):
        losses = super().compute_losses(data, training)
        at_step_6 = tf.equal(self.optimizer.iterations, 5)
        if self.how == "replica1":
            replica = tf.distribute.get_replica_context().replica_id_in_sync_group
            bad = tf.where(tf.logical_and(at_step_6, tf.equal(replica, 1)), np.nan, 0.0)
            return {k: v + tf.stop_gradient(bad) for k, v in losses.items()}
        if self.how == "weight":  # d/dw sqrt(w - w) is inf * 0 = nan; the loss stays finite
            w = self.generator.trainable_variables[0][0, 0]
            kink = tf.sqrt(tf.where(at_step_6, w - tf.stop_gradient(w), 1.0))
            return {k: v + kink for k, v in losses.items()}
        bad = tf.where(at_step_6, np.nan, 0.0)
        return {k: v + bad for k, v in losses.items()}


def copies(variables, strategy):
    return [[np.array(c.numpy()) for c in strategy.experimental_local_results(
        v._value if isinstance(v, keras.Variable) else v)] for v in variables]


def run(case, strategy):
    name, how = case.split("_")
    with strategy.scope():
        keras.utils.set_random_seed(1)
        model = Poisoned(how=how, seed=3)
        inner = keras.optimizers.RMSprop(1e-2) if name == "sga" else keras.optimizers.Adam(1e-2)
        model.compile(optimizer=tfgames.SGA(inner) if name == "sga" else inner)
    variables = state_variables(model)
    snapshot = {}

    def before(batch, logs):
        if batch == 5:  # the 6th step begins
            snapshot["copies"] = copies(variables, strategy)

    message = None
    try:
        model.fit(real_batches(8, 16, with_noise=True), epochs=1, verbose=0,
                  callbacks=[keras.callbacks.LambdaCallback(on_train_batch_begin=before)])
    except tfgames.TrainingDiverged as error:
        message = str(error)
    after = copies(variables, strategy)
    equal = [all(np.array_equal(a, b, equal_nan=False) for a, b in zip(x, y))
             for x, y in zip(after, snapshot["copies"])]
    finite = all(np.all(np.isfinite(c)) for v in after for c in v
                 if np.issubdtype(c.dtype, np.floating))
    return {"message": message, "equal": equal, "n_variables": len(variables),
            "names": [v.path for v in variables], "finite": finite,
            "iterations": int(model.optimizer.iterations.numpy()),
            "replicas_agree": all(
                all(np.array_equal(c, v[0]) for c in v)
                for v in copies(model.trainable_variables + model.optimizer.variables, strategy))}


if __name__ == "__main__":
    two = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    print("RESULT " + json.dumps({case: run(case, two) for case in sys.argv[1].split(",")}))
