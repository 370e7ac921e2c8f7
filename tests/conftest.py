"""Shared fixtures: a fake clock, settings on a temporary data folder, an app factory and a client."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.cli_helpers import Server
from tokiflow.app import create_app
from tokiflow.clock import FakeClock
from tokiflow.config import Settings, load_settings

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


@pytest.fixture
def make_app(settings: Settings, clock: FakeClock) -> MakeApp:
    def make(**overrides: Any) -> web.Application:
        return create_app(settings.replace(**overrides), clock=clock)

    return make


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
        def __init__(self, data_dir: Path, *extra: str) -> None:
            super().__init__(data_dir, *extra)
            started.append(self)

    yield Tracked
    for s in started:
        s.close()
