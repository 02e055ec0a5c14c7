"""Trains a GAN with a backup callback; optionally dies (os._exit) mid-step or inside a write.

Used by tests/test_fault_tolerance.py in subprocesses: a process killed mid-run and a resumed
one must end where an uninterrupted run ends. Arguments: backup folder, output .npy, the
batch-end call at which to die (-1: never), optimizer name, callback (``tfgames``: the
atomic ``tfgames.callbacks.BackupAndRestore``; ``keras``: Keras' own). The environment
variable ``TFGAMES_FAULT_AT=k`` kills the process at the k-th write fault point
(:mod:`tfgames.atomic`), e.g. with the weights file half written. Every run trains under
:func:`tfgames.repeatability.fixed_sum_order`, so that its steps sum in a fixed order (the
bitwise comparison needs a repeatable step, docs/scaling.md).
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from conftest import TinyGAN, real_batches

import tfgames
from tfgames.callbacks import BackupAndRestore

OPTIMIZERS = {  # each with the state the resumed run must restore
    "sga": lambda: tfgames.SGA(keras.optimizers.Adam(1e-2)),  # the inner Adam's moments
    "extragradient": lambda: tfgames.Extragradient(keras.optimizers.Adam(1e-2)),
    "past_extragradient": lambda: tfgames.Extragradient(  # the stored past gradient
        keras.optimizers.SGD(0.05), past=True),
    "adamirror": lambda: tfgames.Adamirror(1e-2),  # the previous direction
    "lookahead": lambda: tfgames.Lookahead(  # slow weights, k = 3 across epoch ends
        tfgames.Extragradient(keras.optimizers.Adam(1e-2)), k=3),
    "alternating": lambda: {"discriminator": keras.optimizers.Adam(1e-2),
                            "generator": keras.optimizers.Adam(1e-2)},
}

if __name__ == "__main__":
    backup_dir, out, die_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
    name = sys.argv[4] if len(sys.argv) > 4 else "sga"
    which = sys.argv[5] if len(sys.argv) > 5 else "tfgames"
    keras.utils.set_random_seed(1)
    model = TinyGAN(seed=3)  # noise drawn from the model's seed generator (part of the state)
    model.compile(optimizer=OPTIMIZERS[name](),
                  schedule={"discriminator": 2, "generator": 1} if name == "alternating" else None)
    calls = []

    def maybe_die(batch, logs):
        calls.append(batch)
        if len(calls) == die_at:
            os._exit(17)  # like a kill: no cleanup, no exception handling

    backup = (BackupAndRestore(backup_dir) if which == "tfgames"
              else keras.callbacks.BackupAndRestore(backup_dir))
    callbacks = [backup, keras.callbacks.LambdaCallback(on_train_batch_end=maybe_die)]
    with tfgames.repeatability.fixed_sum_order():
        model.fit(real_batches(4, 16), epochs=5, verbose=0, callbacks=callbacks)
    np.save(out, np.concatenate([v.numpy().ravel() for v in model.trainable_variables]))
