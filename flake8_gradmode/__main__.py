"""``python -m flake8_gradmode``: the ``flake8-gradmode`` command."""

import sys

from flake8_gradmode.cli import main

if __name__ == "__main__":
    sys.exit(main())
