"""Alternating updates and Alex-GDA on one device and under MirroredStrategy on 2 logical CPUs.

Used by tests/test_alternating_distribute.py in a subprocess (logical devices must be
configured before TensorFlow initialises); prints one JSON line. Usage:
``alternating_distribute_worker.py name,name,... STEPS``: each named configuration of
tests/alternating_cases.py trains the tests' TinyGAN for STEPS batches of 16 (x, z) pairs (data
and noise given with the batch), once on one device ("single") and once on two replicas
("mirrored"), and reports the trained weights, the initial weights and the logs after every
batch.

One OneDeviceStrategy and one MirroredStrategy serve every run of the process: each new
MirroredStrategy object restarts TensorFlow's collective group and instance keys at the same
numbers, and a second one in the same process then meets the first one's cached collective
instances ("Shape mismatch in the collective instance", TF 2.21), whatever the optimizer.
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import two_logical_cpus  # noqa: F401, I001 (first: splits the CPU before TensorFlow starts)

import keras
import tensorflow as tf
from alternating_cases import run
from conftest import TinyGAN

if __name__ == "__main__":
    names, steps = sys.argv[1].split(","), int(sys.argv[2])
    one = tf.distribute.OneDeviceStrategy("/cpu:0")
    two = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    keras.utils.set_random_seed(1)
    init = [v.numpy().tolist() for v in TinyGAN(seed=3).trainable_variables]
    out = {}
    for name in names:
        single, single_logs = run(name, one, steps)
        mirrored, mirrored_logs = run(name, two, steps)
        out[name] = {"single": single, "mirrored": mirrored, "init": init,
                     "single_logs": single_logs, "mirrored_logs": mirrored_logs}
    print("RESULT " + json.dumps(out))
