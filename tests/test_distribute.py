"""MirroredStrategy on 2 logical CPUs equals one device on the same global batch."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import free_ports

HERE = os.path.dirname(__file__)
OPTIMIZERS = ["sgd", "sga", "sga_db", "consensus", "adamirror", "lookahead_sga", "extragradient",
              "past_extragradient"]
#: Compared in the default run (one worker process for all three); the others under
#: `make test-slow` (15-minute budget of the default run).
MIRRORED_DEFAULT = ["sgd", "sga", "extragradient"]


def _result_of(script, names, timeout, *extra):
    """Run ``tests/<script> name,name,... *extra`` and return the JSON of its ``RESULT`` line."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.dirname(HERE), HERE])}
    proc = subprocess.run([sys.executable, os.path.join(HERE, script), ",".join(names), *extra],
                          capture_output=True, text=True, env=env, timeout=timeout)
    line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
    assert line, proc.stdout[-2000:] + proc.stderr[-4000:]
    return json.loads(line[0][len("RESULT "):])


def _run_worker(names):
    return _result_of("distributed_worker.py", names, 1800)


@pytest.fixture(scope="module")
def results():
    return _run_worker(MIRRORED_DEFAULT)


@pytest.mark.parametrize("name", MIRRORED_DEFAULT)
def test_mirrored_equals_single_device(results, name):
    _assert_mirrored_equals_single(results, name)


@pytest.mark.slow
def test_mirrored_equals_single_device_every_optimizer():
    others = [n for n in OPTIMIZERS if n not in MIRRORED_DEFAULT]
    results = _run_worker(others)
    for name in others:
        _assert_mirrored_equals_single(results, name)


def _assert_mirrored_equals_single(results, name):
    single = np.concatenate([np.ravel(w) for w in results[name]["single"]])
    mirrored = np.concatenate([np.ravel(w) for w in results[name]["mirrored"]])
    init = np.concatenate([np.ravel(w) for w in results[name]["init"]])
    assert np.abs(single - init).max() > 1e-3, "training must move the parameters"
    np.testing.assert_allclose(mirrored, single, rtol=1e-5, atol=1e-6)
    # The logged losses (and diagnostics) are the global batch's, not 1 / R of them.
    logs = results[name]["single_logs"]
    assert {k for k in logs if k.endswith("_loss")} == {"discriminator_loss", "generator_loss"}
    for key, values in logs.items():
        np.testing.assert_allclose(results[name]["mirrored_logs"][key], values, rtol=1e-5,
                                   atol=1e-6, err_msg=key)


@pytest.mark.parametrize("name", ["sga"] + [
    pytest.param(name, marks=pytest.mark.slow) for name in OPTIMIZERS if name != "sga"])
def test_multi_worker_equals_single_device(results, name):
    """Two worker processes on localhost with MultiWorkerMirroredStrategy."""
    ports = free_ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    procs = []
    for index in range(2):
        env = {**os.environ,
               "PYTHONPATH": os.pathsep.join([os.path.dirname(HERE), HERE]),
               "TF_CONFIG": json.dumps({"cluster": cluster,
                                        "task": {"type": "worker", "index": index}})}
        procs.append(subprocess.Popen(
            [sys.executable, os.path.join(HERE, "multiworker_worker.py"), name],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = [p.communicate(timeout=300) for p in procs]
    reference = results[name] if name in results else _run_worker([name])[name]
    single = np.concatenate([np.ravel(w) for w in reference["single"]])
    for proc, (out, err) in zip(procs, outs):
        line = [l for l in out.splitlines() if l.startswith("RESULT ")]
        assert proc.returncode == 0 and line, err[-4000:]
        worker = np.concatenate([np.ravel(w) for w in json.loads(line[0][len("RESULT "):])])
        np.testing.assert_allclose(worker, single, rtol=1e-5, atol=1e-6)


def _worker(names, mode):
    return _result_of("distributed_worker.py", names, 900, mode)


def _flat(weights):
    return np.concatenate([np.ravel(w) for w in weights])


def _assert_one_device(result):
    single, mirrored = _flat(result["single"]), _flat(result["mirrored"])
    assert np.abs(single - _flat(result["init"])).max() > 1e-3, "training must move"
    np.testing.assert_allclose(mirrored, single, rtol=1e-5, atol=1e-6)
    # The logged losses are the global batch's, finite also with an empty replica.
    for key, values in result["single_logs"].items():
        assert np.all(np.isfinite(result["mirrored_logs"][key])), key
        np.testing.assert_allclose(result["mirrored_logs"][key], values, rtol=1e-5, atol=1e-6)


UNEVEN_DEFAULT = ["sga"]
UNEVEN_SLOW = ["sgd", "extragradient", "sga_db", "consensus", "past_extragradient", "adamirror",
               "lookahead_sga", "ogd", "per_player"]


@pytest.fixture(scope="module")
def uneven():
    return {mode: _worker(UNEVEN_DEFAULT, mode) for mode in ("uneven35", "uneven33")}


@pytest.mark.parametrize("mode", ["uneven35", "uneven33"])
@pytest.mark.parametrize("name", UNEVEN_DEFAULT)
def test_uneven_final_batch_equals_one_device(uneven, name, mode):
    """35 examples in global batches of 4: the last batch is split 2 + 1; 33: 1 + 0 (an empty
    replica). Each replica is weighted by its share of the global batch."""
    _assert_one_device(uneven[mode][name])


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["uneven35", "uneven33"])
def test_uneven_final_batch_equals_one_device_every_optimizer(mode):
    results = _worker(UNEVEN_SLOW, mode)
    for name in UNEVEN_SLOW:
        _assert_one_device(results[name])


def test_replicas_draw_their_own_noise_from_the_models_stream():
    """Noise drawn in the step from GameModel.seed_generator under 2 replicas: each replica
    draws its own (not a copy), the pooled draws are N(0, 1) and the replicas' draws are
    uncorrelated (one device on the global batch, in distribution), the stream is a function
    of the seed (reproducible), and on one device it is Keras' stream unchanged."""
    result = _worker(["x"], "noise")
    a = np.array(result["a"])  # draws x replicas x 8 x 3
    assert a.shape == (200, 2, 8, 3)
    assert np.abs(a[:, 0] - a[:, 1]).min() > 0  # no replica copies another's noise
    np.testing.assert_array_equal(a, np.array(result["b"]))  # same seed, same R: same noise
    assert np.abs(a - np.array(result["c"])).max() > 1  # another seed: other noise
    n = a.size
    assert abs(a.mean()) < 4 / np.sqrt(n)
    assert abs(a.var() - 1) < 4 * np.sqrt(2 / n)
    r = np.corrcoef(a[:, 0].ravel(), a[:, 1].ravel())[0, 1]
    assert abs(r) < 4 / np.sqrt(a[:, 0].size)
    assert abs(np.corrcoef(a[:-1].ravel(), a[1:].ravel())[0, 1]) < 4 / np.sqrt(n)
    np.testing.assert_array_equal(np.array(result["one"])[:, 0], np.array(result["plain"]))
    first, second = result["drawn"]
    np.testing.assert_array_equal(_flat(first), _flat(second))


def _divergence(cases):
    return _result_of("divergence_worker.py", cases, 900)


def _assert_step_undone(result, what):
    """TrainingDiverged at step 6 naming ``what``; every replica's copy of every model and
    optimizer variable bitwise equal to its value before step 6; the replicas agree."""
    assert result["message"] is not None, "TrainingDiverged was not raised"
    assert f"Training diverged at step 6 of this fit() call: {what}" in result["message"]
    assert ("keeps its weights, optimizer state and noise stream from before that step on "
            "every one of the 2 replicas") in result["message"]
    assert "not undone" not in result["message"]
    unequal = [n for n, e in zip(result["names"], result["equal"]) if not e]
    assert not unequal, unequal
    assert result["n_variables"] > 10 and result["finite"] and result["replicas_agree"]
    assert result["iterations"] == 5


def test_divergence_under_mirrored_strategy_keeps_the_last_finite_state():
    """MirroredStrategy on 2 logical CPUs: a NaN loss at step 6 with SGA, and a NaN loss on one
    replica only (weights finite; before the replicas' flags were combined, no error was raised)
    with Adam. The model and optimizer state after the error equal, bitwise, on both replicas,
    the state before step 6."""
    results = _divergence(["sga_loss", "adam_replica1"])
    nan_loss = "player 'discriminator''s loss (discriminator_loss) = nan"
    _assert_step_undone(results["sga_loss"], nan_loss)
    _assert_step_undone(results["adam_replica1"], nan_loss)


@pytest.mark.slow
def test_divergence_under_mirrored_strategy_stock_optimizer_and_nan_gradient():
    """With Adam: a NaN loss on every replica, and a finite loss with a NaN gradient (only the
    updated weights are not finite): the step is named and undone on both replicas."""
    results = _divergence(["adam_loss", "adam_weight"])
    _assert_step_undone(results["adam_loss"],
                        "player 'discriminator''s loss (discriminator_loss) = nan")
    _assert_step_undone(results["adam_weight"], "a weight of player 'generator'")
