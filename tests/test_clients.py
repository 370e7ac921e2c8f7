"""The real client libraries against a running Tokiflow: sentry-sdk (its Crons API, with a DSN
from `tokiflow orgs dsn`'s function, brotli, gzip and plain bodies) and cronitor-python (its
telemetry pings, `job` decorator and monitor API). Only the clients' hosts are changed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from aiohttp import web
from aiohttp.test_utils import TestServer
from requests.adapters import HTTPAdapter

from tests.web.compat_helpers import with_compat_routes
from tokiflow.clock import FakeClock
from tokiflow.engine import auth
from tokiflow.storage import monitors, orgs, outputs, pings, runs
from tokiflow.storage.monitors import Monitor
from tokiflow.storage.orgs import Org
from tokiflow.web import appkeys
from tokiflow.web.ping_sentry import dsn

AiohttpServer = Callable[[web.Application], Awaitable[TestServer]]
MakeApp = Callable[..., web.Application]

import cronitor  # noqa: E402 - test extra; a missing client must fail, not skip
import sentry_sdk  # noqa: E402


class Live:
    """A running Tokiflow (in this process, on a real socket) and a look into its database."""

    def __init__(self, server: TestServer, seen: list[tuple[str, str]]) -> None:
        self.server = server
        self.seen = seen  # (path, Content-Encoding) of every request
        self.app = server.app
        assert self.app is not None
        self.url = str(server.make_url("")).rstrip("/")

    async def org(self) -> Org:
        return await self.app[appkeys.DB].read(lambda conn: orgs.list_all(conn)[0])

    async def monitor(self, slug: str) -> Monitor:
        org = await self.org()
        found = await self.app[appkeys.DB].read(lambda c: monitors.by_slug(c, org.id, slug))
        assert found, f"no monitor {slug}"
        return found[0]

    async def pings(self, m: Monitor) -> list[pings.Ping]:
        store = self.app[appkeys.OUTPUTS]
        rows = await self.app[appkeys.DB].read(
            lambda c: outputs.with_bodies(c, store, m, pings.recent(c, m.id))
        )
        return rows[::-1]

    async def runs(self, m: Monitor) -> list[runs.Run]:
        return (await self.app[appkeys.DB].read(lambda c: runs.recent(c, m.id)))[::-1]

    async def api_key(self, clock: FakeClock) -> str:
        org = await self.org()
        return await self.app[appkeys.DB].write(
            lambda c: (
                auth.create_api_key(
                    c, org_id=org.id, name="client", read_only=False, now=clock.now()
                ).key
            )
        )


@pytest.fixture
async def live(aiohttp_server: AiohttpServer, make_app: MakeApp) -> AsyncIterator[Live]:
    seen: list[tuple[str, str]] = []

    async def record(request: web.Request, response: web.StreamResponse) -> None:
        seen.append((request.path, request.headers.get("Content-Encoding", "")))

    app = with_compat_routes(make_app())
    app.on_response_prepare.append(record)
    yield Live(await aiohttp_server(app), seen)


# -- sentry-sdk ------------------------------------------------------------------------------


@pytest.fixture
def sentry() -> Iterator[Callable[..., None]]:
    """sentry_sdk.init with test options; the client is closed afterwards."""

    def init(dsn_text: str, **options: Any) -> None:
        sentry_sdk.init(
            dsn=dsn_text,
            default_integrations=False,
            auto_enabling_integrations=False,
            environment="production",
            release="app@1.2.3",
            **options,
        )

    yield init
    sentry_sdk.get_client().close(timeout=2)
    # Back to no client, without the default integrations (they patch logging and threads).
    sentry_sdk.init(default_integrations=False, auto_enabling_integrations=False)


COMPRESSION = {
    "br": {},  # the SDK's choice when the Brotli module is installed
    "gzip": {"_experiments": {"transport_compression_algo": "gzip"}},
    "plain": {"_experiments": {"transport_compression_level": 0}},
}


@pytest.mark.parametrize("compression", list(COMPRESSION))
async def test_sentry_sdk_monitor_decorator_runs_and_upserts(
    live: Live, sentry: Callable[..., None], compression: str
) -> None:
    from sentry_sdk.crons import monitor

    sentry(dsn(live.url, await live.org()), **COMPRESSION[compression])
    config = {
        "schedule": {"type": "crontab", "value": "*/15 * * * *"},
        "timezone": "Europe/Paris",
        "checkin_margin": 2,
        "max_runtime": 10,
        "failure_issue_threshold": 3,
    }

    @monitor(monitor_slug="invoice-sync", monitor_config=config)
    def job() -> str:
        return "done"

    def run() -> None:
        job()
        sentry_sdk.flush(timeout=10)

    await asyncio.to_thread(run)
    org = await live.org()
    sent = {encoding for path, encoding in live.seen if path == f"/api/{org.id}/envelope/"}
    assert sent == {"" if compression == "plain" else compression}
    m = await live.monitor("invoice-sync")
    assert (m.cron, m.tz, m.grace, m.max_runtime, m.failure_tolerance) == (
        "*/15 * * * *",
        "Europe/Paris",
        120,
        600,
        2,
    )
    assert m.status == "up"
    [run_row] = await live.runs(m)
    assert run_row.status == "success"
    start, end = await live.pings(m)
    assert (start.kind, end.kind, start.rid) == ("start", "success", end.rid)
    assert {start.protocol, end.protocol} == {"sentry"}
    body = json.loads(end.body or b"")
    assert body["environment"] == "production" and body["release"] == "app@1.2.3"
    assert body["duration"] >= 0


async def test_sentry_sdk_capture_checkin_reports_a_failure(
    live: Live, sentry: Callable[..., None]
) -> None:
    from sentry_sdk.crons import capture_checkin
    from sentry_sdk.crons.consts import MonitorStatus

    sentry(dsn(live.url, await live.org()))
    config = {"schedule": {"type": "interval", "value": 1, "unit": "hour"}}

    def run() -> None:
        check_in_id = capture_checkin(
            monitor_slug="nightly-import",
            status=MonitorStatus.IN_PROGRESS,
            monitor_config=config,
        )
        capture_checkin(
            monitor_slug="nightly-import",
            check_in_id=check_in_id,
            status=MonitorStatus.ERROR,
            duration=3.5,
        )
        sentry_sdk.flush(timeout=10)

    await asyncio.to_thread(run)
    m = await live.monitor("nightly-import")
    assert (m.period, m.status) == (3600, "down")
    [run_row] = await live.runs(m)
    assert run_row.status == "fail"


# -- cronitor-python -------------------------------------------------------------------------


class ToTokiflow(HTTPAdapter):
    """Sends cronitor-python's requests for cronitor.link and cronitor.io to Tokiflow, keeping
    the path and query the client built."""

    def __init__(self, base: str) -> None:
        super().__init__()
        self.base = base

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        parts = urlsplit(request.url or "")
        request.url = self.base + parts.path + (f"?{parts.query}" if parts.query else "")
        return super().send(request, **kwargs)


@pytest.fixture
async def cronitor_client(
    live: Live, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Any]:
    session = requests.Session()
    adapter = ToTokiflow(live.url)
    session.mount("https://cronitor.link", adapter)
    session.mount("https://cronitor.io", adapter)
    monkeypatch.setattr(cronitor.Monitor, "_req", session)
    monkeypatch.setattr(cronitor, "api_key", await live.api_key(clock))
    monkeypatch.setattr(cronitor, "environment", "staging")
    yield cronitor
    session.close()


async def test_cronitor_job_decorator_pairs_its_run(live: Live, cronitor_client: Any) -> None:
    @cronitor_client.job("nightly-etl")
    def etl() -> str:
        return "42 rows"

    assert await asyncio.to_thread(etl) == "42 rows"
    m = await live.monitor("nightly-etl")
    assert (m.status, m.open_runs) == ("up", 0)
    [run_row] = await live.runs(m)
    assert run_row.status == "success"
    start, end = await live.pings(m)
    assert (start.kind, end.kind, start.rid) == ("start", "success", end.rid)
    body = json.loads(end.body or b"")
    assert body["message"] == "42 rows" and body["env"] == "staging"
    assert set(body["metrics"]) == {"duration"}


async def test_cronitor_job_decorator_reports_an_exception(
    live: Live, cronitor_client: Any
) -> None:
    @cronitor_client.job("flaky")
    def flaky() -> None:
        raise RuntimeError("upstream timed out")

    with pytest.raises(RuntimeError):
        await asyncio.to_thread(flaky)
    m = await live.monitor("flaky")
    assert m.status == "down"
    end = (await live.pings(m))[-1]
    assert end.kind == "fail" and json.loads(end.body or b"")["message"] == "upstream timed out"


async def test_cronitor_monitor_put_ping_and_pause(live: Live, cronitor_client: Any) -> None:
    def put() -> Any:
        return cronitor_client.Monitor.put(
            key="send-invoices",
            type="job",
            schedule="0 0 * * *",
            timezone="Europe/London",
            grace_seconds=600,
            assertions=["metric.duration < 5 minutes"],
        )

    created = await asyncio.to_thread(put)
    assert created.key == "send-invoices"
    m = await live.monitor("send-invoices")
    assert (m.cron, m.tz, m.grace, m.max_runtime) == ("0 0 * * *", "Europe/London", 600, 300)

    handle = cronitor_client.Monitor("send-invoices")
    resp = await asyncio.to_thread(handle.ping, state="complete", message="sent 12")
    assert resp.status_code == 200
    assert (await live.monitor("send-invoices")).status == "up"
    resp = await asyncio.to_thread(handle.pause, 24)
    assert resp.status_code == 200
    assert (await live.monitor("send-invoices")).status == "paused"
    resp = await asyncio.to_thread(handle.unpause)
    assert resp.status_code == 200
    assert (await live.monitor("send-invoices")).status == "new"
