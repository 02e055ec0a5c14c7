"""Runs one game on one device and under MirroredStrategy on 2 logical CPUs; prints JSON.

Used by tests/test_distribute.py in a subprocess (logical devices must be configured before
TensorFlow initialises). Modes:

- ``even``: 3 batches of 16 (x, z) pairs, data and noise given with the batch;
- ``uneven35`` / ``uneven33``: 35 (33) pairs in global batches of 4, so the last global
  batch is split 2 + 1 (1 + 0) between the replicas;
- ``drawn``: 3 batches of 16 real samples, the noise drawn in the step from the model's
  stream (no one-device equality is expected: the replicas draw their own noise);
- ``noise``: the noise each replica draws, for the statistics test.
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
        "ogd": lambda: t.optimizers.OGD(0.05),
        "per_player": lambda: {"discriminator": keras.optimizers.Adam(1e-2),
                               "generator": keras.optimizers.SGD(0.05)},
    }[name]()


def dataset(mode):
    if mode == "even":
        return real_batches(3, 16, with_noise=True)
    if mode == "drawn":
        return real_batches(3, 16)
    n = {"uneven35": 35, "uneven33": 33}[mode]
    rng = np.random.default_rng(7)
    x = tfgames.lab.samplers.GRID_CENTRES[rng.integers(0, 16, n)].astype("float32")
    z = rng.standard_normal((n, 3)).astype("float32")
    return tf.data.Dataset.from_tensor_slices((x, z)).batch(4)


def run(name, strategy, mode):
    with strategy.scope():
        keras.utils.set_random_seed(1)
        model = TinyGAN(seed=3)
        model.compile(optimizer=make_optimizer(name))
    history = model.fit(dataset(mode), epochs=1, verbose=0)
    return ([v.numpy().tolist() for v in model.trainable_variables],
            {k: [float(x) for x in v] for k, v in history.history.items()})


def noise(strategy, seed, draws=200):
    """``draws`` times, each replica's 8 x 3 noise from the model's stream in one step."""
    with strategy.scope():
        model = TinyGAN(seed=seed)

    @tf.function
    def draw():
        def one():
            game = model.make_game(tf.zeros((8, 2)))  # the stream as train_step sees it
            del game
            return keras.random.normal((8, 3), seed=model.seed_generator)
        return strategy.experimental_local_results(strategy.run(one))

    return np.stack([np.stack([r.numpy() for r in draw()]) for _ in range(draws)]).tolist()


if __name__ == "__main__":
    names, mode = sys.argv[1].split(","), sys.argv[2] if len(sys.argv) > 2 else "even"
    out = {}
    if mode == "noise":
        two = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        plain = keras.random.SeedGenerator(5)
        out = {"a": noise(two, 5), "b": noise(two, 5), "c": noise(two, 6),
               "one": noise(tf.distribute.OneDeviceStrategy("/cpu:0"), 5, draws=2),
               "plain": [keras.random.normal((8, 3), seed=plain).numpy().tolist()
                         for _ in range(2)],
               # SGA with the noise drawn in the step, twice under 2 replicas: reproducible.
               "drawn": [run("sga", two, "drawn")[0] for _ in range(2)]}
        print("RESULT " + json.dumps(out))
        sys.exit(0)
    # One strategy of each kind for every run: several MirroredStrategy objects in one process
    # share TensorFlow's collective executor and their instance keys can collide (observed as
    # an occasional "Shape mismatch in the collective instance" after several runs).
    one = tf.distribute.OneDeviceStrategy("/cpu:0")
    two = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    for name in names:
        single, single_logs = run(name, one, mode)
        mirrored, mirrored_logs = run(name, two, mode)
        keras.utils.set_random_seed(1)
        init = [v.numpy().tolist() for v in TinyGAN(seed=3).trainable_variables]
        out[name] = {"single": single, "mirrored": mirrored, "init": init,
                     "single_logs": single_logs, "mirrored_logs": mirrored_logs}
    print("RESULT " + json.dumps(out))
