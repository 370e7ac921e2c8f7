"""Commands: `tokiflow license install|show|issue`."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any


def add_commands(sub: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Register these commands on the `tokiflow` parser."""
