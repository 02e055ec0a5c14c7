"""Game optimizers: Keras optimizers for differentiable games."""

from tfgames.optimizers.base import GameOptimizer, StepResult
from tfgames.optimizers.consensus import Consensus
from tfgames.optimizers.sga import SGA

__all__ = ["Consensus", "GameOptimizer", "SGA", "StepResult"]
