"""The experiments of seed 000 at smoke size, through the code path of the full runs."""

import dataclasses
import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfgames
import tfgames.lab.experiments
import tfgames.lab.metrics
from tfgames.compat.v1 import RMSPropOptimizer
from tfgames.lab.experiments import (
    EXPERIMENTS,
    gaussian75,
    get_experiment,
    mog,
    registry,
    thresholds,
)
from tfgames.lab.experiments.runner import (
    GanConfig,
    RunOptions,
    gan_losses,
    jsonable,
    mlp,
    train_with_snapshots,
)


def _strict_json(path):
    def reject(constant):
        raise AssertionError(f"non-standard JSON constant {constant} in {path}")

    return json.loads(path.read_text(), parse_constant=reject)


# -- optimizer registry ----------------------------------------------------------------------
def test_registry_builds_every_available_optimizer_with_its_learning_rate():
    for name in registry.available_optimizers():
        opt = registry.make_optimizer(name, 3e-4)
        assert isinstance(opt, keras.optimizers.Optimizer)
        rates = opt.learning_rate  # {player: rate} for a PerPlayer (negative-momentum)
        for rate in rates.values() if isinstance(rates, dict) else [rates]:
            assert float(keras.ops.convert_to_numpy(rate)) == pytest.approx(3e-4)


def test_registry_sga_is_the_seeds_configuration():
    opt = registry.make_optimizer("sga", 1e-4)
    assert isinstance(opt, tfgames.SGA)
    assert isinstance(opt.inner_optimizer, RMSPropOptimizer)  # TF1 RMSProp, ms_0 = 1
    assert (opt.lambda_, opt.use_signs, opt.epsilon, opt.normalizer) == (
        1.0, True, 0.1, "tensors")
    assert isinstance(registry.make_optimizer("rmsprop", 1e-4), RMSPropOptimizer)
    assert registry.make_optimizer("adam", 1e-4).epsilon == 1e-8  # TF1's AdamOptimizer


def test_registry_rejects_bad_names_and_missing_modules(monkeypatch):
    assert registry.resolve_optimizer_names("SGA, rms") == ["sga", "rmsprop"]
    with pytest.raises(ValueError, match="Unknown optimizer 'foo'.*choose from"):
        registry.resolve_optimizer_names("sga,foo")
    with pytest.raises(ValueError, match="listed twice"):
        registry.resolve_optimizer_names("rms,rmsprop")
    with pytest.raises(ValueError, match="At least one optimizer"):
        registry.resolve_optimizer_names(" , ")
    missing = registry.OptimizerSpec("ghost", "x", lambda lr: None, "tfgames.no_such_module")
    monkeypatch.setitem(registry.OPTIMIZERS, "ghost", missing)
    assert "ghost" not in registry.available_optimizers()
    with pytest.raises(ValueError, match="needs the module tfgames.no_such_module"):
        registry.make_optimizer("ghost", 1e-4)
    with pytest.raises(ValueError, match="learning_rate"):
        registry.make_optimizer("sgd", 0.0)


@pytest.mark.parametrize("name", ["consensus", "adamirror", "extragradient"])
def test_every_registry_optimizer_trains_the_gan(name):
    if name not in registry.available_optimizers():
        pytest.skip(f"{registry.OPTIMIZERS[name].module} is not installed")
    config = GanConfig(depth=1, width=4, z_dim=2, batch_size=16, steps=2, snapshot_every=2,
                       eval_batches=1, learning_rate=1e-2)
    model, shots = train_with_snapshots(registry.make_optimizer(name, 1e-2), config, verbose=0)
    assert model.train_step_traces == 1
    assert all(np.isfinite(s.losses).all() for s in shots)
    assert shots[0].losses != shots[-1].losses


# -- the GAN -----------------------------------------------------------------------------------
def test_mlp_has_sonnet_initialisation():
    keras.utils.set_random_seed(0)
    net = mlp(64, 2, 384, 2, name="g")
    kernels = [w for w in net.weights if w.path.endswith("kernel")]
    biases = [w for w in net.weights if w.path.endswith("bias")]
    assert [tuple(k.shape) for k in kernels] == [(64, 384), (384, 384), (384, 2)]
    for kernel in kernels:
        values = kernel.numpy()
        std = 1.0 / math.sqrt(values.shape[0])
        assert np.abs(values).max() <= 2.0 * std + 1e-7  # truncated at 2 std
        # Variance of N(0, std^2) truncated at +-2 std: std^2 * 0.7737.
        assert values.std() == pytest.approx(std * math.sqrt(0.7737), rel=0.05)
    assert all(not b.numpy().any() for b in biases)


def test_gan_losses_at_a_confused_discriminator_are_the_equilibrium_values():
    zero = keras.layers.Lambda(lambda x: tf.zeros((tf.shape(x)[0], 1)))
    losses = gan_losses(zero, keras.layers.Identity(), tf.ones((8, 2)), tf.ones((8, 2)))
    assert float(losses["discriminator"]) == pytest.approx(2 * math.log(2), abs=1e-6)
    assert float(losses["generator"]) == pytest.approx(math.log(2), abs=1e-6)


def test_snapshot_steps():
    assert GanConfig(steps=10, snapshot_every=4).snapshot_steps() == [0, 4, 8, 10]
    assert GanConfig(steps=4, snapshot_every=2).snapshot_steps() == [0, 2, 4]
    with pytest.raises(ValueError, match="target"):
        GanConfig(target="ring")
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        GanConfig(steps=0)


def test_training_in_segments_traces_once_and_snapshots_each_segment():
    config = mog.PRESETS["smoke"]
    seen = []
    model, shots = train_with_snapshots(
        keras.optimizers.SGD(0.05), config, seed=1, verbose=0,
        on_snapshot=lambda shot, m: seen.append((shot.step, m.generator.weights[0].numpy())))
    assert [s.step for s in shots] == [step for step, _ in seen] == [0, 2, 4]
    assert model.train_step_traces == 1
    assert int(model.optimizer.iterations) == config.steps
    assert not np.array_equal(seen[0][1], seen[-1][1])  # the generator moved
    assert shots[0].train_losses is None and all(np.isfinite(s.train_losses).all()
                                                   for s in shots[1:])
    assert shots[1].train_losses == (shots[1].train_logs["discriminator_loss"],
                                     shots[1].train_logs["generator_loss"])
    n = config.eval_batches * config.batch_size
    assert all(s.samples.shape == (n, 2) for s in shots)


class _Interrupt(Exception):
    pass


def _interrupt_at(step):
    def on_snapshot(shot, model):
        if shot.step == step:
            raise _Interrupt

    return on_snapshot


@pytest.mark.parametrize("name", ["sga", "extragradient"])
def test_interrupted_run_resumes_exactly_from_its_checkpoint(tmp_path, name):
    config = dataclasses.replace(mog.PRESETS["smoke"], steps=6)  # snapshots 0, 2, 4, 6
    lr = config.learning_rate
    ref_seen = []
    reference, ref_shots = train_with_snapshots(
        registry.make_optimizer(name, lr), config, seed=2, verbose=0,
        on_snapshot=lambda shot, m: ref_seen.append(m.generator.weights[0].numpy()))
    ckpt = tmp_path / "ckpt"
    with pytest.raises(_Interrupt):  # dies after the step-4 checkpoint is written
        train_with_snapshots(registry.make_optimizer(name, lr), config, seed=2, verbose=0,
                             checkpoint_dir=ckpt, on_snapshot=_interrupt_at(4))
    seen = []
    resumed, shots = train_with_snapshots(
        registry.make_optimizer(name, lr), config, seed=2, verbose=0, checkpoint_dir=ckpt,
        on_snapshot=lambda shot, m: seen.append((shot.step, m.generator.weights[0].numpy())))
    # Replayed snapshots come with the model as it was at their step.
    assert [s for s, _ in seen] == [s.step for s in shots] == [0, 2, 4, 6]
    for (_, weights), ref_weights in zip(seen, ref_seen):
        np.testing.assert_array_equal(weights, ref_weights)
    assert not np.array_equal(seen[0][1], seen[2][1])
    assert int(resumed.optimizer.iterations) == int(reference.optimizer.iterations)
    for a, b in zip(resumed.weights, reference.weights):  # variables and noise stream
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    for a, b in zip(resumed.optimizer.variables, reference.optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    for a, b in zip(shots, ref_shots):
        assert a.losses == b.losses
        np.testing.assert_array_equal(a.samples, b.samples)
    assert shots[-1].wall_time_s >= shots[2].wall_time_s  # the clock goes on
    # A finished run resumes to itself without training.
    again, _ = train_with_snapshots(registry.make_optimizer(name, lr), config, seed=2,
                                    verbose=0, checkpoint_dir=ckpt)
    assert again.train_step_traces == 0


def test_forward_mode_sga_is_bitwise_repeatable():
    """Six fresh models (six traces of the train step) end with the same bits. Regression
    test: when both of forward mode's passes drew their noise from one seed tensor, runs
    differed in the last bit in about half of the pairs (CPU, TF 2.21)."""
    config = dataclasses.replace(mog.PRESETS["smoke"], steps=4)
    runs = []
    for _ in range(6):
        model, _ = train_with_snapshots(registry.make_optimizer("sga", config.learning_rate),
                                        config, seed=2, verbose=0)
        runs.append([w.numpy() for w in model.weights])
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            np.testing.assert_array_equal(a, b)


def test_checkpoints_of_another_run_are_refused(tmp_path):
    config = mog.PRESETS["smoke"]
    train_with_snapshots(keras.optimizers.SGD(0.05), config, seed=1, verbose=0,
                         checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match=r"different run \(their \['seed'\] differ"):
        train_with_snapshots(keras.optimizers.SGD(0.05), config, seed=2, verbose=0,
                             checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match=r"different run \(their \['optimizer'\] differ"):
        train_with_snapshots(keras.optimizers.SGD(0.01), config, seed=1, verbose=0,
                             checkpoint_dir=tmp_path)


def test_mog_resume_rewrites_the_same_metrics(tmp_path):
    uninterrupted = mog.run(tmp_path / "a", preset="smoke", optimizers="sga", seed=3, verbose=0)
    mog.run(tmp_path / "b", preset="smoke", optimizers="sga", seed=3, verbose=0, resume=True)
    state = tmp_path / "b" / "checkpoints" / "sga" / "state.json"
    saved = json.loads(state.read_text())
    saved["snapshots"] = saved["snapshots"][:2]  # as if killed after the step-2 checkpoint
    state.write_text(json.dumps(saved))
    resumed = mog.run(tmp_path / "b", preset="smoke", optimizers="sga", seed=3, verbose=0,
                      resume=True)
    runs = [jsonable(data["runs"]["sga"]) for data in (resumed, uninterrupted)]
    assert [s["step"] for s in runs[0]["snapshots"]] == [0, 2, 4]
    for a, b in zip(runs[0]["snapshots"], runs[1]["snapshots"]):
        a.pop("wall_time_s"), b.pop("wall_time_s")
        assert a == b
    assert runs[0]["status"] == "done"
    assert _strict_json(tmp_path / "b" / "metrics.json")["runs"]["sga"]["final"]["step"] == 4


def test_jsonable_turns_non_finite_into_null():
    assert jsonable({"a": np.float32(np.nan), "b": [np.inf, 1.5], "c": np.arange(2)}) == {
        "a": None, "b": [None, 1.5], "c": [0, 1]}


# -- the experiments, smoke size ---------------------------------------------------------------
def test_mog_smoke(tmp_path):
    data = mog.run(tmp_path, preset="smoke", optimizers="rmsprop,sga", seed=3, verbose=0,
                   command="test")
    saved = _strict_json(tmp_path / "metrics.json")
    assert saved["runs"].keys() == {"rmsprop", "sga"} and saved["command"] == "test"
    # The stored layout (keys and their order) is the one RunRecord.start wrote before the
    # keywords moved into RunOptions.
    assert list(saved)[:6] == ["experiment", "preset", "seed", "command", "config",
                               "optimizers"]
    assert (saved["preset"], saved["seed"], saved["optimizers"]) == ("smoke", 3, ["rmsprop", "sga"])
    for name, entry in saved["runs"].items():
        assert entry["status"] == "done"
        assert [s["step"] for s in entry["snapshots"]] == [0, 2, 4]
        final = entry["final"]
        assert final["finite"] and 0 <= final["modes_covered"] <= 16
        for key in ("disc_loss", "gen_loss", "loss_distance", "high_quality_share",
                    "kl_modes", "wall_time_s"):
            assert math.isfinite(final[key])
        assert (tmp_path / f"mog_{name}.png").stat().st_size > 0
        with np.load(tmp_path / f"samples_{name}.npz") as samples:
            assert sorted(samples.files) == ["step_0", "step_2", "step_4"]
    lambdas = [s["train_diagnostics"]["sga_lambda"] for s in saved["runs"]["sga"]["snapshots"][1:]]
    assert all(-1.0 <= lam <= 1.0 for lam in lambdas)  # mean of +-1 over each segment
    assert saved["runs"]["sga"]["snapshots"][0]["train_diagnostics"] == {}
    # Same seed, same initial weights and evaluation data: identical step-0 snapshots.
    first = [data["runs"][n]["snapshots"][0] for n in ("rmsprop", "sga")]
    assert first[0]["disc_loss"] == first[1]["disc_loss"]
    assert "| sga | 4 |" in (tmp_path / "summary.md").read_text()
    rows = {r["run"]: r for r in mog.collect([tmp_path])}
    for name in ("rmsprop", "sga"):
        final = saved["runs"][name]["final"]
        for key in ("modes_covered", "high_quality_share", "kl_modes", "modes_covered_10std",
                    "high_quality_share_10std", "kl_modes_10std", "disc_loss", "step"):
            assert rows[name][key] == pytest.approx(final[key], abs=1e-12)


def test_blown_up_rows():
    def row(d_loss, g_loss):
        return {"finite": bool(np.isfinite([d_loss, g_loss]).all()),
                "loss_distance": tfgames.lab.metrics.loss_equilibrium_distance(d_loss, g_loss)}

    assert not mog.blown_up(row(1.3854, 0.6937)) and not mog.blown_up(row(0.345, 3.468))
    assert mog.blown_up(row(221251425.6, 66353.6)) and mog.blown_up(row(np.nan, 0.7))
    assert mog.blown_up(row(1.0, np.inf))


def test_a_run_that_blows_up_says_so(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(mog, "BLOWUP_DISTANCE", 1e-6)  # every snapshot counts as blown up
    with caplog.at_level("WARNING", logger="tfgames.lab.experiments"):
        mog.run(tmp_path, preset="smoke", optimizers="rmsprop", verbose=0)
    entry = _strict_json(tmp_path / "metrics.json")["runs"]["rmsprop"]
    assert entry["blew_up_at_step"] == 0 and entry["status"] == "done"
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "rmsprop blew up by step 0: L_D" in warnings[0]
    assert "more than 1e-06 from the equilibrium losses" in warnings[0]


def test_gaussian75_smoke(tmp_path):
    gaussian75.run(tmp_path, preset="smoke", optimizers=["rmsprop"], verbose=0)
    saved = _strict_json(tmp_path / "metrics.json")
    assert list(saved)[:7] == ["experiment", "preset", "seed", "command", "config",
                               "optimizers", "spectrum_samples"]
    entry = saved["runs"]["rmsprop"]
    dim = gaussian75.PRESETS["smoke"].x_dim
    for key in ("before", "after"):
        values = entry[key]["singular_values"]
        assert len(values) == dim and all(math.isfinite(v) for v in values)
        assert values == sorted(values, reverse=True)
        assert entry[key]["spectrum_error"] == pytest.approx(
            math.sqrt(np.mean((np.array(values) - 1.0) ** 2)))
    assert [s["step"] for s in entry["snapshots"]] == [0, 2, 4]
    for name in ("gaussian75_spectra.png", "gaussian75_rmsprop.png", "summary.md"):
        assert (tmp_path / name).stat().st_size > 0


def test_thresholds_smoke(tmp_path):
    thresholds.run(tmp_path, preset="smoke", optimizers="rmsprop", verbose=0)
    saved = _strict_json(tmp_path / "metrics.json")
    assert list(saved)[:8] == ["experiment", "preset", "seed", "command", "config",
                               "optimizers", "grids", "convergence"]
    table = saved["table"]
    assert [(r["optimizer"], r["learning_rate"]) for r in table] == [
        ("rmsprop", 1e-3), ("rmsprop", 1e-2)]
    for row in table:
        assert row["finite"] and isinstance(row["converged"], bool)
        assert row["converged"] == (row["loss_distance"] <= thresholds.CONVERGENCE_TOLERANCE)
    assert (tmp_path / "thresholds.png").stat().st_size > 0
    assert "| coarse | rmsprop | 0.01 |" in (tmp_path / "summary.md").read_text()


def test_convergence_definition():
    ok = {"finite": True, "loss_distance": 0.01}
    assert thresholds.converged(ok)
    assert not thresholds.converged({"finite": True, "loss_distance": 0.06})
    assert not thresholds.converged({"finite": False, "loss_distance": 0.0})
    assert not thresholds.converged({"finite": True, "loss_distance": float("nan")})
    assert thresholds.converged({"finite": True, "loss_distance": 0.05})


def test_threshold_figure_draws_diverged_runs(tmp_path):
    row = dict(grid="coarse", optimizer="sga", modes_covered=0, high_quality_share=0.0)
    table = [
        {**row, "learning_rate": 1e-4, "loss_distance": 0.01, "finite": True, "converged": True},
        {**row, "learning_rate": 1e-3, "loss_distance": None, "finite": False,
         "converged": False},
        {**row, "grid": "fine", "learning_rate": 2e-4, "loss_distance": 0.3, "finite": True,
         "converged": False},
    ]
    figure = thresholds.threshold_figure(table, path=tmp_path / "t.png")
    assert [ax.get_title().split()[0] for ax in figure.axes] == ["coarse", "fine"]
    line = figure.axes[0].lines[0]  # the sga line of the coarse grid
    assert list(line.get_xdata()) == [1e-4, 1e-3]
    assert line.get_ydata()[1] > 0.3  # the diverged run is drawn above every finite one
    assert (tmp_path / "t.png").stat().st_size > 0


@pytest.mark.parametrize("name", sorted(EXPERIMENTS))
def test_every_experiment_takes_the_run_options_and_nothing_else(tmp_path, name):
    run = get_experiment(name).run
    assert [f.name for f in dataclasses.fields(RunOptions)] == [
        "preset", "optimizers", "steps", "seed", "verbose", "command", "resume"]
    with pytest.raises(TypeError, match="unexpected keyword argument 'optimiser'"):
        run(tmp_path / "out", preset="smoke", optimiser="rmsprop")
    with pytest.raises(TypeError, match="1 positional argument but 2 were given"):
        run(tmp_path / "out", "smoke")
    assert not (tmp_path / "out").exists()  # refused before the folder is created


def test_every_experiment_has_the_three_presets():
    for name in EXPERIMENTS:
        module = get_experiment(name)
        assert set(module.PRESETS) == set(module.DEFAULT_OPTIMIZERS) == {
            "paper", "quick", "smoke"}
    paper = mog.PRESETS["paper"]
    assert (paper.depth, paper.width, paper.z_dim, paper.batch_size, paper.learning_rate,
            paper.steps) == (6, 384, 64, 256, 1e-4, 10_000)
    paper75 = gaussian75.PRESETS["paper"]
    assert (paper75.x_dim, paper75.depth, paper75.width, paper75.z_dim, paper75.batch_size,
            paper75.learning_rate, paper75.steps) == (75, 2, 200, 200, 64, 2e-4, 20_000)
    assert thresholds.GRIDS["paper"] == {"coarse": [1e-5, 5e-5, 1e-4, 5e-4, 1e-3],
                                         "fine": [8e-5, 1e-4, 1.2e-4, 1.4e-4, 1.6e-4]}
    with pytest.raises(ValueError, match="Unknown experiment"):
        get_experiment("ring")
