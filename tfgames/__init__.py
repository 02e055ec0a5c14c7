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
    optimizers,
    products,
    repeatability,
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
from tfgames.optimizers import (  # noqa: F401 (public through optimizers.__all__, below)
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

#: Every public name: this package's own, then every optimizer of :mod:`tfgames.optimizers`
#: (listed there once) but ``PlayerOptimizer``, an entry of ``WrapperOptimizer.optimizers``
#: that users do not build; sorted.
__all__ = [
    "Averaging",
    "BackupAndRestore",
    "Game",
    "GameDiagnostics",
    "GameModel",
    "SampleMonitor",
    "TerminateOnDivergence",
    "TrainingDiverged",
    "UnrolledGAN",
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
    "repeatability",
    "resolve_players",
    "solvers",
    "unroll_variables",
    "unrolled",
    "unrolling",
    "zero_sum",
]
__all__ += optimizers.__all__
__all__.remove("PlayerOptimizer")
__all__.sort()
