"""The Cronitor telemetry front door and monitor API, replaying the requests Cronitor's clients
send (cronitor-python, the Cronitor CLI), against the real app and a real SQLite file."""

from __future__ import annotations

import base64
import json
import uuid as uuidlib
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.web.compat_helpers import (
    add_monitor,
    api_key,
    audit_actions,
    by_slug,
    default_org,
    make_pings_unwritable,
    open_incidents,
    stored_pings,
    stored_runs,
    with_compat_routes,
)
from tokiflow.clock import FakeClock
from tokiflow.config import Settings
from tokiflow.storage.monitors import Monitor
from tokiflow.web.ping_compat import RUN_ID_NAMESPACE

AiohttpClient = Callable[[web.Application], Awaitable[TestClient]]
MakeApp = Callable[..., web.Application]


@pytest.fixture
async def client(aiohttp_client: AiohttpClient, make_app: MakeApp) -> TestClient:
    return await aiohttp_client(with_compat_routes(make_app()))


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


async def created(client: TestClient, slug: str) -> Monitor:
    found = await by_slug(client, slug)
    assert found is not None, f"no monitor {slug}"
    return found


async def ok(client: TestClient, url: str, method: str = "GET", **kwargs: Any) -> None:
    resp = await client.request(method, url, **kwargs)
    text = await resp.text()
    assert (resp.status, text) == (200, "" if method == "HEAD" else "ok"), (url, text)


# -- telemetry: what cronitor-python sends ---------------------------------------------------


async def test_it_pairs_run_and_complete_by_series_and_records_the_run(
    client: TestClient, clock: FakeClock
) -> None:
    key = await api_key(client, clock)
    series = "1767355200.123456"  # cronitor.job() sends its start time as the series
    await ok(
        client,
        f"/p/{key}/nightly-etl",
        params={"state": "run", "series": series, "stamp": "1767355200.2"},
    )
    m = await created(client, "nightly-etl")
    assert m.name == "nightly-etl" and m.open_runs == 1
    await clock.advance(42)
    await ok(
        client,
        f"/p/{key}/nightly-etl",
        params=[
            ("state", "complete"),
            ("series", series),
            ("metric", "duration:42.0"),
            ("message", "3 files"),
            ("stamp", "1767355242.5"),
        ],
    )
    m = await created(client, "nightly-etl")
    assert (m.status, m.open_runs, m.last_duration) == ("up", 0, 42.0)
    [run] = await stored_runs(client, m)
    assert (run.status, run.duration) == ("success", 42.0)
    assert run.rid == str(uuidlib.uuid5(RUN_ID_NAMESPACE, series))
    start, end = await stored_pings(client, m)
    assert (start.kind, end.kind) == ("start", "success")
    assert {start.protocol, end.protocol} == {"cronitor"}
    assert start.rid == end.rid == run.rid
    assert json.loads(end.body or b"") == {
        "message": "3 files",
        "metrics": {"duration": 42},
        "duration": 42.0,
        "stamp": 1767355242.5,
    }


async def test_a_series_that_is_a_uuid_is_the_run_id_itself(
    client: TestClient, clock: FakeClock
) -> None:
    key = await api_key(client, clock)
    rid = "5E0B6D61-1B6E-4C44-9E1E-2D6B7E0B9C11"
    await ok(client, f"/p/{key}/job", params={"state": "run", "series": rid})
    [p] = await stored_pings(client, await created(client, "job"))
    assert p.rid == rid.lower()


async def test_interleaved_runs_are_told_apart_by_series(
    client: TestClient, clock: FakeClock
) -> None:
    key = await api_key(client, clock)
    await ok(client, f"/p/{key}/job", params={"state": "run", "series": "a"})
    await clock.advance(10)
    await ok(client, f"/p/{key}/job", params={"state": "run", "series": "b"})
    await clock.advance(5)
    await ok(client, f"/p/{key}/job", params={"state": "complete", "series": "a"})
    runs = await stored_runs(client, await created(client, "job"))
    assert [(r.status, r.duration) for r in runs] == [("success", 15.0), ("running", None)]


async def test_a_fail_with_a_status_code_opens_an_incident(
    client: TestClient, clock: FakeClock
) -> None:
    key = await api_key(client, clock)
    await ok(client, f"/p/{key}/backup", params={"state": "run", "series": "s1"})
    await clock.advance(3)
    await ok(
        client,
        f"/p/{key}/backup",
        params={"state": "fail", "series": "s1", "status_code": "3", "message": "disk full"},
    )
    m = await created(client, "backup")
    assert m.status == "down"
    [p] = (await stored_pings(client, m))[1:]
    assert (p.kind, p.exit_status) == ("fail", 3)
    assert json.loads(p.body or b"") == {"message": "disk full", "status_code": 3}
    [incident] = await open_incidents(client, m)
    assert incident.kind == "FAIL" and "exit status 3" in incident.reason


@pytest.mark.parametrize("state", ["ok", "tick", None])
async def test_ok_tick_and_no_state_are_heartbeats(
    client: TestClient, clock: FakeClock, state: str | None
) -> None:
    key = await api_key(client, clock)
    params = {"state": state} if state else {}
    await ok(client, f"/p/{key}/heartbeat", params=params)
    m = await created(client, "heartbeat")
    assert m.status == "up"
    assert [p.kind for p in await stored_pings(client, m)] == ["success"]


async def test_a_plain_message_is_the_body(client: TestClient, clock: FakeClock) -> None:
    key = await api_key(client, clock)
    await ok(client, f"/p/{key}/job", params={"state": "complete", "message": "all good"})
    [p] = await stored_pings(client, await created(client, "job"))
    assert p.body == b"all good"


async def test_repeated_metrics_are_all_kept(client: TestClient, clock: FakeClock) -> None:
    key = await api_key(client, clock)
    query = "state=complete&metric=count:100&metric=error_count:5&metric=count%3Aprocessed:7"
    await ok(client, f"/p/{key}/counts?{query}")
    [p] = await stored_pings(client, await created(client, "counts"))
    assert json.loads(p.body or b"")["metrics"] == {
        "count": 100,
        "error_count": 5,
        "count:processed": 7,
    }


@pytest.mark.parametrize("method", ["GET", "POST", "HEAD"])
async def test_it_takes_any_method(client: TestClient, clock: FakeClock, method: str) -> None:
    key = await api_key(client, clock)
    await ok(client, f"/p/{key}/job?state=run", method=method)
    [p] = await stored_pings(client, await created(client, "job"))
    assert (p.kind, p.method) == ("start", method)


async def test_it_reads_parameters_from_a_posted_form(client: TestClient, clock: FakeClock) -> None:
    key = await api_key(client, clock)
    await ok(client, f"/p/{key}/job", method="POST", data={"state": "fail", "message": "boom"})
    [p] = await stored_pings(client, await created(client, "job"))
    assert (p.kind, p.body) == ("fail", b"boom")


# -- keys --------------------------------------------------------------------------------------


async def test_the_organisation_ping_key_works_as_the_key(
    client: TestClient, clock: FakeClock
) -> None:
    org = await default_org(client)
    await ok(client, f"/p/{org.ping_key}/Nightly Report", params={"state": "run"})
    m = await created(client, "nightly-report")
    assert m.name == "nightly-report"
    # The same key always reaches the same monitor.
    await ok(client, f"/p/{org.ping_key}/Nightly Report", params={"state": "complete"})
    assert (await created(client, "nightly-report")).status == "up"


async def test_an_existing_monitor_is_found_by_its_slug(
    client: TestClient, clock: FakeClock
) -> None:
    m = await add_monitor(client, clock, name="Backup", slug="backup")
    key = await api_key(client, clock)
    await ok(client, f"/p/{key}/backup", params={"state": "complete"})
    assert len(await stored_pings(client, m)) == 1


async def test_a_read_only_key_pings_but_creates_nothing(
    client: TestClient, clock: FakeClock
) -> None:
    m = await add_monitor(client, clock, name="Backup", slug="backup")
    key = await api_key(client, clock, read_only=True)
    await ok(client, f"/p/{key}/backup")
    assert len(await stored_pings(client, m)) == 1
    resp = await client.get(f"/p/{key}/other", params={"state": "run"})
    assert (resp.status, await resp.text()) == (404, "not found")
    assert await by_slug(client, "other") is None


async def test_an_unknown_api_key_is_refused(client: TestClient) -> None:
    resp = await client.get("/p/tfk_rw_nonsense/job", params={"state": "run"})
    assert (resp.status, await resp.text()) == (401, "invalid API key")
    resp = await client.get("/p/unknownpingkey/job", params={"state": "run"})
    assert (resp.status, await resp.text()) == (404, "not found")
    assert await by_slug(client, "job") is None


# -- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("state=started", "invalid state 'started'"),
        ("state=complete&metric=count", "invalid metric 'count'"),
        ("state=complete&metric=count:many", "invalid metric"),
        ("state=complete&duration=-1", "invalid duration"),
        ("state=fail&status_code=x", "invalid status_code"),
    ],
)
async def test_bad_parameters_get_a_400_with_the_reason(
    client: TestClient, clock: FakeClock, query: str, reason: str
) -> None:
    key = await api_key(client, clock)
    resp = await client.get(f"/p/{key}/job?{query}")
    assert resp.status == 400
    assert reason in await resp.text()
    assert await by_slug(client, "job") is None


async def test_a_long_message_is_cut_to_the_body_limit(
    aiohttp_client: AiohttpClient, make_app: MakeApp, clock: FakeClock
) -> None:
    client = await aiohttp_client(with_compat_routes(make_app(ping_body_limit=100)))
    key = await api_key(client, clock)
    await ok(client, f"/p/{key}/job", params={"message": "x" * 500})
    [p] = await stored_pings(client, await created(client, "job"))
    assert (p.body, p.body_size) == (b"x" * 100, 500)


async def test_it_rate_limits_like_the_other_front_doors(
    aiohttp_client: AiohttpClient, make_app: MakeApp, clock: FakeClock
) -> None:
    client = await aiohttp_client(
        with_compat_routes(make_app(ping_rate_limit=1, ping_rate_burst=1))
    )
    org = await default_org(client)
    await ok(client, f"/p/{org.ping_key}/job")
    resp = await client.get(f"/p/{org.ping_key}/job")
    assert (resp.status, await resp.text(), resp.headers["Retry-After"]) == (
        429,
        "rate limited",
        "1",
    )


async def test_it_answers_503_when_the_ping_cannot_be_stored(
    client: TestClient, clock: FakeClock, settings: Settings
) -> None:
    m = await add_monitor(client, clock, name="Job", slug="job")
    org = await default_org(client)
    make_pings_unwritable(settings)
    resp = await client.get(f"/p/{org.ping_key}/job", params={"state": "run"})
    assert (resp.status, await resp.text()) == (503, "storage unavailable, try again")
    assert resp.headers["Retry-After"] == "5"
    assert (await created(client, "job")).n_pings == m.n_pings == 0


# -- the Cronitor CLI's URLs (/ping/<key>/<monitor>?state=...) ----------------------------------


async def test_the_cli_exec_urls_under_ping_are_cronitor_telemetry(
    client: TestClient, clock: FakeClock
) -> None:
    key = await api_key(client, clock)
    series = "b7c0d6f2a1"  # the CLI's own random series id
    await ok(
        client,
        f"/ping/{key}/db-backup?state=run&try=1&stamp=1767355200.000"
        f"&host=web-1&series={series}&env=production",
    )
    await clock.advance(30)
    await ok(
        client,
        f"/ping/{key}/db-backup?state=complete&try=1&stamp=1767355230.000"
        f"&msg=done&host=web-1&duration=30.000&series={series}&status_code=0"
        "&env=production",
    )
    m = await created(client, "db-backup")
    [run] = await stored_runs(client, m)
    assert (run.status, run.duration, run.exit_status) == ("success", 30.0, 0)
    end = (await stored_pings(client, m))[-1]
    assert json.loads(end.body or b"") == {
        "message": "done",
        "host": "web-1",
        "env": "production",
        "duration": 30.0,
        "status_code": 0,
        "stamp": 1767355230.0,
    }


async def test_healthchecks_urls_under_ping_are_left_alone(
    client: TestClient, clock: FakeClock
) -> None:
    m = await add_monitor(client, clock, slug="job")
    org = await default_org(client)
    resp = await client.get(f"/ping/{m.uuid}/start", params={"state": "run"})
    assert (resp.status, await resp.text()) == (200, "OK")
    resp = await client.get(f"/ping/{org.ping_key}/job")
    assert (resp.status, await resp.text()) == (200, "OK")
    assert [p.protocol for p in await stored_pings(client, m)] == ["hc", "hc"]


# -- the monitor API (cronitor-python's Monitor.put, pause; the CLI's sync) ----------------


async def test_put_creates_monitors_with_schedule_grace_and_max_runtime(
    client: TestClient, clock: FakeClock
) -> None:
    key = await api_key(client, clock)
    body = {
        "monitors": [
            {
                "key": "send-invoices",
                "type": "job",
                "schedule": "0 0 * * *",
                "timezone": "Europe/London",
                "grace_seconds": 300,
                "assertions": ["metric.duration < 1 min", "metric.count > 0"],
                "tags": ["billing"],
            },
            {"key": "queue-heartbeat", "type": "heartbeat", "schedule": "every 10 minutes"},
        ]
    }
    resp = await client.put("/api/monitors", json=body, headers=basic(key))
    assert resp.status == 200, await resp.text()
    answer = await resp.json()
    assert [m["key"] for m in answer["monitors"]] == ["send-invoices", "queue-heartbeat"]
    invoices = await created(client, "send-invoices")
    assert (invoices.cron, invoices.tz, invoices.grace, invoices.max_runtime, invoices.tags) == (
        "0 0 * * *",
        "Europe/London",
        300,
        60,
        "billing",
    )
    beat = await created(client, "queue-heartbeat")
    assert (beat.schedule_kind, beat.period) == ("period", 600)


async def test_put_again_updates_only_what_changed(client: TestClient, clock: FakeClock) -> None:
    key = await api_key(client, clock)
    first = {"monitors": [{"key": "job", "schedule": "*/5 * * * *", "grace_seconds": 60}]}
    await client.put("/api/monitors", json=first, headers=basic(key))
    before = await created(client, "job")
    await client.put("/api/monitors", json=first, headers=basic(key))
    assert (await created(client, "job")).updated_at == before.updated_at
    second = {"monitors": [{"key": "job", "schedule": "*/10 * * * *"}]}
    resp = await client.put("/api/monitors", json=second, headers=basic(key))
    assert resp.status == 200
    after = await created(client, "job")
    assert (after.id, after.cron, after.grace) == (before.id, "*/10 * * * *", 60)
    assert await audit_actions(client) == ["monitor.create", "monitor.update"]


async def test_the_cli_sends_a_bare_list_and_gets_one_back(
    client: TestClient, clock: FakeClock
) -> None:
    key = await api_key(client, clock)
    body = [{"key": "crontab-line-7", "type": "job", "schedule": "30 2 * * *", "tags": []}]
    resp = await client.put("/api/monitors?auto-discover=1", json=body, headers=basic(key))
    answer = await resp.json()
    assert isinstance(answer, list) and answer[0]["attributes"]["key"] == "crontab-line-7"


async def test_put_refuses_invalid_monitors_and_saves_none(
    client: TestClient, clock: FakeClock
) -> None:
    key = await api_key(client, clock)
    body = {
        "monitors": [
            {"key": "good", "schedule": "0 * * * *"},
            {"key": "bad", "schedule": "61 * * * *"},
            {"key": "site", "type": "check"},
        ]
    }
    resp = await client.put("/api/monitors", json=body, headers=basic(key))
    assert resp.status == 400
    errors = (await resp.json())["detail"]["errors"]
    assert set(errors) == {"bad", "site"} and "not supported" in errors["site"]
    assert await by_slug(client, "good") is None


async def test_a_rollback_put_validates_and_saves_nothing(
    client: TestClient, clock: FakeClock
) -> None:
    key = await api_key(client, clock)
    body = {"monitors": [{"key": "job", "schedule": "0 * * * *"}], "rollback": True}
    resp = await client.put("/api/monitors", json=body, headers=basic(key))
    assert resp.status == 200 and (await resp.json())["monitors"][0]["key"] == "job"
    assert await by_slug(client, "job") is None


async def test_yaml_config_syncs_and_exports(client: TestClient, clock: FakeClock) -> None:
    key = await api_key(client, clock)
    config = (
        "jobs:\n  nightly:\n    schedule: 0 3 * * *\n    assertions:\n"
        "      - metric.duration > 30 seconds\nheartbeats:\n  ping:\n    schedule: every hour\n"
    )
    resp = await client.put("/api/monitors.yaml", data=config, headers=basic(key))
    assert resp.status == 200, await resp.text()
    assert set(yaml.safe_load(await resp.text())["jobs"]) == {"nightly", "ping"}
    assert (await created(client, "nightly")).min_runtime == 30
    exported = yaml.safe_load(
        await (await client.get("/api/monitors.yaml", headers=basic(key))).text()
    )
    assert exported["jobs"]["ping"]["schedule"] == "every 1 hour"


async def test_pause_and_resume_with_zero_hours(client: TestClient, clock: FakeClock) -> None:
    key = await api_key(client, clock)
    await add_monitor(client, clock, slug="job")
    resp = await client.get("/api/monitors/job/pause/5", headers=basic(key))
    assert (resp.status, (await resp.json())["paused"]) == (200, True)
    assert (await created(client, "job")).status == "paused"
    resp = await client.get("/api/monitors/job/pause/0", headers=basic(key))
    assert (resp.status, (await resp.json())["paused"]) == (200, False)
    assert (await created(client, "job")).status == "new"


async def test_list_get_and_delete(client: TestClient, clock: FakeClock) -> None:
    key = await api_key(client, clock)
    await add_monitor(client, clock, slug="a", name="A")
    await add_monitor(client, clock, slug="b", name="B")
    listed = await (await client.get("/api/monitors?pageSize=1", headers=basic(key))).json()
    assert (len(listed["monitors"]), listed["total_monitor_count"]) == (1, 2)
    one = await (await client.get("/api/monitors/b", headers=basic(key))).json()
    assert (one["key"], one["name"]) == ("b", "B")
    resp = await client.delete("/api/monitors/b", headers=basic(key))
    assert resp.status == 204 and await by_slug(client, "b") is None
    resp = await client.get("/api/monitors/b", headers=basic(key))
    assert resp.status == 404


async def test_the_api_needs_a_key_and_writes_need_a_read_write_one(
    client: TestClient, clock: FakeClock
) -> None:
    body = {"monitors": [{"key": "job"}]}
    resp = await client.put("/api/monitors", json=body)
    assert resp.status == 401
    ro = await api_key(client, clock, read_only=True)
    resp = await client.put("/api/monitors", json=body, headers=basic(ro))
    assert (resp.status, (await resp.json())["detail"]) == (403, "this API key is read-only")
    resp = await client.get("/api/monitors", headers=basic(ro))
    assert resp.status == 200


async def test_reported_metrics_are_served_by_the_api_as_series(
    client: TestClient, clock: FakeClock
) -> None:
    key = await api_key(client, clock)
    for count in (100, 120, 90):
        await ok(client, f"/p/{key}/etl?state=complete&metric=count:{count}&metric=error_count:1")
        await clock.advance(60)
    m = await created(client, "etl")
    resp = await client.get(f"/api/v1/monitors/{m.uuid}/metrics", headers={"X-Api-Key": key})
    assert resp.status == 200, await resp.text()
    series = (await resp.json())["metrics"]
    assert [p["value"] for p in series["count"]] == [100, 120, 90]
    assert [p["value"] for p in series["error_count"]] == [1, 1, 1]
    assert series["count"][0]["at"] < series["count"][-1]["at"]


async def test_a_client_reported_duration_is_the_runs_duration(
    client: TestClient, clock: FakeClock
) -> None:
    key = await api_key(client, clock)
    await ok(client, f"/p/{key}/backup?state=run&series=abc")
    await clock.advance(5)
    await ok(client, f"/p/{key}/backup?state=complete&series=abc&duration=42.5")
    m = await created(client, "backup")
    [run] = await stored_runs(client, m)
    assert run.duration == 42.5
