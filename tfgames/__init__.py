"""tfgames: differentiable games for TensorFlow 2 / Keras 3.

Declare players and their losses in a :class:`GameModel`, compile it with a game optimizer
(:class:`SGA`, :class:`Consensus`, ...) or any Keras optimizer, and ``fit``.
"""

from importlib import metadata as _metadata

from tfgames import (
    atomic,
    averaging,
    callbacks,
    compat,
    datasets,
    diagnostics,
    games,
    losses,
    matrix_games,
    monitor,
    products,
    solvers,
    unrolled,
    unrolling,
)
from tfgames.averaging import Averaging, averaged_weights
from tfgames.callbacks import BackupAndRestore, TerminateOnDivergence, TrainingDiverged
from tfgames.diagnostics import GameDiagnostics
from tfgames.game import Game, resolve_players, zero_sum
from tfgames.model import GameModel
from tfgames.monitor import SampleMonitor
from tfgames.optimizers import (
    ACGD,
    CGD,
    GACGD,
    LA,
    LEAD,
    LOLA,
    LSS,
    OGD,
    SGA,
    SOS,
    Adamirror,
    AlexGDA,
    Consensus,
    ExtraAnchoredGradient,
    Extragradient,
    FastExtragradient,
    GameOptimizer,
    HamiltonianGD,
    Lookahead,
    NegativeMomentum,
    PerPlayer,
    RungeKutta,
    StepResult,
    WrapperOptimizer,
    steps_game,
)
from tfgames.unrolled import UnrolledGAN, unroll_variables

try:
    __version__ = _metadata.version("tfgames")
except _metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "ACGD",
    "Adamirror",
    "AlexGDA",
    "Averaging",
    "BackupAndRestore",
    "CGD",
    "Consensus",
    "ExtraAnchoredGradient",
    "Extragradient",
    "FastExtragradient",
    "GACGD",
    "Game",
    "GameDiagnostics",
    "GameModel",
    "GameOptimizer",
    "HamiltonianGD",
    "LA",
    "LEAD",
    "LOLA",
    "LSS",
    "Lookahead",
    "NegativeMomentum",
    "OGD",
    "PerPlayer",
    "RungeKutta",
    "SGA",
    "SOS",
    "SampleMonitor",
    "StepResult",
    "TerminateOnDivergence",
    "TrainingDiverged",
    "UnrolledGAN",
    "WrapperOptimizer",
    "atomic",
    "averaged_weights",
    "averaging",
    "callbacks",
    "compat",
    "datasets",
    "diagnostics",
    "games",
    "losses",
    "matrix_games",
    "monitor",
    "products",
    "resolve_players",
    "solvers",
    "steps_game",
    "unroll_variables",
    "unrolled",
    "unrolling",
    "zero_sum",
]
