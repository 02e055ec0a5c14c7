"""Interrupted and resumed training equals uninterrupted training; divergence is reported."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfgames
from conftest import TinyGAN, real_batches

HERE = os.path.dirname(__file__)


def _worker(tmp_path, name, die_at, optimizer):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.dirname(HERE), HERE])}
    out = str(tmp_path / f"{name}.npy")
    proc = subprocess.run([sys.executable, os.path.join(HERE, "fault_worker.py"),
                           str(tmp_path / f"backup_{name}"), out, str(die_at), optimizer],
                          env=env, capture_output=True, text=True, timeout=300)
    return proc, out


@pytest.mark.parametrize("optimizer", ["sga"] + [
    pytest.param(name, marks=pytest.mark.slow)
    for name in ("extragradient", "past_extragradient", "adamirror", "lookahead", "alternating")])
def test_killed_and_resumed_run_equals_uninterrupted(tmp_path, optimizer):
    proc, straight = _worker(tmp_path, "straight", -1, optimizer)
    assert proc.returncode == 0, proc.stderr[-3000:]
    killed, resumed = _worker(tmp_path, "resumed", 11, optimizer)  # epoch 3, batch 3 of 4
    assert killed.returncode == 17 and not os.path.exists(resumed)
    proc, resumed = _worker(tmp_path, "resumed", -1, optimizer)
    assert proc.returncode == 0, proc.stderr[-3000:]
    np.testing.assert_array_equal(np.load(resumed), np.load(straight))


def test_divergence_names_step_player_and_keeps_last_good_checkpoint(tmp_path):
    model = tfgames.games.Bilinear()
    model.compile(optimizer=keras.optimizers.SGD(0.1))

    ckpt = str(tmp_path / "last.weights.h5")
    data = tfgames.datasets.step_dataset(10)

    def poison(batch, logs):
        if batch == 5:  # step 6 sees a NaN parameter
            model.y.assign(float("nan"))

    callbacks = [tfgames.TerminateOnDivergence(),
                 keras.callbacks.ModelCheckpoint(ckpt, save_weights_only=True, save_freq=1),
                 keras.callbacks.LambdaCallback(on_train_batch_begin=poison)]
    with pytest.raises(tfgames.TrainingDiverged,
                       match=r"step 6 \(epoch 1, batch 6\): player 'x'.s loss \(x_loss\) = nan"):
        model.fit(data, epochs=1, verbose=0, callbacks=callbacks)
    restored = tfgames.games.Bilinear()
    restored.compile(optimizer=keras.optimizers.SGD(0.1))
    restored.load_weights(ckpt)
    assert np.isfinite(restored.x.numpy()) and np.isfinite(restored.y.numpy())


def test_divergence_threshold_and_bad_argument():
    model = tfgames.games.Bilinear(x0=10.0, y0=10.0)
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    with pytest.raises(tfgames.TrainingDiverged, match=r"\|value\| > 1000.0"):
        model.fit(tfgames.datasets.step_dataset(200), epochs=1, verbose=0,
                  callbacks=[tfgames.TerminateOnDivergence(threshold=1e3)])
    with pytest.raises(ValueError, match="`threshold` must be > 0. Received: threshold=0"):
        tfgames.TerminateOnDivergence(threshold=0)
