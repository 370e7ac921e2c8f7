"""Fixtures shared by the web tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.engine.alert_env import Mailbox


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    """A real SMTP server, started (its `settings()` point Tokiflow at it)."""
    box = Mailbox()
    box.start()
    yield box
    box.stop()
