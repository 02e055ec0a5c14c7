"""Extragradient, ExtraAdam and past extragradient (extrapolation from the past)."""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from tfgames import products
from tfgames.game import Game
from tfgames.optimizers.base import (
    GameOptimizer,
    StepResult,
    all_reduce_sum,
    apply_after,
    check_optimizer,
    num_replicas,
)
from tfgames.optimizers.per_player import PerPlayer, bind_players

__all__ = ["Extragradient"]


@keras.saving.register_keras_serializable(package="tfgames")
class Extragradient(GameOptimizer):
    """Extragradient: w_{t+1/2} = w_t - eta F(w_t);  w_{t+1} = w_t - eta F(w_{t+1/2}).

    F = xi is the simultaneous gradient of the game (every player's gradient of its own
    loss). Each step extrapolates to w_{t+1/2}, re-evaluates F there, and steps from the
    saved point w_t. Both half-steps are steps of ``inner_optimizer``: with
    ``keras.optimizers.SGD(eta)`` this is extragradient (Korpelevich 1976); with
    ``keras.optimizers.Adam`` it is ExtraAdam (Gidel et al. 2019), whose moments and step
    counter advance at both half-steps. The final half-step applies the inner optimizer's
    update computed from F(w_{t+1/2}) at the restored point w_t (weight decay, if any, is
    taken there too).

    Options:

    - ``extrapolation_learning_rate``: eta' for the extrapolation, w_{t+1/2} = w_t - eta'
      F(w_t) (the inner optimizer's learning rate is swapped for that half-step; it must be
      a constant, not a schedule). Default: the inner learning rate.
    - ``fresh_noise``: the second evaluation draws new noise (``Game.fresh_noise()``) instead
      of replaying the first evaluation's (default: the same noise, so both evaluations see
      the same sample). The batch is the step's batch either way.
    - ``past=True``: past extragradient, also "extrapolation from the past" (Popov 1980;
      Gidel et al. 2019): w_{t+1/2} = w_t - eta F(w_{t-1/2}) reuses the F of the previous
      step, so each step evaluates the game's gradient once. First step: there is no
      F(w_{-1/2}); it is zero (a zero-initialised slot), so the first extrapolation is the
      inner optimizer's step on a zero gradient. That does not move SGD or Adam (w_{1/2} =
      w_0, their moments stay zero) and the first step is a step on F(w_0), but the inner
      step counter advances, so ExtraAdam's first real step is bias-corrected as its second
      (a step (1 + b2)^(1/2) / (1 + b1) times Adam's first). With SGD the extrapolated points
      w_{t+1/2} follow optimistic gradient descent (:class:`tfgames.OGD`,
      ``first_step="double"``).

    Gradient evaluations per step: 2 (1 with ``past=True``). Naming: Mertikopoulos et al.
    (ICLR 2019) call this two-evaluation method "optimistic mirror descent"; Daskalakis et al.
    (ICLR 2018) use "optimistic" for the one-evaluation update of :class:`tfgames.OGD` and
    :class:`tfgames.Adamirror`, which is past extragradient written at the extrapolated
    points.

    :attr:`iterations` counts game steps; ``inner_optimizer.iterations`` counts half-steps
    (two per step). The losses reported are those
    at w_t (at w_{t+1/2} with ``past=True``, the only evaluation). To give each player its
    own optimizer, wrap a simultaneous :class:`tfgames.PerPlayer`:
    ``Extragradient(PerPlayer({"discriminator": Adam(...), "generator": Adam(...)}))``.

    It needs the game: use it through :class:`tfgames.GameModel` or ``apply_game(game)``;
    ``apply(grads)`` raises a ``TypeError``.

    Args:
      inner_optimizer: the Keras optimizer of both half-steps (SGD: extragradient; Adam:
        ExtraAdam), or a simultaneous :class:`tfgames.PerPlayer`.
      extrapolation_learning_rate: eta' > 0, or None for the inner learning rate.
      fresh_noise: draw new noise for the second evaluation.
      past: past extragradient (one gradient evaluation per step).
      name: the optimizer's name.

    References:
      Korpelevich. The extragradient method for finding saddle points and other problems.
      Ekonomika i Matematicheskie Metody 12, 1976. Popov. A modification of the
      Arrow-Hurwicz method for search of saddle points. Mathematical Notes 28, 1980.
      Gidel, Berard, Vignoud, Vincent, Lacoste-Julien. A Variational Inequality Perspective
      on Generative Adversarial Networks. ICLR 2019. Mertikopoulos, Lecouat, Zenati, Foo,
      Chandrasekhar, Piliouras. Optimistic Mirror Descent in Saddle-Point Problems: Going
      the Extra (Gradient) Mile. ICLR 2019.

    Example:
      >>> import keras, tfgames
      >>> extra_adam = tfgames.Extragradient(keras.optimizers.Adam(1e-4, beta_1=0.5))
      >>> past = tfgames.Extragradient(keras.optimizers.SGD(0.1), past=True)
    """

    diagnostic_names: tuple[str, ...] = ()

    def __init__(
        self,
        inner_optimizer: keras.optimizers.Optimizer,
        *,
        extrapolation_learning_rate: float | None = None,
        fresh_noise: bool = False,
        past: bool = False,
        name: str = "extragradient",
        **kwargs: Any,
    ) -> None:
        check_optimizer(inner_optimizer, "inner_optimizer")
        for flag, value in (("fresh_noise", fresh_noise), ("past", past)):
            if not isinstance(value, bool):
                raise TypeError(f"Argument `{flag}` must be a bool. Received: {flag}={value!r}.")
        if past and fresh_noise:
            raise ValueError(
                "Past extragradient evaluates the game once per step, so there is no second "
                "evaluation to draw fresh noise for. Received: past=True, fresh_noise=True."
            )
        if extrapolation_learning_rate is not None:
            if (
                isinstance(extrapolation_learning_rate, bool)
                or not isinstance(extrapolation_learning_rate, (int, float))
                or extrapolation_learning_rate <= 0
            ):
                raise ValueError(
                    "Argument `extrapolation_learning_rate` must be a number > 0 or None. "
                    f"Received: extrapolation_learning_rate={extrapolation_learning_rate!r}."
                )
            if isinstance(inner_optimizer, PerPlayer) or not isinstance(
                getattr(inner_optimizer, "learning_rate", None), keras.Variable
            ):
                raise ValueError(
                    "`extrapolation_learning_rate` swaps the inner optimizer's learning rate "
                    "for the extrapolation, so the inner optimizer needs one constant learning "
                    "rate (a float, not a schedule or a PerPlayer container). Received: "
                    f"inner optimizer {type(inner_optimizer).__name__}."
                )
        schedule = getattr(inner_optimizer, "schedule", "simultaneous")
        if isinstance(inner_optimizer, PerPlayer) and schedule != "simultaneous":
            raise ValueError(
                "Extragradient extrapolates and steps every player together, so its PerPlayer "
                "inner optimizer must use schedule='simultaneous'. Received: schedule="
                f"{inner_optimizer.schedule!r}."
            )
        super().__init__(inner_optimizer, name=name, **kwargs)
        self.extrapolation_learning_rate = (
            None if extrapolation_learning_rate is None else float(extrapolation_learning_rate)
        )
        self.fresh_noise = fresh_noise
        self.past = past

    def build(self, var_list: list) -> None:
        """Build the inner optimizer; with ``past=True``, one slot per variable for F."""
        if self.built:
            return
        super().build(var_list)
        if self.past:
            self._past_gradients = self.add_optimizer_variables(var_list, "past_gradient")

    @property
    def iterations(self):
        """Game steps taken (the inner optimizer's ``iterations`` counts half-steps)."""
        return self._iterations

    def apply(self, grads, trainable_variables=None):
        raise TypeError(
            "Extragradient needs the game, not only gradients: it re-evaluates the players' "
            "gradient at the extrapolated point, which a Keras optimizer's apply(grads) "
            "cannot do. Train a tfgames.GameModel with model.compile(optimizer="
            "tfgames.Extragradient(...)) and model.fit(...), or call optimizer.apply_game("
            "tfgames.Game(players, loss_fn)) in your own loop. For one gradient per step in "
            "a plain keras.Model, use tfgames.OGD or tfgames.Adamirror."
        )

    def _extrapolate(self, direction: list, variables: list, after: list) -> None:
        """w <- w_t - eta' * inner(direction), after every tensor in ``after`` exists."""
        with tf.control_dependencies(after):
            if self.extrapolation_learning_rate is None:
                apply_after(self.inner_optimizer, direction, variables)
                return
            learning_rate = self.inner_optimizer.learning_rate
            base = tf.identity(learning_rate)
            with tf.control_dependencies([base]):
                learning_rate.assign(self.extrapolation_learning_rate)
                apply_after(self.inner_optimizer, direction, variables)
                learning_rate.assign(base)

    def apply_game(self, game: Game) -> StepResult:
        """One extragradient step on ``game``: extrapolate, re-evaluate, step from w_t."""
        bind_players(self.inner_optimizer, game.players)
        if not self.built:
            self.build(game.variables)
        variables = game.variables
        saved = [products.read_value(v) for v in variables]
        if self.past:
            # The slots hold the global F (summed over replicas); the inner optimizer sums
            # the per-replica shares again.
            past = [self._past_gradients[self._get_variable_index(v)] for v in variables]
            share = 1.0 / num_replicas()
            direction = [tf.convert_to_tensor(p) * tf.cast(share, p.dtype) for p in past]
            self._extrapolate(direction, variables, saved + direction)
        else:
            with tf.control_dependencies(saved):
                losses, f_start = game.gradient()
            reported = dict(game.last_losses)
            self._extrapolate(f_start, variables, saved + f_start + list(losses.values()))
            if self.fresh_noise:
                game.fresh_noise()
        half_losses, f_half = game.gradient()
        if self.past:
            reported = dict(game.last_losses)
            for slot, f in zip(past, all_reduce_sum(f_half)):
                slot.assign(f)
        with tf.control_dependencies(f_half + list(half_losses.values())):
            for variable, value in zip(variables, saved):
                variable.assign(value)
        apply_after(self.inner_optimizer, f_half, variables, half_losses)
        self._iterations.assign_add(1)
        return StepResult(reported, {})

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            extrapolation_learning_rate=self.extrapolation_learning_rate,
            fresh_noise=self.fresh_noise,
            past=self.past,
        )
        return config
