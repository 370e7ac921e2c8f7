"""Benchmarks measure speed, not the FREE plan's five monitors: `allow_any_number(data_dir)`
lets the `tokiflow` commands this process runs in-process add as many monitors as a benchmark
needs, by installing an ENTERPRISE licence signed by a throwaway key that only this process
trusts. Servers started as subprocesses do not trust it (they only take pings)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tokiflow import licensing
from tokiflow.storage.db import prepare_data_dir


def allow_any_number(data_dir: Path) -> None:
    key = Ed25519PrivateKey.generate()
    text = licensing.issue(key, licensee="Tokiflow benchmarks", plan="ENTERPRISE",
                           issued=dt.date(2026, 1, 1), expires=None)  # fmt: skip
    prepare_data_dir(data_dir)
    licensing.licence_path(data_dir).write_text(text)
    licensing.BUILT_IN_PUBLIC_KEYS["bench"] = licensing.public_key_text(key.public_key())
