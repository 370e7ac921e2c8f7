"""Shared fixtures: a fake clock, settings on a temporary data folder, an app factory and a client."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.cli_helpers import Server
from tokiflow import licensing
from tokiflow.app import create_app
from tokiflow.clock import FakeClock
from tokiflow.config import Settings, load_settings
from tokiflow.storage.db import prepare_data_dir
from tokiflow.web import operations

START = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return load_settings({"data_dir": str(data_dir), "access_log": False}, env={})


MakeApp = Callable[..., web.Application]


@pytest.fixture(scope="session")
def test_licence_key() -> Ed25519PrivateKey:
    """A throwaway licence-signing key that apps made by `make_app` trust."""
    return Ed25519PrivateKey.generate()


@pytest.fixture
def make_app(settings: Settings, clock: FakeClock, test_licence_key: Ed25519PrivateKey) -> MakeApp:
    """Apps on the test data folder and clock. Unless `licence=None` (the FREE plan, as on a
    fresh install), an ENTERPRISE licence signed by the test key is installed, so tests are
    not bound by the FREE plan's 5 monitors and 3 users."""

    def make(*, licence: str | None = "ENTERPRISE", **overrides: Any) -> web.Application:
        s = settings.replace(**overrides)
        app = create_app(s, clock=clock)
        if licence is not None:
            install_test_licence(s.data_dir, test_licence_key, licence)
            app[operations.LICENCE_KEYS] = licensing.keys_of(test_licence_key.public_key())
        return app

    return make


def install_test_licence(data_dir: Path, key: Ed25519PrivateKey, plan: str) -> None:
    """Put a never-expiring licence for `plan` signed by `key` in the data folder, unless one
    is there already (a test that installs its own keeps it)."""
    path = licensing.licence_path(data_dir)
    if path.exists():
        return
    text = licensing.issue(key, licensee="Tokiflow tests", plan=plan,
                           issued=dt.date(2026, 1, 1), expires=None)  # fmt: skip
    prepare_data_dir(data_dir)
    path.write_text(text)


@pytest.fixture
async def client(
    aiohttp_client: Callable[[web.Application], Awaitable[TestClient]], make_app: MakeApp
) -> TestClient:
    return await aiohttp_client(make_app())


@pytest.fixture
def server_factory() -> Iterator[type[Server]]:
    """Start real `tokiflow serve` processes; any still running at the end are killed."""
    started: list[Server] = []

    class Tracked(Server):
        def __init__(self, data_dir: Path, *extra: str, licensed: bool = False) -> None:
            super().__init__(data_dir, *extra, licensed=licensed)
            started.append(self)

    yield Tracked
    for s in started:
        s.close()
