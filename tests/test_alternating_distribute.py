"""Alternating update orders (negative momentum) and Alex-GDA under MirroredStrategy equal one
device (tests/alternating_distribute_worker.py: 2 logical CPUs, the same global batches).

Both apply several inner optimizers one after the other within one training step; an
alternating order with a fresh batch per step also picks the active player with a conditional,
built in cross-replica context (``PerPlayer._switch_across_replicas``).

Tolerance: the replicas' gradients are summed over their halves of the batch (each weighted by
its share b_r / B) where one device averages the whole batch, so the float32 gradients differ
in the order of their additions, by a few ulps (float32 epsilon 1.2e-7). Over 7 steps of the
configurations below, with learning rates <= 0.1 and weights of size 0.01-1, the weights
differed by at most 6e-8 and the logged losses (about 0.6-1.5) by at most 2.4e-7, 2 ulps
(TF 2.21, Keras 3.15). rtol = atol = 1e-6 leaves a margin of about 16 on the weights, while an
update that is 1 / R of the global one, or a player stepping at the wrong time, moves weights by
>= 1e-3 (asserted: training moves them by more than that).
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import free_ports

HERE = os.path.dirname(__file__)
#: The default run's configurations (one worker process, 2 steps: one step of each player).
DEFAULT = ["alex_gda_sgd", "negative_momentum_alternating"]
#: Every configuration of the worker, 7 steps (k:1 cycles wrap around), under make test-slow.
EVERY = ["alex_gda_sgd", "alex_gda_adam", "alex_gda_per_player", "negative_momentum_alternating",
         "negative_momentum_2to1", "negative_momentum_2to1_reuse", "adam_generator_first_1to3",
         "lookahead_alternating"]


def _results(names, steps):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.dirname(HERE), HERE])}
    proc = subprocess.run(
        [sys.executable, os.path.join(HERE, "alternating_distribute_worker.py"),
         ",".join(names), str(steps)],
        capture_output=True, text=True, env=env, timeout=1200)
    line = [entry for entry in proc.stdout.splitlines() if entry.startswith("RESULT ")]
    assert line, proc.stdout[-2000:] + proc.stderr[-4000:]
    return json.loads(line[0][len("RESULT "):])


def _flat(weights):
    return np.concatenate([np.ravel(w) for w in weights])


def _assert_mirrored_equals_single(result, name, steps):
    single, mirrored = _flat(result["single"]), _flat(result["mirrored"])
    assert np.abs(single - _flat(result["init"])).max() > 1e-3, f"{name}: training must move"
    np.testing.assert_allclose(mirrored, single, rtol=1e-6, atol=1e-6, err_msg=name)
    # The logged losses after every batch are the global batch's (not 1 / R of them).
    single_logs, mirrored_logs = result["single_logs"], result["mirrored_logs"]
    assert len(single_logs) == len(mirrored_logs) == steps
    for one, two in zip(single_logs, mirrored_logs):
        assert set(one) == set(two) == {"discriminator_loss", "generator_loss"}
        for key in one:
            np.testing.assert_allclose(two[key], one[key], rtol=1e-6, atol=1e-6,
                                       err_msg=f"{name} {key}")


def test_alex_gda_and_alternating_negative_momentum_under_mirrored_strategy_equal_one_device():
    """2 steps each: Alex-GDA (SGD, extrapolation 2) and negative momentum with the
    alternating order (the discriminator's step, then the generator's)."""
    results = _results(DEFAULT, 2)
    for name in DEFAULT:
        _assert_mirrored_equals_single(results[name], name, 2)


@pytest.mark.slow
def test_every_alternating_order_and_alex_gda_under_mirrored_strategy_equal_one_device():
    """7 steps each: Alex-GDA with SGD, Adam and per-player optimizers; negative momentum
    alternating, 2:1 (fresh batches) and 2:1 on one batch (batches='reuse'); Adam 1:3 with the
    generator first; Lookahead around an alternating PerPlayer."""
    results = _results(EVERY, 7)
    for name in EVERY:
        _assert_mirrored_equals_single(results[name], name, 7)


def _multi_worker_run(name, steps, cluster=None, index=None):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.dirname(HERE), HERE])}
    env.pop("TF_CONFIG", None)
    if cluster is not None:
        env["TF_CONFIG"] = json.dumps({"cluster": cluster,
                                       "task": {"type": "worker", "index": index}})
    return subprocess.Popen(
        [sys.executable, os.path.join(HERE, "alternating_multiworker_worker.py"), name,
         str(steps)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _result_line(proc, out, err):
    line = [entry for entry in out.splitlines() if entry.startswith("RESULT ")]
    assert proc.returncode == 0 and line, err[-4000:]
    return json.loads(line[0][len("RESULT "):])


#: The multi-worker configurations and their steps: 3 for the 1:1 orders, 7 for the k:1 ones
#: (2:1 and 1:3 cycles wrap around at least once).
MULTI_WORKER = {"alex_gda_sgd": 3, "negative_momentum_alternating": 3,
                "negative_momentum_2to1": 7, "negative_momentum_2to1_reuse": 7,
                "adam_generator_first_1to3": 7}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(MULTI_WORKER))
def test_multi_worker_equals_one_device(name):
    """Two worker processes on localhost under MultiWorkerMirroredStrategy (one replica each,
    the batch sharded by element) against one device (tests/alternating_multiworker_worker.py);
    same tolerance as above. The k:1 orders take a fresh batch per inner step (2:1, 1:3) or run
    a whole cycle on one batch (2:1, batches='reuse'): every step's losses see the one-device
    run's batch of that step, worker 0 its first 8 rows and worker 1 the last 8 (recorded
    inside the losses, exact), one batch per step."""
    steps = MULTI_WORKER[name]
    ports = free_ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    workers = [_multi_worker_run(name, steps, cluster, index) for index in range(2)]
    single = _multi_worker_run(name, steps)
    reference = _result_line(single, *single.communicate(timeout=600))
    assert np.abs(_flat(reference["weights"]) - _flat(reference["init"])).max() > 1e-3
    results = [_result_line(proc, *proc.communicate(timeout=600)) for proc in workers]
    for result in results:
        np.testing.assert_allclose(_flat(result["weights"]), _flat(reference["weights"]),
                                   rtol=1e-6, atol=1e-6, err_msg=name)
        assert len(result["logs"]) == len(reference["logs"]) == steps
        for one, two in zip(reference["logs"], result["logs"]):
            for key in one:
                np.testing.assert_allclose(two[key], one[key], rtol=1e-6, atol=1e-6,
                                           err_msg=f"{name} {key}")
    # The data: one distinct (16, 5) batch [x | z] per step on one device, all different; each
    # worker's shard of step t is its half of the one-device batch t.
    seen = [np.array(b) for b in reference["batches"]]
    assert len(seen) == steps and all(b.shape == (16, 5) for b in seen)
    assert len({b.tobytes() for b in seen}) == steps
    for index, result in enumerate(results):
        assert len(result["batches"]) == steps, (name, index, len(result["batches"]))
        for t, (mine, full) in enumerate(zip(result["batches"], seen)):
            np.testing.assert_array_equal(np.array(mine), full[8 * index:8 * index + 8],
                                          err_msg=f"{name}: worker {index}, step {t}")
