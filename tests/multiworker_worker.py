"""One worker of a 2-worker MultiWorkerMirroredStrategy run on localhost; prints JSON.

Run by tests/test_distribute.py: TF_CONFIG is set by the test. The dataset is sharded by
element (AutoShardPolicy.DATA), so each global step sees the same 16 samples as the
single-device run's batch, split between the workers.
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import tensorflow as tf

sys.path.insert(0, os.path.dirname(__file__))
from conftest import TinyGAN, real_batches
from distributed_worker import make_optimizer

GLOBAL_BATCH = 16

if __name__ == "__main__":
    name = sys.argv[1]
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    assert strategy.num_replicas_in_sync == 2

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    data = real_batches(3, GLOBAL_BATCH, with_noise=True).with_options(options)

    with strategy.scope():
        keras.utils.set_random_seed(1)
        model = TinyGAN(seed=3)
        model.compile(optimizer=make_optimizer(name))
    model.fit(data, epochs=1, steps_per_epoch=3, verbose=0)
    print("RESULT " + json.dumps([v.numpy().tolist() for v in model.trainable_variables]))
