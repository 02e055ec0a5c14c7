"""The console script's entry point ``tfgames_cli``: ``--help``, ``--version``, ``list``, every
command's ``--help`` and argument errors import neither TensorFlow, Keras, NumPy nor the
``tfgames`` package (checked in fresh interpreters); ``list``'s static data equals the live
registries; the installed ``tfgames`` console script is this entry point."""

import configparser
import importlib
import importlib.metadata
import os
import pprint
import re
import subprocess
import sys
from pathlib import Path

import pytest

import tfgames_cli

ROOT = Path(__file__).resolve().parents[1]
HEAVY = {"tensorflow", "keras", "numpy", "tfgames"}

# Runs the entry point in a fresh interpreter, then prints (after a marker line on stdout) the
# exit status and which of HEAVY got imported.
PROBE = (
    "import sys\n"
    "import tfgames_cli\n"
    "try:\n"
    "    code = tfgames_cli.main(sys.argv[1:])\n"
    "except SystemExit as stop:\n"
    "    code = stop.code\n"
    "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'keras', 'numpy',"
    " 'tfgames'})\n"
    "sys.stdout.write(f'\\n--probe-- {code} {\",\".join(heavy) or \"-\"}\\n')\n"
)


def _env():
    return {**os.environ, "COLUMNS": "100",
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def _probe(argv, cwd):
    result = subprocess.run([sys.executable, "-c", PROBE, *argv], cwd=cwd, env=_env(),
                            capture_output=True, text=True, timeout=60)
    out, _, tail = result.stdout.rpartition("\n--probe-- ")
    code, heavy = tail.split()
    return int(code), [] if heavy == "-" else heavy.split(","), out, result.stderr


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--help"], ["usage: tfgames [-h] [--version] COMMAND ...", "list", "summarize",
                      "protocols", "run", "--version"]),
        (["--version"], []),
        (["list"], []),
        (["run", "--help"], ["usage: tfgames run [-h]", "EXPERIMENT", "module:Class",
                             "--preset {quick,paper,smoke}", "--optimizers", "--seeds S [S ...]",
                             "--learning-rate", "--config", "--resume", "gaussian75, mog, "
                             "thresholds"]),
        (["summarize", "--help"], ["usage: tfgames summarize [-h] folders [folders ...]",
                                   "mean +- std over the seeds"]),
    ],
)
def test_help_version_and_list_import_no_tensorflow(argv, expected, tmp_path):
    code, heavy, out, err = _probe(argv, tmp_path)
    assert (code, heavy, err) == (0, [], "")
    if argv == ["--version"]:
        assert out == f"tfgames {importlib.metadata.version('tfgames')}\n"
    elif argv == ["list"]:
        assert out == tfgames_cli.listing() + "\n"
        assert "  sga            SGA over TF1 RMSProp" in out
        assert "aliases: omd = adamirror, rms = rmsprop" in out
    for text in expected:
        assert text in " ".join(out.split()), text


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "the following arguments are required: COMMAND (see `tfgames --help`)"),
        (["lst"], "argument COMMAND: invalid choice: 'lst'"),
        (["run"], "the following arguments are required: EXPERIMENT"),
        (["run", "ring"], "invalid choice: 'ring' (choose from gaussian75, mog, thresholds, or "
                          "give your own game as module:Class)"),
        (["run", "mog", "--steps", "0"], "--steps: expected an integer >= 1, got 0"),
        (["run", "mog", "--steps", "ten"], "--steps: expected an integer >= 1, got 'ten'"),
        (["run", "mog", "--seed", "-1"], "--seed: expected an integer >= 0, got -1"),
        (["run", "mog", "--seeds", "0", "x"], "--seeds: expected an integer >= 0, got 'x'"),
        (["run", "mog", "--learning-rate", "nan"], "expected a finite number > 0, got nan"),
        (["run", "mog", "--learning-rate", "fast"], "expected a number > 0, got 'fast'"),
        (["run", "mog", "--preset", "huge"], "invalid choice: 'huge'"),
        # Checked by tfgames_cli.check_run, also before any import:
        (["run", "mog", "--out", "taken"], "--out 'taken' cannot be used as the output "
                                           "folder: it is a file. Choose a folder path."),
        (["run", "mog", "--out", "taken/sub"], "it is below the file 'taken'"),
        (["run", "mog", "--config", "{}"], "--config is for module:Class games only; "
                                          "experiment 'mog' takes its settings from --preset."),
        (["run", "mog", "--learning-rate", "0.1"], "--learning-rate is for module:Class"),
        (["run", "mog", "--seed", "1", "--seeds", "2"], "pass --seed S or --seeds S"),
        (["run", "mog", "--seeds", "1", "1"], "--seeds lists a seed twice: [1, 1]."),
        (["run", "my_game:Game", "--config", "{oops"], "--config is not valid JSON"),
        (["run", "my_game:Game", "--config", "[1]"], "--config must be a JSON object"),
        (["run", "my_game:Game", "--config", "no.json"], "neither JSON text nor a readable"),
        (["run", "mog", "--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_argument_errors_are_one_line_exit_2_without_tensorflow(argv, message, tmp_path):
    (tmp_path / "taken").write_text("not a folder")
    code, heavy, out, err = _probe(argv, tmp_path)
    assert (code, heavy, out) == (2, [], "")
    assert err.startswith("tfgames: error: ")
    assert len(err.splitlines()) == 1 and message in err, err


def _live_registries():
    from tfgames.lab.experiments import EXPERIMENTS, get_experiment, registry

    experiments = {
        name: (description, {preset: tuple(names) for preset, names in
                             get_experiment(name).DEFAULT_OPTIMIZERS.items()})
        for name, (_, description) in EXPERIMENTS.items()
    }
    optimizers = {name: (spec.description, spec.module)
                  for name, spec in registry.OPTIMIZERS.items()}
    return experiments, optimizers, dict(registry.ALIASES), registry


def test_static_listing_equals_the_live_registries():
    experiments, optimizers, aliases, registry = _live_registries()
    paste = "Update tfgames_cli.py to:\n" + pprint.pformat(
        {"EXPERIMENTS": experiments, "OPTIMIZERS": optimizers, "ALIASES": aliases},
        sort_dicts=False, width=100)
    # Ordered comparisons: `list` prints in registry order.
    assert list(tfgames_cli.EXPERIMENTS.items()) == list(experiments.items()), paste
    assert list(tfgames_cli.OPTIMIZERS.items()) == list(optimizers.items()), paste
    assert list(tfgames_cli.ALIASES.items()) == list(aliases.items()), paste
    assert tuple(sorted(experiments)) == tfgames_cli.EXPERIMENT_NAMES
    from tfgames.lab.experiments import get_experiment

    for name in experiments:
        assert set(get_experiment(name).PRESETS) == set(tfgames_cli.PRESETS), name

    # The same text as a listing built from the live objects, availability included.
    live = {name: (spec.description, spec.available, spec.module)
            for name, spec in registry.OPTIMIZERS.items()}
    assert tfgames_cli.listing() == tfgames_cli.format_listing(experiments, live, aliases)
    assert all(available for _, available, _ in live.values())  # a full installation


def test_module_installed_looks_on_disk_without_importing(tmp_path, monkeypatch):
    package = tmp_path / "h3_probe_pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("raise RuntimeError('imported')\n")
    (package / "sub" / "__init__.py").write_text("raise RuntimeError('imported')\n")
    (package / "sub" / "mod.py").write_text("raise RuntimeError('imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    found = {name: tfgames_cli.module_installed(name) for name in (
        "h3_probe_pkg", "h3_probe_pkg.sub", "h3_probe_pkg.sub.mod", "h3_probe_pkg.sub.gone",
        "h3_probe_pkg.sub.mod.deeper", "h3_probe_pkg.gone.mod", "h3_no_such_top.mod", "json")}
    assert found == {"h3_probe_pkg": True, "h3_probe_pkg.sub": True,
                     "h3_probe_pkg.sub.mod": True, "h3_probe_pkg.sub.gone": False,
                     "h3_probe_pkg.sub.mod.deeper": False, "h3_probe_pkg.gone.mod": False,
                     "h3_no_such_top.mod": False, "json": True}
    assert not [m for m in sys.modules if m.startswith("h3_probe_pkg")]


def test_the_package_cli_is_the_same_command():
    from tfgames.lab import cli

    assert cli.main is tfgames_cli.main and cli.build_parser is tfgames_cli.build_parser
    assert cli.EXPERIMENT_NAMES is tfgames_cli.EXPERIMENT_NAMES


def test_setup_cfg_and_the_installed_console_script_use_the_fast_entry_point(tmp_path):
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    assert config["options"]["py_modules"].split() == ["tfgames_cli"]
    assert "tfgames = tfgames_cli:main" in config["options.entry_points"]["console_scripts"]

    try:
        distribution = importlib.metadata.distribution("tfgames")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("tfgames is not installed (a bare source tree): no console script")
    (entry,) = [e for e in distribution.entry_points
                if e.group == "console_scripts" and e.name == "tfgames"]
    assert entry.value == "tfgames_cli:main", (
        f"the installed console script is {entry.value}; reinstall: pip install -e . --no-deps")
    script = Path(sys.executable).with_name("tfgames")
    assert script.is_file(), script
    # The script itself, with every import it makes logged (-X importtime, on stderr).
    result = subprocess.run([sys.executable, "-X", "importtime", str(script), "--help"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("usage: tfgames [-h] [--version] COMMAND ...")
    imported = {line.rsplit("|", 1)[1].strip().split(".")[0]
                for line in result.stderr.splitlines() if re.match(r"import time:\s+\d", line)}
    assert "tfgames_cli" in imported
    assert not imported & HEAVY, sorted(imported & HEAVY)


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["protocols", "--help"], ["usage: tfgames protocols [-h] COMMAND ...", "run",
                                   "summarize", "list"]),
        (["protocols", "run", "--help"], ["--protocol {pacgan-grid25,pacgan-ring8,tfgames-grid16}",
                                          "--config {small,smoke}", "--seeds"]),
    ],
)
def test_protocols_help_imports_no_tensorflow(argv, expected, tmp_path):
    code, heavy, out, err = _probe(argv, tmp_path)
    assert (code, heavy, err) == (0, [], "")
    for text in expected:
        assert text in " ".join(out.split()), text


def test_protocols_argument_errors_are_one_line_without_tensorflow(tmp_path):
    code, heavy, out, err = _probe(
        ["protocols", "run", "--protocol", "nope", "--optimizers", "sga", "--out", "x"], tmp_path)
    assert (code, heavy) == (2, [])
    assert err.count("\n") == 1 and err.startswith("tfgames: error: argument --protocol: "
                                                   "invalid choice: 'nope'"), err


def test_static_protocol_names_equal_the_live_ones():
    from tfgames.lab import protocols

    assert tuple(sorted(protocols.PROTOCOLS)) == tfgames_cli.PROTOCOL_NAMES
    assert tuple(sorted(protocols.TRAINING_CONFIGS)) == tfgames_cli.TRAINING_CONFIG_NAMES
