"""tfgames: differentiable games for TensorFlow 2 / Keras 3.

Declare players and their losses in a :class:`GameModel`, compile it with a game optimizer
(:class:`SGA`, :class:`Consensus`, ...) or any Keras optimizer, and ``fit``.
"""

from importlib import metadata as _metadata

from tfgames import (
    callbacks,
    compat,
    datasets,
    games,
    losses,
    products,
    unrolled,
    unrolling,
)
from tfgames.callbacks import TerminateOnDivergence, TrainingDiverged
from tfgames.game import Game, resolve_players, zero_sum
from tfgames.model import GameModel
from tfgames.optimizers import (
    OGD,
    SGA,
    Adamirror,
    Consensus,
    Extragradient,
    GameOptimizer,
    Lookahead,
    PerPlayer,
    StepResult,
)
from tfgames.unrolled import UnrolledGAN, unroll_variables

try:
    __version__ = _metadata.version("tfgames")
except _metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "Adamirror",
    "Consensus",
    "Extragradient",
    "Game",
    "GameModel",
    "GameOptimizer",
    "Lookahead",
    "OGD",
    "PerPlayer",
    "SGA",
    "StepResult",
    "TerminateOnDivergence",
    "TrainingDiverged",
    "UnrolledGAN",
    "callbacks",
    "compat",
    "datasets",
    "games",
    "losses",
    "products",
    "resolve_players",
    "unroll_variables",
    "unrolled",
    "unrolling",
    "zero_sum",
]
