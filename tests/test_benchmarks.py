"""The step-time benchmark runs end to end (tiny nets) and its graph-work counts are sane."""

import importlib.util
import math
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "step_time.py"


def _load():
    spec = importlib.util.spec_from_file_location("step_time", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_step_time_benchmark_smoke_run_and_matmul_counts(capsys):
    _load().main(["--small", "--reps", "1", "--steps", "1", "--matmuls"])
    out = capsys.readouterr().out
    timing, counts = out.split("MatMul ops in one train step")
    rows = {line.split()[0]: line.split()[1:] for line in timing.splitlines()[2:] if line.strip()}
    names = ["plain-rmsprop", "sga-forward", "sga-double_backward", "plain-rmsprop+xla",
             "sga-forward+xla", "sga-double_backward+xla", "tf1-rms", "tf1-sga"]
    assert list(rows) == names
    assert all(math.isfinite(float(v)) and float(v) > 0 for r in rows.values() for v in r)
    assert "default (sga-forward, no XLA on CPU)" in counts
    matmuls = {line.split()[0]: int(line.split()[1]) for line in counts.splitlines()[1:]
               if line.strip() and not line.startswith("default")}
    assert list(matmuls) == [n for n in names if not n.endswith("+xla")]
    # The same algorithms do the same matrix work: a plain Keras step and TF1 RMSProp, and
    # double-backward SGA and the seed's TF1 SymplecticOptimizer (which uses that trick).
    assert matmuls["plain-rmsprop"] == matmuls["tf1-rms"]
    assert matmuls["sga-double_backward"] == matmuls["tf1-sga"]
    assert matmuls["sga-forward"] > 3 * matmuls["plain-rmsprop"]
