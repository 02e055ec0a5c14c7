"""GameModel: a ``keras.Model`` whose ``train_step`` trains a differentiable game."""

from __future__ import annotations

from typing import Any, Mapping

import keras
import tensorflow as tf

from tfgames.game import Game, PlayerSpec, resolve_players
from tfgames.optimizers.base import GameOptimizer, apply_after, check_optimizer, num_replicas
from tfgames.optimizers.per_player import Schedule, compile_optimizer

__all__ = ["GameModel"]


def _is_game_optimizer(optimizer: Any) -> bool:
    return hasattr(optimizer, "apply_game")


def _loss_scaling_inside(optimizer: Any) -> Any:
    """LossScaleOptimizer(G1(...Gk(K))) -> G1(...Gk(LossScaleOptimizer(K))).

    Under the ``mixed_float16`` policy Keras wraps the compiled optimizer in a
    ``LossScaleOptimizer``, which would hand gradients to the game optimizer's ``apply``. The
    loss scale belongs to the first-order optimizer that applies the update: the game sees the
    dynamically scaled losses (``Game.numeric_scale``), divides the scale out of xi and the
    Hessian-vector products (the SGA adjustment is quadratic in xi), and the inner
    ``LossScaleOptimizer`` checks the step for overflow and adapts the scale.
    """
    LSO = keras.optimizers.LossScaleOptimizer
    if not isinstance(optimizer, LSO) or not _is_game_optimizer(optimizer.inner_optimizer):
        return optimizer
    outer = node = optimizer.inner_optimizer
    while _is_game_optimizer(getattr(node, "inner_optimizer", None)):
        node = node.inner_optimizer
    if not isinstance(getattr(node, "inner_optimizer", None), keras.optimizers.Optimizer):
        raise ValueError(
            f"mixed_float16 loss scaling needs one first-order optimizer inside "
            f"{type(node).__name__}, and it has none. Use the mixed_bfloat16 policy (no loss "
            "scaling), or wrap the first-order optimizers yourself in "
            "keras.optimizers.LossScaleOptimizer."
        )
    node.inner_optimizer = LSO(node.inner_optimizer)
    return outer


def _dynamic_loss_scale(optimizer: Any):
    """The dynamic scale of the LossScaleOptimizer that applies the update, or 1."""
    node = optimizer
    while node is not None:
        if isinstance(node, keras.optimizers.LossScaleOptimizer):
            return node.dynamic_scale
        node = getattr(node, "inner_optimizer", None)
    return 1.0


@keras.saving.register_keras_serializable(package="tfgames")
class GameModel(keras.Model):
    """A Keras model that trains n players, each minimising its own loss, with ``fit``.

    Subclass it and implement two methods:

    - ``players(self) -> {name: layer | model | variable | [variables]}``: who plays, in a
      fixed order (the order of the blocks of the simultaneous gradient xi).
    - ``compute_losses(self, data, training) -> {name: scalar loss}``: the loss each player
      minimises on one batch (use :func:`tfgames.zero_sum` for a min-max payoff). Draw noise
      with ``keras.random.normal(..., seed=self.seed_generator)``: all evaluations within a
      training step then replay the same noise, so xi and the Hessian-vector products of SGA
      refer to one sample.

    Then ``compile`` with any optimizer and ``fit``:

    - a stock Keras optimizer (e.g. ``keras.optimizers.RMSprop(1e-4)``): simultaneous
      gradient descent, every player stepping along its own gradient, w <- w - eta * opt(xi);
    - a game optimizer (:class:`tfgames.SGA`, :class:`tfgames.Consensus`, ...): the optimizer
      receives the :class:`tfgames.Game` and computes its adjusted direction.

    Each player's loss is reported as the metric ``<player>_loss`` (mean over the epoch), and
    a game optimizer's diagnostics (e.g. SGA's ``sga_lambda``, ``xi_norm``, ``at_xi_norm``) as
    metrics of the same names. Callbacks, TensorBoard, ``jit_compile``, ``.keras`` saving and
    resumed training work as for any Keras model; subclasses with sub-models implement
    ``get_config``/``from_config`` as Keras requires.

    Args:
      seed: seed of :attr:`seed_generator`, the noise stream of ``compute_losses``.
      **kwargs: passed to ``keras.Model``.

    Example:
      >>> import keras, tfgames
      >>> class Bilinear(tfgames.GameModel):
      ...     def __init__(self, **kwargs):
      ...         super().__init__(**kwargs)
      ...         self.x = self.add_weight(shape=(), initializer="ones", name="x")
      ...         self.y = self.add_weight(shape=(), initializer="ones", name="y")
      ...     def players(self):
      ...         return {"x": self.x, "y": self.y}
      ...     def compute_losses(self, data, training=False):
      ...         return tfgames.zero_sum(self.x * self.y, min_player="x", max_player="y")
      >>> model = Bilinear()
      >>> model.compile(optimizer=tfgames.SGA(keras.optimizers.SGD(0.1)))
    """

    def __init__(self, *, seed: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed, name="game_seed_generator")
        self._trackers: dict[str, keras.metrics.Mean] = {}
        self.train_step_traces = 0

    # -- what subclasses define -----------------------------------------------------------------
    def players(self) -> Mapping[str, PlayerSpec]:
        """``{player name: layer | model | variable | [variables]}``, in a fixed order."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement `players(self)` returning "
            "{name: layer, model or variables}, e.g. {'generator': self.generator, "
            "'discriminator': self.discriminator}."
        )

    def compute_losses(self, data: Any, training: bool = False) -> Mapping[str, tf.Tensor]:
        """``{player name: scalar loss}`` on one batch; each player minimises its own loss."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement `compute_losses(self, data, training)` "
            "returning {player name: scalar loss}."
        )

    # -- compile and its round trip through saving -----------------------------------------------
    def compile(
        self, optimizer: Any = "rmsprop", *, schedule: Schedule | None = None, **kwargs
    ) -> None:
        """Configure training: ``optimizer`` is a Keras optimizer or a tfgames game optimizer.

        Per-player optimizers: ``optimizer`` may also be a mapping ``{player: optimizer}``
        (each player with its own optimizer and hyperparameters) or a
        :class:`tfgames.PerPlayer`; ``schedule`` (``"simultaneous"``, ``"alternating"`` or
        ``{player: consecutive steps}``, e.g. ``{"discriminator": 5, "generator": 1}``) turns
        a mapping, or one first-order optimizer copied for each player, into a
        :class:`tfgames.PerPlayer` with that schedule.

        Other keyword arguments (``jit_compile``, ``steps_per_execution``, ``run_eagerly``) are
        those of ``keras.Model.compile``; ``loss`` and ``metrics`` are not used, because the
        losses come from :meth:`compute_losses`.
        """
        for key in ("loss", "metrics", "loss_weights", "weighted_metrics"):
            if kwargs.get(key) is not None:
                raise ValueError(
                    f"GameModel does not take `{key}` in compile: each player's loss comes "
                    f"from compute_losses and is reported as a metric. Received: {key}="
                    f"{kwargs[key]!r}."
                )
        if not isinstance(optimizer, (str, Mapping, dict)):
            check_optimizer(optimizer, "optimizer")
        game_players = resolve_players(self.players())
        optimizer = compile_optimizer(optimizer, schedule, game_players)
        super().compile(optimizer=optimizer, **kwargs)
        self.optimizer = _loss_scaling_inside(self.optimizer)
        trainable = {id(v) for v in self.trainable_variables}
        for name, variables in game_players.items():
            strays = [v.name for v in variables if id(v) not in trainable]
            if strays:
                raise ValueError(
                    f"Player {name!r} has variables that the model does not track "
                    f"({strays[:3]}); they would not be saved or optimized. Assign the "
                    "player's layers or variables as attributes of the model."
                )
        names = [f"{p}_loss" for p in game_players]
        names += list(getattr(self.optimizer, "diagnostic_names", ()))
        self._trackers = {n: keras.metrics.Mean(name=n) for n in names}
        self.built = True
        # Build the optimizer now: built lazily inside the first traced step, its slot
        # variables would force tf.function to trace the step a second time.
        self.optimizer.build(self.trainable_variables)

    def compile_from_config(self, config: Mapping[str, Any]) -> None:
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # A compiled GameModel is built (its players' layers are) and so is its optimizer, so
        # Keras' symbolic build has nothing to do. Skipping it also avoids Keras reducing a
        # peeked data batch across workers, which fails under MultiWorkerMirroredStrategy.
        if self.built and self.optimizer is not None and self.optimizer.built:
            return
        super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    @property
    def metrics(self) -> list:
        return list(self._trackers.values())

    # -- training --------------------------------------------------------------------------------
    def make_game(self, data: Any, training: bool = True) -> Game:
        """The :class:`tfgames.Game` of one batch: players and a closure over ``data``."""
        return Game(
            self.players(),
            lambda: self.compute_losses(data, training=training),
            seed_generator=self.seed_generator,
            loss_scale=1.0 / num_replicas(),
            numeric_scale=_dynamic_loss_scale(getattr(self, "optimizer", None)),
        )

    def _record(self, values: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        for name, value in values.items():
            if name in self._trackers:
                self._trackers[name].update_state(value)
        logs = {name: tracker.result() for name, tracker in self._trackers.items()}
        strategy = tf.distribute.get_strategy()
        extended = getattr(strategy, "extended", None)
        if getattr(extended, "_in_multi_worker_mode", lambda: False)():
            # Keras 3 reduces step outputs across workers with a MEAN over axis 0, which fails
            # on scalars (tensorflow#72388); give each value that axis.
            logs = {name: tf.reshape(value, [1]) for name, value in logs.items()}
        return logs

    def train_step(self, data: Any) -> dict[str, tf.Tensor]:
        self.train_step_traces += 1  # Python side effect: counts traces, not steps
        game = self.make_game(data, training=True)
        optimizer = self.optimizer
        if isinstance(optimizer, GameOptimizer) or hasattr(optimizer, "apply_game"):
            result = optimizer.apply_game(game)
            losses, diagnostics = result.losses, result.diagnostics
        else:
            losses, xi = game.gradient()
            apply_after(optimizer, xi, game.variables, losses)
            losses, diagnostics = game.last_losses, {}
        values = {f"{p}_loss": loss for p, loss in losses.items()}
        values.update(diagnostics)
        return self._record(values)

    def test_step(self, data: Any) -> dict[str, tf.Tensor]:
        losses = self.make_game(data, training=False).losses()
        return self._record({f"{p}_loss": tf.cast(l, tf.float32) for p, l in losses.items()})

    # -- saving: Keras does not save a SeedGenerator's state; resumed runs need the stream ------
    _SEED_KEY = "game_seed_generator_state"

    def save_own_variables(self, store) -> None:
        super().save_own_variables(store)
        store[self._SEED_KEY] = self.seed_generator.state.numpy()

    def load_own_variables(self, store) -> None:
        keys = list(store.keys())
        if self._SEED_KEY in keys:
            self.seed_generator.state.assign(store[self._SEED_KEY])
        super().load_own_variables({k: store[k] for k in keys if k != self._SEED_KEY})

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["seed"] = self.seed
        return config
