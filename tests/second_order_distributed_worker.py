"""The second-order family on one device and under MirroredStrategy on 2 logical CPUs; prints
JSON. Used by tests/test_second_order_family.py in a subprocess (logical devices must be
configured before TensorFlow initialises)."""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from conftest import TinyGAN, real_batches  # noqa: E402

from tfgames.optimizers.cgd import ACGD, CGD, GACGD  # noqa: E402
from tfgames.optimizers.hamiltonian import HamiltonianGD  # noqa: E402
from tfgames.optimizers.lead import LEAD  # noqa: E402
from tfgames.optimizers.lss import LSS  # noqa: E402
from tfgames.optimizers.opponent_shaping import LA, LOLA, SOS  # noqa: E402

OPTIMIZERS = {
    "la": lambda: LA(keras.optimizers.SGD(0.05), alpha=0.5),
    "lola": lambda: LOLA(keras.optimizers.SGD(0.05), alpha=0.5),
    "sos": lambda: SOS(keras.optimizers.SGD(0.05), alpha=0.5),
    "hgd": lambda: HamiltonianGD(keras.optimizers.SGD(0.05)),
    "cgd": lambda: CGD(keras.optimizers.SGD(0.05), alpha=0.5, solver="gmres", max_iterations=4),
    "gacgd": lambda: GACGD(keras.optimizers.SGD(0.05), alpha=0.5, max_iterations=4),
    "acgd": lambda: ACGD(0.01, max_iterations=4),
    "lss": lambda: LSS(keras.optimizers.SGD(0.05), regularize="always", max_iterations=4),
    "lead": lambda: LEAD(keras.optimizers.Adam(0.01), alpha=0.6),
}


def run(name, strategy):
    with strategy.scope():
        keras.utils.set_random_seed(1)
        model = TinyGAN(seed=3, width=6)
        model.compile(optimizer=OPTIMIZERS[name]())
    model.fit(real_batches(3, 16, with_noise=True), epochs=1, verbose=0)
    return [v.numpy().tolist() for v in model.trainable_variables]


def mirrored_strategy():
    """A MirroredStrategy on the 2 logical CPUs whose collective keys are new in this process.

    TensorFlow starts every MirroredStrategy's group and instance keys at the same values (its
    test hook ``_collective_key_base`` is 0): a later model's all-reduce reusing a key of an
    earlier model's with another shape fails ("Shape mismatch in the collective instance").
    """
    tf.distribute.MirroredStrategy._collective_key_base += 100000
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


if __name__ == "__main__":
    for name in sys.argv[1].split(","):  # one RESULT line per optimizer, as soon as done
        try:
            single = run(name, tf.distribute.OneDeviceStrategy("/cpu:0"))
            mirrored = run(name, mirrored_strategy())
        except Exception as error:  # reported per optimizer by the test
            out = {"error": f"{type(error).__name__}: {str(error)[:1500]}"}
        else:
            keras.utils.set_random_seed(1)
            init = [v.numpy().tolist() for v in TinyGAN(seed=3, width=6).trainable_variables]
            out = {"single": single, "mirrored": mirrored, "init": init}
        print("RESULT " + json.dumps({name: out}), flush=True)
