"""`python -m tokiflow` runs the command line."""

import sys

from tokiflow.cli import main

sys.exit(main())
