"""Channel test fixtures: a send context, local stand-ins for the services, sample alerts."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDict

from tests.engine.alert_env import AlertEnv
from tokiflow.channels.base import Alert, SendContext
from tokiflow.channels.http import Outbound
from tokiflow.clock import FakeClock
from tokiflow.config import Settings

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]


@dataclass
class Seen:
    """One request as the service received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: CIMultiDict[str]
    body: bytes

    def json(self) -> Any:
        assert self.headers["Content-Type"].startswith("application/json")
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        assert self.headers["Content-Type"] == "application/x-www-form-urlencoded"
        return dict(parse_qsl(self.body.decode(), keep_blank_values=True, strict_parsing=True))


class Service:
    """A local stand-in for a chat or incident API: records each request and answers with
    `status` and `body` (a dict is sent as JSON)."""

    def __init__(self, status: int, body: Any) -> None:
        self.status = status
        self.body = body
        self.requests: list[Seen] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(
            Seen(
                request.method,
                request.path,
                dict(request.query),
                CIMultiDict(request.headers),
                await request.read(),
            )
        )
        if isinstance(self.body, (dict, list)):
            return web.json_response(self.body, status=self.status)
        return web.Response(status=self.status, text=self.body)

    @property
    def only(self) -> Seen:
        assert len(self.requests) == 1, self.requests
        return self.requests[0]


Serve = Callable[..., Awaitable[Service]]


@pytest.fixture
def serve(aiohttp_server: ServerFactory) -> Serve:
    """Start a local service; `service.url` is its base URL (no trailing slash)."""

    async def start(status: int = 200, body: Any = "ok") -> Service:
        service = Service(status, body)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", service.handle)
        server = await aiohttp_server(app)
        service.url = str(server.make_url("/")).rstrip("/")
        return service

    return start


@pytest.fixture
async def ctx(settings: Settings, clock: FakeClock) -> AsyncIterator[SendContext]:
    http = Outbound(timeout=5, block_private=False)
    yield SendContext(settings=settings, http=http, clock=clock)
    await http.close()


@pytest.fixture
async def env(tmp_path: Path, clock: FakeClock, settings: Settings) -> AsyncIterator[AlertEnv]:
    e = await AlertEnv.open(tmp_path / "d" / "tokiflow.db", clock, settings)
    yield e
    await e.close()


OPEN = Alert(
    idempotency_key="tokiflow-7-open-1",
    event="open",
    title="[DOWN] backup: the job failed",
    summary="backup: the job exited with status 2.",
    monitor_name="backup",
    monitor_uuid="0b7c5a52-1f7e-4c1e-9d7e-6f0b8e3e2a11",
    monitor_status="down",
    org_slug="acme",
    incident_id=7,
    incident_kind="FAIL",
    reason="the job exited with status 2",
    at="2026-03-02 12:00:00 UTC",
    opened_at="2026-03-02 12:00:00 UTC",
    last_ping_at="2026-03-02 11:59:58 UTC",
    schedule="every 1 hour, grace 5 minutes",
    last_duration="2 minutes",
    output_tail="rsync: <error> & warning\nexit 2",
    view_url="https://toki.example/incidents/7",
    ack_url="https://toki.example/incidents/7/ack",
)

RESOLVED = replace(
    OPEN,
    idempotency_key="tokiflow-7-resolved-1",
    event="resolved",
    title="[RESOLVED] backup is up again",
    summary="backup recovered; the FAIL incident opened 2026-03-02 12:00:00 UTC is resolved.",
    at="2026-03-02 13:00:00 UTC",
    output_tail="",
)


@pytest.fixture
def open_alert() -> Alert:
    return OPEN


@pytest.fixture
def resolved_alert() -> Alert:
    return RESOLVED
