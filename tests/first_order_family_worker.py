"""The first-order family on one device and under MirroredStrategy on 2 logical CPUs.

Used by tests/test_first_order_family.py in a subprocess (logical devices must be configured
before TensorFlow initialises); prints one JSON line. Per optimizer: the trained weights on
one device ("single") and on two replicas ("mirrored"), the initial weights, and the
CurvatureEG+ backtracking counts of every step where the optimizer reports them.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import two_logical_cpus  # noqa: F401, I001 (first: splits the CPU before TensorFlow starts)

import keras
import tensorflow as tf
from conftest import TinyGAN, real_batches
from test_first_order_family import REGISTRY


def run(name, strategy):
    make, compile_kwargs = REGISTRY[name]
    with strategy.scope():
        keras.utils.set_random_seed(1)
        model = TinyGAN(seed=3)
        model.compile(optimizer=make(), **compile_kwargs)
    counts = []
    record = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: counts.append(
            float(logs["eg_backtracks"]) if "eg_backtracks" in logs else None))
    model.fit(real_batches(3, 16, with_noise=True), epochs=1, verbose=0, callbacks=[record])
    return [v.numpy().tolist() for v in model.trainable_variables], counts


if __name__ == "__main__":
    out = {}
    # One strategy of each kind for every run: each new MirroredStrategy object restarts
    # TensorFlow's collective keys at the same numbers, and a second one in the process meets
    # the first one's cached collective instances ("Shape mismatch in the collective
    # instance", TF 2.21) when their all-reduces differ in shape or order.
    one = tf.distribute.OneDeviceStrategy("/cpu:0")
    two = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    for name in sys.argv[1].split(","):
        try:
            single, single_counts = run(name, one)
            mirrored, mirrored_counts = run(name, two)
        except ValueError as error:
            out[name] = {"error": str(error)}
            continue
        keras.utils.set_random_seed(1)
        init = [v.numpy().tolist() for v in TinyGAN(seed=3).trainable_variables]
        out[name] = {"single": single, "mirrored": mirrored, "init": init,
                     "single_backtracks": single_counts, "mirrored_backtracks": mirrored_counts}
    print("RESULT " + json.dumps(out))
