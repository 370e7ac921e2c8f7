"""Entry point of the frozen binary: the same as `python -m tokiflow`."""

import sys

from tokiflow.cli import main

if __name__ == "__main__":
    sys.exit(main())
