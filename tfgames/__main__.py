"""``python -m tfgames``: the ``tfgames`` command line.

The entry point is :mod:`tfgames_cli`, which hands the commands that train or read runs to
:mod:`tfgames.lab.cli`.
"""

import sys

from tfgames_cli import main

if __name__ == "__main__":
    sys.exit(main())
