"""Extragradient, ExtraAdam, past extragradient, EG+ and CurvatureEG+."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import tensorflow as tf

from tfgames import products
from tfgames.game import Game
from tfgames.optimizers.base import (
    GameOptimizer,
    StepResult,
    all_reduce_sum,
    apply_after,
    check_bool,
    check_optimizer,
    checked,
    config_of,
    num_replicas,
)
from tfgames.optimizers.per_player import PerPlayer, bind_players

__all__ = ["Extragradient", "curvature_update_ratio", "split_batch"]


def curvature_update_ratio(f_start: list[tf.Tensor], f_half: list[tf.Tensor]) -> tf.Tensor:
    """alpha_k = <F(z_k), F(z_bar_k)> / ||F(z_bar_k)||^2, CurvatureEG+'s update ratio.

    Pethick et al. (ICLR 2022) step z_{k+1} = z_k + alpha_k (H z_bar_k - H z_k) with
    H = I - gamma F; without constraints H z_bar - H z = -gamma F(z_bar) and the projection
    coefficient alpha_k = <z_bar - z, H z_bar - H z> / ||H z_bar - H z||^2 becomes this ratio, so
    z_{k+1} = z_k - alpha_k gamma_k F(z_bar_k). Both arguments are global (all-reduced) lists.
    """
    squared = products.dot(f_half, f_half)
    return products.dot(f_start, f_half) / tf.maximum(squared, tf.cast(1e-30, squared.dtype))


def split_batch(data: Any) -> tuple[Any, Any]:
    """The two halves (first and second half along axis 0) of every tensor in ``data``.

    With an odd batch size the last example is dropped, so that both halves have equal size.
    """

    def halves(x):
        x = tf.convert_to_tensor(x)
        half = tf.shape(x)[0] // 2
        return x[:half], x[half: 2 * half]

    flat = [halves(x) for x in tf.nest.flatten(data)]
    return (tf.nest.pack_sequence_as(data, [a for a, _ in flat]),
            tf.nest.pack_sequence_as(data, [b for _, b in flat]))


def _positive(name: str, value: Any, *, upper: float | None = None, closed: bool = True) -> float:
    """``value`` as a float in (0, upper] ((0, upper) if not ``closed``), else a ValueError."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    ok = ok and np.isfinite(value) and value > 0
    if ok and upper is not None:
        ok = value <= upper if closed else value < upper
    if not ok:
        bound = "" if upper is None else f" and {'<=' if closed else '<'} {upper}"
        raise ValueError(
            f"Argument `{name}` must be a number > 0{bound} (and finite). Received: "
            f"{name}={value!r}."
        )
    return float(value)


@keras.saving.register_keras_serializable(package="tfgames")
class Extragradient(GameOptimizer):
    """Extragradient: w_{t+1/2} = w_t - eta' F(w_t);  w_{t+1} = w_t - eta F(w_{t+1/2}).

    F = xi is the simultaneous gradient of the game (every player's gradient of its own
    loss). Each step extrapolates to w_{t+1/2}, re-evaluates F there, and steps from the
    saved point w_t. Both half-steps are steps of ``inner_optimizer``: with
    ``keras.optimizers.SGD(eta)`` this is extragradient (Korpelevich 1976, eta' = eta); with
    ``keras.optimizers.Adam`` it is ExtraAdam (Gidel et al. 2019), whose moments and step
    counter advance at both half-steps. The final half-step applies the inner optimizer's
    update computed from F(w_{t+1/2}) at the restored point w_t (weight decay, if any, is
    taken there too).

    Step sizes (at most one of the three):

    - ``extrapolation_learning_rate``: eta' for the extrapolation, w_{t+1/2} = w_t - eta'
      F(w_t) (the inner optimizer's learning rate is swapped for that half-step; it must be
      a constant, not a schedule). Default: the inner learning rate.
    - ``beta``: **EG+** (Diakonikolas, Daskalakis & Jordan 2021): u_bar_k = u_k - (a / beta)
      F(u_k), u_{k+1} = u_k - a F(u_bar_k) with a = eta, the inner learning rate, and beta in
      (0, 1]: the extrapolation is 1/beta times longer than the update (eta' = eta / beta).
      For weak-Minty problems, <F(u), u - u*> >= -(rho/2) ||F(u)||^2, where extragradient
      can cycle. ``beta=1`` is extragradient.
    - ``curvature``: **CurvatureEG+** (Pethick, Latafat, Patrinos, Fercoq & Cevher, ICLR
      2022, unconstrained): gamma_k = min(eta, nu / ||J(z_k)||_2), z_bar_k = z_k - gamma_k
      F(z_k); while gamma_k ||F(z_bar_k) - F(z_k)|| > nu ||z_bar_k - z_k||: gamma_k <- tau
      gamma_k and re-evaluate (at most ``max_backtracks`` times); then z_{k+1} = z_k -
      alpha_k gamma_k F(z_bar_k) with alpha_k = <F(z_k), F(z_bar_k)> / ||F(z_bar_k)||^2
      (:func:`curvature_update_ratio`). nu = ``curvature``, tau = ``backtracking``, J = H,
      the game Jacobian, whose spectral norm is estimated by ``power_iterations`` steps of
      power iteration on H^T H (two Hessian-vector products each). The inner optimizer must
      be a plain ``keras.optimizers.SGD`` (no momentum): its learning rate eta caps gamma_k.
      It reports ``eg_gamma``, ``eg_alpha`` and ``eg_backtracks`` as metrics. Under a
      ``tf.distribute`` strategy F, the power iteration's products and the backtracking
      test use the global batch (all-reduced); TensorFlow allows no all-reduce inside a
      ``tf.while_loop`` or ``tf.cond``, so with several replicas both loops are unrolled
      (``power_iterations`` and ``max_backtracks`` copies in the traced step): a backtracking
      re-evaluation still runs only when the test asks for it (a ``tf.cond`` around this
      replica's gradient), but every unrolled test all-reduces one parameter-sized vector.

    Sampling (what the second evaluation sees; default: the same sample):

    - ``fresh_noise``: the second evaluation draws new noise (``Game.fresh_noise()``) instead
      of replaying the first evaluation's. The batch is the step's batch.
    - ``fresh_batch``: independent samples (Mishchenko et al. 2020's stochastic extragradient
      with independent samples, as opposed to their same-sample SEG, the default): the first
      evaluation sees the first half of the step's batch and the second evaluation the second
      half, each with its own noise (feed batches twice as large). It needs the game of a
      :class:`tfgames.GameModel` (which records the batch).
    - ``past=True``: past extragradient, also "extrapolation from the past" (Popov 1980;
      Gidel et al. 2019): w_{t+1/2} = w_t - eta' F(w_{t-1/2}) reuses the F of the previous
      step, so each step evaluates the game's gradient once. First step: there is no
      F(w_{-1/2}); it is zero (a zero-initialised slot), so the first extrapolation is the
      inner optimizer's step on a zero gradient. That does not move SGD or Adam (w_{1/2} =
      w_0, their moments stay zero) and the first step is a step on F(w_0), but the inner
      step counter advances, so ExtraAdam's first real step is bias-corrected as its second
      (a step (1 + b2)^(1/2) / (1 + b1) times Adam's first). With SGD the extrapolated points
      w_{t+1/2} follow optimistic gradient descent (:class:`tfgames.OGD`,
      ``first_step="double"``).

    Gradient evaluations per step: 2 (1 with ``past=True``); CurvatureEG+: 2 + the
    backtracking re-evaluations, plus 2 * ``power_iterations`` evaluations with a
    Hessian-vector product each. Naming: Mertikopoulos et al.
    (ICLR 2019) call this two-evaluation method "optimistic mirror descent"; Daskalakis et al.
    (ICLR 2018) use "optimistic" for the one-evaluation update of :class:`tfgames.OGD` and
    :class:`tfgames.Adamirror`, which is past extragradient written at the extrapolated
    points.

    :attr:`iterations` counts game steps; ``inner_optimizer.iterations`` counts half-steps
    (two per step; one per step with ``curvature``, whose extrapolation is a plain assignment).
    The losses reported are those at w_t (at w_{t+1/2} with ``past=True``, the only
    evaluation). To give each player its own optimizer, wrap a simultaneous
    :class:`tfgames.PerPlayer`:
    ``Extragradient(PerPlayer({"discriminator": Adam(...), "generator": Adam(...)}))``.

    It needs the game: use it through :class:`tfgames.GameModel` or ``apply_game(game)``;
    ``apply(grads)`` raises a ``TypeError``.

    Args:
      inner_optimizer: the Keras optimizer of both half-steps (SGD: extragradient; Adam:
        ExtraAdam), or a simultaneous :class:`tfgames.PerPlayer`.
      extrapolation_learning_rate: eta' > 0, or None for the inner learning rate.
      beta: EG+'s beta in (0, 1] (extrapolation step eta / beta), or None.
      curvature: CurvatureEG+'s nu in (0, 1), or None.
      power_iterations: CurvatureEG+: power-iteration steps for ||J||_2, >= 1.
      backtracking: CurvatureEG+: tau in (0, 1), the factor of each backtracking step.
      max_backtracks: CurvatureEG+: the most backtracking steps per step, >= 0.
      fresh_noise: draw new noise for the second evaluation.
      fresh_batch: independent samples: two halves of the batch, each with its own noise.
      past: past extragradient (one gradient evaluation per step).
      name: the optimizer's name; ``None`` derives one from the class name.

    References:
      Korpelevich. The extragradient method for finding saddle points and other problems.
      Ekonomika i Matematicheskie Metody 12, 1976. Popov. A modification of the
      Arrow-Hurwicz method for search of saddle points. Mathematical Notes 28, 1980.
      Gidel, Berard, Vignoud, Vincent, Lacoste-Julien. A Variational Inequality Perspective
      on Generative Adversarial Networks. ICLR 2019. Mertikopoulos, Lecouat, Zenati, Foo,
      Chandrasekhar, Piliouras. Optimistic Mirror Descent in Saddle-Point Problems: Going
      the Extra (Gradient) Mile. ICLR 2019. Diakonikolas, Daskalakis, Jordan. Efficient
      Methods for Structured Nonconvex-Nonconcave Min-Max Optimization. AISTATS 2021.
      Pethick, Latafat, Patrinos, Fercoq, Cevher. Escaping limit cycles: Global convergence
      for constrained nonconvex-nonconcave minimax problems. ICLR 2022. Mishchenko,
      Kovalev, Shulgin, Richtarik, Malitsky. Revisiting Stochastic Extragradient. AISTATS
      2020.

    Example:
      >>> import keras, tfgames
      >>> extra_adam = tfgames.Extragradient(keras.optimizers.Adam(1e-4, beta_1=0.5))
      >>> past = tfgames.Extragradient(keras.optimizers.SGD(0.1), past=True)
      >>> eg_plus = tfgames.Extragradient(keras.optimizers.SGD(0.05), beta=0.25)
      >>> model = tfgames.games.Bilinear()  # f = x * y from (1, 1)
      >>> model.compile(optimizer=tfgames.Extragradient(keras.optimizers.SGD(0.1)))
      >>> _ = model.fit(tfgames.datasets.step_dataset(300), verbose=0)
      >>> model.distance_to_equilibrium() < 0.5  # from sqrt(2); gradient descent: 6.29
      True
    """

    def __init__(
        self,
        inner_optimizer: keras.optimizers.Optimizer,
        *,
        extrapolation_learning_rate: float | None = None,
        beta: float | None = None,
        curvature: float | None = None,
        power_iterations: int = 20,
        backtracking: float = 0.5,
        max_backtracks: int = 20,
        fresh_noise: bool = False,
        fresh_batch: bool = False,
        past: bool = False,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        check_optimizer(inner_optimizer, "inner_optimizer")
        for flag, value in (("fresh_noise", fresh_noise), ("fresh_batch", fresh_batch),
                            ("past", past)):
            check_bool(flag, value)
        if past and (fresh_noise or fresh_batch):
            flag = "fresh_noise" if fresh_noise else "fresh_batch"
            raise ValueError(
                "Past extragradient evaluates the game once per step, so there is no second "
                f"evaluation to draw a fresh sample for. Received: past=True, {flag}=True."
            )
        chosen = [k for k, v in (("extrapolation_learning_rate", extrapolation_learning_rate),
                                 ("beta", beta), ("curvature", curvature)) if v is not None]
        if len(chosen) > 1:
            raise ValueError(
                "Pass at most one of `extrapolation_learning_rate` (eta'), `beta` (EG+: eta' = "
                "eta / beta) and `curvature` (CurvatureEG+: adaptive steps): each sets the "
                f"extrapolation step. Received: {', '.join(chosen)}."
            )
        if extrapolation_learning_rate is not None:
            extrapolation_learning_rate = _positive(
                "extrapolation_learning_rate", extrapolation_learning_rate)
        if beta is not None:
            beta = _positive("beta", beta, upper=1.0)
        swaps = extrapolation_learning_rate is not None or beta is not None
        if swaps and (isinstance(inner_optimizer, PerPlayer) or not isinstance(
                getattr(inner_optimizer, "learning_rate", None), keras.Variable)):
            raise ValueError(
                f"`{chosen[0]}` swaps the inner optimizer's learning rate for the "
                "extrapolation, so the inner optimizer needs one constant learning rate "
                "(a float, not a schedule or a PerPlayer container). Received: inner "
                f"optimizer {type(inner_optimizer).__name__}."
            )
        if curvature is not None:
            curvature = _positive("curvature", curvature, upper=1.0, closed=False)
            sgd = keras.optimizers.SGD
            if type(inner_optimizer) is not sgd or inner_optimizer.momentum != 0.0:
                raise ValueError(
                    "CurvatureEG+ (`curvature`) sets its own step sizes gamma_k and alpha_k "
                    "gamma_k, which only a plain gradient step takes as they are: pass "
                    "keras.optimizers.SGD(gamma_max) without momentum (its learning rate caps "
                    f"gamma_k). Received: inner optimizer {type(inner_optimizer).__name__}"
                    + (f" with momentum={inner_optimizer.momentum}"
                       if isinstance(inner_optimizer, sgd) else "") + "."
                )
            if past or fresh_batch:
                raise ValueError(
                    "CurvatureEG+ (`curvature`) re-evaluates the game at the same sample; it "
                    f"does not combine with past=True or fresh_batch=True. Received: past={past},"
                    f" fresh_batch={fresh_batch}."
                )
        for arg, value, low in (("power_iterations", power_iterations, 1),
                                ("max_backtracks", max_backtracks, 0)):
            checked(arg, value, int, lambda n, low=low: n >= low, f"must be an integer >= {low}")
        backtracking = _positive("backtracking", backtracking, upper=1.0, closed=False)
        if isinstance(inner_optimizer, PerPlayer) and (
            inner_optimizer.update_order != "simultaneous"
        ):
            raise ValueError(
                "Extragradient extrapolates and steps every player together, so its PerPlayer "
                "inner optimizer must use update_order='simultaneous' (formerly "
                "schedule='simultaneous'). Received: update_order="
                f"{inner_optimizer.update_order!r}."
            )
        super().__init__(inner_optimizer, name=name, **kwargs)
        self.extrapolation_learning_rate = extrapolation_learning_rate
        self.beta = beta
        self.curvature = curvature
        self.power_iterations = int(power_iterations)
        self.backtracking = backtracking
        self.max_backtracks = int(max_backtracks)
        self.fresh_noise = fresh_noise
        self.fresh_batch = fresh_batch
        self.past = past

    @property
    def diagnostic_names(self) -> tuple[str, ...]:
        """CurvatureEG+'s step sizes and backtracking count; nothing otherwise."""
        return ("eg_gamma", "eg_alpha", "eg_backtracks") if self.curvature is not None else ()

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
        """W <- w_t - eta' * inner(direction), after every tensor in ``after`` exists."""
        with tf.control_dependencies(after):
            if self.extrapolation_learning_rate is None and self.beta is None:
                apply_after(self.inner_optimizer, direction, variables)
                return
            learning_rate = self.inner_optimizer.learning_rate
            base = tf.identity(learning_rate)
            with tf.control_dependencies([base]):
                if self.beta is not None:
                    learning_rate.assign(base / tf.cast(self.beta, base.dtype))
                else:
                    learning_rate.assign(self.extrapolation_learning_rate)
                apply_after(self.inner_optimizer, direction, variables)
                learning_rate.assign(base)

    @staticmethod
    def _half_games(game: Game) -> tuple[Game, Game]:
        """Games on the first and the second half of the step's batch."""
        on_batch = getattr(game, "on_batch", None)
        if on_batch is None:
            raise ValueError(
                "Extragradient(fresh_batch=True) evaluates the two halves of the step's batch, "
                "so it needs the game of a tfgames.GameModel (GameModel.make_game records the "
                "batch). Received: a Game without a batch. Use fresh_noise=True for new noise "
                "on the same batch, or train through a GameModel."
            )
        first, second = split_batch(game.batch)
        return on_batch(first), on_batch(second)

    def apply_game(self, game: Game) -> StepResult:
        """One extragradient step on ``game``: extrapolate, re-evaluate, step from w_t."""
        bind_players(self.inner_optimizer, game.players)
        if not self.built:
            self.build(game.variables)
        if self.curvature is not None:
            return self._curvature_step(game)
        variables = game.variables
        saved = [products.read_value(v) for v in variables]
        first, second = self._half_games(game) if self.fresh_batch else (game, game)
        if self.past:
            # The slots hold the global F (summed over replicas); the inner optimizer sums
            # the per-replica shares again.
            past = [self._past_gradients[self._get_variable_index(v)] for v in variables]
            share = 1.0 / num_replicas()
            direction = [tf.convert_to_tensor(p) * tf.cast(share, p.dtype) for p in past]
            self._extrapolate(direction, variables, saved + direction)
        else:
            with tf.control_dependencies(saved):
                losses, f_start = first.gradient()
            reported = dict(first.last_losses)
            self._extrapolate(f_start, variables, saved + f_start + list(losses.values()))
            if self.fresh_noise:
                second.fresh_noise()
        half_losses, f_half = second.gradient()
        if self.past:
            reported = dict(game.last_losses)
            for slot, f in zip(past, all_reduce_sum(f_half)):
                slot.assign(f)
        with tf.control_dependencies(f_half + list(half_losses.values())):
            for variable, value in zip(variables, saved):
                variable.assign(value)
        apply_after(self.inner_optimizer, f_half, variables, half_losses)
        self._iterations.assign_add(1)
        if self.fresh_batch:
            game.evaluations += first.evaluations + second.evaluations
            game.last_losses = reported
        return StepResult(reported, {})

    # -- CurvatureEG+ -----------------------------------------------------------------------
    def _jacobian_norm(self, game: Game, f: list[tf.Tensor]) -> tf.Tensor:
        """||H||_2 by power iteration on H^T H, started from the global F (matrix-free).

        Every product is this replica's share, all-reduced into the global-batch product. One
        replica: a ``tf.while_loop``, so that the traced step does not grow with the
        iterations; several: a Python loop (no all-reduce can sit in a ``while_loop``).
        """

        def unit(v):
            scale = tf.maximum(products.norm(v), 1e-30)
            return [x / tf.cast(scale, x.dtype) for x in v]

        def iterate(i, squared, *v):
            hv = game.products(unit(v), hv=True, htv=False, mode="double_backward").hv
            hv = all_reduce_sum(hv)
            v = all_reduce_sum(game.products(hv, hv=False, htv=True).htv)  # H^T H v
            return (i + 1, tf.cast(products.norm(v), squared.dtype), *v)

        state = (tf.constant(0), tf.zeros((), products.norm(f).dtype), *f)
        if num_replicas() > 1:
            for _ in range(self.power_iterations):
                state = iterate(*state)
        else:
            state = tf.while_loop(lambda i, *_: i < self.power_iterations, iterate, state)
        return tf.sqrt(state[1])  # ||H^T H v|| -> sigma_max^2

    def _curvature_step(self, game: Game) -> StepResult:
        variables = game.variables
        saved = [products.read_value(v) for v in variables]
        with tf.control_dependencies(saved):
            losses, f_local = game.gradient()
        reported = dict(game.last_losses)
        f_start = all_reduce_sum(f_local)  # F(z_k) on the global batch
        eta = tf.convert_to_tensor(self.inner_optimizer.learning_rate)
        norm_j = self._jacobian_norm(game, f_start)
        dtype = norm_j.dtype
        nu = tf.constant(self.curvature, dtype)
        tau = tf.constant(self.backtracking, dtype)
        gamma = tf.minimum(tf.cast(eta, dtype), nu / tf.maximum(norm_j, tf.cast(1e-30, dtype)))
        f_norm = products.norm(f_start)

        def evaluate_at(step):
            """This replica's share of F(z_k - step F(z_k))."""
            with tf.control_dependencies([step]):
                for variable, value, f in zip(variables, saved, f_start):
                    variable.assign(value - tf.cast(step, value.dtype) * f)
            return game.gradient()[1]

        def too_long(count, f_bar):
            """Whether gamma ||F(z_bar) - F(z)|| > nu ||z_bar - z|| (= nu gamma ||F(z)||)."""
            change = products.norm([b - a for a, b in zip(f_start, f_bar)])
            return tf.logical_and(count < self.max_backtracks, change > nu * f_norm)

        f_bar_local = evaluate_at(gamma)
        f_bar = all_reduce_sum(f_bar_local)
        count = tf.constant(0)
        if num_replicas() > 1:
            # Unrolled: the all-reduce stays outside the conditional re-evaluation.
            for _ in range(self.max_backtracks):
                active = too_long(count, f_bar)
                shorter = tf.where(active, gamma * tau, gamma)
                f_bar_local = tf.cond(
                    active, lambda step=shorter: evaluate_at(step),
                    lambda kept=f_bar_local: [tf.identity(x) for x in kept])
                f_bar = all_reduce_sum(f_bar_local)
                gamma, count = shorter, count + tf.cast(active, count.dtype)
        else:
            def shorter(count, step, *f_bar):
                step = step * tau
                return (count + 1, step, *evaluate_at(step))

            count, gamma, *f_bar = tf.while_loop(
                lambda count, step, *f_bar: too_long(count, f_bar), shorter,
                [count, gamma, *f_bar])
            f_bar_local = f_bar
        game.last_losses = reported  # not those of the re-evaluations
        alpha = curvature_update_ratio(f_start, f_bar)
        with tf.control_dependencies(f_bar + f_bar_local):
            for variable, value in zip(variables, saved):
                variable.assign(value)
        scale = alpha * gamma / tf.cast(eta, dtype)
        # this replica's share of alpha gamma F(z_bar) / eta; the inner SGD sums the shares
        apply_after(self.inner_optimizer, [tf.cast(scale, f.dtype) * f for f in f_bar_local],
                    variables, losses)
        self._iterations.assign_add(1)
        diagnostics = {"eg_gamma": tf.cast(gamma, tf.float32),
                       "eg_alpha": tf.cast(alpha, tf.float32),
                       "eg_backtracks": tf.cast(count, tf.float32)}
        return StepResult(reported, diagnostics)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), **config_of(self, (
            "extrapolation_learning_rate", "beta", "curvature", "power_iterations",
            "backtracking", "max_backtracks", "fresh_noise", "fresh_batch", "past"))}
