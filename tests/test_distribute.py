"""MirroredStrategy on 2 logical CPUs equals one device on the same global batch."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

HERE = os.path.dirname(__file__)
OPTIMIZERS = ["sgd", "sga", "sga_db", "consensus", "adamirror", "lookahead_sga", "extragradient",
              "past_extragradient"]


@pytest.fixture(scope="module")
def results():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.dirname(HERE), HERE])}
    proc = subprocess.run([sys.executable, os.path.join(HERE, "distributed_worker.py"),
                           ",".join(OPTIMIZERS)], capture_output=True, text=True, env=env,
                          timeout=600)
    line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
    assert line, proc.stdout[-2000:] + proc.stderr[-4000:]
    return json.loads(line[0][len("RESULT "):])


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_mirrored_equals_single_device(results, name):
    single = np.concatenate([np.ravel(w) for w in results[name]["single"]])
    mirrored = np.concatenate([np.ravel(w) for w in results[name]["mirrored"]])
    init = np.concatenate([np.ravel(w) for w in results[name]["init"]])
    assert np.abs(single - init).max() > 1e-3, "training must move the parameters"
    np.testing.assert_allclose(mirrored, single, rtol=1e-5, atol=1e-6)


def _free_ports(n):
    import socket
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.mark.parametrize("name", ["sga"] + [
    pytest.param(name, marks=pytest.mark.slow) for name in OPTIMIZERS if name != "sga"])
def test_multi_worker_equals_single_device(results, name):
    """Two worker processes on localhost with MultiWorkerMirroredStrategy."""
    ports = _free_ports(2)
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
    single = np.concatenate([np.ravel(w) for w in results[name]["single"]])
    for proc, (out, err) in zip(procs, outs):
        line = [l for l in out.splitlines() if l.startswith("RESULT ")]
        assert proc.returncode == 0 and line, err[-4000:]
        worker = np.concatenate([np.ravel(w) for w in json.loads(line[0][len("RESULT "):])])
        np.testing.assert_allclose(worker, single, rtol=1e-5, atol=1e-6)
