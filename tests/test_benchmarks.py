"""The step-time benchmark (benchmarks/step_time.py) runs the path users run, end to end."""

import importlib.util
import math
import re
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str = "step_time"):
    """The benchmark ``benchmarks/<name>.py`` as a module."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _table_rows(table: str) -> dict[str, list[str]]:
    """The rows of one printed architecture table (below its title line): name -> cells."""
    lines = [line.split() for line in table.splitlines()[2:] if line.strip()]
    return {line[0]: line[1:] for line in lines if not line[0].startswith("targets")}


def test_tfgames_rows_run_fits_step_with_noise_drawn_inside_compute_losses():
    st = _load()
    weights, x = st.init_weights(2, 16), st.real_batch(32)
    run = st.keras_runner(weights, st.tfgames.SGA(st.keras.optimizers.RMSprop(st.LR)), x)
    model = run.model
    # The data are the real samples only: the noise is not fed.
    assert getattr(model.train_function, "_tfgames_function", False)  # GameModel's own
    assert x.shape == (32, st.X_DIM)
    traces, draws = model.train_step_traces, model.noise_draws
    assert traces >= 1 and draws >= 1  # compute_losses drew noise when fit's step was traced
    state = model.seed_generator.state.numpy().copy()
    iterations = int(model.optimizer.iterations.numpy())
    run(2)
    # The compiled step fit runs: two optimizer steps, no retrace, and the seed generator that
    # compute_losses draws from advanced (new noise every step).
    assert int(model.optimizer.iterations.numpy()) == iterations + 2
    assert model.train_step_traces == traces and model.noise_draws == draws
    assert not np.array_equal(model.seed_generator.state.numpy(), state)
    # The default SGA resolves to double backward on this CPU and executes its products.
    assert st.default_hvp_mode() == "double_backward"
    assert run.products > 0


def test_step_time_targets_rows_and_executed_products(capsys):
    """The default run's share of the table: ``--small --targets-only`` end to end, and the
    seed's TF1 row beside it: the best TF1 graph executes fewer products than the seed's code,
    the default SGA what the hand-written double-backward step does, and a plain step the same
    products in tfgames, by hand and in TF1 (the full table: the slow test below)."""
    st = _load()
    st.main(["--small", "--targets-only", "--reps", "1", "--steps", "1"])
    out = capsys.readouterr().out
    table = out.split("depth 2, width 32, batch 32")[1]
    rows = _table_rows(table)
    assert list(rows) == st.TARGET_ROWS
    products = {name: int(r[1]) for name, r in rows.items()}
    seed = st.runners("tf1-sga-seed", st.init_weights(2, 32), 2, 32, st.real_batch(32), False)
    seed.close()
    assert products["tf1-sga-best"] < seed.products
    assert products["tfgames-sga"] == products["hand-sga-double_backward"]
    assert products["tfgames-sga"] <= products["tf1-sga-best"]
    assert products["tfgames-plain"] == products["hand-plain"]
    assert re.search(r"targets \(paired: .*\): sga/tf1-best .* plain/hand-plain", table)


@pytest.mark.slow
def test_step_time_small_table_and_executed_products(capsys):
    st = _load()
    st.main(["--small", "--reps", "1", "--steps", "1"])
    out = capsys.readouterr().out
    header, table = out.split("depth 2, width 32, batch 32")
    assert "resolves to 'double_backward'" in header
    rows = _table_rows(table)
    assert list(rows) == ["tfgames-sga", "tfgames-sga-forward", "tfgames-sga-unchecked",
                          "tfgames-sga-tf1", "hand-sga-forward", "hand-sga-double_backward",
                          "tf1-sga-seed", "tf1-sga-best", "tfgames-plain",
                          "tfgames-plain-unchecked", "tfgames-plain-tf1", "keras-plain",
                          "hand-plain", "tf1-rms"]
    assert all(math.isfinite(float(v)) and float(v) > 0 for r in rows.values() for v in r)
    products = {name: int(r[1]) for name, r in rows.items()}
    ops = {name: int(r[2]) for name, r in rows.items()}
    assert all(ops[name] > products[name] for name in rows)
    # The divergence check is ops of its own; TF1's fused RMSProp is one kernel per variable.
    assert ops["tfgames-sga-unchecked"] < ops["tfgames-sga"]
    assert ops["tfgames-plain-unchecked"] < ops["tfgames-plain"]
    assert ops["tfgames-plain-tf1"] < ops["tfgames-plain"]
    # Colocating every gradient call alike lets Grappler merge what the seed's code computes
    # twice: the best TF1 graph executes fewer products than the seed's code as written.
    assert products["tf1-sga-best"] < products["tf1-sga-seed"]
    # A plain step is the same matrix work in tfgames, by hand and in TF1.
    assert (products["tfgames-plain"] == products["tfgames-plain-unchecked"]
            == products["tfgames-plain-tf1"] == products["keras-plain"]
            == products["hand-plain"] == products["tf1-rms"])
    # The default (double backward) executes what the hand-written double-backward step does,
    # and no more than the best TF1 graph.
    assert (products["tfgames-sga"] == products["hand-sga-double_backward"]
            == products["tfgames-sga-tf1"])
    assert products["tfgames-sga"] <= products["tf1-sga-best"]
    for which in ("medians", "minima"):
        assert re.search(rf"targets \({which}; default tfgames.SGA, hvp_mode resolves to "
                         r"'double_backward'\): sga/tf1-best \d+\.\d+, sga/plain \d+\.\d+, "
                         r"sga/hand-sga \d+\.\d+, plain/hand-plain \d+\.\d+", table)
    paired = re.search(r"targets \(paired: .*\): (.*)", table).group(1)
    found = re.findall(r"([\w/-]+) (\d+\.\d+) \[(\d+\.\d+), (\d+\.\d+)\] <= ([\d.]+): "
                       r"(met|not met|within noise|too few repetitions)", paired)
    assert [f[0] for f in found] == ["sga/tf1-best", "sga/plain", "sga/hand-sga",
                                     "plain/hand-plain"]
    for name, median, low, high, limit, said in found:
        assert float(limit) == st.LIMITS[name]
        assert float(low) <= float(median) <= float(high)
        assert said == "too few repetitions"  # --reps 1


def test_paired_ratio_interval_and_verdict():
    """Per-repetition ratios: their median, an interval that holds it and narrows with less
    spread; the verdict against a limit."""
    st = _load()
    rng = np.random.default_rng(1)
    b = rng.uniform(1.0, 2.0, 40)
    drift = rng.uniform(0.5, 1.5, 40)  # the machine's state, shared by the rows of a repetition
    m, lo, hi = st.paired_ratio(list(1.2 * b * drift), list(b * drift))
    assert m == pytest.approx(1.2) and lo == pytest.approx(1.2) and hi == pytest.approx(1.2)
    a = 1.2 * b * drift * rng.uniform(0.9, 1.1, 40)
    m, lo, hi = st.paired_ratio(list(a), list(b * drift))
    assert m == pytest.approx(float(np.median(a / (b * drift))))
    assert 1.1 < lo < m < hi < 1.3
    assert st.verdict(lo, hi, 1.35, 40) == "met" and st.verdict(lo, hi, 1.0, 40) == "not met"
    assert st.verdict(lo, hi, 1.2, 40) == "within noise"
    assert st.verdict(lo, hi, 1.35, 4) == "too few repetitions"


def test_targets_only_table_compares_the_target_rows(capsys):
    """``--targets-only``'s five rows make the full table's targets: the hand-written SGA
    column is the hand-written double-backward step, every ratio is of the given times."""
    st = _load()
    ms = {"tfgames-sga": 33.0, "hand-sga-double_backward": 30.0, "tf1-sga-best": 31.0,
          "tfgames-plain": 11.0, "hand-plain": 10.0}
    drift = [1.0, 1.3, 0.8, 1.1, 0.9, 1.2]  # the machine's state, the same for every row
    result = {k: st.Timing(v / 1e3, 1, 2, v / 1e3, [v / 1e3 * d for d in drift])
              for k, v in ms.items()}
    targets = st.print_table("t", result)
    assert targets == pytest.approx({"sga/tf1-best": 33 / 31, "sga/plain": 3.0,
                                     "sga/hand-sga": 1.1, "plain/hand-plain": 1.1})
    out = capsys.readouterr().out
    assert "/tf1-seed" not in out and "/tf1-rms" not in out  # rows that did not run
    assert ("sga/tf1-best 1.065 [1.065, 1.065] <= 1.0: not met, sga/plain 3.000 [3.000, 3.000] "
            "<= 3.6: met, sga/hand-sga 1.100 [1.100, 1.100] <= 1.05: not met, plain/hand-plain "
            "1.100 [1.100, 1.100] <= 1.05: not met") in out
    assert list(ms) == st.TARGET_ROWS


@pytest.mark.slow
def test_memory_worker_reports_a_step_high_water_mark():
    st = _load()
    m = st.measure_memory("tfgames-plain", 2, 16, 32)
    assert m["peak_kb"] >= m["rss_before_kb"] > 100_000  # TensorFlow's runtime is resident
    assert m["step_kb"] == m["peak_kb"] - m["rss_before_kb"] >= 0


@pytest.mark.slow
def test_step_overhead_rows_run_their_variants(capsys, monkeypatch):
    """benchmarks/step_overhead.py: every row runs, and the Keras-function row never runs the
    direct step while the default row always does."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    module = _load("step_overhead")
    from tfgames import _train_function

    direct_calls = []
    original = _train_function._one_device_iterator

    def spy(iterator):
        direct = original(iterator)
        direct_calls.append(direct)
        return direct

    monkeypatch.setattr(_train_function, "_one_device_iterator", spy)
    rows = module._rows(4, 4)
    direct_calls.clear()
    rows["tfgames-plain-keras-function"](2)
    assert not direct_calls  # the row patches the check away: Keras' function
    rows["tfgames-plain"](2)
    assert direct_calls == [True, True]
    module.main(["--reps", "1", "--steps", "1", "--width", "4", "--batch", "4"])
    out = capsys.readouterr().out
    names = [line.split()[0] for line in out.splitlines()[2:]]
    assert names == ["tfgames-plain", "tfgames-plain-unchecked", "tfgames-plain-lowered-check",
                     "tfgames-plain-keras-function", "keras-plain", "hand-plain"]


@pytest.mark.slow
def test_tf1_graph_runtime_runs_the_same_graph_both_ways(capsys, monkeypatch):
    """benchmarks/tf1_graph_runtime.py: the session and TF2's function runtime step the same
    GraphDef to the same values, and every row is timed."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    module = _load("tf1_graph_runtime")
    module.main(["--width", "8", "--batch", "8", "--depth", "2", "--reps", "2", "--steps", "1"])
    out = capsys.readouterr().out
    difference = float(re.search(r"after one step each from equal values: (\S+)", out).group(1))
    assert difference < 1e-6  # float32 weights of order 0.1-1: the same arithmetic
    names = [line.split()[0] for line in out.splitlines()[3:]]
    assert names == ["tf1-sga-best", "tf1-sga-best-as-function", "tfgames-sga",
                     "hand-sga-double_backward"]


@pytest.mark.slow
def test_fixed_sum_order_benchmark_builds_each_row_both_ways(capsys, monkeypatch):
    """benchmarks/fixed_sum_order.py: each row timed with and without the setting; only SGA's
    double-backward step loses merged products (327 instead of 262 at depth 6)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    result = _load("fixed_sum_order").main(["--small"])
    assert set(result) == {"sga", "extragradient", "plain"}
    products = {name: (fixed, default) for name, (*_, fixed, default) in result.items()}
    assert products["sga"] == (327, 262)
    assert products["extragradient"][0] == products["extragradient"][1]
    assert products["plain"][0] == products["plain"][1]
    assert all(math.isfinite(ratio) and ratio > 0 for ratio, *_ in result.values())
    assert "| sga |" in capsys.readouterr().out


def test_order_dependent_sums_benchmark_counts_both_settings(capsys):
    """benchmarks/order_dependent_sums.py: the lab's extragradient and SGA steps have sums of
    three or more with TensorFlow's defaults and none under fixed_sum_order (as the lab runs
    every optimizer)."""
    counts = _load("order_dependent_sums").main(["extragradient", "sga"])
    assert all(on > 0 and fixed == 0 for on, fixed in counts.values())
    assert "| extragradient |" in capsys.readouterr().out


@pytest.mark.slow
@pytest.mark.parametrize("plain_data", [False, True])
def test_sga_repeatability_runs_the_tutorial_gan(capsys, monkeypatch, plain_data):
    """benchmarks/sga_repeatability.py --gan tutorial [--plain-data]: repeats of one epoch of
    the tutorial's GAN from one saved state, one line per model with its distinct end states."""
    monkeypatch.setattr("sys.argv", ["sga_repeatability.py", "--gan", "tutorial", "--models",
                                     "1", "--repeats", "2", "--arithmetic-off"]
                        + ["--plain-data"] * plain_data)
    _load("sga_repeatability").main()
    out = capsys.readouterr().out
    assert tf.config.optimizer.get_experimental_options().get("arithmetic_optimization") \
        is not False  # the script restores the process-wide setting it changed
    assert out.startswith("gan tutorial, mode sga-double-backward, arithmetic optimizer off")
    assert ("plain tf.data input" in out.splitlines()[0]) == plain_data
    assert re.search(r"model 0: after one fit \w+; 2 repeats .* \([12] distinct\)", out)
