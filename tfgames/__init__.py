"""tfgames: differentiable games for TensorFlow 2 / Keras 3.

Declare players and their losses in a :class:`GameModel`, compile it with a game optimizer
(:class:`SGA`, :class:`Consensus`, ...) or any Keras optimizer, and ``fit``.
"""

from tfgames import datasets, games, metrics, plotting, products
from tfgames.game import Game, resolve_players, zero_sum
from tfgames.model import GameModel
from tfgames.optimizers import SGA, Consensus, GameOptimizer, StepResult

__version__ = "0.1.0"

__all__ = [
    "Consensus",
    "Game",
    "GameModel",
    "GameOptimizer",
    "SGA",
    "StepResult",
    "datasets",
    "games",
    "metrics",
    "plotting",
    "products",
    "resolve_players",
    "zero_sum",
]
