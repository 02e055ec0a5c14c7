"""Per-player optimizers and update orders: simultaneous, alternating, k steps to 1."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import keras
import tensorflow as tf

from tfgames import products
from tfgames.game import Game, mismatched_names
from tfgames.optimizers.base import (
    PlayerOptimizer,
    StepResult,
    WrapperOptimizer,
    as_count,
    check_optimizer,
    loss_scale_of,
    loss_scale_optimizer_of,
    num_replicas,
    simultaneous_step,
    steps_game,
)

__all__ = [
    "BATCHES",
    "UPDATE_ORDERS",
    "PerPlayer",
    "PlayerOptimizers",
    "UpdateOrder",
    "bind_players",
    "compile_optimizer",
]

#: The named update orders; a mapping {player: k} gives k consecutive steps per player.
UPDATE_ORDERS = ("simultaneous", "alternating")
#: How an alternating order meets the data: each inner step its own batch, or one batch a cycle.
BATCHES = ("fresh", "reuse")

UpdateOrder = str | Mapping[str, int]

#: Deprecated names (tfgames 0.1) of :data:`UPDATE_ORDERS` and :data:`UpdateOrder`.
SCHEDULES = UPDATE_ORDERS
Schedule = UpdateOrder


def _check_update_order(
    order: Any, players: Sequence[str], argument: str = "update_order"
) -> UpdateOrder:
    if isinstance(order, str):
        if order not in UPDATE_ORDERS:
            raise ValueError(
                f"Argument `{argument}` must be one of {UPDATE_ORDERS} or a mapping "
                "{player: steps}, e.g. {'discriminator': 5, 'generator': 1}. "
                f"Received: {argument}={order!r}."
            )
        return order
    if not isinstance(order, Mapping):
        raise TypeError(
            f"Argument `{argument}` must be one of {UPDATE_ORDERS} or a mapping "
            f"{{player: steps}}. Received: an object of type {type(order).__name__}."
        )
    missing = [p for p in players if p not in order]
    extra = [p for p in order if p not in players]
    if missing or extra:
        raise ValueError(
            f"The {argument} must give a number of steps to every player {list(players)}: a "
            f"player left out would never move. Missing: {missing}; unexpected: {extra}. "
            f"Received: {argument}={dict(order)!r}."
        )
    out = {}
    for name, steps in order.items():
        count = as_count(steps)
        if count is None or count < 1:
            raise ValueError(
                f"Each player's number of consecutive steps must be an integer >= 1 (a "
                f"Python or NumPy integer). Received: {argument}[{name!r}]={steps!r}."
            )
        out[name] = count
    return out


def _deprecated_schedule(update_order: Any, schedule: Any, default: Any, where: str) -> Any:
    """``update_order``, or the deprecated ``schedule`` given instead (with a warning)."""
    if schedule is None:
        return update_order
    if update_order is not default and update_order != default:
        raise TypeError(
            f"{where} got both `update_order` and its deprecated name `schedule`; pass "
            f"`update_order` only. Received: update_order={update_order!r}, "
            f"schedule={schedule!r}."
        )
    warnings.warn(
        f"`schedule` of {where} is deprecated (it reads as a learning-rate schedule): pass "
        f"`update_order={schedule!r}` instead.",
        DeprecationWarning,
        stacklevel=3,
    )
    return schedule


class PlayerOptimizers(list):
    """The list of :attr:`PerPlayer.optimizers`: one :class:`PlayerOptimizer` per player.

    A list, as Keras' callbacks expect. The dict-style access of tfgames 0.1
    (``optimizers["generator"]``, ``items()``, ``keys()``, ``values()``) still returns the
    players' Keras optimizers, with a ``DeprecationWarning``: use
    :attr:`PerPlayer.player_optimizers`.
    """

    def _mapping(self, what: str) -> dict[str, keras.optimizers.Optimizer]:
        warnings.warn(
            f"PerPlayer.optimizers is a list (Keras' convention) since tfgames 0.2; {what} "
            "on it is deprecated: use PerPlayer.player_optimizers, a dict "
            "{player: optimizer}.",
            DeprecationWarning,
            stacklevel=3,
        )
        return {entry.player: entry.optimizer for entry in self}

    def __getitem__(self, key):
        if isinstance(key, str):
            return self._mapping(f"indexing by player name ({key!r})")[key]
        return super().__getitem__(key)

    def items(self):
        return self._mapping("items()").items()

    def keys(self):
        return self._mapping("keys()").keys()

    def values(self):
        return self._mapping("values()").values()


@keras.saving.register_keras_serializable(package="tfgames")
class PerPlayer(WrapperOptimizer):
    """One Keras optimizer per player, stepped simultaneously or in an alternating order.

    Simultaneous (``update_order="simultaneous"``, default): at every step each player i
    takes its own optimizer's step on its block of the simultaneous gradient,

        w_i <- w_i - opt_i(xi_i(w)),     xi_i = grad_{w_i} l_i,  all i at the same w.

    Alternating (``update_order={p_1: k_1, ..., p_n: k_n}``): the steps cycle through the
    players in the mapping's order, k_1 steps of p_1, then k_2 steps of p_2, and so on; at a
    step of player i only grad_{w_i} l_i is computed and only w_i moves. WGAN-GP's 5:1 is
    ``{"discriminator": 5, "generator": 1}``; ``"alternating"`` is one step each, in the
    order of ``optimizers``.

    Data of an alternating order (``batches``):

    - ``"fresh"`` (default): every inner step is one training step of ``fit`` and receives
      its own batch, so a 5:1 cycle consumes 6 consecutive batches and the critic sees a new
      real batch at each of its 5 steps, as in Gulrajani et al.'s Algorithm 1. An epoch of N
      batches is N inner steps.
    - ``"reuse"``: one training step runs a whole cycle on the batch it receives (the
      keras.io WGAN-GP example's layout): a 5:1 cycle consumes one batch, every inner step
      sees that batch and draws new noise from the model's seed generator.

    Each player's optimizer keeps its own state and hyperparameters (e.g. the discriminator's
    ``Adam(1e-4, beta_1=0.5, beta_2=0.9)`` and the generator's ``Adam(3e-4, beta_1=0.9,
    beta_2=0.9)``), and its ``iterations`` counts that player's steps only. :attr:`iterations`
    counts the container's training steps (with ``batches="fresh"``, the position in the
    order). :attr:`variables` holds the container's own state followed by every player's
    optimizer state, so saving a model saves them all.

    Learning rates: :attr:`optimizers` lists one entry per player, named after the player,
    whose ``learning_rate`` is that player's (Keras' multi-optimizer convention: the
    ``TensorBoard`` callback logs ``learning_rate_<player>`` and ``LearningRateScheduler`` /
    ``ReduceLROnPlateau`` change every player's rate). :attr:`learning_rate` reads as
    ``{player: learning rate}`` and accepts a number (every player) or such a mapping.

    The container must know which variables belong to which player: ``GameModel.compile``
    binds them (``compile(optimizer={...}, update_order=...)`` builds a :class:`PerPlayer`,
    or pass one directly), ``apply_game`` binds them from the game, and in a plain Keras loop
    call :meth:`bind_players` before the first step. Under ``tf.distribute.MirroredStrategy``
    every order equals one device on the global batch, and so do the simultaneous and the
    alternating order across two workers under ``MultiWorkerMirroredStrategy``
    (tests/test_distribute.py, tests/test_alternating_distribute.py). Game optimizers wrap a
    simultaneous container, e.g.
    ``tfgames.Extragradient(PerPlayer({...}))`` (per-player ExtraAdam) or
    ``tfgames.SGA(PerPlayer({...}))``; :class:`tfgames.Lookahead` also wraps an alternating
    one.

    Args:
      optimizers: ``{player: Keras optimizer}``, one distinct first-order optimizer per
        player (game optimizers wrap the container instead).
      update_order: ``"simultaneous"``, ``"alternating"`` or ``{player: consecutive steps}``
        (formerly ``schedule``, still accepted with a ``DeprecationWarning``).
      batches: ``"fresh"`` or ``"reuse"``, how an alternating order meets the data (above).
      name: the optimizer's name; ``None`` derives one from the class name.

    Example:
      >>> import keras, tfgames
      >>> opt = tfgames.PerPlayer(
      ...     {"discriminator": keras.optimizers.Adam(1e-4, beta_1=0.5, beta_2=0.9),
      ...      "generator": keras.optimizers.Adam(1e-4, beta_1=0.5, beta_2=0.9)},
      ...     update_order={"discriminator": 5, "generator": 1})
      >>> opt.update_order
      {'discriminator': 5, 'generator': 1}

    References:
      Gulrajani, Ahmed, Arjovsky, Dumoulin, Courville. Improved Training of Wasserstein
      GANs. NeurIPS 2017 (5 critic steps per generator step). Heusel, Ramsauer, Unterthiner,
      Nessler, Hochreiter. GANs Trained by a Two Time-Scale Update Rule Converge to a Local
      Nash Equilibrium. NeurIPS 2017 (one learning rate per player).
    """

    diagnostic_names: tuple[str, ...] = ()

    def __init__(
        self,
        optimizers: Mapping[str, keras.optimizers.Optimizer],
        *,
        update_order: UpdateOrder = "simultaneous",
        batches: Literal["fresh", "reuse"] = "fresh",
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        schedule = kwargs.pop("schedule", None)
        argument = "update_order" if schedule is None else "schedule"
        update_order = _deprecated_schedule(update_order, schedule, "simultaneous", "PerPlayer")
        if not isinstance(optimizers, Mapping) or not optimizers:
            raise ValueError(
                "Argument `optimizers` must be a non-empty mapping {player name: Keras "
                f"optimizer}}. Received: {optimizers!r}."
            )
        seen: dict[int, str] = {}
        for player, optimizer in optimizers.items():
            if not isinstance(player, str):
                raise TypeError(f"Player names must be strings. Received: {player!r}.")
            check_optimizer(optimizer, f"optimizers[{player!r}]")
            if steps_game(optimizer) or isinstance(optimizer, PerPlayer):
                raise TypeError(
                    f"The optimizer of player {player!r} is a game optimizer "
                    f"({type(optimizer).__name__}); per-player optimizers must be first-order "
                    "Keras optimizers. Wrap the container instead, e.g. "
                    "tfgames.Extragradient(tfgames.PerPlayer({...}))."
                )
            if id(optimizer) in seen:
                raise ValueError(
                    f"Players {seen[id(optimizer)]!r} and {player!r} were given the same "
                    "optimizer instance; each player needs its own (its state and step "
                    "counter are the player's). Pass one instance per player."
                )
            seen[id(optimizer)] = player
        update_order = _check_update_order(update_order, list(optimizers), argument)
        if batches not in BATCHES:
            raise ValueError(
                f"Argument `batches` must be one of {BATCHES}: 'fresh' gives every inner step "
                "of an alternating order its own batch, 'reuse' runs a whole cycle on one "
                f"batch. Received: batches={batches!r}."
            )
        if batches == "reuse" and update_order == "simultaneous":
            raise ValueError(
                "batches='reuse' runs a cycle of an alternating update order on one batch; "
                "a simultaneous order takes one step per batch. Pass an alternating "
                "update_order, or leave batches='fresh'. Received: "
                "update_order='simultaneous', batches='reuse'."
            )
        super().__init__(None, name=name, **kwargs)
        self._optimizers = dict(optimizers)
        self.update_order = update_order
        self.batches = batches
        self._owners: dict[int, str] | None = None

    @property
    def schedule(self) -> UpdateOrder:
        """Deprecated name of :attr:`update_order`."""
        warnings.warn(
            "PerPlayer.schedule is deprecated: read PerPlayer.update_order.",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.update_order

    # -- players ------------------------------------------------------------------------------
    @property
    def optimizers(self) -> PlayerOptimizers:
        """One entry per player, in order: the player's optimizer, named after the player."""
        return PlayerOptimizers(PlayerOptimizer(p, o) for p, o in self._optimizers.items())

    @property
    def player_optimizers(self) -> dict[str, keras.optimizers.Optimizer]:
        """``{player: optimizer}``, in the container's order."""
        return dict(self._optimizers)

    @property
    def player_names(self) -> list[str]:
        """The players, in the container's order."""
        return list(self._optimizers)

    @property
    def learning_rate(self) -> dict[str, Any]:
        """``{player: learning rate}``; set a number (every player) or a mapping."""
        return {p: o.learning_rate for p, o in self._optimizers.items()}

    @learning_rate.setter
    def learning_rate(self, learning_rate) -> None:
        if isinstance(learning_rate, Mapping):
            unknown = [p for p in learning_rate if p not in self._optimizers]
            if unknown:
                raise ValueError(
                    f"The learning rates must be keyed by the players {self.player_names}. "
                    f"Unknown: {unknown}. Received: {dict(learning_rate)!r}."
                )
            for player, value in learning_rate.items():
                self._optimizers[player].learning_rate = value
            return
        for optimizer in self._optimizers.values():
            optimizer.learning_rate = learning_rate

    def bind_players(self, players: Mapping[str, Sequence]) -> None:
        """Tell the container which variables belong to which player.

        Args:
          players: ``{player: [variables]}`` with exactly the container's players (e.g.
            ``game.players`` or ``{"d": d.trainable_variables, "g": g.trainable_variables}``).
        """
        missing, extra = mismatched_names(self._optimizers, players)
        if missing or extra:
            raise ValueError(
                f"PerPlayer has optimizers for {self.player_names} but the game's players are "
                f"{list(players)}. Players without an optimizer: {extra}; optimizers of no "
                f"player: {missing}. Give exactly one optimizer per player."
            )
        owners = {self._var_key(v): name for name, vs in players.items() for v in vs}
        if self._owners is not None and self.built and dict(self._owners) != owners:
            raise ValueError(
                "This PerPlayer optimizer is already built for other players' variables; "
                "pass a fresh instance for a new model."
            )
        self._owners = owners

    def _owner(self, variable) -> str:
        if self._owners is None:
            raise ValueError(
                "PerPlayer does not know which variables belong to which player. Compile a "
                "tfgames.GameModel with it, train through apply_game(game), or call "
                "optimizer.bind_players({player: [variables]}) before the first step."
            )
        key = self._var_key(variable)
        if key not in self._owners:
            raise ValueError(
                f"Variable {variable.name!r} belongs to none of the players "
                f"{self.player_names}. Bind the players with all the variables to train."
            )
        return self._owners[key]

    def _split(self, values: Sequence, variables: Sequence) -> dict[str, tuple[list, list]]:
        groups: dict[str, tuple[list, list]] = {p: ([], []) for p in self._optimizers}
        for value, variable in zip(values, variables):
            grads, owned = groups[self._owner(variable)]
            grads.append(value)
            owned.append(variable)
        return groups

    # -- the wrapper plumbing -------------------------------------------------------------
    def _inner_optimizers(self) -> list[keras.optimizers.Optimizer]:
        return list(self._optimizers.values())

    def _scales_losses(self) -> bool:
        """Whether players apply through their own LossScaleOptimizer (mixed_float16)."""
        return any(loss_scale_optimizer_of(o) is not None for o in self._optimizers.values())

    def _steps_game(self) -> bool:
        return self.update_order != "simultaneous" or self._scales_losses()

    def build(self, var_list: list) -> None:
        """Build each player's optimizer on that player's variables in ``var_list``."""
        if self.built:
            return
        for player, (owned, _) in self._split(var_list, var_list).items():
            if owned:
                self._optimizers[player].build(owned)
        keras.optimizers.Optimizer.build(self, var_list)

    def scale_loss(self, loss):
        return loss

    def finalize_variable_values(self, var_list) -> None:
        for player, (owned, _) in self._split(var_list, var_list).items():
            if owned:
                self._optimizers[player].finalize_variable_values(owned)

    def apply(self, grads, trainable_variables=None) -> None:
        """Simultaneous step: each player's optimizer applies that player's gradients."""
        if self.update_order != "simultaneous":
            raise ValueError(
                f"PerPlayer.apply updates every player at once, but the update order is "
                f"{self.update_order!r}. An alternating order computes only the active "
                "player's gradient: train it through apply_game(game) (GameModel.fit, or "
                "tfgames.Lookahead around it), or use update_order='simultaneous'."
            )
        if trainable_variables is None:
            trainable_variables = self._trainable_variables
        trainable_variables = list(trainable_variables)
        groups = self._split(list(grads), trainable_variables)
        if not self.built:
            self.build(trainable_variables)
        for player, (player_grads, owned) in groups.items():
            if owned:
                self._optimizers[player].apply(player_grads, owned)
        self._iterations.assign_add(1)

    # -- the game step ------------------------------------------------------------------------
    def _cycle(self) -> list[tuple[str, int]]:
        if isinstance(self.update_order, Mapping):
            return list(self.update_order.items())
        return [(p, 1) for p in self._optimizers]

    def _active_player(self) -> tf.Tensor:
        """Index (in the order) of the player that steps now."""
        steps = [k for _, k in self._cycle()]
        position = tf.math.floormod(tf.cast(self._iterations, tf.int64), sum(steps))
        index = tf.zeros((), tf.int32)
        boundary = 0
        for k in steps[:-1]:
            boundary += k
            index += tf.cast(position >= boundary, tf.int32)
        return index

    def _step_players(self, game: Game, names: Sequence[str]) -> dict[str, tf.Tensor]:
        """Step the players ``names`` on their own gradients; return every player's loss.

        Player p's gradient is grad_{w_p} (l_p * loss_scale * s_p), with s_p the dynamic scale
        of p's LossScaleOptimizer (mixed_float16; 1 otherwise), which divides it out again.
        """
        scales = {p: loss_scale_of(self._optimizers[p]) for p in names}

        def loss_fn():
            losses = game.losses()
            out = {}
            for p in names:
                loss = losses[p] * tf.cast(game.loss_scale, losses[p].dtype)
                if scales[p] is not None:
                    loss = loss * tf.cast(scales[p], loss.dtype)
                out[p] = loss
            return out

        owned = {p: game.players[p] for p in names}
        _, grads = products.simultaneous_gradient(loss_fn, owned)
        reported = dict(game.last_losses)
        after = [g for g in grads if g is not None] + list(reported.values())
        with tf.control_dependencies(after):
            start = 0
            for p in names:
                count = len(owned[p])
                self._optimizers[p].apply(grads[start : start + count], owned[p])
                start += count
        return reported

    def apply_game(self, game: Game) -> StepResult:
        """One training step on ``game`` (binds the players on first use).

        Simultaneous: every player steps. Alternating with ``batches="fresh"``: the active
        player takes one step; with ``batches="reuse"``: a whole cycle of the order.
        """
        if self._owners is None:
            self.bind_players(game.players)
        if not self.built:
            self.build(game.variables)
        if self.update_order == "simultaneous":
            if not self._scales_losses():
                return simultaneous_step(self, game)
            reported = self._step_players(game, self.player_names)
            self._iterations.assign_add(1)
            return StepResult(reported, {})
        names = list(game.players)
        if self.batches == "reuse":
            reported = None
            for player, steps in self._cycle():
                for _ in range(steps):
                    # Every inner step draws new noise; all see this step's batch.
                    game.fresh_noise()
                    with tf.control_dependencies(list((reported or {}).values())):
                        reported = self._step_players(game, [player])
            game.fresh_noise()
            self._iterations.assign_add(1)
            return StepResult(reported, {})

        def step(target: Game, player: str) -> list[tf.Tensor]:
            # Every branch is traced: each takes its own noise snapshot.
            target.fresh_noise()
            reported = self._step_players(target, [player])
            return [reported[name] for name in names]

        cycle = [player for player, _ in self._cycle()]
        if num_replicas() > 1:
            values = self._switch_across_replicas(game, cycle, step)
        else:
            values = tf.switch_case(self._active_player(),
                                    [functools.partial(step, game, p) for p in cycle])
        game.fresh_noise()
        self._iterations.assign_add(1)
        return StepResult(dict(zip(names, values)), {})

    def _switch_across_replicas(self, game: Game, cycle: list[str], step) -> list[tf.Tensor]:
        """The active player's step, ``step(game, player)``, under several replicas.

        A Keras optimizer synchronises the replicas inside ``apply`` (``merge_call``: the
        gradient all-reduce and the variable update), and ``merge_call`` cannot run inside a
        conditional built in replica context ("`merge_call` called while defining a new
        graph", TensorFlow 2.21). As Keras' ``LossScaleOptimizer`` does for its finite-gradient
        test, the conditional is built in cross-replica context (one ``merge_call``) and its
        branches re-enter the replicas with ``call_for_each_replica``, each replica stepping
        its own game (its part of the batch). Returns this replica's losses, in the game's
        player order.
        """

        def merged(strategy, games):
            # This worker's replicas (all of them on one worker): TensorFlow numbers replica
            # r of the strategy as worker * local + (its index among the worker's replicas).
            local = len(strategy.experimental_local_results(games))

            def branch(player: str):
                def run() -> list[tf.Tensor]:
                    per_replica = strategy.extended.call_for_each_replica(
                        step, args=(games, player))
                    # Per loss, one tensor per local replica: a conditional returns tensors.
                    return [t for value in per_replica
                            for t in strategy.experimental_local_results(value)]

                return run

            flat = tf.switch_case(self._active_player(), [branch(p) for p in cycle])
            return [
                strategy.experimental_distribute_values_from_function(
                    lambda context, i=i: flat[i * local + context.replica_id_in_sync_group % local])
                for i in range(len(flat) // local)
            ]

        return tf.distribute.get_replica_context().merge_call(merged, args=(game,))

    # -- config -------------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        order = self.update_order
        return {
            "name": self.name,
            "optimizers": {
                p: keras.saving.serialize_keras_object(o) for p, o in self._optimizers.items()
            },
            "update_order": dict(order) if isinstance(order, Mapping) else order,
            "batches": self.batches,
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any], custom_objects=None) -> PerPlayer:
        config = dict(config)
        if "schedule" in config:  # written by tfgames 0.1
            config["update_order"] = config.pop("schedule")
        optimizers = {
            p: keras.saving.deserialize_keras_object(c, custom_objects=custom_objects)
            for p, c in config.pop("optimizers").items()
        }
        return cls(optimizers, **config)


def bind_players(optimizer: Any, players: Mapping[str, Sequence]) -> None:
    """Bind ``players`` to every :class:`PerPlayer` in a chain of wrapping optimizers.

    Follows ``inner_optimizer`` (game optimizers, :class:`tfgames.Lookahead`, Keras'
    ``LossScaleOptimizer``); a chain without a :class:`PerPlayer` is left alone.
    """
    seen = set()
    while optimizer is not None and id(optimizer) not in seen:
        seen.add(id(optimizer))
        if isinstance(optimizer, PerPlayer):
            optimizer.bind_players(players)
        optimizer = getattr(optimizer, "inner_optimizer", None)


def _clone(optimizer: keras.optimizers.Optimizer) -> keras.optimizers.Optimizer:
    return keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(optimizer))


def compile_optimizer(
    optimizer: Any,
    update_order: UpdateOrder | None,
    players: Mapping[str, Sequence],
    *,
    batches: str | None = None,
    argument: str = "update_order",
) -> Any:
    """What ``GameModel.compile(optimizer, update_order=...)`` trains with, bound to ``players``.

    - a mapping ``{player: optimizer}``: a :class:`PerPlayer` with ``update_order`` (default
      simultaneous) and ``batches``;
    - one first-order optimizer with an ``update_order``: a :class:`PerPlayer` holding a copy
      of it (same configuration, fresh state) for each player;
    - anything else: unchanged.

    Every :class:`PerPlayer` in the result's chain is bound to ``players``. ``argument`` is
    the name the caller used (``"schedule"`` for the deprecated spelling), for the messages.
    """
    options = {} if batches is None else {"batches": batches}
    if isinstance(optimizer, Mapping):
        optimizer = PerPlayer(optimizer, update_order=update_order or "simultaneous", **options)
    elif update_order is not None or batches is not None:
        given = argument if update_order is not None else "batches"
        value = update_order if update_order is not None else batches
        if isinstance(optimizer, PerPlayer):
            own = optimizer.update_order if update_order is not None else optimizer.batches
            raise ValueError(
                f"The PerPlayer optimizer already has its {given} ({own!r}); do not pass "
                f"`{given}` to compile as well. Received: {given}={value!r}."
            )
        if steps_game(optimizer) or isinstance(optimizer, WrapperOptimizer):
            raise ValueError(
                f"`{given}` applies to first-order per-player optimizers, but the optimizer "
                f"is a game optimizer ({type(optimizer).__name__}). Give the {given} to a "
                "PerPlayer and wrap that one (tfgames.Lookahead accepts any update order). "
                f"Received: {given}={value!r}."
            )
        optimizer = keras.optimizers.get(optimizer)
        optimizer = PerPlayer(
            {p: _clone(optimizer) for p in players},
            update_order=update_order or "simultaneous",
            **options,
        )
    bind_players(optimizer, players)
    return optimizer
