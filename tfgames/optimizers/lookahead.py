"""Lookahead-minmax: slow weights pulled towards the fast ones every k steps."""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from tfgames import products
from tfgames.optimizers.base import SlotWrapper, checked, positional_hyperparameters

__all__ = ["Lookahead"]


@keras.saving.register_keras_serializable(package="tfgames")
class Lookahead(SlotWrapper):
    """Lookahead-minmax: every k steps, phi <- phi + alpha (w - phi) and w <- phi.

    w are the fast weights, moved at every step by ``inner_optimizer``; phi are the slow
    weights, phi_0 = w_0 (taken at the first step). After every k-th step, jointly over all
    players, the slow weights move a fraction alpha towards the fast ones and the fast
    weights restart from them. k = ``k`` (5 in the paper's experiments), alpha = ``alpha``
    (0.5). On games the averaging cancels the rotation of the inner method, which makes
    even gradient descent-ascent converge on bilinear games (Chavdarova et al. 2021).

    The inner optimizer can be any optimizer, game or not:

    - a Keras optimizer (``Lookahead(keras.optimizers.Adam())``): ``apply(grads)`` works in
      a plain ``keras.Model.fit``, and in a :class:`tfgames.GameModel` the players step on
      the simultaneous gradient (LA-GDA, LA-Adam);
    - a game optimizer (``Lookahead(tfgames.Extragradient(...))``, LA-ExtraGrad, or
      :class:`tfgames.SGA`) or a :class:`tfgames.PerPlayer` container with any schedule: its
      ``apply_game`` runs, then the lookahead step synchronises every player.

    The slow weights are optimizer variables, saved with the optimizer; :attr:`iterations`
    counts Lookahead's steps (the position in the k-cycle); ``learning_rate`` is the inner
    optimizer's (readable and settable, so Keras' learning-rate callbacks reach it; with a
    :class:`tfgames.PerPlayer` inside, ``optimizers`` lists every player's). With ``k=1,
    alpha=1`` the update is the inner optimizer's.

    Args:
      inner_optimizer: the optimizer of the fast weights.
      k: the number of fast steps between synchronisations, an integer >= 1 (keyword-only;
        by position it still works, with a ``DeprecationWarning``).
      alpha: the slow weights' step towards the fast ones, in (0, 1] (keyword-only).
      name: the optimizer's name; ``None`` derives one from the class name.
      **kwargs: Keras' base optimizer arguments are refused: set them on the inner optimizer.

    References:
      Chavdarova, Pagliardini, Stich, Fleuret, Jaggi. Taming GANs with Lookahead-Minmax.
      ICLR 2021. Zhang, Lucas, Hinton, Ba. Lookahead Optimizer: k steps forward, 1 step back.
      NeurIPS 2019.

    Example:
      >>> import keras, tfgames
      >>> opt = tfgames.Lookahead(tfgames.Extragradient(keras.optimizers.SGD(0.2)), k=5, alpha=0.5)
      >>> model = tfgames.games.Bilinear()  # f = x * y from (1, 1)
      >>> model.compile(optimizer=opt)
      >>> _ = model.fit(tfgames.datasets.step_dataset(300), verbose=0)
      >>> model.distance_to_equilibrium() < 1e-3
      True
    """

    slot_name = "slow"

    def __init__(
        self,
        inner_optimizer: keras.optimizers.Optimizer,
        *args: Any,
        k: int = 5,
        alpha: float = 0.5,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        given = positional_hyperparameters(
            "Lookahead", args, ("k", "alpha"), {"k": k, "alpha": alpha},
            {"k": 5, "alpha": 0.5},
        )
        k, alpha = given["k"], given["alpha"]
        steps = checked("k", k, int, lambda n: n >= 1,
                        "(fast steps per synchronisation) must be an integer >= 1")
        fraction = checked("alpha", alpha, float, lambda a: 0 < a <= 1,
                           "(the slow weights' step) must be in (0, 1]: 0 would never move "
                           "the slow weights")
        super().__init__(inner_optimizer, name=name, **kwargs)
        self.k = steps
        self.alpha = fraction

    # -- the lookahead step -------------------------------------------------------------------
    def _before_step(self, variables: list) -> None:
        """phi_0 = w_0, at the first step (after any weight loading)."""
        slots = self._slots(variables)

        def initialise():
            for slow, variable in zip(slots, variables):
                slow.assign(products.read_value(variable))

        tf.cond(tf.equal(self._iterations, 0), initialise, lambda: None)

    def _after_step(self, variables: list) -> None:
        """Count the step; after every k-th: phi <- phi + alpha (w - phi), w <- phi."""
        slots = self._slots(variables)
        self._iterations.assign_add(1)

        def synchronise():
            for slow, variable in zip(slots, variables):
                fast = products.read_value(variable)
                value = tf.convert_to_tensor(slow)
                # alpha in the variables' dtype (tf.cast of a Python float rounds via float32)
                value = value + tf.constant(self.alpha, value.dtype) * (fast - value)
                slow.assign(value)
                variable.assign(value)

        tf.cond(
            tf.equal(tf.math.floormod(self._iterations, self.k), 0), synchronise, lambda: None
        )

    # -- config -------------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "k": self.k, "alpha": self.alpha}
