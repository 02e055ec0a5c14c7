"""What GameModel needs under ``tf.distribute`` and mixed precision: the replicas' noise stream,
their shares of the global batch, and the loss scale placed where the update is applied.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

from tfgames.optimizers.base import (
    GameOptimizer,
    WrapperOptimizer,
    loss_scale_of,
    loss_scale_optimizer_of,
)
from tfgames.optimizers.per_player import PerPlayer
from tfgames.repeatability import sum_in_order

__all__ = [
    "ReplicaSeedGenerator",
    "leading_dimension",
    "dynamic_loss_scale",
    "loss_scaling_inside",
    "multi_worker",
    "replica_sum",
]


class ReplicaSeedGenerator(keras.random.SeedGenerator):
    """The noise stream of a :class:`tfgames.GameModel`: one independent stream per replica.

    On one device it is ``keras.random.SeedGenerator``, bitwise. Under a ``tf.distribute``
    strategy with R > 1 replicas, every draw of replica r uses the seed
    ``stateless_fold_in(s, r)``, s being the seed a single device would use, so the replicas
    draw different noise (not R copies of one draw) from a stream that is a function of the
    model's seed, its state and R only: a run is reproducible for a given seed and R.
    """

    def next(self, ordered: bool = True):
        seed = super().next(ordered=ordered)
        context = tf.distribute.get_replica_context()
        if context is None or context.num_replicas_in_sync == 1:
            return seed
        replica = tf.cast(context.replica_id_in_sync_group, tf.int64)
        folded = tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64), replica)
        return tf.cast(folded, seed.dtype)


def multi_worker(strategy: tf.distribute.Strategy) -> bool:
    """Whether ``strategy`` spans several workers (machines or processes)."""
    extended = getattr(strategy, "extended", None)
    return bool(getattr(extended, "_in_multi_worker_mode", lambda: False)())


def replica_sum(strategy: tf.distribute.Strategy, value) -> tf.Tensor:
    """The sum over replicas of a per-replica ``value`` (e.g. the batch sizes: the global
    batch), in cross-replica context. On one worker the replicas' values are added without a
    collective op: an all-reduce inside the step may run unordered with the distributed input's
    own all-reduce of partial batches, and TensorFlow's CPU collectives then mismatch (observed
    on TF 2.21 with an empty replica).
    """
    if multi_worker(strategy):
        return strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
    return sum_in_order([tf.identity(v) for v in strategy.experimental_local_results(value)])


def leading_dimension(data: Any):
    """The leading dimension of the first tensor in ``data``, or None when it has none."""
    for leaf in tf.nest.flatten(data):
        if isinstance(leaf, (tf.Tensor, tf.Variable)) or hasattr(leaf, "shape"):
            shape = tf.TensorShape(getattr(leaf, "shape", None))
            if shape.rank is not None and shape.rank >= 1:
                return tf.shape(leaf)[0]
    return None


def _place_loss_scaling(node: Any) -> Any:
    """``node`` with a LossScaleOptimizer around each optimizer that applies the update."""
    LSO = keras.optimizers.LossScaleOptimizer
    if isinstance(node, LSO):
        return node  # already placed (a model compiled again, or loaded)
    if isinstance(node, PerPlayer):
        # The container steps the game itself: each player scales its own loss.
        for player, optimizer in node.player_optimizers.items():
            if loss_scale_optimizer_of(optimizer) is None:
                node._optimizers[player] = LSO(optimizer)
        return node
    if isinstance(node, WrapperOptimizer):
        inner = node.inner_optimizer
        if isinstance(node, GameOptimizer) and isinstance(inner, PerPlayer):
            # Products of the whole game: one scale for every player's loss.
            node.inner_optimizer = LSO(inner)
        else:
            node.inner_optimizer = _place_loss_scaling(inner)
        return node
    return LSO(node)


def loss_scaling_inside(optimizer: Any) -> Any:
    """Move Keras' LossScaleOptimizer inside tfgames' wrappers, to what applies the update.

    Under the ``mixed_float16`` policy Keras wraps the compiled optimizer in a
    ``LossScaleOptimizer``, which would hand gradients to the wrapper's ``apply``. The loss
    scale belongs to the first-order optimizer that applies the update:

    - ``LossScaleOptimizer(G1(...Gk(K)))`` -> ``G1(...Gk(LossScaleOptimizer(K)))`` for game
      optimizers and Lookahead around a first-order K: the game sees the dynamically scaled
      losses (``Game.numeric_scale``), divides the scale out of xi and the Hessian-vector
      products (the SGA adjustment is quadratic in xi), and the inner ``LossScaleOptimizer``
      checks the step for overflow and adapts the scale;
    - a game optimizer around a :class:`tfgames.PerPlayer`: the scale wraps the container
      (``SGA(LossScaleOptimizer(PerPlayer(...)))``), one scale for the whole game;
    - a :class:`tfgames.PerPlayer` that steps the game itself (compiled directly or inside
      Lookahead, any update order): each player's optimizer gets its own
      ``LossScaleOptimizer``, and each player's gradient is taken of its own loss times its
      own scale.

    Keras optimizers and other optimizers are left as Keras wrapped them.
    """
    LSO = keras.optimizers.LossScaleOptimizer
    if not isinstance(optimizer, LSO) or not isinstance(
        optimizer.inner_optimizer, WrapperOptimizer
    ):
        return optimizer
    return _place_loss_scaling(optimizer.inner_optimizer)


def dynamic_loss_scale(optimizer: Any):
    """The dynamic scale of the LossScaleOptimizer that applies the update, or 1."""
    scale = loss_scale_of(optimizer)
    return 1.0 if scale is None else scale
