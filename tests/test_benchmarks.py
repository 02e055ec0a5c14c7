"""The step-time benchmark runs end to end (tiny nets) and its graph-work counts are sane."""

import importlib.util
import math
import re
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "step_time.py"


def _load():
    spec = importlib.util.spec_from_file_location("step_time", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_step_time_benchmark_smoke_run_and_matmul_counts(capsys):
    _load().main(["--small", "--reps", "1", "--steps", "1", "--matmuls", "--inner", "--profile"])
    out = capsys.readouterr().out
    timing, rest = out.split("Matrix products in one train step")
    counts, parts_text = rest.split("MatMul ops of the products alone")
    rows = {line.split()[0]: line.split()[1:] for line in timing.splitlines()[2:] if line.strip()}
    names = ["plain-rmsprop", "sga-forward", "sga-double_backward", "plain-rmsprop+xla",
             "sga-forward+xla", "sga-double_backward+xla", "tf1-rms", "tf1-sga",
             "update-keras-rmsprop", "update-tf1-fused-rmsprop"]
    assert list(rows) == names
    assert all(math.isfinite(float(v)) and float(v) > 0 for r in rows.values() for v in r)
    assert "default (sga-forward, no XLA on CPU)" in parts_text
    parts_text, profile_text = parts_text.split("Profiled op time per step")
    profiled = re.findall(r"^(sga-forward|sga-double_backward|tf1-sga) +(\d+) +(\d+)$",
                          profile_text, re.M)
    assert [p[0] for p in profiled] == ["sga-forward", "sga-double_backward", "tf1-sga"]
    assert all(int(p[1]) > 0 and int(p[2]) > 0 for p in profiled)
    table = [line.split() for line in counts.splitlines()[1:] if re.match(r"\S+\s+\d+\s+\d+$", line)]
    executed = {row[0]: int(row[1]) for row in table}
    matmuls = {row[0]: int(row[2]) for row in table}
    assert list(matmuls) == [n for n in names if not n.endswith("+xla")
                             and not n.startswith("update")]
    assert re.search(r"inner update alone: Keras RMSprop \d+\.\d\dx TF1's fused kernel", out)
    # A tf.function step executes what Grappler leaves of its graph.
    for name in ("plain-rmsprop", "sga-forward", "sga-double_backward"):
        assert executed[name] == matmuls[name]
    # The same algorithms do the same matrix work: a plain Keras step and TF1 RMSProp, and
    # double-backward SGA and the seed's TF1 SymplecticOptimizer (which uses that trick) once
    # Grappler has run over the whole graph.
    assert matmuls["plain-rmsprop"] == matmuls["tf1-rms"] == executed["tf1-rms"]
    assert matmuls["sga-double_backward"] == matmuls["tf1-sga"]
    assert matmuls["sga-forward"] > 3 * matmuls["plain-rmsprop"]
    parts = {line.rsplit(None, 1)[0]: int(line.rsplit(None, 1)[1])
             for line in parts_text.splitlines()[1:]
             if line.strip() and not line.startswith(("H xi", "inner", "default"))}
    assert parts["xi"] == matmuls["plain-rmsprop"]
    assert parts["all, forward"] == matmuls["sga-forward"]
    assert parts["all, double_backward"] == matmuls["sga-double_backward"]
    # Forward mode's four products by a zero tangent (the data and the noise have none in the
    # first layers' JVPs, forward and backward); the double-backward graph has none.
    assert parts["zero operand, all, forward"] == 4
    assert parts["zero operand, all, db"] == 0
    shared = {m[1]: int(m[2]) for m in re.finditer(r"H xi (\w+): \d+ ops alone, (\d+) of them",
                                                   parts_text)}
    assert shared["double_backward"] > shared["forward"] > 0
    # The TF1 session does not merge them: it executes the double-backward H xi's shared
    # products a second time, and so more products than forward-mode SGA.
    assert executed["tf1-sga"] == matmuls["tf1-sga"] + shared["double_backward"]
    assert executed["tf1-sga"] > executed["sga-forward"] > executed["sga-double_backward"]
