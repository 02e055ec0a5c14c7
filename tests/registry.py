"""One registry of every public tfgames optimizer under test (as optax's ``_OPTIMIZERS_UNDER_TEST``
and torch's ``optim_db``).

Each :class:`Entry` declares, once: how to build the optimizer; an independent NumPy oracle of
its first steps (``oracles.py``); how many times one step evaluates the losses; whether it
converges on the bilinear game x*y and with which step; and its bad inputs with the message
each must raise. ``test_registry.py`` runs one parametrised suite over all entries: oracle
steps, config round trip, ``.keras`` save/load with exact resume, evaluation count, no
retracing, bilinear behaviour and bad inputs. A new optimizer is one entry here plus the tests
special to it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import oracles
from test_first_order_family import numpy_alex_gda, numpy_eag, numpy_feg, numpy_runge_kutta

import tfgames
from tfgames.optimizers.alex_gda import AlexGDA

# The quadratic game every oracle is checked on: min_x max_y f = a/2 |x|^2 + x^T B y - c/2 |y|^2.
QUADRATIC = oracles.QuadraticGame(0.5, 0.3, np.array([[1.0, 2.0], [0.0, 1.0]]))
X0, Y0 = [1.0, -0.5], [0.3, 2.0]
W0 = np.array(X0 + Y0)


def quadratic_model(**kwargs: Any) -> tfgames.GameModel:
    """The ``tfgames.games.QuadraticZeroSum`` instance of :data:`QUADRATIC` from :data:`W0`."""
    return tfgames.games.QuadraticZeroSum(a=QUADRATIC.a, c=QUADRATIC.c,
                                          coupling=QUADRATIC.B.tolist(), x0=X0, y0=Y0, **kwargs)


@dataclass(frozen=True)
class Entry:
    """One optimizer under test.

    Attributes:
      name: test id.
      make: a fresh optimizer (called once per test).
      oracle: a fresh NumPy oracle of the same configuration on a closed-form game
        (``oracle(game)`` returns an object with ``step(w) -> w``).
      evaluations: loss evaluations per train step.
      bilinear: ``(learning-rate factory, steps, converges)`` on x*y from (1, 1), or None.
      bad_inputs: ``(zero-argument constructor call, exception type, regex)`` triples.
      rtol: relative tolerance of the oracle comparison (float32 training).
    """

    name: str
    make: Callable[[], Any]
    oracle: Callable[[Any], Any]
    evaluations: int
    bilinear: tuple[Callable[[], Any], int, bool] | None = None
    bad_inputs: list[tuple[Callable[[], Any], type, str]] = field(default_factory=list)
    rtol: float = 1e-5


SGD, Adam, RMSprop = keras.optimizers.SGD, keras.optimizers.Adam, keras.optimizers.RMSprop

ENTRIES: list[Entry] = [
    Entry(
        "sga_forward",
        lambda: tfgames.SGA(SGD(0.1), lambda_=1.0, hvp_mode="forward"),
        lambda g: oracles.SGAMethod(g, oracles.SGD(0.1), lambda_=1.0),
        evaluations=2,
        bilinear=(lambda: tfgames.SGA(SGD(0.1), hvp_mode="forward"), 300, True),
        bad_inputs=[
            (lambda: tfgames.SGA(SGD(0.1), lambda_=-1.0), ValueError,
             r"`lambda_` must be a number >= 0.*Received: lambda_=-1.0"),
            (lambda: tfgames.SGA(SGD(0.1), epsilon=0.0), ValueError,
             r"`epsilon` must be > 0. Received: epsilon=0.0"),
            (lambda: tfgames.SGA(SGD(0.1), normalizer="params"), ValueError,
             r"`normalizer` must be one of .*Received: normalizer='params'"),
            (lambda: tfgames.SGA(SGD(0.1), hvp_mode="fwd"), ValueError,
             r"`hvp_mode` must be one of .*Received: hvp_mode='fwd'"),
        ],
    ),
    Entry(
        "sga_double_backward_rmsprop",
        lambda: tfgames.SGA(RMSprop(0.01), lambda_=0.5, use_signs=False,
                            hvp_mode="double_backward"),
        lambda g: oracles.SGAMethod(g, oracles.RMSprop(0.01), lambda_=0.5, use_signs=False),
        evaluations=1,
    ),
    Entry(
        "consensus",
        lambda: tfgames.Consensus(SGD(0.1), gamma=2.0),
        lambda g: oracles.ConsensusMethod(g, oracles.SGD(0.1), gamma=2.0),
        evaluations=1,
        bilinear=(lambda: tfgames.Consensus(SGD(0.1), gamma=1.0), 300, True),
        bad_inputs=[(lambda: tfgames.Consensus(SGD(0.1), gamma=-2), ValueError,
                     r"`gamma` must be a number >= 0. Received: gamma=-2")],
    ),
    Entry(
        "ogd",
        lambda: tfgames.OGD(0.1),
        lambda g: oracles.OGDMethod(g, 0.1),
        evaluations=1,
        bilinear=(lambda: tfgames.OGD(0.1), 1000, True),
        bad_inputs=[(lambda: tfgames.OGD(first_step="zero"), ValueError,
                     r"`first_step` must be one of \('plain', 'double'\).*first_step='zero'")],
    ),
    Entry(
        "ogd_double_first_step",
        lambda: tfgames.OGD(0.1, first_step="double"),
        lambda g: oracles.OGDMethod(g, 0.1, first_step="double"),
        evaluations=1,
    ),
    Entry(
        "adamirror",
        lambda: tfgames.Adamirror(0.05, beta_1=0.5, beta_2=0.9),
        lambda g: oracles.AdamirrorMethod(g, 0.05, b1=0.5, b2=0.9),
        evaluations=1,
        bilinear=(lambda: tfgames.Adamirror(0.1, beta_1=0.0), 1000, True),
        bad_inputs=[
            (lambda: tfgames.Adamirror(beta_1=1.0), ValueError,
             r"`beta_1` must be in the \[0, 1\) range.*beta_1=1.0"),
            (lambda: tfgames.Adamirror(beta_2=-0.1), ValueError,
             r"`beta_2` must be in the \[0, 1\).*beta_2=-0.1"),
            (lambda: tfgames.Adamirror(epsilon=-1), ValueError,
             r"`epsilon` must be >= 0.*epsilon=-1"),
        ],
    ),
    Entry(
        "extragradient",
        lambda: tfgames.Extragradient(SGD(0.1)),
        lambda g: oracles.ExtragradientMethod(g, oracles.SGD(0.1)),
        evaluations=2,
        bilinear=(lambda: tfgames.Extragradient(SGD(0.1)), 1000, True),
        bad_inputs=[
            (lambda: tfgames.Extragradient(SGD(0.1), extrapolation_learning_rate=-1.0),
             ValueError, r"`extrapolation_learning_rate` must be a number > 0"),
            (lambda: tfgames.Extragradient(SGD(0.1), past="yes"), TypeError,
             r"`past` must be a bool"),
            (lambda: tfgames.Extragradient("sgd"), TypeError, r"Keras 3 optimizer"),
        ],
    ),
    Entry(
        "extra_adam",
        lambda: tfgames.Extragradient(Adam(0.1, beta_1=0.5, beta_2=0.9),
                                      extrapolation_learning_rate=0.05),
        lambda g: oracles.ExtragradientMethod(g, oracles.Adam(0.1, 0.5, 0.9), lr_e=0.05),
        evaluations=2,
    ),
    Entry(
        "past_extragradient",
        lambda: tfgames.Extragradient(SGD(0.1), past=True),
        lambda g: oracles.ExtragradientMethod(g, oracles.SGD(0.1), past=True),
        evaluations=1,
        bilinear=(lambda: tfgames.Extragradient(SGD(0.1), past=True), 1000, True),
    ),
    Entry(
        "lookahead_sgd",
        lambda: tfgames.Lookahead(SGD(0.1), k=3, alpha=0.5),
        lambda g: oracles.LookaheadMethod(oracles.Simultaneous(g, oracles.SGD(0.1)), 3, 0.5),
        evaluations=1,
        bad_inputs=[
            (lambda: tfgames.Lookahead(SGD(0.1), k=0), ValueError,
             r"`k` .* must be an integer >= 1. Received: k=0"),
            (lambda: tfgames.Lookahead(SGD(0.1), alpha=1.5), ValueError,
             r"`alpha` .* must be in \(0, 1\].*alpha=1.5"),
        ],
    ),
    Entry(
        "lookahead_extragradient",
        lambda: tfgames.Lookahead(tfgames.Extragradient(SGD(0.2)), k=5, alpha=0.5),
        lambda g: oracles.LookaheadMethod(oracles.ExtragradientMethod(g, oracles.SGD(0.2)), 5,
                                          0.5),
        evaluations=2,
        bilinear=(lambda: tfgames.Lookahead(tfgames.Extragradient(SGD(0.2))), 1000, True),
    ),
    Entry(
        "per_player_simultaneous",
        lambda: tfgames.PerPlayer({"x": SGD(0.1), "y": Adam(0.05, beta_1=0.5, beta_2=0.9)}),
        lambda g: oracles.PerPlayerMethod(g, [slice(0, 2), slice(2, 4)],
                                          [oracles.SGD(0.1), oracles.Adam(0.05, 0.5, 0.9)]),
        evaluations=1,
        bad_inputs=[
            (lambda: tfgames.PerPlayer({"x": SGD(0.1), "y": SGD(0.1)},
                                       update_order="round_robin"),
             ValueError, r"must be one of.*'round_robin'"),
            (lambda: tfgames.PerPlayer({"x": SGD(0.1), "y": SGD(0.1)},
                                       update_order={"x": 0, "y": 1}),
             ValueError, r"\['x'\]=0"),
        ],
    ),
    Entry(
        "per_player_two_to_one",
        lambda: tfgames.PerPlayer({"x": SGD(0.1), "y": RMSprop(0.01)},
                                  update_order={"x": 2, "y": 1}),
        lambda g: oracles.PerPlayerMethod(g, [slice(0, 2), slice(2, 4)],
                                          [oracles.SGD(0.1), oracles.RMSprop(0.01)],
                                          order=[(0, 2), (1, 1)]),
        evaluations=1,
    ),
    Entry(
        "extra_anchored_gradient",
        lambda: tfgames.ExtraAnchoredGradient(SGD(0.125)),
        lambda g: oracles.FromTrajectory(g, lambda f, w, n: numpy_eag(f, w, 0.125, n)),
        evaluations=2,
    ),
    Entry(
        "fast_extragradient",
        lambda: tfgames.FastExtragradient(SGD(0.2), rho=-0.05),
        lambda g: oracles.FromTrajectory(g, lambda f, w, n: numpy_feg(f, w, 0.2, -0.05, n)),
        evaluations=2,
        bad_inputs=[(lambda: tfgames.FastExtragradient(SGD(0.5), rho=-0.3), ValueError,
                     r"`rho` must be > -alpha / 2.*rho=-0.3 with alpha=0.5")],
    ),
    Entry(
        "negative_momentum",
        lambda: tfgames.NegativeMomentum(0.1, momentum=-0.5),
        lambda g: oracles.HeavyBall(g, 0.1, -0.5),
        evaluations=1,
    ),
    Entry(
        "runge_kutta_heun",
        lambda: tfgames.RungeKutta(SGD(0.125), method="heun"),
        lambda g: oracles.FromTrajectory(
            g, lambda f, w, n: numpy_runge_kutta(f, w, 0.125, "heun", n)),
        evaluations=2,
        bad_inputs=[(lambda: tfgames.RungeKutta(SGD(0.1), method="rk3"), ValueError,
                     r"`method` must be one of \['euler', 'heun', 'rk4'\]")],
    ),
    Entry(
        "runge_kutta_rk4",
        lambda: tfgames.RungeKutta(SGD(0.125), method="rk4"),
        lambda g: oracles.FromTrajectory(
            g, lambda f, w, n: numpy_runge_kutta(f, w, 0.125, "rk4", n)),
        evaluations=4,
    ),
    Entry(
        "averaging_ema",
        lambda: tfgames.Averaging(SGD(0.1), method="ema", decay=0.9),
        lambda g: oracles.Simultaneous(g, oracles.SGD(0.1)),
        evaluations=1,
        bad_inputs=[(lambda: tfgames.Averaging(SGD(0.1), method="ema", decay=1.0), ValueError,
                     r"`decay` must be a number in \[0, 1\).*decay=1.0")],
    ),
    Entry(
        "la",
        lambda: tfgames.LA(SGD(0.05), alpha=0.4),
        lambda g: oracles.OpponentShaping(g, oracles.SGD(0.05), "la", alpha=0.4),
        evaluations=1,
    ),
    Entry(
        "lola",
        lambda: tfgames.LOLA(SGD(0.05), alpha=0.4),
        lambda g: oracles.OpponentShaping(g, oracles.SGD(0.05), "lola", alpha=0.4),
        evaluations=1,
    ),
    Entry(
        "sos",
        lambda: tfgames.SOS(SGD(0.05), alpha=0.4, a=0.3, b=0.2),
        lambda g: oracles.OpponentShaping(g, oracles.SGD(0.05), "sos", alpha=0.4, a=0.3, b=0.2),
        evaluations=1,
    ),
    Entry(
        "hamiltonian_gd",
        lambda: tfgames.HamiltonianGD(SGD(0.05)),
        lambda g: oracles.HamiltonianMethod(g, oracles.SGD(0.05)),
        evaluations=1,
        bilinear=(lambda: tfgames.HamiltonianGD(SGD(0.1)), 300, True),
    ),
    Entry(
        "cgd",
        lambda: tfgames.CGD(SGD(0.1), alpha=0.5, tol=1e-7, max_iterations=10),
        lambda g: oracles.CompetitiveMethod(g, oracles.SGD(0.1), 0.5),
        evaluations=1,
        bilinear=(lambda: tfgames.CGD(SGD(0.5), alpha=0.5), 300, True),
        rtol=1e-4,
    ),
    Entry(
        "gacgd",
        lambda: tfgames.GACGD(SGD(0.1), alpha=0.5, tol=1e-7, max_iterations=10),
        lambda g: oracles.CompetitiveMethod(g, oracles.SGD(0.1), 0.5),
        evaluations=1,
        rtol=1e-4,
    ),
    Entry(
        "acgd",
        lambda: tfgames.ACGD(0.05, beta=0.9, epsilon=1e-5, tol=1e-7, max_iterations=10),
        lambda g: oracles.ACGDMethod(g, 0.05, beta=0.9, eps=1e-5),
        evaluations=1,
        rtol=1e-4,
    ),
    Entry(
        "lss",
        lambda: tfgames.LSS(SGD(0.05), regularize="never", tol=1e-7, max_iterations=10),
        lambda g: oracles.LSSMethod(g, oracles.SGD(0.05)),
        evaluations=1,
        rtol=1e-4,
    ),
    Entry(
        "lead",
        lambda: tfgames.LEAD(SGD(0.05), alpha=0.3),
        lambda g: oracles.LEADMethod(g, oracles.SGD(0.05), 0.3),
        evaluations=1,
    ),
    Entry(
        "alex_gda",
        lambda: AlexGDA(SGD(0.1), extrapolation=2.0),
        lambda g: oracles.FromTrajectory(
            g, lambda f, w, n: numpy_alex_gda(f, w, 2, (0.1, 0.1), (2.0, 2.0), n)),
        evaluations=2,
        bilinear=(lambda: AlexGDA(SGD(0.5), extrapolation=2.0), 100, True),
        bad_inputs=[(lambda: AlexGDA(SGD(0.1), extrapolation=-1.0), ValueError,
                     r"`extrapolation` must be a finite number >= 0.*extrapolation=-1.0")],
    ),
    Entry(
        "simultaneous_gradient_descent",
        lambda: SGD(0.1),
        lambda g: oracles.Simultaneous(g, oracles.SGD(0.1)),
        evaluations=1,
        bilinear=(lambda: SGD(0.1), 1000, False),
    ),
    Entry(
        "simultaneous_adam",
        lambda: Adam(0.05, beta_1=0.5, beta_2=0.9),
        lambda g: oracles.Simultaneous(g, oracles.Adam(0.05, 0.5, 0.9)),
        evaluations=1,
    ),
]

BY_NAME = {entry.name: entry for entry in ENTRIES}
