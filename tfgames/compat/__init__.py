"""Compatibility layers for code written against older TensorFlow APIs.

:mod:`tfgames.compat.v1` holds drop-in equivalents of the TF1 optimizers used by the seed
notebooks, with the same constructor arguments and the same numbers. See the migration guide
(the "Migrating from TF1" page of the documentation) for every TF1 pattern and its TF2 /
tfgames form.
"""

from tfgames.compat import migration, v1

__all__ = ["migration", "v1"]
