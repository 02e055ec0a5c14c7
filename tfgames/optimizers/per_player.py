"""Per-player optimizers and update schedules: simultaneous, alternating, k steps to 1."""

from __future__ import annotations

from typing import Any, Mapping, Sequence, Union

import keras
import tensorflow as tf

from tfgames import products
from tfgames.game import Game
from tfgames.optimizers.base import StepResult, apply_after, check_optimizer, num_replicas

__all__ = ["SCHEDULES", "PerPlayer", "Schedule", "bind_players", "compile_optimizer"]

#: The named schedules; a mapping {player: k} gives k consecutive steps per player.
SCHEDULES = ("simultaneous", "alternating")

Schedule = Union[str, Mapping[str, int]]


def _check_schedule(schedule: Any, players: Sequence[str]) -> Schedule:
    if isinstance(schedule, str):
        if schedule not in SCHEDULES:
            raise ValueError(
                f"Argument `schedule` must be one of {SCHEDULES} or a mapping "
                "{player: steps}, e.g. {'discriminator': 5, 'generator': 1}. "
                f"Received: schedule={schedule!r}."
            )
        return schedule
    if not isinstance(schedule, Mapping):
        raise TypeError(
            f"Argument `schedule` must be one of {SCHEDULES} or a mapping {{player: steps}}. "
            f"Received: an object of type {type(schedule).__name__}."
        )
    missing = [p for p in players if p not in schedule]
    extra = [p for p in schedule if p not in players]
    if missing or extra:
        raise ValueError(
            f"The schedule must give a number of steps to every player {list(players)}: a "
            f"player left out would never move. Missing: {missing}; unexpected: {extra}. "
            f"Received: schedule={dict(schedule)!r}."
        )
    for name, steps in schedule.items():
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(
                f"Each player's number of consecutive steps must be an integer >= 1. "
                f"Received: schedule[{name!r}]={steps!r}."
            )
    return {name: int(steps) for name, steps in schedule.items()}


@keras.saving.register_keras_serializable(package="tfgames")
class PerPlayer(keras.optimizers.Optimizer):
    """One Keras optimizer per player, stepped simultaneously or on an alternating schedule.

    Simultaneous (``schedule="simultaneous"``, default): at every step each player i takes
    its own optimizer's step on its block of the simultaneous gradient,

        w_i <- w_i - opt_i(xi_i(w)),     xi_i = grad_{w_i} l_i,  all i at the same w.

    Alternating (``schedule={p_1: k_1, ..., p_n: k_n}``): the steps cycle through the
    players in the mapping's order, k_1 steps of p_1, then k_2 steps of p_2, and so on; at a
    step of player i only grad_{w_i} l_i is computed and only w_i moves. WGAN-GP's 5:1 is
    ``{"discriminator": 5, "generator": 1}``; ``"alternating"`` is one step each, in the
    order of ``optimizers``. Through ``fit`` each step sees its own batch.

    Each player's optimizer keeps its own state and hyperparameters (e.g. the discriminator's
    ``Adam(1e-4, 0.5, 0.9)`` and the generator's ``Adam(3e-4, 0.9, 0.9)``), and its
    ``iterations`` counts that player's steps only. :attr:`iterations` counts the container's
    steps (the position in the schedule). :attr:`variables` holds the container's own state
    followed by every player's optimizer state, so saving a model saves them all.

    The container must know which variables belong to which player: ``GameModel.compile``
    binds them (``compile(optimizer={...}, schedule=...)`` builds a :class:`PerPlayer`, or
    pass one directly), ``apply_game`` binds them from the game, and in a plain Keras loop
    call :meth:`bind_players` before the first step. Under a ``tf.distribute`` strategy with
    several replicas only the simultaneous schedule runs (an alternating one raises a
    ``ValueError``). Game optimizers wrap a simultaneous
    container, e.g. ``tfgames.Extragradient(PerPlayer({...}))`` (per-player ExtraAdam) or
    ``tfgames.SGA(PerPlayer({...}))``; :class:`tfgames.Lookahead` also wraps an alternating
    one. ``learning_rate`` of the container itself is unused (0): each player's optimizer
    has its own.

    Args:
      optimizers: ``{player: Keras optimizer}``, one distinct first-order optimizer per
        player (game optimizers wrap the container instead).
      schedule: ``"simultaneous"``, ``"alternating"`` or ``{player: consecutive steps}``.
      name: the optimizer's name.

    Example:
      >>> import keras, tfgames
      >>> opt = tfgames.PerPlayer(
      ...     {"discriminator": keras.optimizers.Adam(1e-4, 0.5, 0.9),
      ...      "generator": keras.optimizers.Adam(1e-4, 0.5, 0.9)},
      ...     schedule={"discriminator": 5, "generator": 1})

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
        schedule: Schedule = "simultaneous",
        name: str = "per_player",
    ) -> None:
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
            if hasattr(optimizer, "apply_game"):
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
        schedule = _check_schedule(schedule, list(optimizers))
        super().__init__(learning_rate=0.0, name=name)
        self._optimizers = dict(optimizers)
        self.schedule = schedule
        self._owners: dict[int, str] | None = None

    # -- players ------------------------------------------------------------------------------
    @property
    def optimizers(self) -> dict[str, keras.optimizers.Optimizer]:
        """``{player: optimizer}``, in the container's order."""
        return dict(self._optimizers)

    @property
    def player_names(self) -> list[str]:
        """The players, in the container's order."""
        return list(self._optimizers)

    def bind_players(self, players: Mapping[str, Sequence]) -> None:
        """Tell the container which variables belong to which player.

        Args:
          players: ``{player: [variables]}`` with exactly the container's players (e.g.
            ``game.players`` or ``{"d": d.trainable_variables, "g": g.trainable_variables}``).
        """
        missing = [p for p in self._optimizers if p not in players]
        extra = [p for p in players if p not in self._optimizers]
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

    # -- Keras optimizer plumbing -------------------------------------------------------------
    def build(self, var_list: list) -> None:
        """Build each player's optimizer on that player's variables in ``var_list``."""
        if self.built:
            return
        for player, (owned, _) in self._split(var_list, var_list).items():
            if owned:
                self._optimizers[player].build(owned)
        super().build(var_list)

    @property
    def variables(self) -> list:
        out = list(self._variables)
        for optimizer in self._optimizers.values():
            out.extend(optimizer.variables)
        return out

    def finalize_variable_values(self, var_list) -> None:
        for player, (owned, _) in self._split(var_list, var_list).items():
            if owned:
                self._optimizers[player].finalize_variable_values(owned)

    def apply(self, grads, trainable_variables=None) -> None:
        """Simultaneous step: each player's optimizer applies that player's gradients."""
        if self.schedule != "simultaneous":
            raise ValueError(
                f"PerPlayer.apply updates every player at once, but the schedule is "
                f"{self.schedule!r}. An alternating schedule computes only the active "
                "player's gradient: train it through apply_game(game) (GameModel.fit, or "
                "tfgames.Lookahead around it), or use schedule='simultaneous'."
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

    def apply_gradients(self, grads_and_vars) -> None:
        grads, variables = zip(*grads_and_vars)
        self.apply(list(grads), list(variables))

    # -- the game step ------------------------------------------------------------------------
    def _active_player(self) -> tf.Tensor:
        """Index (in the schedule's order) of the player that steps now."""
        if isinstance(self.schedule, Mapping):
            steps = list(self.schedule.values())
        else:
            steps = [1] * len(self._optimizers)
        position = tf.math.floormod(tf.cast(self._iterations, tf.int64), sum(steps))
        index = tf.zeros((), tf.int32)
        boundary = 0
        for k in steps[:-1]:
            boundary += k
            index += tf.cast(position >= boundary, tf.int32)
        return index

    def apply_game(self, game: Game) -> StepResult:
        """One step of the schedule on ``game`` (binds the players on first use)."""
        if self._owners is None:
            self.bind_players(game.players)
        if not self.built:
            self.build(game.variables)
        if self.schedule == "simultaneous":
            losses, xi = game.gradient()
            apply_after(self, xi, game.variables, losses)
            return StepResult(dict(game.last_losses), {})
        if num_replicas() > 1:
            raise ValueError(
                f"PerPlayer with schedule {self.schedule!r} under a tf.distribute strategy with "
                f"{num_replicas()} replicas is not supported: the step chooses the active "
                "player's optimizer with a conditional, and Keras optimizers synchronise "
                "replicas (merge_call) that a conditional branch cannot contain. Use "
                "schedule='simultaneous' under a strategy, or train on one device."
            )
        order = (
            list(self.schedule) if isinstance(self.schedule, Mapping) else self.player_names
        )
        names = list(game.players)

        def step_of(player: str):
            def branch():
                # Both branches are traced: each takes its own noise snapshot.
                game.fresh_noise()
                owned = game.players[player]

                def loss_fn():
                    loss = game.losses()[player]
                    return {player: loss * tf.cast(game.loss_scale, loss.dtype)}

                _, grads = products.simultaneous_gradient(loss_fn, {player: owned})
                reported = dict(game.last_losses)
                apply_after(self._optimizers[player], grads, owned, reported)
                return [reported[name] for name in names]

            return branch

        values = tf.switch_case(self._active_player(), [step_of(p) for p in order])
        game.fresh_noise()
        self._iterations.assign_add(1)
        return StepResult(dict(zip(names, values)), {})

    # -- config -------------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        schedule = dict(self.schedule) if isinstance(self.schedule, Mapping) else self.schedule
        return {
            "name": self.name,
            "optimizers": {
                p: keras.saving.serialize_keras_object(o) for p, o in self._optimizers.items()
            },
            "schedule": schedule,
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any], custom_objects=None) -> "PerPlayer":
        config = dict(config)
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
    optimizer: Any, schedule: Schedule | None, players: Mapping[str, Sequence]
) -> Any:
    """What ``GameModel.compile(optimizer, schedule=...)`` trains with, bound to ``players``.

    - a mapping ``{player: optimizer}``: a :class:`PerPlayer` with ``schedule`` (default
      simultaneous);
    - one first-order optimizer with a ``schedule``: a :class:`PerPlayer` holding a copy of
      it (same configuration, fresh state) for each player;
    - anything else: unchanged.

    Every :class:`PerPlayer` in the result's chain is bound to ``players``.
    """
    if isinstance(optimizer, Mapping):
        optimizer = PerPlayer(optimizer, schedule=schedule or "simultaneous")
    elif schedule is not None:
        if isinstance(optimizer, PerPlayer):
            raise ValueError(
                "The PerPlayer optimizer already has its schedule "
                f"({optimizer.schedule!r}); do not pass `schedule` to compile as well. "
                f"Received: schedule={schedule!r}."
            )
        if hasattr(optimizer, "apply_game"):
            raise ValueError(
                f"`schedule` applies to first-order per-player optimizers, but the optimizer "
                f"is a game optimizer ({type(optimizer).__name__}). Give the schedule to a "
                "PerPlayer and wrap that one (tfgames.Lookahead accepts any schedule). "
                f"Received: schedule={schedule!r}."
            )
        optimizer = keras.optimizers.get(optimizer)
        optimizer = PerPlayer({p: _clone(optimizer) for p in players}, schedule=schedule)
    bind_players(optimizer, players)
    return optimizer
