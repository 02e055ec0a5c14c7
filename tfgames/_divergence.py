"""GameModel's divergence check: stop at the first non-finite loss, diagnostic or weight.

Each train step checks, in the graph, the players' losses, the optimizer's diagnostics and the
players' updated weights; the first non-finite one and its step go to a record variable, the
step is undone (every model and optimizer variable gets its value from before the step back),
and ``GameModel`` raises :class:`tfgames.TrainingDiverged` from the record after the execution.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import attr_value_pb2

from tfgames._replicas import replica_sum
from tfgames.game import Game

if TYPE_CHECKING:
    from tfgames.model import GameModel

__all__ = [
    "CLEAN_RECORD",
    "FiniteGuard",
    "check_weights_finite",
    "divergence_record",
    "raise_if_diverged",
    "state_variables",
]

#: The record before a fit: [steps run, first non-finite step or -1, its quantity, its value].
CLEAN_RECORD = [0.0, -1.0, -1.0, 0.0]


def divergence_record(model: GameModel) -> tf.Variable:
    """The model's record [steps run in this fit, first non-finite step or -1, its quantity,
    its value], created on first use in the model's strategy; not a weight, never saved.
    """
    record = model.__dict__.get("_divergence_variable")
    if record is None:
        with model.distribute_strategy.scope():
            record = tf.Variable(
                CLEAN_RECORD, dtype=tf.float64, trainable=False, name="divergence_record",
                synchronization=tf.VariableSynchronization.ON_READ,
                aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        object.__setattr__(model, "_divergence_variable", record)  # kept out of Keras' tracking
    return record


def state_variables(model: GameModel) -> list:
    """Every model and optimizer variable, each once."""
    seen: set[int] = set()
    variables = []
    for v in list(model.variables) + list(getattr(model.optimizer, "variables", None) or []):
        if id(v) not in seen:
            seen.add(id(v))
            variables.append(v)
    return variables


def _tf_variable(v: Any) -> tf.Variable:
    """The TensorFlow variable behind a Keras variable (a distributed one under a strategy)."""
    return v._value if isinstance(v, keras.Variable) else v


class FiniteGuard:
    """The divergence check of one train step (``GameModel.check_finite``), in the graph.

    Before the step it reads every model and optimizer variable (read values are snapshots:
    TensorFlow copies a variable's buffer on write while a read of it is alive). After the step
    it checks the logged quantities (the players' losses first, then the optimizer's
    diagnostics) and the players' updated weights; the first non-finite one and the step are
    written to the model's divergence record, and the step is undone: every variable gets its
    value from before the step back, and so does every later step of the same execution
    (``steps_per_execution``), so the model keeps the last finite state.

    On one device the check costs one reduction per weight: a screen, sum(w) finite for every
    weight and every quantity finite, implies that all are finite (a sum with a NaN or an
    infinity is not finite). Only when the screen fails (or a step is already flagged) does a
    branch run the exact per-element check, the record and the restore; a screen that failed on
    an overflowing sum of finite weights finds nothing there. The branch is a function call
    (not lowered to switch/merge nodes), so a clean step does not pay for its ops.

    Under a ``tf.distribute`` strategy the replicas' flags are combined (a replica's loss is the
    loss of its share of the batch and may be non-finite on one replica only) and the record and
    the restore are written in cross-replica context (``merge_call``): a restore inside a cond
    in replica context would need a ``merge_call`` there, which TensorFlow refuses. Every
    replica then keeps the same, last finite, state.
    """

    def __init__(self, model: GameModel) -> None:
        self.model = model
        self.record = divergence_record(model)
        self.variables = state_variables(model)
        self.distributed = tf.distribute.has_strategy()
        self.before = [tf.identity(v.value) for v in self.variables]

    def check(self, values: Mapping[str, tf.Tensor], game: Game) -> None:
        names = list(values)
        weights = [(player, v) for player, variables in game.players.items() for v in variables]
        self.model._divergence_labels = names + [
            (player, v.path if hasattr(v, "path") else v.name) for player, v in weights]
        quantities = [tf.cast(tf.reshape(values[n], []), tf.float64) for n in names]
        if self.distributed:
            ok, quantities = self._exact(quantities, weights)
            # Combined over replicas: the count of replicas on which a quantity is not finite,
            # and the sum of its non-finite values (a finite one adds nothing).
            flags = tf.cast(tf.logical_not(ok), tf.float64)
            bad = tf.where(ok, tf.zeros_like(quantities), quantities)
            context = tf.distribute.get_replica_context()
            if context is None:  # train_step called in cross-replica context
                self._update_cross_replica(tf.distribute.get_strategy(), flags, bad,
                                           self.before)
            else:
                context.merge_call(self._update_cross_replica, args=(flags, bad, self.before))
            return
        screen = _all_finite(quantities + [tf.reduce_sum(v.value) for _, v in weights])
        clean = tf.logical_and(screen, self.record.read_value()[1] < 0.0)

        def exact_check():
            self._update(*self._exact(quantities, weights), self.before)
            return tf.constant(True)

        def count_step():
            self.record.assign_add(_ONE_STEP)
            return tf.constant(False)

        _function_cond(clean, count_step, exact_check)

    @staticmethod
    def _exact(quantities: list, weights: list) -> tuple[tf.Tensor, tf.Tensor]:
        """Per quantity and per weight: finite flags, and the values (0 for a weight)."""
        finite = [tf.math.is_finite(q) for q in quantities]
        finite += [tf.reduce_all(tf.math.is_finite(v.value)) for _, v in weights]
        zeros = [tf.constant(0.0, tf.float64)] * len(weights)
        return tf.stack(finite), tf.stack(quantities + zeros)

    def _update_cross_replica(self, strategy: tf.distribute.Strategy, flags, bad,
                              before) -> None:
        """In cross-replica context: the replicas' flags combined, then :meth:`_update`."""
        count, value = replica_sum(strategy, flags), replica_sum(strategy, bad)
        self._update(tf.equal(count, 0.0), value, before, strategy)

    def _update(self, ok, quantities, before, strategy=None) -> None:
        """Count the step and record the first non-finite quantity; undo this step (and, once
        flagged, every later one of the execution).
        """
        all_ok = tf.reduce_all(ok)
        first = tf.argmin(tf.cast(ok, tf.int32), output_type=tf.int32)
        code = tf.cast(first, tf.float64)
        value = tf.gather(quantities, first)
        record = self.record.value() if callable(self.record.value) else self.record.value
        steps = record[0] + 1.0
        flagged = record[1] >= 0.0
        newly = tf.logical_and(tf.logical_not(all_ok), tf.logical_not(flagged))
        self.record.assign(tf.where(newly, tf.stack([steps, steps, code, value]),
                                    tf.stack([steps, record[1], record[2], record[3]])))

        def restore():
            if strategy is None:
                assigned = [v.assign(b) for v, b in zip(self.variables, before)]
            else:  # each replica's copy gets that replica's value from before the step
                assigned = [
                    strategy.extended.update(_tf_variable(v), _assign, args=(b,), group=True)
                    for v, b in zip(self.variables, before)]
            with tf.control_dependencies(assigned):
                return tf.constant(True)

        # Under a strategy the restore updates every replica's copy: kept as TensorFlow
        # lowers it (a function call would span the strategy's devices).
        cond = tf.cond if strategy is not None else _function_cond
        cond(tf.logical_or(tf.logical_not(all_ok), flagged), restore, lambda: tf.constant(False))


#: ``record + _ONE_STEP`` counts a step.
_ONE_STEP = [1.0, 0.0, 0.0, 0.0]


def _all_finite(tensors: list[tf.Tensor]) -> tf.Tensor:
    """Whether every scalar in ``tensors`` is finite: one stack and check per dtype."""
    by_dtype: dict[tf.DType, list[tf.Tensor]] = {}
    for t in tensors:
        by_dtype.setdefault(t.dtype, []).append(t)
    flags = [tf.reduce_all(tf.math.is_finite(tf.stack(ts))) for ts in by_dtype.values()]
    if not flags:
        return tf.constant(True)
    return flags[0] if len(flags) == 1 else tf.reduce_all(tf.stack(flags))


def _function_cond(pred: tf.Tensor, true_fn, false_fn) -> tf.Tensor:
    """``tf.cond`` whose ``If`` op runs its taken branch as a function call.

    In a ``tf.function`` TensorFlow lowers a cond to switch/merge nodes by default, and the
    executor then visits every node of both branches on every step (the untaken ones as dead
    tensors): for the restore, two nodes per model and optimizer variable. Kept as a function
    call (the ``_lower_using_switch_merge`` attribute false, as ``cond_v2`` sets it under XLA),
    the untaken branch costs nothing. Eagerly this is ``tf.cond``.
    """
    graph = tf.compat.v1.get_default_graph()
    known = len(graph.get_operations()) if not tf.executing_eagerly() else 0
    out = tf.cond(pred, true_fn, false_fn)
    if not tf.executing_eagerly():
        for op in graph.get_operations()[known:]:
            if op.type in ("If", "StatelessIf"):
                op._set_attr("_lower_using_switch_merge", attr_value_pb2.AttrValue(b=False))
    return out


def _assign(variable: tf.Variable, value: tf.Tensor):
    return variable.assign(value)


def raise_if_diverged(model: GameModel, record: Any) -> None:
    """Raise :class:`tfgames.TrainingDiverged` if ``record`` holds a non-finite step."""
    _, bad_step, code, value = (float(x) for x in record)
    if bad_step < 0:
        return
    from tfgames.callbacks import TrainingDiverged

    label = getattr(model, "_divergence_labels", [])[int(code)]
    if isinstance(label, tuple):
        player, variable = label
        what = f"a weight of player {player!r} (variable {variable!r}) is not finite"
    elif label.endswith("_loss") and label[: -len("_loss")] in model.players():
        what = f"player {label[: -len('_loss')]!r}'s loss ({label}) = {value}"
    else:
        what = f"the optimizer's diagnostic {label} = {value}"
    replicas = model.distribute_strategy.num_replicas_in_sync
    where = "" if replicas == 1 else f" on every one of the {replicas} replicas"
    raise TrainingDiverged(
        f"Training diverged at step {int(bad_step)} of this fit() call: {what}, after the "
        "update (steps are counted one by one, also under steps_per_execution). The model "
        f"keeps its weights, optimizer state and noise stream from before that step{where}; "
        "GameModel.save and save_weights refuse non-finite weights, so no checkpoint "
        "holds them. Lower the learning rate, or use a game optimizer (tfgames.SGA, "
        "tfgames.Consensus) if the dynamics cycle; set model.check_finite = False to "
        "train on without this check."
    )


def check_weights_finite(model: GameModel, action: str) -> None:
    """Refuse to ``action`` (save, save_weights) a model with non-finite weights."""
    bad = [v.path for v in model.weights
           if v.dtype.startswith(("float", "bfloat")) and not np.all(np.isfinite(v.numpy()))]
    if bad:
        raise ValueError(
            f"GameModel.{action} refuses to write non-finite weights: {bad[:3]} hold NaN "
            "or infinite values (training diverged). Nothing was written, so the last "
            "checkpoint stays intact. Reload it and lower the learning rate."
        )
