"""The ``tfgames`` command: run the SGA notebook's experiments and list what is available.

Usage::

    tfgames list
    tfgames summarize DIR [DIR ...]
    tfgames run mog|thresholds|gaussian75 [--preset quick|paper|smoke]
                [--optimizers sga,rmsprop] [--steps N] [--seed S | --seeds S [S ...]]
                [--out DIR] [--quiet] [--resume]
    tfgames run my_module:MyGame [--config JSON|FILE.json] [--optimizers sga]
                [--learning-rate LR] [--steps N] [--seeds S ...] [--out DIR]
    tfgames protocols ...          (the multi-seed protocol tables of tfgames.lab.protocols)
    tfgames --version

``tfgames run mog --preset quick --out runs/quick`` is the main job (``make run``). Each run
writes ``metrics.json`` (rewritten as the run goes), PNG figures and ``summary.md`` to
``--out`` (default ``runs/<experiment>-<preset>``); with ``--seeds`` each seed goes to
``OUT/seed-<s>`` and ``summarize OUT`` reports mean +- std over the seeds. A run holds a lock on
its output folder: a second run into it is refused. ``python -m tfgames`` is the same command.

Every error (bad arguments, an unusable ``--out``, a folder in use, a damaged or foreign
``metrics.json`` or checkpoint) is one line on stderr, ``tfgames: error: ...``, with exit
status 2; set ``TFGAMES_DEBUG=1`` for the traceback. ``--help`` and ``--version`` import no
TensorFlow.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import re
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["build_parser", "main"]

PRESETS = ("quick", "paper", "smoke")
#: The experiments of :mod:`tfgames.lab.experiments` (kept here so that ``--help`` needs no
#: TensorFlow; tests/test_cli.py checks it against ``EXPERIMENTS``).
EXPERIMENT_NAMES = ("gaussian75", "mog", "thresholds")
_USER_GAME = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class CLIError(Exception):
    """An error reported as one line with exit status 2."""


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("tfgames")
    except metadata.PackageNotFoundError:  # a source tree that was never installed
        return "0+unknown"


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage block): ``tfgames: error: ...``, exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        _fail(f"{message} (see `{self.prog} --help`)")


def _fail(message: str) -> None:
    sys.stderr.write("tfgames: error: " + " ".join(str(message).split()) + "\n")
    raise SystemExit(2)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def _learning_rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text}")
    return value


def _experiment(text: str) -> str:
    if text in EXPERIMENT_NAMES or _USER_GAME.match(text):
        return text
    raise argparse.ArgumentTypeError(
        f"invalid choice: {text!r} (choose from {', '.join(EXPERIMENT_NAMES)}, or give your "
        "own game as module:Class)"
    )


def _optimizer_list(text: str) -> list[str]:
    from tfgames.lab.experiments import registry

    try:
        return registry.resolve_optimizer_names(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``tfgames`` (imports no TensorFlow)."""
    parser = _Parser(
        prog="tfgames",
        description="Differentiable-game experiments of the SGA notebook (seed 000), ported "
                    "to TensorFlow 2 / Keras 3, and training of your own games.",
    )
    parser.add_argument("--version", action="version", version=f"tfgames {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     parser_class=_Parser)
    commands.add_parser("list", help="list the experiments, presets and optimizers")
    summarize = commands.add_parser(
        "summarize", help="print a Markdown table of finished or running runs",
        description="Print a Markdown table of the last snapshot of every run found in the "
                    "given --out folders (running runs included, marked with their step); "
                    "folders of `--seeds` runs also get mean +- std over the seeds.",
    )
    summarize.add_argument("folders", nargs="+", help="output folders of `tfgames run`")
    commands.add_parser(
        "protocols", add_help=False,
        help="pinned mode-coverage protocols over seeds (tfgames.lab.protocols; pass --help)")
    run = commands.add_parser(
        "run", help="run an experiment or your game; writes metrics.json (and figures) to --out",
        description="Run an experiment (mog, thresholds, gaussian75) or your own GameModel "
                    "subclass given as module:Class; writes metrics.json, PNG figures and "
                    "summary.md to --out.",
    )
    run.add_argument("experiment", type=_experiment, metavar="EXPERIMENT",
                     help=f"one of {', '.join(EXPERIMENT_NAMES)}, or module:Class (a "
                          "tfgames.GameModel subclass importable from the current folder)")
    run.add_argument("--preset", choices=PRESETS, default="quick",
                     help="paper: the seed's settings; quick: a few minutes on a CPU; "
                          "smoke: seconds (default: quick)")
    run.add_argument("--optimizers", type=_optimizer_list, default=None,
                     help="comma-separated optimizer names (see `tfgames list`); default: "
                          "the experiment's for the preset (sga for module:Class)")
    run.add_argument("--steps", type=_positive_int, default=None,
                     help="training steps per run (default: the preset's; 100 for "
                          "module:Class)")
    run.add_argument("--seed", type=_seed, default=None, help="random seed (default 0)")
    run.add_argument("--seeds", type=_seed, nargs="+", default=None, metavar="S",
                     help="several seeds: one run per seed into OUT/seed-<s>; `tfgames "
                          "summarize OUT` reports mean +- std over them")
    run.add_argument("--out", default=None,
                     help="output folder (default runs/<experiment>-<preset>)")
    run.add_argument("--config", default=None,
                     help="module:Class only: keyword arguments of the class, as JSON text or "
                          "a .json file")
    run.add_argument("--learning-rate", type=_learning_rate, default=1e-3,
                     help="module:Class only: the optimizers' step size (default 1e-3)")
    run.add_argument("--quiet", action="store_true", help="no progress bar or log lines")
    run.add_argument("--resume", action="store_true",
                     help="checkpoint every run at its snapshots in OUT/checkpoints/ and, if "
                          "an earlier identical command was interrupted, continue it from "
                          "its last good checkpoint (the result equals an uninterrupted run's)")
    return parser


def _list() -> str:
    from tfgames.lab.experiments import EXPERIMENTS, get_experiment, registry

    lines = ["experiments (tfgames run NAME --preset quick|paper|smoke):"]
    for name, (_, description) in EXPERIMENTS.items():
        module = get_experiment(name)
        lines.append(f"  {name:<12} {description}")
        for preset, optimizers in module.DEFAULT_OPTIMIZERS.items():
            lines.append(f"  {'':<12}   {preset:<6} default optimizers: {','.join(optimizers)}")
    lines.append("  module:Class your own tfgames.GameModel subclass (--config JSON)")
    lines.append("optimizers (--optimizers a,b,...):")
    for name, spec in registry.OPTIMIZERS.items():
        state = "" if spec.available else f"  [not installed: {spec.module}]"
        lines.append(f"  {name:<14} {spec.description}{state}")
    aliases = ", ".join(f"{a} = {n}" for a, n in registry.ALIASES.items())
    lines.append(f"aliases: {aliases}")
    return "\n".join(lines)


def _check_out(out: str) -> None:
    """An unusable output folder is an error before anything is imported or written."""
    path = Path(out)
    for parent in [path, *path.parents]:
        if parent.exists():
            if not parent.is_dir():
                what = "is a file" if parent == path else f"is below the file {str(parent)!r}"
                raise CLIError(f"--out {out!r} cannot be used as the output folder: it {what}. "
                               "Choose a folder path.")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise CLIError(f"--out {out!r} cannot be created or written: {str(parent)!r} "
                               "is not writable. Choose another folder.")
            return


# -- summarize ----------------------------------------------------------------------------------
def _read_metrics(folder: Path) -> dict[str, Any]:
    path = folder / "metrics.json"
    try:
        return json.loads(path.read_text())
    except ValueError as error:
        raise CLIError(f"{path} is not valid JSON ({error}); it is written atomically, so "
                       "something else damaged it. Re-run the experiment into that folder.")


def _expand(folders: Sequence[str]) -> list[Path]:
    """Each folder, or its ``seed-*`` subfolders when it is the --out of a --seeds run."""
    out, missing = [], []
    for text in folders:
        folder = Path(text)
        if (folder / "metrics.json").is_file():
            out.append(folder)
            continue
        seeds = sorted(p.parent for p in folder.glob("seed-*/metrics.json"))
        if seeds:
            out.extend(seeds)
        else:
            missing.append(text)
    if missing:
        raise CLIError(f"no metrics.json in {missing}; pass --out folders of `tfgames run`")
    return out


def _number(value: Any, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _gaussian75_rows(folder: Path, saved: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for key, entry in saved.get("runs", {}).items():
        snapshots = entry.get("snapshots") or []
        if not snapshots:
            continue
        last = snapshots[-1]
        rows.append({
            "folder": str(folder), "run": key, "optimizer": entry["optimizer"],
            "seed": entry["seed"], "status": entry["status"], "step": last["step"],
            "steps": saved["config"]["steps"], "disc_loss": last["disc_loss"],
            "gen_loss": last["gen_loss"],
            "spectrum_error": (entry.get("after") or {}).get("spectrum_error",
                                                             last.get("spectrum_error")),
            "spectrum_error_before": (entry.get("before") or {}).get("spectrum_error"),
            "wall_time_s": last["wall_time_s"],
        })
    return rows


def _gaussian75_table(rows: Sequence[dict[str, Any]]) -> str:
    lines = ["| optimizer | seed | step | L_D | L_G | spectrum error before | spectrum error "
             "| wall time (s) |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in sorted(rows, key=lambda r: (r["optimizer"], r["seed"])):
        step = f"{r['step']}" + ("" if r["status"] == "done" else f" of {r['steps']} (running)")
        lines.append(f"| {r['optimizer']} | {r['seed']} | {step} | {_number(r['disc_loss'])} "
                     f"| {_number(r['gen_loss'])} | {_number(r['spectrum_error_before'])} "
                     f"| {_number(r['spectrum_error'])} | {r['wall_time_s']:.0f} |")
    return "\n".join(lines) + "\n"


def _user_rows(folder: Path, saved: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for key, entry in saved.get("runs", {}).items():
        rows.append({"folder": str(folder), "run": key, "optimizer": entry["optimizer"],
                     "seed": entry["seed"], "status": entry["status"],
                     **{k: v for k, v in (entry.get("final") or {}).items()}})
    return rows


def _user_table(rows: Sequence[dict[str, Any]]) -> str:
    keys = sorted({k for r in rows for k in r} - {"folder", "run", "optimizer", "seed",
                                                    "status"})
    lines = ["| optimizer | seed | status | " + " | ".join(keys) + " |",
             "| --- | --- | --- | " + " | ".join("---" for _ in keys) + " |"]
    for r in sorted(rows, key=lambda r: (r["optimizer"], r["seed"])):
        lines.append(f"| {r['optimizer']} | {r['seed']} | {r['status']} | "
                     + " | ".join(_number(r.get(k)) for k in keys) + " |")
    return "\n".join(lines) + "\n"


def seed_statistics(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """Mean +- standard deviation (ddof = 1) over seeds of ``columns``, per optimizer, as a
    Markdown table; empty when no optimizer has more than one seed. Non-finite or missing
    values are left out of the mean and counted.
    """
    import numpy as np

    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(r["optimizer"], []).append(r)
    if not any(len({r["seed"] for r in g}) > 1 for g in groups.values()):
        return ""
    lines = ["| optimizer | seeds | " + " | ".join(columns) + " |",
             "| --- | --- | " + " | ".join("---" for _ in columns) + " |"]
    for name, group in sorted(groups.items()):
        cells = []
        for column in columns:
            values = np.array([r.get(column) for r in group
                               if isinstance(r.get(column), (int, float))
                               and math.isfinite(r.get(column))], dtype=float)
            dropped = len(group) - len(values)
            if len(values) == 0:
                cells.append("n/a")
                continue
            std = values.std(ddof=1) if len(values) > 1 else float("nan")
            cells.append(f"{values.mean():.4f} +- {std:.4f}"
                         + (f" ({dropped} not finite)" if dropped else ""))
        lines.append(f"| {name} | {len({r['seed'] for r in group})} | " + " | ".join(cells)
                     + " |")
    return ("\nMean +- standard deviation over seeds (ddof = 1):\n\n"
            + "\n".join(lines) + "\n")


def _summarize(folders: Sequence[str]) -> str:
    expanded = _expand(folders)
    by_experiment: dict[str, list[Path]] = {}
    saved_of = {}
    for folder in expanded:
        saved = _read_metrics(folder)
        saved_of[folder] = saved
        by_experiment.setdefault(saved.get("experiment", "?"), []).append(folder)
    parts = []
    for experiment, group in by_experiment.items():
        if experiment in ("mog", "thresholds"):
            from tfgames.lab.experiments import mog

            try:
                rows = mog.collect(group)
            except (OSError, KeyError, ValueError) as error:
                raise CLIError(f"cannot summarize {[str(g) for g in group]}: "
                               f"{type(error).__name__}: {error}")
            parts.append(mog.collect_table(rows))
            parts.append(seed_statistics(rows, ["disc_loss", "gen_loss", "modes_covered",
                                                "high_quality_share", "kl_modes"]))
        elif experiment == "gaussian75":
            rows = [r for f in group for r in _gaussian75_rows(f, saved_of[f])]
            parts.append(_gaussian75_table(rows))
            parts.append(seed_statistics(rows, ["disc_loss", "gen_loss", "spectrum_error"]))
        elif experiment == "user":
            rows = [r for f in group for r in _user_rows(f, saved_of[f])]
            parts.append(_user_table(rows))
            keys = sorted({k for r in rows for k in r} - {"folder", "run", "optimizer",
                                                            "seed", "status"})
            parts.append(seed_statistics(rows, keys))
        else:
            raise CLIError(f"{[str(g / 'metrics.json') for g in group]} hold experiment "
                           f"{experiment!r}, which summarize does not know.")
    return "".join(p for p in parts if p)


# -- a user's game --------------------------------------------------------------------------------
def _user_config(text: str | None) -> dict[str, Any]:
    if text is None:
        return {}
    source = "--config"
    if not text.lstrip().startswith(("{", "[")):
        try:
            text, source = Path(text).read_text(), text
        except OSError as error:
            raise CLIError(f"--config {text!r} is neither JSON text nor a readable file "
                           f"({error.strerror}). Pass '{{\"width\": 16}}' or a .json file.")
    try:
        config = json.loads(text)
    except ValueError as error:
        raise CLIError(f"{source} is not valid JSON ({error}). Pass e.g. '{{\"width\": 16}}'.")
    if not isinstance(config, dict):
        raise CLIError(f"{source} must be a JSON object of keyword arguments. Received: "
                       f"{type(config).__name__}.")
    return config


def _user_game_class(spec: str):
    import importlib

    module_name, class_name = spec.split(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise CLIError(f"cannot import module {module_name!r} of {spec!r} ({error}). Run from "
                       "the folder that holds it or put it on PYTHONPATH.")
    cls = getattr(module, class_name, None)
    from tfgames.model import GameModel

    if not (isinstance(cls, type) and issubclass(cls, GameModel)):
        raise CLIError(f"{spec!r} must name a tfgames.GameModel subclass. Received: "
                       f"{type(cls).__name__ if cls is not None else 'nothing'} "
                       f"({class_name!r} in {module_name!r}).")
    return cls


def run_user_game(spec: str, out: Path, *, optimizers: Sequence[str] | None, steps: int,
                  seed: int, learning_rate: float, config: dict[str, Any], verbose: int,
                  command: str) -> dict[str, Any]:
    """Train ``module:Class`` (a GameModel subclass built with ``Class(**config)``) with each
    optimizer for ``steps`` steps and write ``metrics.json`` (the final logs and every step's
    logs). The game draws its data in the step (:func:`tfgames.datasets.step_dataset`) unless
    it has a ``dataset()`` method returning a ``tf.data.Dataset``.
    """
    cls = _user_game_class(spec)
    import keras

    from tfgames import datasets
    from tfgames.lab.experiments import registry
    from tfgames.lab.experiments.runner import RunRecord

    names = list(optimizers or ["sga"])
    record = RunRecord.start(out, "user", game=spec, game_config=config, seed=seed,
                             steps=steps, learning_rate=learning_rate, optimizers=names,
                             command=command)
    for name in names:
        keras.utils.set_random_seed(seed)
        try:
            model = cls(**{"seed": seed, **config})
        except TypeError as error:
            raise CLIError(f"{spec}(**config) failed: {error}. Check --config against the "
                           "class's arguments.")
        model.compile(optimizer=registry.make_optimizer(name, learning_rate))
        data = model.dataset() if hasattr(model, "dataset") else datasets.step_dataset(steps)
        entry = {"optimizer": name, "seed": seed, "status": "running"}
        record.data["runs"][name] = entry
        record.save()
        history = model.fit(data, epochs=1, steps_per_epoch=steps, verbose=verbose)
        entry["final"] = {k: float(v[-1]) for k, v in history.history.items()}
        entry["status"] = "done"
        record.save()
        if verbose:
            logging.getLogger("tfgames.lab").info("%s %s: %s", spec, name, entry["final"])
    return record.data


# -- main -----------------------------------------------------------------------------------------
def _run(args: argparse.Namespace, argv: Sequence[str] | None) -> None:
    out = Path(args.out or os.path.join("runs", f"{args.experiment.replace(':', '-')}-"
                                                f"{args.preset}"))
    _check_out(str(out))
    user = args.experiment not in EXPERIMENT_NAMES
    if not user:
        for flag, value in (("--config", args.config is not None),
                            ("--learning-rate", args.learning_rate != 1e-3)):
            if value:
                raise CLIError(f"{flag} is for module:Class games only; experiment "
                               f"{args.experiment!r} takes its settings from --preset.")
    if args.seeds is not None and args.seed is not None:
        raise CLIError("pass --seed S or --seeds S [S ...], not both.")
    if args.seeds is not None and len(set(args.seeds)) != len(args.seeds):
        raise CLIError(f"--seeds lists a seed twice: {args.seeds}.")
    seeds = args.seeds if args.seeds is not None else [args.seed or 0]
    config = _user_config(args.config) if user else {}
    if not args.quiet:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s",
                            datefmt="%H:%M:%S")
    verbose = 0 if args.quiet else (1 if sys.stdout.isatty() else 2)
    command = "tfgames " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    for seed in seeds:
        folder = out / f"seed-{seed}" if args.seeds is not None else out
        if user:
            run_user_game(args.experiment, folder, optimizers=args.optimizers,
                          steps=args.steps or 100, seed=seed, learning_rate=args.learning_rate,
                          config=config, verbose=verbose, command=command)
            continue
        from tfgames.lab.experiments import get_experiment

        get_experiment(args.experiment).run(
            folder, preset=args.preset, optimizers=args.optimizers, steps=args.steps,
            seed=seed, verbose=verbose, command=command, resume=args.resume)
    if not args.quiet:
        sys.stdout.write(f"metrics and figures written to {out}\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``tfgames`` and ``python -m tfgames``; returns the exit status."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["protocols"]:
        from tfgames.lab import protocols

        return protocols.main(arguments[1:])
    parser = build_parser()
    args = parser.parse_args(arguments)
    try:
        if args.command == "list":
            sys.stdout.write(_list() + "\n")
        elif args.command == "summarize":
            sys.stdout.write(_summarize(args.folders))
        else:
            _run(args, argv)
    except KeyboardInterrupt:
        raise
    except SystemExit:
        raise
    except Exception as error:  # every error: one line, exit 2
        if os.environ.get("TFGAMES_DEBUG"):
            raise
        message = str(error) if isinstance(error, CLIError) else (
            f"{type(error).__name__}: {error}")
        _fail(message)
    return 0
