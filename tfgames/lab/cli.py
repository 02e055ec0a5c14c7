"""The ``tfgames`` command's work: run the SGA notebook's experiments or a user's game, and
summarize runs.

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

The console script is the top-level module ``tfgames_cli`` (beside this package): it builds the
parser and answers ``--help``, ``--version`` and ``list`` without importing TensorFlow (importing
anything of ``tfgames`` imports TensorFlow), and calls :func:`execute` here for ``run`` and
``summarize``. :func:`main` is that entry point, re-exported.

Every error (bad arguments, an unusable ``--out``, a folder in use, a damaged or foreign
``metrics.json`` or checkpoint) is one line on stderr, ``tfgames: error: ...``, with exit
status 2; set ``TFGAMES_DEBUG=1`` for the traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tfgames.lab.tables import markdown_table, number, step_cell
from tfgames_cli import (
    EXPERIMENT_NAMES,
    PRESETS,
    CLIError,
    build_parser,
    check_run,
    fail,
    main,
    run_folder,
)

__all__ = ["EXPERIMENT_NAMES", "PRESETS", "build_parser", "execute", "main", "run_user_game",
           "seed_statistics"]


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
    header = ["optimizer", "seed", "step", "L_D", "L_G", "spectrum error before",
              "spectrum error", "wall time (s)"]
    return markdown_table(header, (
        [r["optimizer"], r["seed"], step_cell(r), number(r["disc_loss"]), number(r["gen_loss"]),
         number(r["spectrum_error_before"]), number(r["spectrum_error"]),
         f"{r['wall_time_s']:.0f}"]
        for r in sorted(rows, key=lambda r: (r["optimizer"], r["seed"]))))


def _user_rows(folder: Path, saved: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for key, entry in saved.get("runs", {}).items():
        rows.append({"folder": str(folder), "run": key, "optimizer": entry["optimizer"],
                     "seed": entry["seed"], "status": entry["status"],
                     **{k: v for k, v in (entry.get("final") or {}).items()}})
    return rows


def _user_keys(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The final values' names of a user game's rows (every key but the run's identity)."""
    return sorted({k for r in rows for k in r} - {"folder", "run", "optimizer", "seed", "status"})


def _user_table(rows: Sequence[dict[str, Any]]) -> str:
    keys = _user_keys(rows)
    return markdown_table(["optimizer", "seed", "status", *keys], (
        [r["optimizer"], r["seed"], r["status"], *(number(r.get(k)) for k in keys)]
        for r in sorted(rows, key=lambda r: (r["optimizer"], r["seed"]))))


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
    table = []
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
        table.append([name, len({r["seed"] for r in group}), *cells])
    return ("\nMean +- standard deviation over seeds (ddof = 1):\n\n"
            + markdown_table(["optimizer", "seeds", *columns], table))


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
            parts.append(seed_statistics(rows, _user_keys(rows)))
        else:
            raise CLIError(f"{[str(g / 'metrics.json') for g in group]} hold experiment "
                           f"{experiment!r}, which summarize does not know.")
    return "".join(p for p in parts if p)


# -- a user's game --------------------------------------------------------------------------------
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
    it has a ``dataset()`` method returning a ``tf.data.Dataset``. Trains under
    :func:`tfgames.repeatability.fixed_sum_order`, as the lab's experiments do.
    """
    cls = _user_game_class(spec)
    import keras

    from tfgames import datasets, repeatability
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
        with repeatability.fixed_sum_order():  # as the lab trains every optimizer
            history = model.fit(data, epochs=1, steps_per_epoch=steps, verbose=verbose)
        entry["final"] = {k: float(v[-1]) for k, v in history.history.items()}
        entry["status"] = "done"
        record.save()
        if verbose:
            logging.getLogger("tfgames.lab").info("%s %s: %s", spec, name, entry["final"])
    return record.data


# -- main -----------------------------------------------------------------------------------------
def _run(args: argparse.Namespace, argv: Sequence[str] | None) -> None:
    config = check_run(args)  # again: execute() may be called without tfgames_cli.main
    out = run_folder(args)
    user = args.experiment not in EXPERIMENT_NAMES
    seeds = args.seeds if args.seeds is not None else [args.seed or 0]
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


def execute(args: argparse.Namespace, argv: Sequence[str] | None = None) -> int:
    """Carry out ``run`` or ``summarize`` as parsed by :func:`build_parser`.

    Args:
        args: the parsed arguments (``args.command`` is ``"run"`` or ``"summarize"``).
        argv: the arguments after the program name, recorded as the command of a run
            (default ``sys.argv[1:]``).

    Returns:
        0. Every error is one line on stderr with exit status 2 (``SystemExit``), or the
        traceback when the environment variable ``TFGAMES_DEBUG`` is set.
    """
    try:
        if args.command == "summarize":
            sys.stdout.write(_summarize(args.folders))
        elif args.command == "run":
            _run(args, argv)
        else:
            raise CLIError(f"unknown command {args.command!r}; choose from run, summarize "
                           "(list and protocols are answered by tfgames_cli.main).")
    except KeyboardInterrupt:
        raise
    except SystemExit:
        raise
    except Exception as error:  # every error: one line, exit 2
        if os.environ.get("TFGAMES_DEBUG"):
            raise
        message = str(error) if isinstance(error, CLIError) else (
            f"{type(error).__name__}: {error}")
        fail(message)
    return 0
