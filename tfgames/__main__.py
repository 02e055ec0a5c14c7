"""``python -m tfgames``: the ``tfgames`` command line (see :mod:`tfgames.lab.cli`)."""

import sys

from tfgames.lab.cli import main

if __name__ == "__main__":
    sys.exit(main())
