"""What to use instead of a TF1 or Keras 2 optimizer: the hints of tfgames' type errors.

:func:`tfgames.optimizers.base.check_optimizer` appends :func:`migration_hint` to the error it
raises when it is given something other than a Keras 3 optimizer instance. The full guide is
the documentation page "Migrating from TF1".
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf

__all__ = ["TF1_REPLACEMENTS", "migration_hint"]

#: Replacements for TF1 optimizers (and the seeds' TF1 subclasses), by class name.
TF1_REPLACEMENTS = {
    "RMSPropOptimizer": "tfgames.compat.v1.RMSPropOptimizer(learning_rate) (TF1-exact: mean "
    "square starting at ones, epsilon 1e-10) or keras.optimizers.RMSprop(learning_rate) "
    "(mean square starting at zeros, epsilon 1e-7: different numbers)",
    "AdamOptimizer": "keras.optimizers.Adam(learning_rate, beta_1=beta1, beta_2=beta2, "
    "epsilon=1e-8) (Keras' default epsilon is 1e-7)",
    "GradientDescentOptimizer": "keras.optimizers.SGD(learning_rate)",
    "MomentumOptimizer": "keras.optimizers.SGD(learning_rate, momentum=momentum)",
    "AdagradOptimizer": "keras.optimizers.Adagrad(learning_rate, epsilon=0.0)",
    "SymplecticOptimizer": "tfgames.compat.v1.SymplecticOptimizer(learning_rate), passed as "
    "the GameModel's optimizer (it is a game optimizer, not an inner one)",
    "AdamirrorOptimizer": "tfgames.compat.v1.AdamirrorOptimizer(learning_rate)",
}


def migration_hint(optimizer: Any) -> str:
    """What to pass instead of ``optimizer`` (a TF1 / Keras 2 optimizer or a class), or ``""``.

    Args:
      optimizer: the object that was passed where a Keras 3 optimizer instance was expected.

    Returns:
      A sentence starting with a space, to append to an error message; empty when there is
      no specific advice.
    """
    if isinstance(optimizer, type) and issubclass(optimizer, keras.optimizers.Optimizer):
        return f" Pass an instance, e.g. {optimizer.__name__}(learning_rate), not the class."
    if isinstance(optimizer, tf.compat.v1.train.Optimizer):
        name = type(optimizer).__name__
        instead = TF1_REPLACEMENTS.get(
            name, "the Keras optimizer of the same name from keras.optimizers"
        )
        return (
            f" {name} is a TF1 optimizer (tf.compat.v1.train.Optimizer), which cannot run "
            f"inside Keras 3: use {instead}. tfgames.compat.v1 holds TF1-exact equivalents; "
            "see the tfgames documentation page \"Migrating from TF1\"."
        )
    if type(optimizer).__module__.startswith("tf_keras"):
        return (
            " This is a Keras 2 (tf_keras) optimizer; tfgames needs Keras 3: use "
            f"keras.optimizers.{type(optimizer).__name__} from `import keras` (Keras 3)."
        )
    return ""
