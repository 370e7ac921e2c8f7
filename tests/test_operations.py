"""Operations routes and tasks: /metrics, the self-ping, and the licence the server holds."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import sqlite3
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tokiflow import licensing
from tokiflow.clock import FakeClock
from tokiflow.config import Settings
from tokiflow.engine.monitors import build_spec, create_monitor
from tokiflow.licensing import UNLIMITED
from tokiflow.storage import monitors, orgs
from tokiflow.storage.db import connect, prepare_data_dir
from tokiflow.storage.migrations import migrate
from tokiflow.storage.timefmt import to_db
from tokiflow.web import appkeys, operations

AiohttpClient = Callable[[web.Application], Awaitable[TestClient]]
AiohttpServer = Callable[[web.Application], Awaitable[TestServer]]
MakeApp = Callable[..., web.Application]


def _seed(settings: Settings, now: dt.datetime, n_monitors: int = 1) -> list[str]:
    """Monitors in a migrated database before the app starts; returns their uuids."""
    prepare_data_dir(settings.data_dir)
    migrate(settings.db_path)
    conn = connect(settings.db_path)
    try:
        org = orgs.ensure_default(conn, now)
        return [
            create_monitor(
                conn, build_spec(org_id=org.id, name=f"job {i}", period="1h"), now, limits=UNLIMITED
            ).uuid
            for i in range(n_monitors)
        ]
    finally:
        conn.close()


def _sql(settings: Settings, *statements: tuple[str, tuple]) -> None:
    conn = sqlite3.connect(settings.db_path)
    with conn:
        for sql, params in statements:
            conn.execute(sql, params)
    conn.close()


def _metrics(text: str) -> dict[str, float]:
    """`name{labels}` -> value, after checking every line is valid exposition format."""
    values: dict[str, float] = {}
    typed: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            name = line.split()[2]
            assert name not in typed, f"{name} declared twice"
            typed.add(name)
            continue
        if line.startswith("# HELP "):
            continue
        m = re.fullmatch(r'([a-z_]+)(\{(?:[a-z_]+="[^"]*",?)*\})? (\S+)', line)
        assert m, f"not a sample line: {line!r}"
        assert m.group(1) in typed, f"{m.group(1)} has no TYPE line"
        values[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return values


async def _get_metrics(client: TestClient) -> dict[str, float]:
    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return _metrics(await resp.text())


async def test_metrics_count_answered_pings_on_top_of_the_total_stored_before_start(
    aiohttp_client: AiohttpClient, make_app: MakeApp, settings: Settings, clock: FakeClock
) -> None:
    uuid, other = _seed(settings, clock.now(), n_monitors=2)
    _sql(settings, ("UPDATE monitors SET n_pings = 40 WHERE uuid = ?", (uuid,)),
         ("UPDATE monitors SET n_pings = 2 WHERE uuid = ?", (other,)))  # fmt: skip
    client = await aiohttp_client(make_app())
    for path in (f"/ping/{uuid}", f"/ping/{uuid}/start", f"/ping/{other}/fail"):
        assert (await client.post(path, data=b"x")).status == 200
    assert (await client.get("/ping/8e7b1c9e-0000-4000-8000-000000000000")).status == 404
    assert (await client.get("/healthz")).status == 200
    m = await _get_metrics(client)
    assert m["tokiflow_pings_received_total"] == 45
    assert m["tokiflow_pings_received_since_start_total"] == 3


async def test_metrics_report_monitors_by_status_and_runs_in_progress(
    aiohttp_client: AiohttpClient, make_app: MakeApp, settings: Settings, clock: FakeClock
) -> None:
    uuids = _seed(settings, clock.now(), n_monitors=4)
    _sql(settings, ("UPDATE monitors SET status = 'down' WHERE uuid = ?", (uuids[0],)),
         ("UPDATE monitors SET status = 'paused' WHERE uuid = ?", (uuids[1],)))  # fmt: skip
    client = await aiohttp_client(make_app())
    await client.get(f"/ping/{uuids[2]}/start")
    m = await _get_metrics(client)
    statuses = {s: m[f'tokiflow_monitors{{status="{s}"}}'] for s in operations.STATUSES}
    assert (statuses["down"], statuses["paused"], statuses["late"]) == (1, 1, 0)
    assert sum(statuses.values()) == 4
    assert m["tokiflow_monitors_running"] == 1


def _incident(monitor_id: int, kind: str, state: str, now: dt.datetime) -> tuple[str, tuple]:
    return (
        "INSERT INTO incidents(org_id, monitor_id, kind, state, reason, opened_at) "
        "VALUES (1, ?, ?, ?, 'r', ?)",
        (monitor_id, kind, state, to_db(now)),
    )


async def test_metrics_report_unresolved_incidents_outbox_and_delivery_latency(
    aiohttp_client: AiohttpClient, make_app: MakeApp, settings: Settings, clock: FakeClock
) -> None:
    now = clock.now()
    _seed(settings, now)
    old = to_db(now - dt.timedelta(seconds=150))
    recent = to_db(now - dt.timedelta(seconds=10))
    rows = [
        _incident(1, "FAIL", "open", now),
        _incident(1, "FAIL", "open", now),
        _incident(1, "MISSED", "acknowledged", now),
        _incident(1, "LATE", "resolved", now),
        ("INSERT INTO channels(id, org_id, kind, name, config, created_at) "
         "VALUES (1, 1, 'webhook', 'hook', x'00', ?)", (to_db(now),)),
    ]  # fmt: skip
    for i, (state, created) in enumerate(
        [("pending", old), ("sending", recent), ("sent", old), ("dead", old)], start=1
    ):
        rows.append((
            "INSERT INTO notifications(id, org_id, channel_id, incident_id, event, state, "
            "idempotency_key, message, created_at, next_attempt_at) "
            "VALUES (?, 1, 1, 1, 'open', ?, ?, 'm', ?, ?)",
            (i, state, f"k{i}", created, created),
        ))  # fmt: skip
    for ms, ok in [(100.0, 1)] * 50 + [(900.0, 1)] * 49 + [(5000.0, 1), (1.0, 0), (2.0, 0)]:
        rows.append((
            "INSERT INTO delivery_attempts(notification_id, at, ok, latency_ms) VALUES (3, ?, ?, ?)",
            (to_db(now), ok, ms),
        ))  # fmt: skip
    _sql(settings, *rows)
    client = await aiohttp_client(make_app())
    m = await _get_metrics(client)
    assert m['tokiflow_incidents_open{kind="FAIL",state="open"}'] == 2
    assert m['tokiflow_incidents_open{kind="MISSED",state="acknowledged"}'] == 1
    assert m['tokiflow_incidents_open{kind="LATE",state="open"}'] == 0
    assert m["tokiflow_outbox_depth"] == 2
    assert m["tokiflow_outbox_oldest_age_seconds"] == 150
    assert m["tokiflow_delivery_attempts_total"] == 102
    assert m["tokiflow_delivery_failures_recent"] == 2
    assert m['tokiflow_delivery_latency_seconds{quantile="0.5"}'] == 0.9
    assert m['tokiflow_delivery_latency_seconds{quantile="0.99"}'] == 5.0


async def test_metrics_show_no_latency_and_a_zero_outbox_age_before_any_delivery(
    aiohttp_client: AiohttpClient, make_app: MakeApp
) -> None:
    client = await aiohttp_client(make_app(licence=None))  # a fresh install: no licence
    resp = await client.get("/metrics")
    text = await resp.text()
    assert 'tokiflow_delivery_latency_seconds{quantile="0.95"} NaN' in text
    assert "tokiflow_outbox_oldest_age_seconds 0.0" in text
    assert 'tokiflow_licence_info{plan="FREE",state="none"} 1' in text


async def test_database_figures_are_cached_for_a_few_seconds(
    aiohttp_client: AiohttpClient, make_app: MakeApp, settings: Settings, clock: FakeClock
) -> None:
    _seed(settings, clock.now())
    client = await aiohttp_client(make_app())
    assert (await _get_metrics(client))['tokiflow_monitors{status="new"}'] == 1
    _sql(settings, ("UPDATE monitors SET status = 'down'", ()))
    assert (await _get_metrics(client))['tokiflow_monitors{status="new"}'] == 1
    await clock.advance(operations.CACHE_SECONDS + 1)
    m = await _get_metrics(client)
    assert (m['tokiflow_monitors{status="new"}'], m['tokiflow_monitors{status="down"}']) == (0, 1)


async def test_scheduler_lag_is_zero_while_the_earliest_deadline_is_ahead(
    aiohttp_client: AiohttpClient, make_app: MakeApp, settings: Settings, clock: FakeClock
) -> None:
    (uuid,) = _seed(settings, clock.now())
    client = await aiohttp_client(make_app())
    assert (await client.get(f"/ping/{uuid}")).status == 200
    m = await _get_metrics(client)
    assert m["tokiflow_scheduler_lag_seconds"] == 0
    assert m["tokiflow_scheduler_monitors"] == 1


def test_scheduler_lag_is_how_far_the_earliest_deadline_is_in_the_past() -> None:
    now = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)
    assert operations.scheduler_lag(now - dt.timedelta(seconds=42), now) == 42
    assert operations.scheduler_lag(now + dt.timedelta(hours=1), now) == 0
    assert operations.scheduler_lag(None, now) == 0


# -- self-ping ----------------------------------------------------------------------------------


class Receiver:
    """A real HTTP endpoint standing in for an outside heartbeat service."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.hits: list[str] = []
        self.hit = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        self.hits.append(request.headers.get("User-Agent", ""))
        self.hit.set()
        return web.Response(status=self.status, text="OK")

    async def next_hit(self) -> None:
        await asyncio.wait_for(self.hit.wait(), 5)
        self.hit.clear()


async def _receiver(aiohttp_server: AiohttpServer, status: int = 200) -> tuple[Receiver, str]:
    receiver = Receiver(status)
    app = web.Application()
    app.router.add_get("/ping/abc", receiver.handle)
    server = await aiohttp_server(app)
    return receiver, str(server.make_url("/ping/abc"))


async def test_the_self_ping_goes_out_at_start_and_then_every_minute(
    aiohttp_server: AiohttpServer,
    aiohttp_client: AiohttpClient,
    make_app: MakeApp,
    clock: FakeClock,
) -> None:
    receiver, url = await _receiver(aiohttp_server)
    client = await aiohttp_client(make_app(self_ping_url=url))
    await receiver.next_hit()
    assert receiver.hits[0].startswith("tokiflow/")
    await clock.advance(30)
    assert len(receiver.hits) == 1
    await clock.advance(30)
    await receiver.next_hit()
    await clock.settle()
    assert len(receiver.hits) == 2
    m = await _get_metrics(client)
    assert m['tokiflow_self_pings_total{result="ok"}'] == 2
    assert m["tokiflow_self_ping_last_success_seconds"] == clock.now().timestamp()


async def test_a_failing_self_ping_is_logged_as_a_warning_and_the_server_carries_on(
    aiohttp_server: AiohttpServer,
    aiohttp_client: AiohttpClient,
    make_app: MakeApp,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    receiver, url = await _receiver(aiohttp_server, status=500)
    client = await aiohttp_client(make_app(self_ping_url=url))
    await receiver.next_hit()
    await clock.settle()
    assert "self-ping to http://127.0.0.1/... failed: answered 500" in caplog.text
    # Tokiflow's own lines never show the secret path (the test receiver's access log may).
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("tokiflow")]
    assert ours and not any("/ping/abc" in line for line in ours)
    assert (await client.get("/healthz")).status == 200
    m = await _get_metrics(client)
    assert m['tokiflow_self_pings_total{result="failed"}'] == 1


async def test_an_unreachable_self_ping_url_only_warns(
    aiohttp_client: AiohttpClient,
    make_app: MakeApp,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    from tests.cli_helpers import free_port

    client = await aiohttp_client(make_app(self_ping_url=f"http://127.0.0.1:{free_port()}/p"))
    app = client.app
    assert app is not None
    counters = app[operations.COUNTERS]
    for _ in range(100):
        if counters.self_pings_failed:
            break
        await clock.settle(0.05)
    assert counters.self_pings_failed == 1
    assert "self-ping to http://127.0.0.1/... failed" in caplog.text
    assert (await client.get("/healthz")).status == 200


# -- the licence the server holds ---------------------------------------------------------------


@pytest.fixture
def vendor_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def _install(settings: Settings, key: Ed25519PrivateKey, plan: str, expires: dt.date) -> None:
    text = licensing.issue(key, licensee="Acme", plan=plan, issued=dt.date(2026, 1, 1),
                           expires=expires)  # fmt: skip
    prepare_data_dir(settings.data_dir)
    licensing.licence_path(settings.data_dir).write_text(text)


async def _start(
    aiohttp_client: AiohttpClient, make_app: MakeApp, key: Ed25519PrivateKey
) -> tuple[TestClient, web.Application]:
    app = make_app(licence=None)
    app[operations.LICENCE_KEYS] = licensing.keys_of(key.public_key())
    client = await aiohttp_client(app)
    return client, app


async def test_the_server_loads_the_installed_licence_and_reports_it(
    aiohttp_client: AiohttpClient,
    make_app: MakeApp,
    settings: Settings,
    vendor_key: Ed25519PrivateKey,
) -> None:
    _install(settings, vendor_key, "PRO", dt.date(2026, 12, 31))
    client, app = await _start(aiohttp_client, make_app, vendor_key)
    st = operations.licence_status(app)
    assert (st.state, st.limits.plan, st.banner) == ("valid", "PRO", None)
    m = await _get_metrics(client)
    assert m['tokiflow_licence_info{plan="PRO",state="valid"}'] == 1
    assert m["tokiflow_licence_monitors_limit"] == 100
    assert (
        m["tokiflow_licence_expiry_seconds"] == dt.datetime(2027, 1, 1, tzinfo=dt.UTC).timestamp()
    )


async def test_a_licence_in_grace_gives_the_ui_a_banner_and_keeps_its_limits(
    aiohttp_client: AiohttpClient,
    make_app: MakeApp,
    settings: Settings,
    clock: FakeClock,
    vendor_key: Ed25519PrivateKey,
) -> None:
    _install(settings, vendor_key, "PRO", clock.now().date() - dt.timedelta(days=3))
    _, app = await _start(aiohttp_client, make_app, vendor_key)
    st = operations.licence_status(app)
    assert (st.state, st.limits.monitors) == ("grace", 100)
    assert st.banner is not None and "then the FREE plan's apply" in st.banner
    await clock.advance(14 * 86400)
    assert operations.licence_status(app).limits.plan == "FREE"


async def test_a_licence_installed_while_the_server_runs_applies_without_a_restart(
    aiohttp_client: AiohttpClient,
    make_app: MakeApp,
    settings: Settings,
    clock: FakeClock,
    vendor_key: Ed25519PrivateKey,
) -> None:
    _seed(settings, clock.now(), n_monitors=5)
    _, app = await _start(aiohttp_client, make_app, vendor_key)
    db = app[appkeys.DB]

    def check(conn: sqlite3.Connection) -> None:
        count = monitors.count_all(conn)
        licensing.check_can_create_monitor(count, operations.plan_limits(app))

    with pytest.raises(licensing.LicenceLimitError, match="limit of 5 monitors on the FREE plan"):
        await db.read(check)
    _install(settings, vendor_key, "BUSINESS", dt.date(2027, 6, 30))
    await db.read(check)
    assert operations.licence_status(app).limits.plan == "BUSINESS"


async def test_an_installed_licence_that_does_not_verify_means_free_with_a_warning(
    aiohttp_client: AiohttpClient,
    make_app: MakeApp,
    settings: Settings,
    vendor_key: Ed25519PrivateKey,
    caplog: pytest.LogCaptureFixture,
) -> None:
    other = Ed25519PrivateKey.generate()
    _install(settings, other, "ENTERPRISE", dt.date(2027, 1, 1))
    client, app = await _start(aiohttp_client, make_app, vendor_key)
    assert operations.licence_status(app).limits.plan == "FREE"
    assert "the installed licence is not valid" in caplog.text
    assert app[operations.LICENCE].error is not None
    assert (await client.get("/healthz")).status == 200


def test_the_self_ping_url_is_logged_without_its_secret_path() -> None:
    assert operations._redact("https://hc.example.com/ping/1234-secret") == (
        "https://hc.example.com/..."
    )
    assert operations._redact("nonsense") == "(invalid URL)"
