"""The ``tfgames`` command: run the SGA notebook's experiments and list what is available.

Usage::

    tfgames list
    tfgames summarize DIR [DIR ...]
    tfgames run mog|thresholds|gaussian75 [--preset quick|paper|smoke]
                [--optimizers sga,rmsprop] [--steps N] [--seed S] [--out DIR] [--quiet]
                [--resume]

``tfgames run mog --preset quick --out runs/quick`` is the main job (``make run``). Each run
writes ``metrics.json`` (rewritten as the run goes), PNG figures and ``summary.md`` to
``--out`` (default ``runs/<experiment>-<preset>``). ``python -m tfgames`` is the same command.
Bad arguments print the reason and exit with status 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
from typing import Sequence

__all__ = ["build_parser", "main"]

PRESETS = ("quick", "paper", "smoke")


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


def _optimizer_list(text: str) -> list[str]:
    from tfgames.lab.experiments import registry

    try:
        return registry.resolve_optimizer_names(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``tfgames`` (sub-commands ``run`` and ``list``)."""
    from tfgames.lab.experiments import EXPERIMENTS

    parser = argparse.ArgumentParser(
        prog="tfgames",
        description="Differentiable-game experiments of the SGA notebook (seed 000), ported "
                    "to TensorFlow 2 / Keras 3.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("list", help="list the experiments, presets and optimizers")
    summarize = commands.add_parser(
        "summarize", help="print a Markdown table of finished or running mog runs",
        description="Print a Markdown table of the last snapshot of every mog run found in "
                    "the given --out folders (running runs included, marked with their step).",
    )
    summarize.add_argument("folders", nargs="+", help="output folders of `tfgames run mog`")
    run = commands.add_parser(
        "run", help="run an experiment; writes metrics.json and PNG figures to --out",
        description="Run an experiment; writes metrics.json, PNG figures and summary.md to "
                    "--out.",
    )
    run.add_argument("experiment", choices=sorted(EXPERIMENTS), help="experiment name")
    run.add_argument("--preset", choices=PRESETS, default="quick",
                     help="paper: the seed's settings; quick: a few minutes on a CPU; "
                          "smoke: seconds (default: quick)")
    run.add_argument("--optimizers", type=_optimizer_list, default=None,
                     help="comma-separated optimizer names (see `tfgames list`); default: "
                          "the experiment's for the preset")
    run.add_argument("--steps", type=_positive_int, default=None,
                     help="training steps per run (default: the preset's)")
    run.add_argument("--seed", type=_seed, default=0, help="random seed (default 0)")
    run.add_argument("--out", default=None,
                     help="output folder (default runs/<experiment>-<preset>)")
    run.add_argument("--quiet", action="store_true", help="no progress bar or log lines")
    run.add_argument("--resume", action="store_true",
                     help="checkpoint every run at its snapshots in OUT/checkpoints/ and, if "
                          "an earlier identical command was interrupted, continue it from "
                          "its last checkpoint (the result equals an uninterrupted run's)")
    return parser


def _list() -> str:
    from tfgames.lab.experiments import EXPERIMENTS, get_experiment, registry

    lines = ["experiments (tfgames run NAME --preset quick|paper|smoke):"]
    for name, (_, description) in EXPERIMENTS.items():
        module = get_experiment(name)
        lines.append(f"  {name:<12} {description}")
        for preset, optimizers in module.DEFAULT_OPTIMIZERS.items():
            lines.append(f"  {'':<12}   {preset:<6} default optimizers: {','.join(optimizers)}")
    lines.append("optimizers (--optimizers a,b,...):")
    for name, spec in registry.OPTIMIZERS.items():
        state = "" if spec.available else f"  [not installed: {spec.module}]"
        lines.append(f"  {name:<14} {spec.description}{state}")
    aliases = ", ".join(f"{a} = {n}" for a, n in registry.ALIASES.items())
    lines.append(f"aliases: {aliases}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``tfgames`` and ``python -m tfgames``; returns the exit status."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "list":
        sys.stdout.write(_list() + "\n")
        return 0

    if args.command == "summarize":
        from tfgames.lab.experiments import mog

        missing = [f for f in args.folders if not os.path.isfile(os.path.join(f, "metrics.json"))]
        if missing:
            parser.error(f"no metrics.json in {missing}; pass --out folders of `tfgames run mog`")
        sys.stdout.write(mog.collect_table(mog.collect(args.folders)))
        return 0

    from tfgames.lab.experiments import get_experiment

    module = get_experiment(args.experiment)
    out = args.out or os.path.join("runs", f"{args.experiment}-{args.preset}")
    if not args.quiet:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s",
                            datefmt="%H:%M:%S")
    verbose = 0 if args.quiet else (1 if sys.stdout.isatty() else 2)
    command = "tfgames " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    module.run(out, preset=args.preset, optimizers=args.optimizers, steps=args.steps,
               seed=args.seed, verbose=verbose, command=command, resume=args.resume)
    if not args.quiet:
        sys.stdout.write(f"metrics and figures written to {out}\n")
    return 0
