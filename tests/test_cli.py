"""The ``tfgames`` command line: listing, argument errors, a smoke run in and out of process."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tfgames.lab.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _exit_code_and_error(capsys, argv):
    with pytest.raises(SystemExit) as info:
        main(argv)
    return info.value.code, capsys.readouterr().err


def test_list_shows_experiments_presets_and_optimizers(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for word in ("mog", "thresholds", "gaussian75", "paper", "quick", "smoke", "sga",
                 "rmsprop", "adamirror", "extragradient", "consensus", "omd = adamirror"):
        assert word in out


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "required: COMMAND"),
        (["run", "mog", "--seeds", "1", "1"], "--seeds lists a seed twice"),
        (["run", "mog", "--seed", "1", "--seeds", "2"], "not both"),
        (["run", "mog", "--config", "{}"], "--config is for module:Class games only"),
        (["run", "mog", "--learning-rate", "-1"], "expected a finite number > 0, got -1"),
        (["run", "no_such_module_xyz:Game"], "cannot import module 'no_such_module_xyz'"),
        (["run", "json:JSONDecoder"], "must name a tfgames.GameModel subclass"),
        (["run", "tfgames.games:Bilinear", "--config", "{oops"], "--config is not valid JSON"),
        (["run", "tfgames.games:Bilinear", "--config", "[1]"], "must be a JSON object"),
        (["run", "tfgames.games:Bilinear", "--config", "missing.json"],
         "neither JSON text nor a readable file"),
        (["run", "mog", "--seeds"], "expected at least one argument"),
        (["run"], "required: EXPERIMENT"),
        (["run", "ring"], "invalid choice: 'ring'"),
        (["run", "mog", "--preset", "huge"], "invalid choice: 'huge'"),
        (["run", "mog", "--steps", "0"], "--steps: expected an integer >= 1, got 0"),
        (["run", "mog", "--steps", "ten"], "--steps: expected an integer >= 1, got 'ten'"),
        (["run", "mog", "--seed", "-1"], "--seed: expected an integer >= 0, got -1"),
        (["run", "mog", "--optimizers", "sga,foo"], "Unknown optimizer 'foo'"),
        (["run", "mog", "--optimizers", "sga,sga"], "listed twice"),
        (["run", "mog", "--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_arguments_exit_2_with_the_reason(capsys, argv, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, err = _exit_code_and_error(capsys, argv)
    assert code == 2
    assert message in err
    assert len(err.splitlines()) == 1 and err.startswith("tfgames: error: ")


def test_run_in_process_then_summarize(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["run", "mog", "--preset", "smoke", "--optimizers", "sgd", "--steps", "2",
            "--seed", "5", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["command"] == "tfgames " + " ".join(argv)
    assert saved["seed"] == 5 and saved["config"]["steps"] == 2
    final = saved["runs"]["sgd"]["final"]
    assert saved["runs"]["sgd"]["status"] == "done" and final["step"] == 2
    assert (out / "mog_sgd.png").stat().st_size > 0
    assert capsys.readouterr().out == ""  # --quiet

    assert main(["summarize", str(out)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert len(table) == 3 and table[2].startswith(
        f"| sgd | 5 | 2 | {final['disc_loss']:.4f} | {final['gen_loss']:.4f} |")
    code, err = _exit_code_and_error(capsys, ["summarize", str(tmp_path / "nothing")])
    assert code == 2 and "no metrics.json" in err


def test_python_dash_m_tfgames_smoke_run(tmp_path):
    out = tmp_path / "g75"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-m", "tfgames", "run", "gaussian75", "--preset", "smoke",
         "--optimizers", "sgd", "--steps", "2", "--out", str(out)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"metrics and figures written to {out}" in result.stdout
    assert "sgd step 2/2" in result.stderr  # the log lines of the run
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["runs"]["sgd"]["after"]["spectrum_error"] >= 0
    assert (out / "gaussian75_spectra.png").stat().st_size > 0
    result = subprocess.run([sys.executable, "-m", "tfgames", "summarize", str(out)],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    error = saved["runs"]["sgd"]["after"]["spectrum_error"]
    assert "| sgd | 0 | 2 |" in result.stdout and f"{error:.4f}" in result.stdout


def test_every_summary_table_is_one_markdown_format():
    """mog's, gaussian75's, thresholds', the CLI's and the protocols' tables all come from
    tfgames.lab.tables.markdown_table: a separator cell per column, a row of the wrong width is
    refused, and a user game without final values gets no empty column."""
    from tfgames.lab.cli import _user_table, seed_statistics
    from tfgames.lab.tables import markdown_table, number, step_cell

    text = markdown_table(["a", "b"], [[1, "x"], [number(None), number(2.0, 1)]])
    assert text == "| a | b |\n| --- | --- |\n| 1 | x |\n| n/a | 2.0 |\n"
    with pytest.raises(ValueError, match=r"one cell per column \(2: \['a', 'b'\]\)\. "
                                         r"Received a row of 3 cells: \[1, 2, 3\]"):
        markdown_table(["a", "b"], [[1, 2, 3]])
    assert step_cell({"step": 4, "steps": 10, "status": "running"}) == "4 of 10 (running)"
    assert step_cell({"step": 4, "steps": 10, "status": "done"}) == "4"
    assert _user_table([{"optimizer": "sga", "seed": 0, "status": "done"}]).splitlines() == [
        "| optimizer | seed | status |", "| --- | --- | --- |", "| sga | 0 | done |"]
    rows = [{"optimizer": "sga", "seed": s, "loss": v} for s, v in ((0, 1.0), (1, 3.0))]
    lines = seed_statistics(rows, ["loss"]).splitlines()
    assert lines[-3:] == ["| optimizer | seeds | loss |", "| --- | --- | --- |",
                          "| sga | 2 | 2.0000 +- 1.4142 |"]  # mean 2, std sqrt(2) (ddof 1)
