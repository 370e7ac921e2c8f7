"""The Healthchecks-compatible ping API over HTTP, against the real app and a real SQLite file."""

from __future__ import annotations

import datetime as dt
import sqlite3
import uuid as uuidlib
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tokiflow.clock import FakeClock
from tokiflow.config import Settings
from tokiflow.engine.monitors import build_spec, create_monitor, insert_monitor
from tokiflow.licensing import UNLIMITED
from tokiflow.storage import incidents, monitors, orgs, outputs, pings, runs
from tokiflow.storage.incidents import Incident
from tokiflow.storage.monitors import Monitor
from tokiflow.storage.orgs import Org
from tokiflow.storage.pings import Ping
from tokiflow.storage.runs import Run
from tokiflow.web import appkeys

AiohttpClient = Callable[[web.Application], Awaitable[TestClient]]
MakeApp = Callable[..., web.Application]

NO_CACHE = "max-age=0, no-cache, no-store, must-revalidate, private"


# -- helpers ---------------------------------------------------------------------------------


def app_of(client: TestClient) -> web.Application:
    app = client.app
    assert app is not None
    return app


async def default_org(client: TestClient) -> Org:
    return await app_of(client)[appkeys.DB].read(lambda conn: orgs.list_all(conn)[0])


async def add_monitor(client: TestClient, clock: FakeClock, **fields: Any) -> Monitor:
    """Create a monitor of the default organisation the way the UI would."""
    org = await default_org(client)
    fields.setdefault("name", "nightly backup")
    fields.setdefault("period", "1d")
    spec = build_spec(org_id=org.id, **fields)
    return await app_of(client)[appkeys.DB].write(
        lambda conn: create_monitor(conn, spec, clock.now(), limits=UNLIMITED)
    )


async def monitor(client: TestClient, m: Monitor) -> Monitor:
    found = await app_of(client)[appkeys.DB].read(lambda conn: monitors.by_uuid(conn, m.uuid))
    assert found is not None
    return found


async def stored_pings(client: TestClient, m: Monitor) -> list[Ping]:
    """The monitor's pings, oldest first."""
    store = app_of(client)[appkeys.OUTPUTS]
    newest_first = await app_of(client)[appkeys.DB].read(
        lambda conn: outputs.with_bodies(conn, store, m, pings.recent(conn, m.id))
    )
    return newest_first[::-1]


async def last_ping(client: TestClient, m: Monitor) -> Ping:
    found = await stored_pings(client, m)
    assert found, "no ping was stored"
    return found[-1]


async def stored_runs(client: TestClient, m: Monitor) -> list[Run]:
    """The monitor's runs, oldest first."""
    newest_first = await app_of(client)[appkeys.DB].read(lambda conn: runs.recent(conn, m.id))
    return newest_first[::-1]


async def open_incidents(client: TestClient, m: Monitor) -> list[Incident]:
    return await app_of(client)[appkeys.DB].read(lambda conn: incidents.current(conn, m.id))


async def ok(client: TestClient, url: str, method: str = "GET", **kwargs: Any) -> None:
    resp = await client.request(method, url, **kwargs)
    assert (resp.status, await resp.text()) == (200, "OK"), url


# -- URLs, methods and replies ---------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST", "HEAD", "PUT"])
async def test_it_accepts_any_method_and_records_it(
    client: TestClient, clock: FakeClock, method: str
) -> None:
    m = await add_monitor(client, clock)
    resp = await client.request(method, f"/ping/{m.uuid}")
    assert resp.status == 200
    assert await resp.read() == (b"" if method == "HEAD" else b"OK")
    [p] = await stored_pings(client, m)
    assert (p.kind, p.method, p.protocol) == ("success", method, "hc")
    assert p.created_at == clock.now()


async def test_it_accepts_a_trailing_slash(client: TestClient, clock: FakeClock) -> None:
    m = await add_monitor(client, clock)
    await ok(client, f"/ping/{m.uuid}/")
    await ok(client, f"/ping/{m.uuid}/start/")
    assert [p.kind for p in await stored_pings(client, m)] == ["success", "start"]


async def test_it_accepts_an_upper_case_uuid(client: TestClient, clock: FakeClock) -> None:
    m = await add_monitor(client, clock)
    await ok(client, f"/ping/{m.uuid.upper()}")
    assert len(await stored_pings(client, m)) == 1


@pytest.mark.parametrize(
    ("suffix", "kind", "exit_status"),
    [
        ("", "success", None),
        ("/start", "start", None),
        ("/fail", "fail", None),
        ("/log", "log", None),
        ("/0", "success", 0),
        ("/1", "fail", 1),
        ("/255", "fail", 255),
    ],
)
async def test_it_maps_each_url_to_its_kind_and_exit_status(
    client: TestClient, clock: FakeClock, suffix: str, kind: str, exit_status: int | None
) -> None:
    m = await add_monitor(client, clock)
    await ok(client, f"/ping/{m.uuid}{suffix}")
    p = await last_ping(client, m)
    assert (p.kind, p.exit_status) == (kind, exit_status)


async def test_it_rejects_an_exit_status_above_255(client: TestClient, clock: FakeClock) -> None:
    m = await add_monitor(client, clock)
    resp = await client.get(f"/ping/{m.uuid}/256")
    assert (resp.status, await resp.text()) == (400, "invalid url format")
    assert await stored_pings(client, m) == []


@pytest.mark.parametrize("suffix", ["/foo", "/start/extra", "/-1", "/1.5", "//"])
async def test_it_answers_not_found_for_an_unknown_action(
    client: TestClient, clock: FakeClock, suffix: str
) -> None:
    m = await add_monitor(client, clock)
    resp = await client.get(f"/ping/{m.uuid}{suffix}")
    assert (resp.status, await resp.text()) == (404, "not found")
    assert await stored_pings(client, m) == []


async def test_it_answers_not_found_for_an_unknown_uuid(
    client: TestClient, clock: FakeClock
) -> None:
    m = await add_monitor(client, clock)
    resp = await client.get(f"/ping/{uuidlib.uuid4()}")
    assert (resp.status, await resp.text()) == (404, "not found")
    assert await stored_pings(client, m) == []


@pytest.mark.parametrize("rid", ["not-a-uuid", "", "1234"])
async def test_it_rejects_a_rid_that_is_not_a_uuid(
    client: TestClient, clock: FakeClock, rid: str
) -> None:
    m = await add_monitor(client, clock)
    resp = await client.get(f"/ping/{m.uuid}/start", params={"rid": rid})
    assert (resp.status, await resp.text()) == (400, "invalid uuid format")
    assert await stored_pings(client, m) == []
    assert await stored_runs(client, m) == []


async def _reply_for(
    status: int, aiohttp_client: AiohttpClient, make_app: MakeApp, clock: FakeClock
) -> tuple[web.Application, Any]:
    """Provoke a reply with `status`; returns the app and the response."""
    limited = {"ping_rate_limit": 1, "ping_rate_burst": 1} if status == 429 else {}
    app = make_app(ping_body_limit=1234, **limited)
    client = await aiohttp_client(app)
    m = await add_monitor(client, clock, name="db", slug="db")
    org = await default_org(client)
    spec = build_spec(org_id=org.id, name="db again", slug="db")
    await app[appkeys.DB].write(
        lambda conn: insert_monitor(conn, spec, clock.now(), limits=UNLIMITED)
    )
    urls = {
        200: f"/ping/{m.uuid}",
        201: f"/ping/{org.ping_key}/fresh?create=1",
        400: f"/ping/{m.uuid}/256",
        404: f"/ping/{uuidlib.uuid4()}",
        409: f"/ping/{org.ping_key}/db",
    }
    if status == 429:
        await ok(client, urls[200])
        return app, await client.get(urls[200])
    return app, await client.get(urls[status])


@pytest.mark.parametrize("status", [200, 201, 400, 404, 409, 429])
async def test_every_reply_carries_the_cors_cache_and_body_limit_headers(
    aiohttp_client: AiohttpClient, make_app: MakeApp, clock: FakeClock, status: int
) -> None:
    _, resp = await _reply_for(status, aiohttp_client, make_app, clock)
    assert resp.status == status
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    cache = resp.headers["Cache-Control"]
    assert "no-cache" in cache and "no-store" in cache
    assert cache == NO_CACHE
    assert resp.headers["Ping-Body-Limit"] == "1234"


# -- slug URLs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("suffix", "kind", "exit_status"),
    [("", "success", None), ("/start", "start", None), ("/fail", "fail", None), ("/1", "fail", 1)],
)
async def test_it_takes_pings_by_ping_key_and_slug(
    client: TestClient, clock: FakeClock, suffix: str, kind: str, exit_status: int | None
) -> None:
    m = await add_monitor(client, clock, name="DB Backup")
    assert m.slug == "db-backup"
    org = await default_org(client)
    await ok(client, f"/ping/{org.ping_key}/db-backup{suffix}")
    p = await last_ping(client, m)
    assert (p.kind, p.exit_status) == (kind, exit_status)


async def test_it_answers_not_found_for_an_unknown_slug(
    client: TestClient, clock: FakeClock
) -> None:
    m = await add_monitor(client, clock, name="db")
    org = await default_org(client)
    resp = await client.get(f"/ping/{org.ping_key}/other")
    assert (resp.status, await resp.text()) == (404, "not found")
    assert await stored_pings(client, m) == []


async def test_it_answers_not_found_for_a_wrong_ping_key(
    client: TestClient, clock: FakeClock
) -> None:
    m = await add_monitor(client, clock, name="db")
    org = await default_org(client)
    wrong = orgs.new_ping_key()
    assert wrong != org.ping_key
    for url in (f"/ping/{wrong}/db", f"/ping/{wrong}/db?create=1"):
        resp = await client.get(url)
        assert (resp.status, await resp.text()) == (404, "not found")
    assert await stored_pings(client, m) == []
    app = app_of(client)
    count = await app[appkeys.DB].read(lambda conn: len(monitors.list_for_org(conn)))
    assert count == 1


async def test_it_creates_a_monitor_for_an_unknown_slug_when_asked(
    client: TestClient, clock: FakeClock
) -> None:
    org = await default_org(client)
    app = app_of(client)
    resp = await client.get(f"/ping/{org.ping_key}/new-job?create=1")
    assert (resp.status, await resp.text()) == (201, "Created")
    [m] = await app[appkeys.DB].read(lambda conn: monitors.by_slug(conn, org.id, "new-job"))
    assert (m.name, m.slug, m.period, m.grace) == ("new-job", "new-job", 86400, 3600)
    assert m.status == "up"
    assert [p.kind for p in await stored_pings(client, m)] == ["success"]

    resp = await client.get(f"/ping/{org.ping_key}/new-job?create=1")
    assert (resp.status, await resp.text()) == (200, "OK")
    found = await app[appkeys.DB].read(lambda conn: monitors.by_slug(conn, org.id, "new-job"))
    assert len(found) == 1
    assert len(await stored_pings(client, m)) == 2


async def test_it_does_not_create_a_monitor_without_create_1(
    client: TestClient, clock: FakeClock
) -> None:
    org = await default_org(client)
    app = app_of(client)
    for url in (f"/ping/{org.ping_key}/new-job", f"/ping/{org.ping_key}/new-job?create=0"):
        resp = await client.get(url)
        assert (resp.status, await resp.text()) == (404, "not found")
    assert await app[appkeys.DB].read(lambda conn: monitors.list_for_org(conn)) == []


async def test_it_refuses_an_ambiguous_slug(client: TestClient, clock: FakeClock) -> None:
    first = await add_monitor(client, clock, name="db")
    org = await default_org(client)
    spec = build_spec(org_id=org.id, name="db (imported)", slug="db")
    app = app_of(client)
    second = await app[appkeys.DB].write(
        lambda conn: insert_monitor(conn, spec, clock.now(), limits=UNLIMITED)
    )
    for url in (f"/ping/{org.ping_key}/db", f"/ping/{org.ping_key}/db/fail?create=1"):
        resp = await client.get(url)
        assert (resp.status, await resp.text()) == (409, "ambiguous slug")
    assert await stored_pings(client, first) == []
    assert await stored_pings(client, second) == []
    # The uuid URLs still tell the two apart.
    await ok(client, f"/ping/{second.uuid}")
    assert len(await stored_pings(client, second)) == 1


# -- the request body and headers ------------------------------------------------------------


async def test_it_stores_the_body_as_raw_bytes(client: TestClient, clock: FakeClock) -> None:
    m = await add_monitor(client, clock)
    body = "backup done: 3 files, ünïcödé\n".encode()
    await ok(client, f"/ping/{m.uuid}", "POST", data=body)
    p = await last_ping(client, m)
    assert (p.body, p.body_size) == (body, len(body))


async def test_it_preserves_a_binary_body(client: TestClient, clock: FakeClock) -> None:
    m = await add_monitor(client, clock)
    body = bytes(range(256)) + b"\xff\xfe\x00\x80"
    await ok(client, f"/ping/{m.uuid}/fail", "POST", data=body)
    p = await last_ping(client, m)
    assert p.body == body


async def test_it_cuts_a_body_over_the_limit_and_still_answers_ok(
    aiohttp_client: AiohttpClient, make_app: MakeApp, clock: FakeClock
) -> None:
    client = await aiohttp_client(make_app(ping_body_limit=100))
    m = await add_monitor(client, clock)
    body = bytes(i % 251 for i in range(5000))
    resp = await client.post(f"/ping/{m.uuid}", data=body)
    assert (resp.status, await resp.text()) == (200, "OK")
    assert resp.headers["Ping-Body-Limit"] == "100"
    p = await last_ping(client, m)
    assert p.body == body[:100]
    assert p.body_size == 5000
    # The connection is still usable after the unread rest of the upload.
    await ok(client, f"/ping/{m.uuid}", "POST", data=b"x" * 100)
    assert (await last_ping(client, m)).body == b"x" * 100


async def test_it_stores_no_body_for_a_get(client: TestClient, clock: FakeClock) -> None:
    m = await add_monitor(client, clock)
    await ok(client, f"/ping/{m.uuid}")
    p = await last_ping(client, m)
    assert (p.body, p.body_size) == (None, 0)


async def test_it_cuts_the_user_agent_to_200_characters(
    client: TestClient, clock: FakeClock
) -> None:
    m = await add_monitor(client, clock)
    agent = "curl/8.5.0 " + "x" * 300
    await ok(client, f"/ping/{m.uuid}", headers={"User-Agent": agent})
    assert (await last_ping(client, m)).user_agent == agent[:200]
    await ok(client, f"/ping/{m.uuid}", headers={"User-Agent": "runitor/1.2"})
    assert (await last_ping(client, m)).user_agent == "runitor/1.2"


# -- runs ------------------------------------------------------------------------------------


async def test_it_closes_the_run_with_the_same_rid_and_records_its_duration(
    client: TestClient, clock: FakeClock
) -> None:
    m = await add_monitor(client, clock)
    rid = str(uuidlib.uuid4())
    started = clock.now()
    await ok(client, f"/ping/{m.uuid}/start?rid={rid}")
    [run] = await stored_runs(client, m)
    assert (run.status, run.rid, run.started_at) == ("running", rid, started)
    assert (await monitor(client, m)).open_runs == 1

    await clock.advance(125)
    await ok(client, f"/ping/{m.uuid}?rid={rid}")
    [run] = await stored_runs(client, m)
    assert (run.status, run.duration, run.finished_at) == ("success", 125.0, clock.now())
    assert (run.start_ping, run.end_ping) == (1, 2)
    p = await last_ping(client, m)
    assert (p.rid, p.duration) == (rid, 125.0)
    now = await monitor(client, m)
    assert (now.open_runs, now.running_since, now.last_duration) == (0, None, 125.0)


async def test_it_pairs_overlapping_runs_by_their_rid(client: TestClient, clock: FakeClock) -> None:
    m = await add_monitor(client, clock)
    rid_a, rid_b = str(uuidlib.uuid4()), str(uuidlib.uuid4())
    await ok(client, f"/ping/{m.uuid}/start?rid={rid_a}")
    await clock.advance(10)
    await ok(client, f"/ping/{m.uuid}/start?rid={rid_b}")
    assert (await monitor(client, m)).open_runs == 2
    await clock.advance(20)
    await ok(client, f"/ping/{m.uuid}/0?rid={rid_a}")  # A: 30 s
    await clock.advance(5)
    await ok(client, f"/ping/{m.uuid}/fail?rid={rid_b}")  # B: 25 s

    by_rid = {r.rid: r for r in await stored_runs(client, m)}
    assert (by_rid[rid_a].status, by_rid[rid_a].duration, by_rid[rid_a].exit_status) == (
        "success",
        30.0,
        0,
    )
    assert (by_rid[rid_b].status, by_rid[rid_b].duration) == ("fail", 25.0)
    assert [(p.rid, p.duration) for p in (await stored_pings(client, m))[2:]] == [
        (rid_a, 30.0),
        (rid_b, 25.0),
    ]
    assert (await monitor(client, m)).open_runs == 0


async def test_a_finish_without_rid_closes_the_latest_open_run(
    client: TestClient, clock: FakeClock
) -> None:
    m = await add_monitor(client, clock)
    await ok(client, f"/ping/{m.uuid}/start")
    first_start = clock.now()
    await clock.advance(10)
    await ok(client, f"/ping/{m.uuid}/start")
    await clock.advance(5)
    await ok(client, f"/ping/{m.uuid}")

    older, newer = await stored_runs(client, m)
    assert (newer.status, newer.duration) == ("success", 5.0)
    assert older.status == "running"
    now = await monitor(client, m)
    assert (now.open_runs, now.running_since) == (1, first_start)


async def test_a_finish_with_an_unknown_rid_closes_no_run(
    client: TestClient, clock: FakeClock
) -> None:
    m = await add_monitor(client, clock)
    await ok(client, f"/ping/{m.uuid}/start?rid={uuidlib.uuid4()}")
    await clock.advance(10)
    await ok(client, f"/ping/{m.uuid}?rid={uuidlib.uuid4()}")
    [run] = await stored_runs(client, m)
    assert run.status == "running"
    assert (await last_ping(client, m)).duration is None


@pytest.mark.parametrize(("hours", "paired"), [(71, True), (73, False)])
async def test_it_pairs_a_start_and_finish_only_within_72_hours(
    client: TestClient, clock: FakeClock, hours: int, paired: bool
) -> None:
    m = await add_monitor(client, clock, period="30d")
    rid = str(uuidlib.uuid4())
    await ok(client, f"/ping/{m.uuid}/start?rid={rid}")
    await clock.advance(hours * 3600)
    await ok(client, f"/ping/{m.uuid}?rid={rid}")
    [run] = await stored_runs(client, m)
    p = await last_ping(client, m)
    if paired:
        assert (run.status, run.duration) == ("success", hours * 3600.0)
        assert p.duration == hours * 3600.0
    else:
        assert (run.status, run.duration) == ("running", None)
        assert p.duration is None
    assert (await monitor(client, m)).status == "up"


# -- what a ping does to the monitor ---------------------------------------------------------


async def test_a_success_makes_the_monitor_up_and_sets_the_next_deadline(
    client: TestClient, clock: FakeClock
) -> None:
    m = await add_monitor(client, clock, period="1h")
    assert m.status == "new"
    await ok(client, f"/ping/{m.uuid}")
    now = await monitor(client, m)
    assert now.status == "up"
    assert now.last_ping_at == now.last_success_at == clock.now()
    assert now.due_at == clock.now() + dt.timedelta(hours=1)
    assert now.n_pings == 1


async def test_a_failure_makes_the_monitor_down_and_a_success_resolves_it(
    client: TestClient, clock: FakeClock
) -> None:
    m = await add_monitor(client, clock)
    await ok(client, f"/ping/{m.uuid}")
    await clock.advance(60)
    await ok(client, f"/ping/{m.uuid}/3")
    assert (await monitor(client, m)).status == "down"
    [incident] = await open_incidents(client, m)
    assert (incident.kind, incident.state) == ("FAIL", "open")
    assert "exit status 3" in incident.reason

    await clock.advance(60)
    await ok(client, f"/ping/{m.uuid}")
    assert (await monitor(client, m)).status == "up"
    assert await open_incidents(client, m) == []


async def test_a_fail_ping_opens_a_fail_incident(client: TestClient, clock: FakeClock) -> None:
    m = await add_monitor(client, clock)
    await ok(client, f"/ping/{m.uuid}/fail")
    assert (await monitor(client, m)).status == "down"
    [incident] = await open_incidents(client, m)
    assert incident.kind == "FAIL"


async def test_it_tolerates_the_configured_number_of_failures(
    client: TestClient, clock: FakeClock
) -> None:
    m = await add_monitor(client, clock, failure_tolerance=2)
    await ok(client, f"/ping/{m.uuid}")
    for _ in range(2):
        await clock.advance(60)
        await ok(client, f"/ping/{m.uuid}/fail")
        assert (await monitor(client, m)).status == "up"
        assert await open_incidents(client, m) == []
    await clock.advance(60)
    await ok(client, f"/ping/{m.uuid}/fail")
    now = await monitor(client, m)
    assert (now.status, now.consecutive_failures) == ("down", 3)
    [incident] = await open_incidents(client, m)
    assert incident.kind == "FAIL"


async def test_a_success_resets_the_count_of_tolerated_failures(
    client: TestClient, clock: FakeClock
) -> None:
    m = await add_monitor(client, clock, failure_tolerance=1)
    await ok(client, f"/ping/{m.uuid}/fail")
    await ok(client, f"/ping/{m.uuid}")
    await ok(client, f"/ping/{m.uuid}/fail")
    assert (await monitor(client, m)).status == "up"
    await ok(client, f"/ping/{m.uuid}/fail")
    assert (await monitor(client, m)).status == "down"


async def test_a_run_shorter_than_the_min_runtime_counts_as_a_failure(
    client: TestClient, clock: FakeClock
) -> None:
    m = await add_monitor(client, clock, min_runtime="1m")
    await ok(client, f"/ping/{m.uuid}/start")
    await clock.advance(10)
    await ok(client, f"/ping/{m.uuid}")
    assert (await monitor(client, m)).status == "down"
    [incident] = await open_incidents(client, m)
    assert incident.kind == "FAIL"
    assert "finished too fast" in incident.reason
    [run] = await stored_runs(client, m)
    assert run.status == "fail" and "finished too fast" in run.reason


async def test_a_run_longer_than_the_min_runtime_is_a_success(
    client: TestClient, clock: FakeClock
) -> None:
    m = await add_monitor(client, clock, min_runtime="1m")
    await ok(client, f"/ping/{m.uuid}/start")
    await clock.advance(61)
    await ok(client, f"/ping/{m.uuid}")
    assert (await monitor(client, m)).status == "up"
    assert await open_incidents(client, m) == []


async def test_a_post_only_monitor_ignores_other_methods(
    client: TestClient, clock: FakeClock
) -> None:
    m = await add_monitor(client, clock, methods="post")
    for url in (f"/ping/{m.uuid}", f"/ping/{m.uuid}/fail", f"/ping/{m.uuid}/start"):
        await ok(client, url)
    assert [p.kind for p in await stored_pings(client, m)] == ["ignored"] * 3
    assert [p.method for p in await stored_pings(client, m)] == ["GET"] * 3
    now = await monitor(client, m)
    assert (now.status, now.last_ping_at, now.open_runs) == ("new", None, 0)
    assert await stored_runs(client, m) == []

    await ok(client, f"/ping/{m.uuid}", "POST")
    assert (await last_ping(client, m)).kind == "success"
    assert (await monitor(client, m)).status == "up"


async def test_a_paused_monitor_with_manual_resume_ignores_pings(
    client: TestClient, clock: FakeClock
) -> None:
    m = await add_monitor(client, clock)
    app = app_of(client)
    changed = await app[appkeys.DB].write(
        lambda conn: monitors.update(
            conn, m.id, m.status, {"status": "paused", "manual_resume": True}
        )
    )
    assert changed
    await ok(client, f"/ping/{m.uuid}")
    await ok(client, f"/ping/{m.uuid}/fail")
    assert [p.kind for p in await stored_pings(client, m)] == ["ignored", "ignored"]
    now = await monitor(client, m)
    assert (now.status, now.last_ping_at) == ("paused", None)
    assert await open_incidents(client, m) == []


async def test_a_paused_monitor_without_manual_resume_is_resumed_by_a_ping(
    client: TestClient, clock: FakeClock
) -> None:
    m = await add_monitor(client, clock)
    app = app_of(client)
    await app[appkeys.DB].write(
        lambda conn: monitors.update(conn, m.id, m.status, {"status": "paused"})
    )
    await ok(client, f"/ping/{m.uuid}")
    assert (await last_ping(client, m)).kind == "success"
    assert (await monitor(client, m)).status == "up"


@pytest.mark.parametrize("before", ["success", "fail"])
async def test_a_log_ping_never_changes_the_state(
    client: TestClient, clock: FakeClock, before: str
) -> None:
    m = await add_monitor(client, clock)
    await ok(client, f"/ping/{m.uuid}/{before}" if before == "fail" else f"/ping/{m.uuid}")
    was = await monitor(client, m)
    was_incidents = await open_incidents(client, m)
    await clock.advance(60)
    await ok(client, f"/ping/{m.uuid}/log", "POST", data=b"step 2 of 3")
    now = await monitor(client, m)
    assert (now.status, now.last_ping_at, now.due_at, now.consecutive_failures) == (
        was.status,
        was.last_ping_at,
        was.due_at,
        was.consecutive_failures,
    )
    assert now.n_pings == 2
    assert await open_incidents(client, m) == was_incidents
    p = await last_ping(client, m)
    assert (p.kind, p.body) == ("log", b"step 2 of 3")


async def test_a_log_ping_does_not_close_an_open_run(client: TestClient, clock: FakeClock) -> None:
    m = await add_monitor(client, clock)
    await ok(client, f"/ping/{m.uuid}/start")
    await clock.advance(5)
    await ok(client, f"/ping/{m.uuid}/log")
    [run] = await stored_runs(client, m)
    assert run.status == "running"
    assert (await monitor(client, m)).status == "new"


# -- client address --------------------------------------------------------------------------


async def test_it_believes_forwarded_headers_from_a_trusted_proxy(
    aiohttp_client: AiohttpClient, make_app: MakeApp, clock: FakeClock
) -> None:
    client = await aiohttp_client(make_app(trusted_proxies=("127.0.0.1",)))
    m = await add_monitor(client, clock)
    headers = {"X-Forwarded-For": "203.0.113.7, 10.0.0.1", "X-Forwarded-Proto": "https"}
    await ok(client, f"/ping/{m.uuid}", headers=headers)
    p = await last_ping(client, m)
    assert (p.remote_addr, p.scheme) == ("203.0.113.7", "https")


async def test_it_ignores_forwarded_headers_without_a_trusted_proxy(
    client: TestClient, clock: FakeClock
) -> None:
    m = await add_monitor(client, clock)
    headers = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
    await ok(client, f"/ping/{m.uuid}", headers=headers)
    p = await last_ping(client, m)
    assert (p.remote_addr, p.scheme) == ("127.0.0.1", "http")


# -- rate limit ------------------------------------------------------------------------------


async def test_it_rate_limits_a_client_and_does_not_store_the_rejected_ping(
    aiohttp_client: AiohttpClient, make_app: MakeApp, clock: FakeClock
) -> None:
    client = await aiohttp_client(make_app(ping_rate_limit=1, ping_rate_burst=3))
    m = await add_monitor(client, clock)
    for _ in range(3):
        await ok(client, f"/ping/{m.uuid}")
    resp = await client.get(f"/ping/{m.uuid}")
    assert (resp.status, await resp.text()) == (429, "rate limited")
    assert resp.headers["Retry-After"] == "1"
    assert len(await stored_pings(client, m)) == 3
    assert (await monitor(client, m)).n_pings == 3

    await clock.advance(1)
    await ok(client, f"/ping/{m.uuid}")
    assert len(await stored_pings(client, m)) == 4


# -- storage failure -------------------------------------------------------------------------


def _make_pings_unwritable(settings: Settings) -> None:
    # Swap the pings table for a view: reads still work, every insert fails.
    conn = sqlite3.connect(settings.db_path)
    conn.execute("ALTER TABLE pings RENAME TO pings_old")
    conn.execute("CREATE VIEW pings AS SELECT * FROM pings_old")
    conn.commit()
    conn.close()


def _stored_state(settings: Settings, m: Monitor) -> tuple[int, int, str]:
    conn = sqlite3.connect(settings.db_path)
    try:
        (stored,) = conn.execute(
            "SELECT count(*) FROM pings_old WHERE monitor_id = ?", (m.id,)
        ).fetchone()
        n_pings, status = conn.execute(
            "SELECT n_pings, status FROM monitors WHERE id = ?", (m.id,)
        ).fetchone()
    finally:
        conn.close()
    return stored, n_pings, status


async def test_it_never_answers_ok_for_a_ping_it_could_not_store(
    client: TestClient, clock: FakeClock, settings: Settings
) -> None:
    m = await add_monitor(client, clock)
    _make_pings_unwritable(settings)
    resp = await client.get(f"/ping/{m.uuid}")
    assert resp.status >= 500
    assert await resp.text() != "OK"
    assert _stored_state(settings, m) == (0, 0, "new")


async def test_it_answers_503_when_the_ping_cannot_be_stored(
    client: TestClient, clock: FakeClock, settings: Settings
) -> None:
    m = await add_monitor(client, clock)
    _make_pings_unwritable(settings)
    resp = await client.get(f"/ping/{m.uuid}")
    assert (resp.status, await resp.text()) == (503, "storage unavailable, try again")
    assert resp.headers["Retry-After"] == "5"
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    assert _stored_state(settings, m) == (0, 0, "new")
