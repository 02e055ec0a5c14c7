"""Game optimizers: Keras optimizers for differentiable games."""

from tfgames.optimizers.adamirror import Adamirror
from tfgames.optimizers.base import GameOptimizer, StepResult
from tfgames.optimizers.consensus import Consensus
from tfgames.optimizers.extragradient import Extragradient
from tfgames.optimizers.lookahead import Lookahead
from tfgames.optimizers.ogd import OGD
from tfgames.optimizers.per_player import PerPlayer
from tfgames.optimizers.sga import SGA

__all__ = [
    "Adamirror",
    "Consensus",
    "Extragradient",
    "GameOptimizer",
    "Lookahead",
    "OGD",
    "PerPlayer",
    "SGA",
    "StepResult",
]
