"""Optimizers of the experiments, by name: the seed's five plus the game optimizers.

``make_optimizer(name, learning_rate)`` builds a fresh optimizer configured as in the SGA
notebook (seed 000). The seed ran TF1 optimizers; their Keras 3 stand-ins are:

| name | optimizer | vs the seed's TF1 optimizer |
| --- | --- | --- |
| sgd | `keras.optimizers.SGD(lr)` | identical update |
| adagrad | `keras.optimizers.Adagrad(lr, initial_accumulator_value=0.1)` | + epsilon 1e-7 |
| adam | `keras.optimizers.Adam(lr, epsilon=1e-8)` | identical update |
| rmsprop | `tfgames.compat.v1.RMSPropOptimizer(lr)` (TF1 RMSProp, ms_0 = 1) | identical |
| sga | `tfgames.SGA(v1.RMSPropOptimizer(lr), normalizer="tensors")` | the seed's formula |
| consensus | `tfgames.Consensus(v1.RMSPropOptimizer(lr), gamma=10)` | not in the seed |
| adamirror | `v1.AdamirrorOptimizer(lr)` (optimistic Adam) | the seed's OMD, corrected |
| extragradient | `tfgames.Extragradient(keras.optimizers.SGD(lr))` | not in the seed |
| extraadam | `tfgames.Extragradient(keras.optimizers.Adam(lr, epsilon=1e-8))` | not in the seed |

The second-order family (issue 18) runs over TF1 RMSProp like ``sga``, with the look-ahead rate
alpha = lr of the reference notebooks (Letcher et al.), and the first-order family (issue 19)
over what its extragradient relative uses (``extraadam``'s Adam) or TF1 RMSProp; none of them
is in the seed:

| name | optimizer (rms = `v1.RMSPropOptimizer(lr)`, adam = `Adam(lr, epsilon=1e-8)`) |
| --- | --- |
| la, lola | `tfgames.LA(rms, alpha=lr)`, `tfgames.LOLA(rms, alpha=lr)` |
| sos | `tfgames.SOS(rms, alpha=lr)` (a = 0.5, b = 0.1) |
| cgd | `tfgames.CGD(rms, alpha=lr, solver="gmres")` (the GAN is not zero-sum) |
| gacgd | `tfgames.GACGD(rms, alpha=lr)` |
| acgd | `tfgames.ACGD(lr, solver="gmres")` (its own RMSProp-style steps, beta = 0.99) |
| lss | `tfgames.LSS(rms, max_iterations=10)` (regularised when GMRES stalls) |
| lead | `tfgames.LEAD(keras.optimizers.Adam(lr, 0.5, 0.9), alpha=0.6)` (authors' GAN) |
| hgd | `tfgames.HamiltonianGD(rms)` |
| egplus | `tfgames.Extragradient(adam, beta=0.5)` (EG+, extrapolation 2 lr) |
| eag | `tfgames.ExtraAnchoredGradient(adam)` |
| feg | `tfgames.FastExtragradient(adam)` (rho = 0) |
| negative-momentum | `tfgames.PerPlayer({p: tfgames.NegativeMomentum(lr, momentum=-0.5)},` |
| | `update_order="alternating", batches="reuse")` |
| alexgda | `AlexGDA(rms, extrapolation=2.0)` (:mod:`tfgames.optimizers.alex_gda`) |
| heun, rk4 | `tfgames.RungeKutta(rms, method="heun")`, `(rms, method="rk4")`, no regulariser |

CGD, GACGD and LSS cap their solvers at 10 iterations (each one or two Hessian-vector
products). With alpha = lr = 1e-4 the corrections of LA, LOLA, SOS, CGD and GACGD are small
(CGD's Schur matrix is the identity to float32 precision there,
docs/optimizers/opponent-shaping-and-cgd.md). ``negative-momentum`` runs one round of the
alternating order per training step (discriminator, then generator, each on fresh noise), so
that a step updates both players as every other entry does; its heavy-ball steps are plain
gradient steps of size lr, which at the seed's 1e-4 move the GAN as slowly as ``sgd``.
``alexgda``'s one TF1 RMSProp serves both players (RMSProp has no step counter, so this
equals one RMSProp per player).

``v1`` is :mod:`tfgames.compat.v1`; ``sga`` has lambda_0 = 1 and sign alignment on. The game
optimizers' modules are imported only when an optimizer is built.

Keras' Adagrad adds epsilon = 1e-7 to sqrt(accumulator) where TF1 adds nothing (the
accumulator starts at 0.1, so the difference is below 1e-6 relative). ``sga`` is the seed's
``SymplecticOptimizer`` (:class:`tfgames.compat.v1.SymplecticOptimizer`) except that H xi is
computed in forward mode, which equals the seed's double-backward product up to rounding.
``omd`` is an alias of ``adamirror``, the seed's name for it in Experiment 6.

Optimizers whose module is not installed stay listed, with ``available=False``; building one
raises an error that names the missing module.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras

__all__ = [
    "ALIASES",
    "OPTIMIZERS",
    "OptimizerSpec",
    "available_optimizers",
    "make_optimizer",
    "resolve_optimizer_names",
]


@dataclass(frozen=True)
class OptimizerSpec:
    """One entry of the registry.

    Attributes:
        name: registry key.
        description: the configuration, as shown by ``tfgames list``.
        build: ``build(learning_rate) -> optimizer``, importing what it needs when called.
        module: the tfgames module the optimizer lives in (checked by :attr:`available`).
    """

    name: str
    description: str
    build: Callable[[float], Any]
    module: str = "tfgames"

    @property
    def available(self) -> bool:
        """Whether :attr:`module` can be imported in this installation."""
        try:
            return importlib.util.find_spec(self.module) is not None
        except ModuleNotFoundError:
            return False


def _tf1_rmsprop(learning_rate: float) -> keras.optimizers.Optimizer:
    from tfgames.compat.v1 import RMSPropOptimizer

    return RMSPropOptimizer(learning_rate)


def _sga(learning_rate: float) -> keras.optimizers.Optimizer:
    from tfgames.optimizers.sga import SGA

    return SGA(_tf1_rmsprop(learning_rate), lambda_=1.0, use_signs=True,
               normalizer="tensors", hvp_mode="forward")


def _consensus(learning_rate: float) -> keras.optimizers.Optimizer:
    from tfgames.optimizers.consensus import Consensus

    return Consensus(_tf1_rmsprop(learning_rate), gamma=10.0)


def _class_in(module: str, *names: str) -> Any:
    loaded = importlib.import_module(module)
    for name in names:
        if hasattr(loaded, name):
            return getattr(loaded, name)
    raise ImportError(f"{module} defines none of {names}")


def _adamirror(learning_rate: float) -> keras.optimizers.Optimizer:
    return _class_in("tfgames.compat.v1", "AdamirrorOptimizer")(learning_rate)


def _extragradient(learning_rate: float) -> keras.optimizers.Optimizer:
    cls = _class_in("tfgames.optimizers.extragradient", "Extragradient")
    return cls(keras.optimizers.SGD(learning_rate))


def _extra_adam(learning_rate: float) -> keras.optimizers.Optimizer:
    cls = _class_in("tfgames.optimizers.extragradient", "Extragradient")
    return cls(keras.optimizers.Adam(learning_rate, epsilon=1e-8))


#: The players of the experiments' GAN (:class:`tfgames.lab.experiments.runner.MLPGAN`).
GAN_PLAYERS = ("discriminator", "generator")
_OPPONENT_SHAPING = "tfgames.optimizers.opponent_shaping"
_CGD = "tfgames.optimizers.cgd"
_EXTRAGRADIENT = "tfgames.optimizers.extragradient"
_ANCHORED = "tfgames.optimizers.anchored"
_ODE = "tfgames.optimizers.ode"


def _rms_wrapped(module: str, cls: str, **kwargs: Any) -> Callable[[float], Any]:
    """``build(lr)`` of ``module.cls(v1.RMSPropOptimizer(lr), **kwargs)``.

    A kwarg given as the string ``"lr"`` is set to the learning rate (the reference
    notebooks' alpha = lr).
    """

    def build(learning_rate: float) -> keras.optimizers.Optimizer:
        options = {k: learning_rate if v == "lr" else v for k, v in kwargs.items()}
        return _class_in(module, cls)(_tf1_rmsprop(learning_rate), **options)

    return build


def _adam_wrapped(module: str, cls: str, **kwargs: Any) -> Callable[[float], Any]:
    """``build(lr)`` of ``module.cls(keras.optimizers.Adam(lr, epsilon=1e-8), **kwargs)``."""

    def build(learning_rate: float) -> keras.optimizers.Optimizer:
        return _class_in(module, cls)(keras.optimizers.Adam(learning_rate, epsilon=1e-8),
                                      **kwargs)

    return build


def _acgd(learning_rate: float) -> keras.optimizers.Optimizer:
    cls = _class_in("tfgames.optimizers.cgd", "ACGD")
    return cls(learning_rate, solver="gmres")


def _lead(learning_rate: float) -> keras.optimizers.Optimizer:
    cls = _class_in("tfgames.optimizers.lead", "LEAD")
    return cls(keras.optimizers.Adam(learning_rate, beta_1=0.5, beta_2=0.9), alpha=0.6)


def _negative_momentum(learning_rate: float) -> keras.optimizers.Optimizer:
    from tfgames.optimizers.per_player import PerPlayer

    cls = _class_in("tfgames.optimizers.negative_momentum", "NegativeMomentum")
    return PerPlayer({player: cls(learning_rate, momentum=-0.5) for player in GAN_PLAYERS},
                     update_order="alternating", batches="reuse")


OPTIMIZERS: dict[str, OptimizerSpec] = {
    spec.name: spec
    for spec in (
        OptimizerSpec("sgd", "keras SGD (= TF1 GradientDescentOptimizer)",
                      lambda lr: keras.optimizers.SGD(lr)),
        OptimizerSpec("adagrad", "keras Adagrad, accumulator_0 = 0.1 (TF1 + eps 1e-7)",
                      lambda lr: keras.optimizers.Adagrad(lr, initial_accumulator_value=0.1)),
        OptimizerSpec("adam", "keras Adam, epsilon 1e-8 (= TF1 AdamOptimizer)",
                      lambda lr: keras.optimizers.Adam(lr, epsilon=1e-8)),
        OptimizerSpec("rmsprop", "tfgames.compat.v1.RMSPropOptimizer (= TF1 RMSProp)",
                      _tf1_rmsprop, "tfgames.compat.v1"),
        OptimizerSpec("sga", "SGA over TF1 RMSProp, lambda 1, alignment on, "
                      "normalizer='tensors' (the seed's)", _sga, "tfgames.optimizers.sga"),
        OptimizerSpec("consensus", "Consensus over TF1 RMSProp, gamma 10", _consensus,
                      "tfgames.optimizers.consensus"),
        OptimizerSpec("adamirror", "tfgames.compat.v1.AdamirrorOptimizer: optimistic Adam, "
                      "the seed's OMD corrected (eps 1e-8, d_0 = 0)", _adamirror,
                      "tfgames.optimizers.adamirror"),
        OptimizerSpec("extragradient", "Extragradient over keras SGD (2 gradients per step)",
                      _extragradient, "tfgames.optimizers.extragradient"),
        OptimizerSpec("extraadam", "Extragradient over keras Adam, eps 1e-8 (ExtraAdam)",
                      _extra_adam, "tfgames.optimizers.extragradient"),
        # The second-order family (issue 18), over TF1 RMSProp like sga.
        OptimizerSpec("la", "LA over TF1 RMSProp, alpha = lr",
                      _rms_wrapped(_OPPONENT_SHAPING, "LA", alpha="lr"), _OPPONENT_SHAPING),
        OptimizerSpec("lola", "LOLA over TF1 RMSProp, alpha = lr",
                      _rms_wrapped(_OPPONENT_SHAPING, "LOLA", alpha="lr"), _OPPONENT_SHAPING),
        OptimizerSpec("sos", "SOS over TF1 RMSProp, alpha = lr, a 0.5, b 0.1",
                      _rms_wrapped(_OPPONENT_SHAPING, "SOS", alpha="lr"), _OPPONENT_SHAPING),
        OptimizerSpec("cgd", "CGD over TF1 RMSProp, alpha = lr, GMRES (general-sum), k <= 10",
                      _rms_wrapped(_CGD, "CGD", alpha="lr", solver="gmres"), _CGD),
        OptimizerSpec("gacgd", "GACGD over TF1 RMSProp, alpha = lr, GMRES, k <= 10",
                      _rms_wrapped(_CGD, "GACGD", alpha="lr"), _CGD),
        OptimizerSpec("acgd", "ACGD (its own RMSProp-style steps, beta 0.99), GMRES, k <= 10",
                      _acgd, _CGD),
        OptimizerSpec("lss", "LSS over TF1 RMSProp, regularize auto (lambda 0.1), k <= 10",
                      _rms_wrapped("tfgames.optimizers.lss", "LSS", max_iterations=10),
                      "tfgames.optimizers.lss"),
        OptimizerSpec("lead", "LEAD over keras Adam(lr, 0.5, 0.9), alpha 0.6 (the authors')",
                      _lead, "tfgames.optimizers.lead"),
        OptimizerSpec("hgd", "Hamiltonian gradient descent over TF1 RMSProp",
                      _rms_wrapped("tfgames.optimizers.hamiltonian", "HamiltonianGD"),
                      "tfgames.optimizers.hamiltonian"),
        # The first-order family (issue 19).
        OptimizerSpec("egplus", "EG+ over keras Adam, eps 1e-8, beta 0.5 (extrapolation 2 lr)",
                      _adam_wrapped(_EXTRAGRADIENT, "Extragradient", beta=0.5), _EXTRAGRADIENT),
        OptimizerSpec("eag", "Extra anchored gradient over keras Adam, eps 1e-8",
                      _adam_wrapped(_ANCHORED, "ExtraAnchoredGradient"), _ANCHORED),
        OptimizerSpec("feg", "Fast extragradient over keras Adam, eps 1e-8, rho 0",
                      _adam_wrapped(_ANCHORED, "FastExtragradient"), _ANCHORED),
        OptimizerSpec("negative-momentum", "NegativeMomentum(lr, momentum -0.5) per player, "
                      "alternating (one round per step)", _negative_momentum,
                      "tfgames.optimizers.negative_momentum"),
        OptimizerSpec("alexgda", "Alex-GDA over TF1 RMSProp, extrapolation 2 (gamma = delta)",
                      _rms_wrapped("tfgames.optimizers.alex_gda", "AlexGDA",
                                   extrapolation=2.0), "tfgames.optimizers.alex_gda"),
        OptimizerSpec("heun", "Heun (RK2) over TF1 RMSProp, no regulariser",
                      _rms_wrapped(_ODE, "RungeKutta", method="heun"), _ODE),
        OptimizerSpec("rk4", "RK4 over TF1 RMSProp, no regulariser",
                      _rms_wrapped(_ODE, "RungeKutta", method="rk4"), _ODE),
    )
}

#: Other names accepted on the command line.
ALIASES: dict[str, str] = {"omd": "adamirror", "rms": "rmsprop"}


def available_optimizers() -> list[str]:
    """Names of the registered optimizers whose module is installed, in registry order."""
    return [name for name, spec in OPTIMIZERS.items() if spec.available]


def resolve_optimizer_names(names: str | list[str] | tuple[str, ...]) -> list[str]:
    """Canonical registry names for a comma-separated string or a list, validated.

    Raises:
        ValueError: an empty list, an unknown name, a duplicate, or an optimizer whose
            module is not installed; the message lists the valid names.
    """
    items = [n.strip().lower() for n in names.split(",")] if isinstance(names, str) else [
        str(n).strip().lower() for n in names
    ]
    items = [n for n in items if n]
    if not items:
        raise ValueError(
            f"At least one optimizer is needed; choose from {sorted(OPTIMIZERS)}. "
            f"Received: {names!r}"
        )
    out: list[str] = []
    for item in items:
        name = ALIASES.get(item, item)
        if name not in OPTIMIZERS:
            raise ValueError(
                f"Unknown optimizer {item!r}; choose from {sorted(OPTIMIZERS)} (aliases "
                f"{sorted(ALIASES)}). Received: {names!r}"
            )
        if not OPTIMIZERS[name].available:
            raise ValueError(
                f"Optimizer {name!r} needs the module {OPTIMIZERS[name].module}, which is not "
                f"installed in this version of tfgames; available: {available_optimizers()}."
            )
        if name in out:
            raise ValueError(f"Optimizer {name!r} is listed twice. Received: {names!r}")
        out.append(name)
    return out


def make_optimizer(name: str, learning_rate: float) -> keras.optimizers.Optimizer:
    """A fresh optimizer ``name`` (see the module table) with ``learning_rate``.

    Args:
        name: a key of :data:`OPTIMIZERS` or of :data:`ALIASES`.
        learning_rate: the step size eta (of the inner optimizer for game optimizers), > 0.

    Returns:
        A Keras 3 optimizer, or a tfgames game optimizer, ready for ``GameModel.compile``.
    """
    (canonical,) = resolve_optimizer_names([name])
    if not learning_rate > 0:
        raise ValueError(
            f"Argument `learning_rate` must be > 0. Received: learning_rate={learning_rate!r}"
        )
    return OPTIMIZERS[canonical].build(float(learning_rate))
