"""One worker of a 2-worker MultiWorkerMirroredStrategy run of tests/alternating_cases.py.

Run by tests/test_alternating_distribute.py with TF_CONFIG set; without TF_CONFIG it trains on
one device (the reference). Usage: ``alternating_multiworker_worker.py NAME STEPS``; prints the
trained weights, the logs after every batch, the initial weights and the distinct (x, z)
batches the losses saw (this process' rows, in order) as one JSON line. The dataset is sharded
by element (AutoShardPolicy.DATA), so each global step sees the one-device run's batch of 16,
split between the workers.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.dirname(__file__))
from alternating_cases import run
from conftest import TinyGAN

if __name__ == "__main__":
    name, steps = sys.argv[1], int(sys.argv[2])
    if os.environ.get("TF_CONFIG"):
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        assert strategy.num_replicas_in_sync == 2
    else:
        strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    record = []
    weights, logs = run(name, strategy, steps, options, record=record)
    # The distinct batches the losses saw, in order (an optimizer may evaluate a batch more
    # than once in a step: consecutive repeats are one batch).
    batches = [b for i, b in enumerate(record) if i == 0 or not np.array_equal(b, record[i - 1])]
    keras.utils.set_random_seed(1)
    init = [v.numpy().tolist() for v in TinyGAN(seed=3).trainable_variables]
    print("RESULT " + json.dumps({"weights": weights, "logs": logs, "init": init,
                                  "batches": [b.tolist() for b in batches]}))
