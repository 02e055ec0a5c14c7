"""The SGA notebook's experiments (seed 000), ported to ``GameModel`` and ``tf.function``.

One module per experiment, each with ``PRESETS`` (``paper``: the seed's settings; ``quick``: a
few minutes on a CPU; ``smoke``: seconds, for tests) and ``run(out, **options)`` writing
``metrics.json`` and PNG figures to ``out``; the keywords (``preset``, ``optimizers``,
``steps``, ``seed``, ...) are the same for all and declared once,
:class:`tfgames.lab.experiments.runner.RunOptions`:

- :mod:`tfgames.lab.experiments.mog` (``mog``): Experiment 4, the 4x4 grid mixture of Gaussians.
- :mod:`tfgames.lab.experiments.thresholds` (``thresholds``): Experiment 6, which learning rates
  converge for Adamirror (OMD) and SGA.
- :mod:`tfgames.lab.experiments.gaussian75` (``gaussian75``): Experiment 7, the covariance
  spectrum of a GAN learning N(0, I_75).

What they share: :mod:`tfgames.lab.experiments.registry` builds the optimizers by name,
:mod:`tfgames.lab.experiments.gan` holds the seed's GAN and the run sizes,
:mod:`tfgames.lab.experiments.runner` the training loop with snapshots and the set-up of a run,
:mod:`tfgames.lab.experiments.checkpoints` the snapshots and checkpoints a run resumes from and
:mod:`tfgames.lab.experiments.records` the ``metrics.json`` record. The command line
(``tfgames run <experiment>``) is :mod:`tfgames.lab.cli`.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from tfgames.lab.experiments.registry import OPTIMIZERS, make_optimizer

__all__ = ["EXPERIMENTS", "OPTIMIZERS", "get_experiment", "make_optimizer"]

#: Experiment name -> (module, one-line description).
EXPERIMENTS: dict[str, tuple[str, str]] = {
    "mog": ("tfgames.lab.experiments.mog",
            "Experiment 4: GAN on the 4x4 grid of Gaussians, optimizers compared"),
    "thresholds": ("tfgames.lab.experiments.thresholds",
                   "Experiment 6: learning-rate thresholds of Adamirror (OMD) and SGA"),
    "gaussian75": ("tfgames.lab.experiments.gaussian75",
                   "Experiment 7: covariance spectrum of a GAN on N(0, I_75)"),
}


def get_experiment(name: str) -> ModuleType:
    """The module of experiment ``name`` (a key of :data:`EXPERIMENTS`)."""
    if name not in EXPERIMENTS:
        raise ValueError(f"Unknown experiment {name!r}; choose from {sorted(EXPERIMENTS)}.")
    return importlib.import_module(EXPERIMENTS[name][0])
