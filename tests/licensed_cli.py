"""`python -m tests.licensed_cli ARGS...`: the real `tokiflow` command line, trusting one more
licence-signing public key, read from the TEST_LICENCE_PUBLIC_KEY environment variable.

Tests whose subject is not licensing (wrapping a crontab of twenty jobs, say) run the CLI this
way on a data folder holding a licence signed by a throwaway key (see
`cli_helpers.licensed_env`), so the FREE plan's five monitors do not get in their way. Tokiflow
itself trusts only the keys built into it: nothing in the product reads this variable.
"""

from __future__ import annotations

import os
import sys

from tokiflow import licensing
from tokiflow.cli import main

if __name__ == "__main__":
    key = os.environ.get("TEST_LICENCE_PUBLIC_KEY")
    if key:
        # trusted_keys() reads this very mapping, so every command sees the extra key.
        licensing.BUILT_IN_PUBLIC_KEYS["test"] = key
    sys.exit(main())
