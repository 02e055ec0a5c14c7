"""Entry point of the ``tfgames`` command: ``--help``, ``--version`` and ``list`` in a blink.

``import tfgames`` imports TensorFlow and Keras (seconds, and their log lines) because the
package registers its optimizers with Keras at import, which ``keras.saving.load_model`` of a
file holding tfgames objects relies on. This module sits beside the package and imports none of
it, nor TensorFlow, for ``tfgames --help``, ``tfgames --version``, ``tfgames list`` and the
``--help`` of every command. It builds the argument parser, refuses the arguments of ``run``
that can be judged without TensorFlow (:func:`check_run`: one line on stderr, exit status 2),
and hands the commands that train or read runs (``run``, ``summarize``) to
:func:`tfgames.lab.cli.execute`, and ``protocols`` to
:mod:`tfgames.lab.protocols`; those import TensorFlow. ``python -m tfgames`` is the same
command (it imports TensorFlow first, as every ``python -m tfgames...`` does).

What ``list`` prints is static data here (:data:`EXPERIMENTS`, :data:`OPTIMIZERS`,
:data:`ALIASES`); ``tests/test_cli_fast.py`` checks it against the live registries
(:data:`tfgames.lab.experiments.EXPERIMENTS`, each experiment's ``DEFAULT_OPTIMIZERS`` and
:mod:`tfgames.lab.experiments.registry`) and prints the entries to paste when they differ.
Whether an optimizer's module is installed is looked up on disk, without importing it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from importlib.machinery import PathFinder
from pathlib import Path
from typing import Any, NoReturn

__all__ = [
    "ALIASES",
    "CLIError",
    "EXPERIMENTS",
    "EXPERIMENT_NAMES",
    "OPTIMIZERS",
    "PRESETS",
    "build_parser",
    "check_run",
    "fail",
    "format_listing",
    "listing",
    "main",
    "module_installed",
    "run_folder",
]

PRESETS = ("quick", "paper", "smoke")

#: Experiment name -> (one-line description, {preset: default optimizers}), in the order of
#: :data:`tfgames.lab.experiments.EXPERIMENTS` (``tests/test_cli_fast.py`` checks it).
EXPERIMENTS: dict[str, tuple[str, dict[str, tuple[str, ...]]]] = {
    "mog": ("Experiment 4: GAN on the 4x4 grid of Gaussians, optimizers compared",
            {"paper": ("sgd", "adagrad", "adam", "rmsprop", "sga"),
             "quick": ("rmsprop", "sga"), "smoke": ("rmsprop", "sga")}),
    "thresholds": ("Experiment 6: learning-rate thresholds of Adamirror (OMD) and SGA",
                   {"paper": ("adamirror", "sga"), "quick": ("adamirror", "sga"),
                    "smoke": ("adamirror", "sga")}),
    "gaussian75": ("Experiment 7: covariance spectrum of a GAN on N(0, I_75)",
                   {"paper": ("rmsprop", "sga"), "quick": ("rmsprop", "sga"),
                    "smoke": ("rmsprop", "sga")}),
}

#: The experiments' names, sorted: the choices of ``tfgames run``.
EXPERIMENT_NAMES = tuple(sorted(EXPERIMENTS))

#: Optimizer name -> (description, the tfgames module it lives in), in the order of
#: :data:`tfgames.lab.experiments.registry.OPTIMIZERS` (``tests/test_cli_fast.py`` checks it).
OPTIMIZERS: dict[str, tuple[str, str]] = {
    "sgd": ("keras SGD (= TF1 GradientDescentOptimizer)", "tfgames"),
    "adagrad": ("keras Adagrad, accumulator_0 = 0.1 (TF1 + eps 1e-7)", "tfgames"),
    "adam": ("keras Adam, epsilon 1e-8 (= TF1 AdamOptimizer)", "tfgames"),
    "rmsprop": ("tfgames.compat.v1.RMSPropOptimizer (= TF1 RMSProp)", "tfgames.compat.v1"),
    "sga": ("SGA over TF1 RMSProp, lambda 1, alignment on, normalizer='tensors' (the seed's)",
            "tfgames.optimizers.sga"),
    "consensus": ("Consensus over TF1 RMSProp, gamma 10", "tfgames.optimizers.consensus"),
    "adamirror": ("tfgames.compat.v1.AdamirrorOptimizer: optimistic Adam, the seed's OMD "
                  "corrected (eps 1e-8, d_0 = 0)", "tfgames.optimizers.adamirror"),
    "extragradient": ("Extragradient over keras SGD (2 gradients per step)",
                      "tfgames.optimizers.extragradient"),
    "extraadam": ("Extragradient over keras Adam, eps 1e-8 (ExtraAdam)",
                  "tfgames.optimizers.extragradient"),
    # The second-order family (issue 18).
    "la": ("LA over TF1 RMSProp, alpha = lr", "tfgames.optimizers.opponent_shaping"),
    "lola": ("LOLA over TF1 RMSProp, alpha = lr", "tfgames.optimizers.opponent_shaping"),
    "sos": ("SOS over TF1 RMSProp, alpha = lr, a 0.5, b 0.1",
            "tfgames.optimizers.opponent_shaping"),
    "cgd": ("CGD over TF1 RMSProp, alpha = lr, GMRES (general-sum), k <= 10",
            "tfgames.optimizers.cgd"),
    "gacgd": ("GACGD over TF1 RMSProp, alpha = lr, GMRES, k <= 10", "tfgames.optimizers.cgd"),
    "acgd": ("ACGD (its own RMSProp-style steps, beta 0.99), GMRES, k <= 10",
             "tfgames.optimizers.cgd"),
    "lss": ("LSS over TF1 RMSProp, regularize auto (lambda 0.1), k <= 10",
            "tfgames.optimizers.lss"),
    "lead": ("LEAD over keras Adam(lr, 0.5, 0.9), alpha 0.6 (the authors')",
             "tfgames.optimizers.lead"),
    "hgd": ("Hamiltonian gradient descent over TF1 RMSProp", "tfgames.optimizers.hamiltonian"),
    # The first-order family (issue 19).
    "egplus": ("EG+ over keras Adam, eps 1e-8, beta 0.5 (extrapolation 2 lr)",
               "tfgames.optimizers.extragradient"),
    "eag": ("Extra anchored gradient over keras Adam, eps 1e-8", "tfgames.optimizers.anchored"),
    "feg": ("Fast extragradient over keras Adam, eps 1e-8, rho 0",
            "tfgames.optimizers.anchored"),
    "negative-momentum": ("NegativeMomentum(lr, momentum -0.5) per player, alternating (one "
                          "round per step)", "tfgames.optimizers.negative_momentum"),
    "alexgda": ("Alex-GDA over TF1 RMSProp, extrapolation 2 (gamma = delta)",
                "tfgames.optimizers.alex_gda"),
    "heun": ("Heun (RK2) over TF1 RMSProp, no regulariser", "tfgames.optimizers.ode"),
    "rk4": ("RK4 over TF1 RMSProp, no regulariser", "tfgames.optimizers.ode"),
}

#: Other optimizer names accepted on the command line (registry ``ALIASES``).
ALIASES: dict[str, str] = {"omd": "adamirror", "rms": "rmsprop"}

_USER_GAME = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("tfgames")
    except metadata.PackageNotFoundError:  # a source tree that was never installed
        return "0+unknown"


def fail(message: str) -> NoReturn:
    """Write ``tfgames: error: <message>`` as one line on stderr and exit with status 2."""
    sys.stderr.write("tfgames: error: " + " ".join(str(message).split()) + "\n")
    raise SystemExit(2)


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage block): ``tfgames: error: ...``, exit 2."""

    def error(self, message: str) -> NoReturn:  # type: ignore[override]
        fail(f"{message} (see `{self.prog} --help`)")


def _integer_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse ``type``: an integer >= ``minimum``, else a one-line reason."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            got = repr(text) if value is None else value
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {got}")
        return value

    return parse


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
    # The registry's rules and messages; imports Keras, but only when --optimizers is given.
    from tfgames.lab.experiments import registry

    try:
        return registry.resolve_optimizer_names(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


#: The protocols and training configurations of :mod:`tfgames.lab.protocols` (kept here so that
#: ``tfgames protocols --help`` needs no TensorFlow; tests/test_cli_fast.py checks them against
#: ``PROTOCOLS`` and ``TRAINING_CONFIGS``).
PROTOCOL_NAMES = ("pacgan-grid25", "pacgan-ring8", "tfgames-grid16")
TRAINING_CONFIG_NAMES = ("small", "smoke")


def protocols_parser() -> argparse.ArgumentParser:
    """The parser of ``tfgames protocols run|summarize|list`` (imports no TensorFlow; errors are
    one line with exit status 2).
    """
    parser = _Parser(prog="tfgames protocols",
                     description="Pinned mode-coverage protocols (tfgames.lab.protocols): "
                                 "train optimizers over seeds, summarize, list.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=_Parser)
    run = sub.add_parser("run", help="train optimizers over seeds under a protocol")
    run.add_argument("--protocol", required=True, choices=PROTOCOL_NAMES)
    run.add_argument("--optimizers", required=True, help="comma-separated registry names")
    run.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated seeds")
    run.add_argument("--config", default="small", choices=TRAINING_CONFIG_NAMES)
    run.add_argument("--steps", type=_integer_at_least(1), default=None,
                     help="override the config's steps")
    run.add_argument("--out", required=True)
    summarize = sub.add_parser("summarize", help="mean +- std table of a run folder")
    summarize.add_argument("folder")
    sub.add_parser("list", help="the protocols (imports TensorFlow)")
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``tfgames`` (imports neither tfgames nor TensorFlow)."""
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
    run.add_argument("--steps", type=_integer_at_least(1), default=None,
                     help="training steps per run (default: the preset's; 100 for "
                          "module:Class)")
    run.add_argument("--seed", type=_integer_at_least(0), default=None,
                     help="random seed (default 0)")
    run.add_argument("--seeds", type=_integer_at_least(0), nargs="+", default=None,
                     metavar="S",
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


class CLIError(Exception):
    """An error reported as one line with exit status 2."""


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


def _user_config(text: str | None) -> dict[str, Any]:
    if text is None:
        return {}
    source = "--config"
    if not text.lstrip().startswith(("{", "[")):
        try:
            text, source = Path(text).read_text(), text
        except OSError as error:
            raise CLIError(f"--config {text!r} is neither JSON text nor a readable file "
                           f"({error.strerror}). Pass '{{\"width\": 16}}' or a .json file."
                           ) from None
    try:
        config = json.loads(text)
    except ValueError as error:
        raise CLIError(f"{source} is not valid JSON ({error}). Pass e.g. '{{\"width\": 16}}'."
                       ) from None
    if not isinstance(config, dict):
        raise CLIError(f"{source} must be a JSON object of keyword arguments. Received: "
                       f"{type(config).__name__}.")
    return config


def run_folder(args: argparse.Namespace) -> Path:
    """The output folder of ``tfgames run``: ``--out``, default ``runs/<experiment>-<preset>``."""
    return Path(args.out or os.path.join("runs", f"{args.experiment.replace(':', '-')}-"
                                                 f"{args.preset}"))


def check_run(args: argparse.Namespace) -> dict[str, Any]:
    """The checks of ``tfgames run``'s arguments that need no TensorFlow: a usable output folder,
    ``--config``/``--learning-rate`` only for ``module:Class``, ``--seed`` or distinct ``--seeds``,
    ``--config`` a JSON object. Nothing is written.

    Args:
        args: the arguments parsed by :func:`build_parser` for ``run``.

    Returns:
        The keyword arguments of the user's game class (``{}`` for an experiment).

    Raises:
        CLIError: the first argument that cannot be used, and why.
    """
    _check_out(str(run_folder(args)))
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
    return _user_config(args.config) if user else {}


def module_installed(name: str) -> bool:
    """Whether the module ``name`` (dotted) is installed, found without importing it or any
    package above it (``importlib.util.find_spec`` of a submodule imports its packages, and
    ``tfgames`` imports TensorFlow).
    """
    top, *parts = name.split(".")
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return False
    for depth in range(1, len(parts) + 1):
        if spec is None or spec.submodule_search_locations is None:
            return False
        spec = PathFinder.find_spec(".".join([top, *parts[:depth]]),
                                    list(spec.submodule_search_locations))
    return spec is not None


def format_listing(experiments: Mapping[str, tuple[str, Mapping[str, Sequence[str]]]],
                   optimizers: Mapping[str, tuple[str, bool, str]],
                   aliases: Mapping[str, str]) -> str:
    """The text of ``tfgames list``.

    Args:
        experiments: name -> (description, {preset: default optimizer names}).
        optimizers: name -> (description, installed, module).
        aliases: alias -> optimizer name.

    Returns:
        The lines, joined by newlines (no newline at the end).
    """
    lines = ["experiments (tfgames run NAME --preset quick|paper|smoke):"]
    for name, (description, defaults) in experiments.items():
        lines.append(f"  {name:<12} {description}")
        for preset, names in defaults.items():
            lines.append(f"  {'':<12}   {preset:<6} default optimizers: {','.join(names)}")
    lines.append("  module:Class your own tfgames.GameModel subclass (--config JSON)")
    lines.append("optimizers (--optimizers a,b,...):")
    for name, (description, installed, module) in optimizers.items():
        state = "" if installed else f"  [not installed: {module}]"
        lines.append(f"  {name:<14} {description}{state}")
    lines.append("aliases: " + ", ".join(f"{a} = {n}" for a, n in aliases.items()))
    return "\n".join(lines)


def listing() -> str:
    """The text of ``tfgames list`` from this module's static data (no TensorFlow)."""
    return format_listing(
        EXPERIMENTS,
        {name: (description, module_installed(module), module)
         for name, (description, module) in OPTIMIZERS.items()},
        ALIASES,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``tfgames`` (the console script) and ``python -m tfgames``.

    Args:
        argv: the arguments after the program name (default ``sys.argv[1:]``).

    Returns:
        The exit status, 0; errors exit with status 2 (:func:`fail`), ``--help`` and
        ``--version`` with 0, all through ``SystemExit``.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["protocols"]:
        protocols_parser().parse_args(arguments[1:])  # --help and bad arguments: no TensorFlow
        from tfgames.lab import protocols

        return protocols.main(arguments[1:])
    args = build_parser().parse_args(arguments)
    if args.command == "list":
        sys.stdout.write(listing() + "\n")
        return 0
    if args.command == "run":  # what can be refused without TensorFlow is refused here
        try:
            check_run(args)
        except CLIError as error:
            if os.environ.get("TFGAMES_DEBUG"):
                raise
            fail(str(error))
    from tfgames.lab import cli

    return cli.execute(args, arguments)


if __name__ == "__main__":
    sys.exit(main())
