"""``python -m tfgames``: the ``tfgames`` command line (see :mod:`tfgames.cli`)."""

import sys

from tfgames.cli import main

if __name__ == "__main__":
    sys.exit(main())
