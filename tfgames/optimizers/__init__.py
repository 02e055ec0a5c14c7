"""Game optimizers: Keras optimizers for differentiable games."""

from tfgames.optimizers.adamirror import Adamirror
from tfgames.optimizers.alex_gda import AlexGDA
from tfgames.optimizers.anchored import ExtraAnchoredGradient, FastExtragradient
from tfgames.optimizers.base import (
    GameOptimizer,
    PlayerOptimizer,
    StepResult,
    WrapperOptimizer,
    steps_game,
)
from tfgames.optimizers.cgd import ACGD, CGD, GACGD
from tfgames.optimizers.consensus import Consensus
from tfgames.optimizers.extragradient import Extragradient
from tfgames.optimizers.hamiltonian import HamiltonianGD
from tfgames.optimizers.lead import LEAD
from tfgames.optimizers.lookahead import Lookahead
from tfgames.optimizers.lss import LSS
from tfgames.optimizers.negative_momentum import NegativeMomentum
from tfgames.optimizers.ode import RungeKutta
from tfgames.optimizers.ogd import OGD
from tfgames.optimizers.opponent_shaping import LA, LOLA, SOS
from tfgames.optimizers.per_player import PerPlayer
from tfgames.optimizers.sga import SGA

__all__ = [
    "ACGD",
    "Adamirror",
    "AlexGDA",
    "CGD",
    "Consensus",
    "ExtraAnchoredGradient",
    "Extragradient",
    "FastExtragradient",
    "GACGD",
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
    "PlayerOptimizer",
    "RungeKutta",
    "SGA",
    "SOS",
    "StepResult",
    "WrapperOptimizer",
    "steps_game",
]
