"""GameModel: a ``keras.Model`` whose ``train_step`` trains a differentiable game."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras.src.trainers import compile_utils  # MetricsList: see _DirectionsView

from tfgames import _divergence, _train_function, repeatability
from tfgames._model_config import (
    BASE_CONFIG_KEYS,
    accepts,
    bound_arguments,
    has_var_keyword,
    init_needs_arguments,
    is_serialized_object,
    register,
)
from tfgames._replicas import (
    ReplicaSeedGenerator,
    dynamic_loss_scale,
    leading_dimension,
    loss_scaling_inside,
    multi_worker,
    replica_sum,
)
from tfgames.game import Game, PlayerSpec, resolve_players
from tfgames.optimizers.base import (
    check_optimizer,
    num_replicas,
    simultaneous_step,
    steps_game,
    unknown_names,
)
from tfgames.optimizers.per_player import UpdateOrder, _deprecated_schedule, compile_optimizer

__all__ = ["GameModel"]



# The evaluation noise stream: the model's seed with its counter started here. The training
# stream counts up from 0, one per draw, and never reaches it.
_EVALUATION_STREAM_OFFSET = 2**40


class _DirectionsView(compile_utils.MetricsList):
    """Exposes ``metrics`` to ``keras.callbacks.MonitorCallback._set_monitor_op``, which reads
    ``_direction`` only from metrics inside a ``MetricsList``/``CompileMetrics`` (Keras 3.15).

    Holds the trackers without tracking them (no variables twice), reports nothing and resets
    nothing: the trackers themselves are in ``GameModel.metrics`` too.
    """

    def __init__(self, trackers: list) -> None:
        super().__init__([], name="player_loss_directions")
        object.__setattr__(self, "metrics", list(trackers))

    @property
    def variables(self) -> list:
        return []

    def reset_state(self) -> None:
        pass

    def result(self) -> dict:
        return {}



def _placeholder_y(sample_weight: Any) -> np.ndarray:
    """A (n, 0) array that carries sample weights through Keras when there is no ``y``."""
    return np.zeros((len(sample_weight), 0), dtype="float32")


def _unpacked(data: Any) -> Any:
    """The batch as the dataset would yield it: Keras' ``train_on_batch`` and ``test_on_batch``
    pack ``(x, y, sample_weight)`` with ``None`` for what was not given (a ``tf.data`` dataset
    cannot yield ``None``), which becomes ``x`` or ``(x, y)``.
    """
    if isinstance(data, tuple) and len(data) == 3 and data[2] is None:
        return data[0] if data[1] is None else data[:2]
    return data


def _is_zero_width(y: Any) -> bool:
    """The placeholder ``y`` GameModel.fit puts in when sample weights come without ``y``."""
    shape = getattr(y, "shape", None)
    return shape is not None and len(shape) == 2 and shape[-1] == 0


#: Names a Keras user may pass to compile for tfgames' optimizers, with the object to pass.
_GAME_OPTIMIZER_NAMES = {
    "sga": "tfgames.SGA(keras.optimizers.RMSprop(1e-4))",
    "consensus": "tfgames.Consensus(keras.optimizers.RMSprop(1e-4), gamma=10.0)",
    "extragradient": "tfgames.Extragradient(keras.optimizers.Adam(1e-4))",
    "extra_adam": "tfgames.Extragradient(keras.optimizers.Adam(1e-4))",
    "adamirror": "tfgames.Adamirror(1e-4)",
    "ogd": "tfgames.OGD(0.01)",
    "lola": "tfgames.LOLA(keras.optimizers.SGD(0.1), alpha=1.0)",
    "sos": "tfgames.SOS(keras.optimizers.SGD(0.1), alpha=1.0)",
    "cgd": "tfgames.CGD(keras.optimizers.SGD(0.1))",
}


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
    metrics of the same names; the losses carry the direction "lower is better", so callbacks
    with ``mode="auto"`` can monitor them. More metrics: declare :attr:`extra_metric_names` and
    override :meth:`compute_extra_metrics`. Callbacks, TensorBoard, ``jit_compile``,
    ``.keras`` saving and resumed training work as for any Keras model; the constructor's
    arguments (sub-models included) are saved automatically (:meth:`get_config`).

    Optional: ``compute_losses(self, data, training=False, sample_weight=None)`` receives
    Keras' sample / class weights (otherwise ``fit`` refuses them); ``call`` says what
    ``predict`` and :meth:`generate` return; ``evaluate`` and validation draw their noise from
    :attr:`evaluation_seed_generator`, so they never change training.

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
      >>> _ = model.fit(tfgames.datasets.step_dataset(300), verbose=0)
      >>> float(model.x.numpy() ** 2 + model.y.numpy() ** 2) < 1e-6  # at the equilibrium
      True
    """

    def __new__(cls, *args, **kwargs):
        # Record the constructor's arguments (sub-models included) for get_config: Keras' own
        # automatic config keeps only str/int/float/bool/None arguments.
        instance = super().__new__(cls, *args, **kwargs)
        object.__setattr__(instance, "_constructor_arguments", bound_arguments(cls, args, kwargs))
        return instance

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        register(cls)

    def __init__(self, *, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = ReplicaSeedGenerator(seed, name="game_seed_generator")
        self.evaluation_seed_generator = keras.random.SeedGenerator(
            seed, name="evaluation_seed_generator"
        )
        if seed is not None:  # same seed, a counter range the training stream never reaches
            self.evaluation_seed_generator.state.assign([seed, _EVALUATION_STREAM_OFFSET])
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

    #: Names of the metrics :meth:`compute_extra_metrics` returns, declared up front (their
    #: ``keras.metrics.Mean`` trackers are created in ``compile``, outside the traced step).
    extra_metric_names: tuple[str, ...] = ()

    def compute_extra_metrics(
        self, data: Any, losses: Mapping[str, tf.Tensor], training: bool = False
    ) -> Mapping[str, Any]:
        """``{name: scalar}`` for every name in :attr:`extra_metric_names`; default none.

        The metrics hook: override it (and declare :attr:`extra_metric_names`) to log more
        than the players' losses, e.g. a discriminator's accuracy or the terms of a bound.
        Each value is averaged over the epoch by a ``keras.metrics.Mean`` and logged under its
        name (``val_<name>`` for validation data). A value may be a pair ``(value, weight)``:
        the step then counts with that weight in the mean (weight 0 skips the step).

        When it runs: in ``fit``, after each step's update, on the step's batch, with the
        step's noise replayed (``self.seed_generator`` draws what the step's losses drew, and
        the training stream is left where the step left it, so adding metrics never changes
        training); in ``evaluate`` and validation, on the batch, with the noise the losses
        drew from the evaluation stream.

        Args:
          data: the batch, as :meth:`compute_losses` received it.
          losses: the players' losses of the step (before its update in ``fit``).
          training: True in ``fit``, False in ``evaluate``.
        """
        return {}

    def call(self, inputs: Any, training: bool = False) -> Any:
        """What ``predict`` and ``model(inputs)`` compute; a game defines it (none by default).

        A game model has no single output: override ``call`` to say what it predicts, e.g.
        ``return self.generator(inputs, training=training)`` for a GAN, so that
        ``model.predict(noise)`` and :meth:`generate` return samples.
        """
        raise NotImplementedError(
            f"{type(self).__name__} does not define `call`, so `predict` and `model(inputs)` "
            "have nothing to compute: a GameModel predicts what you define. Implement "
            "`call(self, inputs, training=False)` in the subclass, e.g. `return "
            "self.generator(inputs, training=training)` for a GAN (then `model.predict(noise)` "
            "and `model.generate(n)` return samples), or call a player directly, e.g. "
            "`model.generator.predict(noise)`."
        )

    def sample_noise(self, n: int, *, seed: int | None = None) -> np.ndarray:
        """``n`` standard-normal inputs of shape ``(n, *latent_dim)`` for :meth:`generate`.

        Drawn with NumPy (``np.random.default_rng(seed)``), so generating never moves the
        model's training or evaluation noise streams. Needs ``self.latent_dim`` (an int or a
        shape; the keras.io GAN examples' convention); override it for other noise.
        """
        latent = getattr(self, "latent_dim", None)
        if latent is None:
            raise ValueError(
                f"{type(self).__name__}.generate(n) draws noise of shape (n, *latent_dim), but "
                "the model has no `latent_dim`. Set `self.latent_dim` (an int or a shape) in "
                "__init__, override `sample_noise(self, n, *, seed=None)`, or pass the noise: "
                "`model.generate(noise=z)`."
            )
        shape = (int(latent),) if np.ndim(latent) == 0 else tuple(int(d) for d in latent)
        rng = np.random.default_rng(seed)
        return rng.standard_normal((int(n), *shape)).astype(keras.backend.floatx())

    def generate(
        self,
        n: int | None = None,
        *,
        noise: Any = None,
        seed: int | None = None,
        batch_size: int | None = None,
    ) -> Any:
        """Samples of the model: ``predict(noise)``, with ``noise = sample_noise(n, seed=seed)``.

        ``predict`` runs :meth:`call` (a GAN's ``call`` returns ``self.generator(inputs)``).

        Args:
          n: how many samples (noise drawn by :meth:`sample_noise`); or
          noise: the inputs to use instead, e.g. fixed noise to watch over training.
          seed: seed of the drawn noise (None: different noise at every call).
          batch_size: ``predict``'s batch size.

        Returns:
          ``predict``'s NumPy output.
        """
        if (n is None) == (noise is None):
            raise ValueError(
                "generate needs exactly one of `n` (how many samples) or `noise` (the inputs). "
                f"Received: n={n!r}, noise={'None' if noise is None else 'an array'}."
            )
        if noise is None:
            if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
                raise ValueError(f"Argument `n` must be an integer >= 1. Received: n={n!r}.")
            noise = self.sample_noise(int(n), seed=seed)
        return self.predict(noise, batch_size=batch_size, verbose=0)

    # -- compile and its round trip through saving -----------------------------------------------
    def compile(
        self,
        optimizer: Any = "rmsprop",
        *,
        update_order: UpdateOrder | None = None,
        batches: str | None = None,
        **kwargs,
    ) -> None:
        """Configure training: ``optimizer`` is a Keras optimizer or a tfgames game optimizer.

        Per-player optimizers: ``optimizer`` may also be a mapping ``{player: optimizer}``
        (each player with its own optimizer and hyperparameters) or a
        :class:`tfgames.PerPlayer`; ``update_order`` (``"simultaneous"``, ``"alternating"``
        or ``{player: consecutive steps}``, e.g. ``{"discriminator": 5, "generator": 1}``)
        turns a mapping, or one first-order optimizer copied for each player, into a
        :class:`tfgames.PerPlayer` with that order, and ``batches`` (``"fresh"``, default, or
        ``"reuse"``) says whether each inner step of an alternating order gets its own batch
        or a whole cycle runs on one (see :class:`tfgames.PerPlayer`). ``schedule``, the
        0.1 name of ``update_order``, still works with a ``DeprecationWarning``.

        Other keyword arguments (``jit_compile``, ``steps_per_execution``, ``run_eagerly``) are
        those of ``keras.Model.compile``; ``loss`` and ``metrics`` are not used, because the
        losses come from :meth:`compute_losses`.
        """
        for key in ("loss", "metrics", "loss_weights", "weighted_metrics"):
            if kwargs.get(key) is not None:
                raise ValueError(
                    f"GameModel does not take `{key}` in compile: each player's loss comes "
                    f"from compute_losses and is reported as a metric. Received: {key}="
                    f"{kwargs[key]!r}. For more metrics, declare `extra_metric_names` and "
                    "override `compute_extra_metrics` (see GameModel.compute_extra_metrics)."
                )
        schedule = kwargs.pop("schedule", None)
        argument = "update_order" if schedule is None else "schedule"
        update_order = _deprecated_schedule(update_order, schedule, None, "GameModel.compile")
        if isinstance(optimizer, str) and optimizer.lower() in _GAME_OPTIMIZER_NAMES:
            raise ValueError(
                f"compile(optimizer={optimizer!r}): Keras' optimizer names are its own first-order "
                "optimizers; a tfgames game optimizer wraps an inner optimizer and is passed as an "
                f"object, e.g. optimizer={_GAME_OPTIMIZER_NAMES[optimizer.lower()]}."
            )
        if not isinstance(optimizer, (str, Mapping, dict)):
            check_optimizer(optimizer, "optimizer")
        game_players = resolve_players(self.players())
        optimizer = compile_optimizer(
            optimizer, update_order, game_players, batches=batches, argument=argument
        )
        super().compile(optimizer=optimizer, **kwargs)
        self.optimizer = loss_scaling_inside(self.optimizer)
        for name, variables in game_players.items():
            strays = unknown_names(variables, self.trainable_variables)
            if strays:
                raise ValueError(
                    f"Player {name!r} has variables that the model does not track "
                    f"({strays[:3]}); they would not be saved or optimized. Assign the "
                    "player's layers or variables as attributes of the model."
                )
        self._trackers = self._make_trackers(game_players)
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

    # Diagnostics that should fall as training succeeds (Keras' `mode="auto"` reads this).
    _DECREASING_DIAGNOSTICS = frozenset({"xi_norm", "at_xi_norm", "htxi_norm", "chi_norm"})

    def _make_trackers(self, game_players: Mapping[str, Any]) -> dict[str, keras.metrics.Mean]:
        """One Mean per player's loss, optimizer diagnostic and extra metric.

        The players' losses carry ``_direction = "down"`` (each player minimises its loss), as
        do the norms of xi, so that callbacks with ``mode="auto"`` (EarlyStopping,
        ModelCheckpoint, ReduceLROnPlateau) monitoring e.g. ``generator_loss`` know that lower
        is better; diagnostics without a direction (``sga_lambda``) still need ``mode``.
        """
        names = [f"{p}_loss" for p in game_players]
        diagnostics = list(getattr(self.optimizer, "diagnostic_names", ()))
        extra = list(self.extra_metric_names)
        clash = [n for n in extra if n in names or n in diagnostics]
        if clash or len(set(extra)) != len(extra):
            raise ValueError(
                "`extra_metric_names` must be distinct and differ from the players' losses "
                f"and the optimizer's diagnostics {names + diagnostics}. Received: "
                f"extra_metric_names={tuple(extra)!r}. Rename them."
            )
        trackers = {}
        for name in names + diagnostics + extra:
            tracker = keras.metrics.Mean(name=name)
            if name in names or name in self._DECREASING_DIAGNOSTICS:
                tracker._direction = "down"  # read by keras.callbacks.MonitorCallback
            trackers[name] = tracker
        return trackers

    @property
    def metrics(self) -> list:
        """The trackers: each player's ``<player>_loss``, diagnostics, extra metrics.

        Followed by a view of the same trackers that Keras' ``MonitorCallback`` (the base of
        EarlyStopping, ModelCheckpoint, ReduceLROnPlateau) searches for metric directions: it
        looks only inside compile-metrics containers. The view has no variables and no
        results of its own.
        """
        trackers = list(self._trackers.values())
        return trackers + ([_DirectionsView(trackers)] if trackers else [])

    # -- training --------------------------------------------------------------------------------
    def make_game(self, data: Any, training: bool = True) -> Game:
        """The :class:`tfgames.Game` of one batch: players and a closure over ``data``."""
        game = Game(
            self.players(),
            lambda: self._call_compute_losses(data, training),
            seed_generator=self.seed_generator,
            loss_scale=self._replica_share(data),
            numeric_scale=dynamic_loss_scale(getattr(self, "optimizer", None)),
        )
        # For optimizers that evaluate parts of the batch (Extragradient(fresh_batch=True)).
        game.batch = data
        game.on_batch = lambda batch: self.make_game(batch, training=training)
        return game

    def _loss_inputs(self, data: Any) -> tuple[Any, Any]:
        """``(data for compute_losses, sample_weight)`` of one batch.

        When ``compute_losses`` accepts ``sample_weight``, Keras' ``(x, y, sample_weight)``
        packing is undone: compute_losses receives ``x`` (or ``(x, y)`` when there is a ``y``)
        and the weights. Otherwise the batch reaches it as the dataset yields it (and ``fit`` /
        ``evaluate`` refuse sample and class weights).
        """
        if not accepts(self.compute_losses, "sample_weight"):
            return data, None
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if y is not None and _is_zero_width(y):
            y = None
        return (x if y is None else (x, y)), sample_weight

    def _call_compute_losses(self, data: Any, training: bool) -> Mapping[str, tf.Tensor]:
        inputs, sample_weight = self._loss_inputs(data)
        if accepts(self.compute_losses, "sample_weight"):
            return self.compute_losses(inputs, training=training, sample_weight=sample_weight)
        return self.compute_losses(inputs, training=training)

    def replica_batch_size(self, data: Any):
        """How many examples this replica's losses average over on ``data`` (its batch).

        Under a strategy each replica's loss is weighted by its share b_r / B of the global
        batch (B = sum of b_r over replicas), so that uneven and empty final batches give the
        update of one device on the global batch. The default is the leading dimension of the
        first tensor in ``data`` (None when there is none: equal shares 1 / R). Override it
        when ``compute_losses`` draws its batch itself (return the number drawn).
        """
        return leading_dimension(data)

    def _replica_share(self, data: Any):
        """b_r / B on this replica (1.0 on one device)."""
        replicas = num_replicas()
        if replicas == 1:
            return 1.0
        size = self.replica_batch_size(data)
        if size is None:
            return 1.0 / replicas
        size = tf.cast(size, tf.float32)
        context = tf.distribute.get_replica_context()
        if context is None:
            return 1.0 / replicas
        return size / context.merge_call(replica_sum, args=(size,))

    def _global_losses(self, losses: Mapping[str, tf.Tensor], share) -> dict[str, tf.Tensor]:
        """What each replica logs so that the mean over replicas (Keras' reduction of the step
        logs) is the global-batch loss: R * share * loss (0 on a replica with an empty batch,
        whose mean loss is nan). No collective: an all-reduce here would run unordered with
        the optimizer's gradient all-reduce, which TensorFlow's collectives do not allow.
        """
        replicas = num_replicas()
        if replicas == 1:
            return dict(losses)
        share = tf.cast(share, tf.float32)
        return {p: tf.where(share > 0, tf.cast(l, tf.float32) * (share * replicas), 0.0)
                for p, l in losses.items()}

    def _record(
        self, values: Mapping[str, Any], only_these: bool = False
    ) -> dict[str, tf.Tensor]:
        """Update the trackers with ``values`` (a ``(value, weight)`` pair is weighted); log
        every tracker, or with ``only_these`` the ones updated.
        """
        for name, value in values.items():
            if name in self._trackers:
                if isinstance(value, (tuple, list)):
                    value, weight = value
                    self._trackers[name].update_state(
                        tf.cast(value, tf.float32), sample_weight=tf.cast(weight, tf.float32)
                    )
                else:
                    self._trackers[name].update_state(value)
        reported = [n for n in self._trackers if not only_these or n in values]
        logs = {name: self._trackers[name].result() for name in reported}
        if multi_worker(tf.distribute.get_strategy()):
            # Keras 3 reduces step outputs across workers with a MEAN over axis 0, which fails
            # on scalars (tensorflow#72388); give each value that axis.
            logs = {name: tf.reshape(value, [1]) for name, value in logs.items()}
        return logs

    def train_step(self, data: Any) -> dict[str, tf.Tensor]:
        self.train_step_traces += 1  # Python side effect: counts traces, not steps
        data = _unpacked(data)
        guard = _divergence.FiniteGuard(self) if self.check_finite else None
        noise_start = self._noise_state() if self.extra_metric_names else None
        game = self.make_game(data, training=True)
        optimizer = self.optimizer
        if steps_game(optimizer):
            result = optimizer.apply_game(game)
        else:
            result = simultaneous_step(optimizer, game)
        losses, diagnostics = result.losses, result.diagnostics
        losses = self._global_losses(losses, game.loss_scale)
        values = {f"{p}_loss": loss for p, loss in losses.items()}
        values.update(diagnostics)
        if guard is not None:
            guard.check(values, game)
        values.update(self._extra_metric_values(data, losses, True, noise_start))
        return self._record(values)

    # -- divergence: stop at the first non-finite loss, diagnostic or weight ------------------
    #: Check every train step for a non-finite player loss, optimizer diagnostic or updated
    #: weight (one in-graph reduction per step) and stop ``fit`` with
    #: :class:`tfgames.TrainingDiverged` naming the step, player and quantity, keeping the last
    #: finite state (also under ``tf.distribute`` strategies). Set
    #: ``model.check_finite = False`` to opt out.
    check_finite: bool = True

    def make_train_function(self, force: bool = False):
        # Traced again when the check or the summation order (repeatability.fixed_sum_order,
        # which applies to gradients traced inside it) differs from the traced function's.
        key = (bool(self.check_finite), repeatability._sum_order_fixed())
        if key != getattr(self, "_train_function_key", None):
            force = True
        if force or self.train_function is None:
            super().make_train_function(force=True)
            self.train_function = _train_function.train_function(self, self.train_function)
        self._train_function_key = key
        if self.check_finite:
            _divergence.divergence_record(self).assign(_divergence.CLEAN_RECORD)
        return self.train_function

    def load_weights(self, filepath, *args, **kwargs):
        """Keras' ``load_weights``, all or nothing: if the file does not fit the model (another
        width, another input size, another optimizer), every weight, optimizer variable and
        the noise stream get their values from before the call back, then the error is
        raised. Keras itself assigns some variables before it finds the mismatch.
        """
        variables = _divergence.state_variables(self)
        before = [v.numpy() for v in variables]
        try:
            return super().load_weights(filepath, *args, **kwargs)
        except Exception as error:
            for v, value in zip(variables, before):
                v.assign(value)
            if isinstance(error, ValueError):
                raise ValueError(
                    f"{error} -- the file {str(filepath)!r} does not fit this "
                    f"{type(self).__name__}; nothing was changed (weights, optimizer state "
                    "and noise stream are as before the call). Load it into a model built "
                    "with the same sizes and optimizer."
                ) from error
            raise

    def save(self, filepath, *args, **kwargs):
        _divergence.check_weights_finite(self, "save")
        return super().save(filepath, *args, **kwargs)

    def save_weights(self, filepath, *args, **kwargs):
        _divergence.check_weights_finite(self, "save_weights")
        return super().save_weights(filepath, *args, **kwargs)

    def test_step(self, data: Any) -> dict[str, tf.Tensor]:
        """The players' losses (and extra metrics) on one batch, noise from its own stream.

        The losses draw from :attr:`evaluation_seed_generator` (``self.seed_generator`` holds
        its state while they run; the training stream is put back after), so ``evaluate`` and
        validation data never change what training draws. Reports only what it computes: no
        optimizer diagnostics.
        """
        data = _unpacked(data)
        state = self.seed_generator.state
        training_state = tf.identity(state.value)
        state.assign(self.evaluation_seed_generator.state.value)
        noise_start = self._noise_state()
        game = self.make_game(data, training=False)
        losses = self._global_losses(game.losses(), game.loss_scale)
        values = {f"{p}_loss": tf.cast(l, tf.float32) for p, l in losses.items()}
        values.update(self._extra_metric_values(data, losses, False, noise_start))
        self.evaluation_seed_generator.state.assign(state.value)
        state.assign(training_state)
        return self._record(values, only_these=True)

    def _noise_state(self) -> tf.Tensor:
        return tf.identity(self.seed_generator.state.value)

    def _extra_metric_values(
        self, data: Any, losses: Mapping[str, tf.Tensor], training: bool, noise_start: Any
    ) -> dict[str, Any]:
        """compute_extra_metrics on ``data``, replaying the noise drawn from ``noise_start``.

        The noise stream is left where it was.
        """
        names = tuple(self.extra_metric_names)
        if not names:
            return {}
        state = self.seed_generator.state
        noise_end = tf.identity(state.value)
        state.assign(noise_start)
        inputs, _ = self._loss_inputs(data)
        metrics = self.compute_extra_metrics(inputs, dict(losses), training=training)
        if not isinstance(metrics, Mapping) or set(metrics) != set(names):
            got = sorted(metrics) if isinstance(metrics, Mapping) else type(metrics).__name__
            raise ValueError(
                f"{type(self).__name__}.compute_extra_metrics must return a dict with exactly "
                f"the names in `extra_metric_names` {list(names)}. Received: {got}. Return "
                "one scalar (or (value, weight) pair) per declared name."
            )
        state.assign(noise_end)
        return {name: metrics[name] for name in names}

    # -- saving: Keras does not save a SeedGenerator's state; resumed runs need the stream ------
    _SEED_KEY = "game_seed_generator_state"

    _EVALUATION_SEED_KEY = "evaluation_seed_generator_state"

    def save_own_variables(self, store) -> None:
        super().save_own_variables(store)
        store[self._SEED_KEY] = self.seed_generator.state.numpy()
        store[self._EVALUATION_SEED_KEY] = self.evaluation_seed_generator.state.numpy()

    def load_own_variables(self, store) -> None:
        keys = list(store.keys())
        if self._SEED_KEY in keys:
            self.seed_generator.state.assign(store[self._SEED_KEY])
        if self._EVALUATION_SEED_KEY in keys:  # absent in files saved by tfgames 0.1
            self.evaluation_seed_generator.state.assign(store[self._EVALUATION_SEED_KEY])
        own = (self._SEED_KEY, self._EVALUATION_SEED_KEY)
        super().load_own_variables({k: store[k] for k in keys if k not in own})

    def get_config(self) -> dict[str, Any]:
        """``keras.Model``'s config, ``seed`` and the constructor's other arguments.

        The arguments the model was constructed with are recorded (by ``__new__``) and
        serialized with ``keras.saving.serialize_keras_object``: sub-models, layers,
        optimizers, NumPy arrays and plain values all round-trip, so a subclass whose
        ``__init__`` takes its sub-models (the README's GAN) saves and loads without a
        ``get_config`` of its own. A subclass needs its own ``get_config`` / ``from_config``
        only when an argument is not serializable (a dataset, a function, an arbitrary
        object) or when what it needs to rebuild differs from what it was given; see the
        saving how-to.
        """
        config = super().get_config()
        config["seed"] = self.seed
        arguments = self.__dict__.get("_constructor_arguments")
        own_get_config = type(self).get_config is not GameModel.get_config
        if arguments is None:
            if not own_get_config and init_needs_arguments(type(self)):
                raise NotImplementedError(
                    f"{type(self).__name__} was constructed with positional-only or `*args` "
                    "arguments, which cannot be passed back by name, so it cannot be saved "
                    "automatically. Take keyword arguments in __init__, or implement "
                    "`get_config` (and `from_config`) in the subclass."
                )
            return config
        for key, value in arguments.items():
            if key in BASE_CONFIG_KEYS:
                continue
            try:
                config[key] = keras.saving.serialize_keras_object(value)
            except Exception as error:  # re-raised with the argument's name
                if own_get_config:
                    continue  # the subclass's get_config provides what it needs
                raise NotImplementedError(
                    f"{type(self).__name__} cannot be saved automatically: its constructor "
                    f"argument `{key}` (of type {type(value).__name__}) is not serializable "
                    f"by Keras ({error}). Implement `get_config` (and `from_config`) in the "
                    "subclass, e.g. store what rebuilds it instead; see the saving how-to."
                ) from error
        if not accepts(type(self).__init__, "seed") and not has_var_keyword(type(self)):
            config.pop("seed")
        return config

    @classmethod
    def from_config(cls, config: Mapping[str, Any], custom_objects=None) -> GameModel:
        """Rebuild from :meth:`get_config`.

        Serialized Keras objects are deserialized and everything is passed to the constructor.
        """
        config = dict(config)
        for key, value in config.items():
            if key not in BASE_CONFIG_KEYS and is_serialized_object(value):
                config[key] = keras.saving.deserialize_keras_object(
                    value, custom_objects=custom_objects
                )
        if "dtype" in config and isinstance(config["dtype"], Mapping):
            config["dtype"] = keras.dtype_policies.deserialize(config["dtype"])
        try:
            return cls(**config)
        except TypeError as error:
            raise TypeError(
                f"Could not rebuild {cls.__name__} from its config: {error}. Received config "
                f"keys: {sorted(config)}. When a subclass's __init__ takes other arguments "
                "than it was given (or builds its sub-models from arguments not saved), "
                "implement `get_config` and `from_config` in the subclass; see the saving "
                "how-to."
            ) from error

    # -- sample and class weights: honoured by compute_losses(..., sample_weight), or refused ---
    def fit(self, *args, **kwargs):
        arguments = self._weights_checked(keras.Model.fit, args, kwargs, "fit")
        return super().fit(**arguments)

    def evaluate(self, *args, **kwargs):
        arguments = self._weights_checked(keras.Model.evaluate, args, kwargs, "evaluate")
        return super().evaluate(**arguments)

    def _weights_checked(self, method, args, kwargs, what: str) -> dict[str, Any]:
        """The call's arguments by name; sample/class weights checked and made to arrive.

        Keras drops ``sample_weight`` when ``y`` is None (array inputs). A GameModel whose
        compute_losses accepts ``sample_weight`` gets them anyway: a zero-width placeholder
        ``y`` carries them through Keras' data handling and is removed before compute_losses.
        """
        arguments = inspect.signature(method).bind(self, *args, **kwargs).arguments
        arguments.pop("self")
        arguments.update(arguments.pop("kwargs", {}))
        validation = arguments.get("validation_data")
        validation_weights = (
            isinstance(validation, (tuple, list)) and len(validation) == 3
            and validation[2] is not None
        )
        given = [k for k in ("sample_weight", "class_weight") if arguments.get(k) is not None]
        if validation_weights:
            given.append("validation_data[2] (validation sample weights)")
        if not given:
            return arguments
        if not accepts(self.compute_losses, "sample_weight"):
            raise ValueError(
                f"{type(self).__name__}.{what} received {', '.join(given)}, but its "
                "compute_losses does not take `sample_weight`, so the weights would be "
                "ignored. Weight the players' losses yourself: define `compute_losses(self, "
                "data, training=False, sample_weight=None)` and pass `sample_weight` to the "
                "per-example losses (e.g. `keras.losses.BinaryCrossentropy()(y_true, y_pred, "
                "sample_weight=sample_weight)`); or drop the weights."
            )
        if (
            arguments.get("sample_weight") is not None and arguments.get("y") is None
            and not isinstance(arguments.get("x"), tf.data.Dataset)  # Keras refuses those
        ):
            arguments["y"] = _placeholder_y(arguments["sample_weight"])
        if validation_weights and validation[1] is None:
            arguments["validation_data"] = (
                validation[0], _placeholder_y(validation[2]), validation[2]
            )
        return arguments
