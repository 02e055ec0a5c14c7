"""Runs one game on one device and under MirroredStrategy on 2 logical CPUs; prints JSON.

Used by tests/test_distribute.py in a subprocess (logical devices must be configured before
TensorFlow initialises).
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
import tfgames  # noqa: E402
from conftest import TinyGAN, real_batches  # noqa: E402


def make_optimizer(name):
    import tfgames as t
    return {
        "sga": lambda: t.SGA(keras.optimizers.RMSprop(1e-2)),
        "sga_db": lambda: t.SGA(keras.optimizers.SGD(0.05), hvp_mode="double_backward"),
        "consensus": lambda: t.Consensus(keras.optimizers.Adam(1e-2), gamma=1.0),
        "sgd": lambda: keras.optimizers.SGD(0.05),
        "extragradient": lambda: t.Extragradient(keras.optimizers.Adam(1e-2)),
        "past_extragradient": lambda: t.Extragradient(keras.optimizers.SGD(0.05), past=True),
        "adamirror": lambda: t.Adamirror(1e-2),
        "lookahead_sga": lambda: t.Lookahead(t.SGA(keras.optimizers.SGD(0.05)), k=2),
    }[name]()


def run(name, strategy):
    with strategy.scope():
        keras.utils.set_random_seed(1)
        model = TinyGAN(seed=3)
        model.compile(optimizer=make_optimizer(name))
    model.fit(real_batches(3, 16, with_noise=True), epochs=1, verbose=0)
    return [v.numpy().tolist() for v in model.trainable_variables]


if __name__ == "__main__":
    names = sys.argv[1].split(",")
    out = {}
    for name in names:
        single = run(name, tf.distribute.OneDeviceStrategy("/cpu:0"))
        mirrored = run(name, tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
        keras.utils.set_random_seed(1)
        init = [v.numpy().tolist() for v in TinyGAN(seed=3).trainable_variables]
        out[name] = {"single": single, "mirrored": mirrored, "init": init}
    print("RESULT " + json.dumps(out))
