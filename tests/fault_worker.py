"""Trains a GAN with BackupAndRestore; optionally dies (os._exit) in the middle of a step.

Used by tests/test_fault_tolerance.py in subprocesses: a process killed mid-run and a resumed
one must end where an uninterrupted run ends.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
import tfgames  # noqa: E402
from conftest import TinyGAN, real_batches  # noqa: E402

if __name__ == "__main__":
    backup_dir, out, die_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
    keras.utils.set_random_seed(1)
    model = TinyGAN(seed=3)  # noise drawn from the model's seed generator (part of the state)
    model.compile(optimizer=tfgames.SGA(keras.optimizers.Adam(1e-2)))
    calls = []

    def maybe_die(batch, logs):
        calls.append(batch)
        if len(calls) == die_at:
            os._exit(17)  # like a kill: no cleanup, no exception handling

    callbacks = [keras.callbacks.BackupAndRestore(backup_dir),
                 keras.callbacks.LambdaCallback(on_train_batch_end=maybe_die)]
    model.fit(real_batches(4, 16), epochs=5, verbose=0, callbacks=callbacks)
    np.save(out, np.concatenate([v.numpy().ravel() for v in model.trainable_variables]))
