"""MirroredStrategy on 2 logical CPUs equals one device on the same global batch."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

HERE = os.path.dirname(__file__)
OPTIMIZERS = ["sgd", "sga", "sga_db", "consensus"]


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
