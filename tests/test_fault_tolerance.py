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


def _worker(tmp_path, name, die_at, optimizer, fault_at=None, callback="tfgames"):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.dirname(HERE), HERE])}
    env.pop("TFGAMES_FAULT_AT", None)
    if fault_at is not None:
        env["TFGAMES_FAULT_AT"] = str(fault_at)
        env["TFGAMES_FAULT_LOG"] = str(tmp_path / "faults.log")
    out = str(tmp_path / f"{name}.npy")
    proc = subprocess.run([sys.executable, os.path.join(HERE, "fault_worker.py"),
                           str(tmp_path / f"backup_{name}"), out, str(die_at), optimizer,
                           callback],
                          env=env, capture_output=True, text=True, timeout=300)
    return proc, out


def _kill_chain(tmp_path, kill_points, optimizer="sga"):
    """An uninterrupted run, then a run killed at each injected fault point in turn (each
    restart resumes from the backup the previous one left), then a run to the end."""
    proc, straight = _worker(tmp_path, "straight", -1, optimizer)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for k in kill_points:
        proc, resumed = _worker(tmp_path, "resumed", -1, optimizer, fault_at=k)
        assert proc.returncode == 17, (k, proc.stderr[-3000:])
        assert not os.path.exists(resumed)
    proc, resumed = _worker(tmp_path, "resumed", -1, optimizer)
    assert proc.returncode == 0, proc.stderr[-3000:]
    np.testing.assert_array_equal(np.load(resumed), np.load(straight))
    log = (tmp_path / "faults.log").read_text().splitlines()
    return [line.split(" ", 1)[1] for line in log]


# Fault points of one epoch-end backup (tfgames.atomic.write_atomically twice, then the
# commit): 1 weights written, 2 weights half-written (the temporary file truncated to half its
# bytes, then death), 3 weights fsynced, 4 weights renamed (before the manifest), 5-8 the same
# for backup.json, 9 committed (before the old backup is deleted).
def test_kill_inside_backup_writes_resumes_bitwise(tmp_path):
    # Half-written weights file; weights renamed but not committed; half-written manifest.
    reached = _kill_chain(tmp_path, [2, 4, 13])
    assert "half-written epoch-1.weights.h5" in reached
    assert "renamed epoch-1.weights.h5" in reached
    assert "half-written backup.json" in reached


@pytest.mark.slow
def test_kill_at_every_fault_point_resumes_bitwise(tmp_path):
    """46 kills: each process dies at its k-th fault point, k = 1, 2, ..., 10, then every
    9th + offset, so that every kind of point is hit in several epochs; 20+ kill points."""
    points = list(range(1, 10)) + [9 + k for k in range(1, 10)] + [18 + k for k in (2, 4, 6, 8)]
    points += [27 + k for k in range(1, 10)] + [36 + k for k in (1, 2, 4, 5, 9)] + [46]
    reached = _kill_chain(tmp_path, points)
    assert len(points) >= 20
    kinds = {r.split(" ")[0] for r in reached}
    assert kinds == {"written", "half-written", "fsynced", "renamed", "backup"}


@pytest.mark.slow
def test_random_sigkills_resume_bitwise(tmp_path):
    """Real kill -9 at random instants (while importing, tracing, training or writing)."""
    import random
    import signal
    import time

    proc, straight = _worker(tmp_path, "straight", -1, "sga")
    assert proc.returncode == 0, proc.stderr[-3000:]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.dirname(HERE), HERE])}
    out = str(tmp_path / "resumed.npy")
    argv = [sys.executable, os.path.join(HERE, "fault_worker.py"),
            str(tmp_path / "backup_resumed"), out, "-1", "sga"]
    rng = random.Random(17)
    kills = 0
    for _ in range(8):
        child = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(4.0, 14.0))
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
            kills += 1
        child.wait()
        if os.path.exists(out):
            os.unlink(out)
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert kills >= 4
    np.testing.assert_array_equal(np.load(out), np.load(straight))


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
