"""tfgames: differentiable games for TensorFlow 2 / Keras 3.

Declare players and their losses in a :class:`GameModel`, compile it with a game optimizer
(:class:`SGA`, :class:`Consensus`, ...) or any Keras optimizer, and ``fit``.
"""

from tfgames import (
    callbacks,
    compat,
    datasets,
    experiments,
    games,
    metrics,
    plotting,
    products,
    unrolled,
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

__version__ = "0.1.0"

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
    "experiments",
    "games",
    "metrics",
    "plotting",
    "products",
    "resolve_players",
    "unroll_variables",
    "unrolled",
    "zero_sum",
]
