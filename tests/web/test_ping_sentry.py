"""The Sentry Crons front door, replaying the envelopes sentry-sdk and sentry-cli send (plain,
gzip and brotli) and the HTTP check-in form, against the real app and a real SQLite file."""

from __future__ import annotations

import gzip
import json
import uuid as uuidlib
from collections.abc import Awaitable, Callable
from typing import Any

import brotli
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.web.compat_helpers import (
    add_monitor,
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
from tokiflow.storage.orgs import Org
from tokiflow.web.ping_sentry import BadCheckIn, dsn, parse_envelope

AiohttpClient = Callable[[web.Application], Awaitable[TestClient]]
MakeApp = Callable[..., web.Application]
EVENT_ID = "9ec79c33ec9942ab8353589fcb2e04dc"


@pytest.fixture
async def client(aiohttp_client: AiohttpClient, make_app: MakeApp) -> TestClient:
    return await aiohttp_client(with_compat_routes(make_app()))


def envelope(*check_ins: dict[str, Any], with_length: bool = True, extra: bytes = b"") -> bytes:
    """Envelope bytes as sentry-sdk serialises them (header, then item header and payload)."""
    out = [json.dumps({"event_id": EVENT_ID, "sent_at": "2026-03-02T12:00:00.000000Z"}).encode()]
    for check_in in check_ins:
        payload = json.dumps({"type": "check_in", **check_in}).encode()
        header: dict[str, Any] = {"type": "check_in", "content_type": "application/json"}
        if with_length:
            header["length"] = len(payload)
        out += [json.dumps(header).encode(), payload]
    return b"\n".join(out) + b"\n" + extra


def auth(org: Org) -> dict[str, str]:
    return {
        "X-Sentry-Auth": f"Sentry sentry_key={org.ping_key}, sentry_version=7, "
        "sentry_client=sentry.python/2.75.0",
        "Content-Type": "application/x-sentry-envelope",
    }


async def send(client: TestClient, body: bytes, **headers: str) -> dict[str, Any]:
    org = await default_org(client)
    resp = await client.post(
        f"/api/{org.id}/envelope/", data=body, headers={**auth(org), **headers}
    )
    assert resp.status == 200, await resp.text()
    answer: dict[str, Any] = await resp.json()
    return answer


async def created(client: TestClient, slug: str) -> Monitor:
    found = await by_slug(client, slug)
    assert found is not None, f"no monitor {slug}"
    return found


CONFIG = {
    "schedule": {"type": "crontab", "value": "0 3 * * *"},
    "timezone": "Europe/Berlin",
    "checkin_margin": 5,
    "max_runtime": 20,
    "failure_issue_threshold": 2,
    "recovery_threshold": 1,
}


# -- envelopes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", [None, "gzip", "br"])
async def test_an_envelope_runs_a_job_and_upserts_its_monitor(
    client: TestClient, clock: FakeClock, encoding: str | None
) -> None:
    check_in_id = uuidlib.uuid4().hex
    start = envelope(
        {
            "monitor_slug": "nightly-report",
            "check_in_id": check_in_id,
            "status": "in_progress",
            "duration": None,
            "environment": "production",
            "release": None,
            "monitor_config": CONFIG,
        }
    )
    compress = {None: lambda b: b, "gzip": gzip.compress, "br": brotli.compress}[encoding]
    headers = {"Content-Encoding": encoding} if encoding else {}
    assert await send(client, compress(start), **headers) == {"id": EVENT_ID}
    m = await created(client, "nightly-report")
    assert (m.cron, m.tz, m.grace, m.max_runtime, m.failure_tolerance) == (
        "0 3 * * *",
        "Europe/Berlin",
        300,
        1200,
        1,
    )
    assert m.open_runs == 1
    await clock.advance(12.5)
    end = envelope(
        {
            "monitor_slug": "nightly-report",
            "check_in_id": check_in_id,
            "status": "ok",
            "duration": 12.5,
            "environment": "production",
            "monitor_config": CONFIG,
        }
    )
    await send(client, compress(end), **headers)
    m = await created(client, "nightly-report")
    assert (m.status, m.open_runs) == ("up", 0)
    [run] = await stored_runs(client, m)
    assert (run.status, run.duration, run.rid) == ("success", 12.5, str(uuidlib.UUID(check_in_id)))
    pings = await stored_pings(client, m)
    assert [(p.kind, p.protocol) for p in pings] == [("start", "sentry"), ("success", "sentry")]
    assert json.loads(pings[1].body or b"") == {"environment": "production", "duration": 12.5}


async def test_a_config_sent_again_unchanged_changes_nothing(
    client: TestClient, clock: FakeClock
) -> None:
    item = {"monitor_slug": "job", "status": "ok", "monitor_config": CONFIG}
    await send(client, envelope(item))
    before = await created(client, "job")
    await clock.advance(60)
    await send(client, envelope(item))
    after = await created(client, "job")
    assert (after.id, after.cron, after.grace) == (before.id, before.cron, before.grace)
    new_config = {**CONFIG, "schedule": {"type": "interval", "value": 2, "unit": "hour"}}
    await send(client, envelope({**item, "monitor_config": new_config}))
    changed = await created(client, "job")
    assert (changed.id, changed.schedule_kind, changed.period) == (before.id, "period", 7200)
    assert await audit_actions(client) == ["monitor.create", "monitor.update"]


async def test_a_config_without_margin_or_max_runtime_gets_sentrys_defaults(
    client: TestClient,
) -> None:
    config = {"schedule": {"type": "interval", "value": 10, "unit": "minute"}}
    await send(
        client, envelope({"monitor_slug": "every-ten", "status": "ok", "monitor_config": config})
    )
    m = await created(client, "every-ten")
    assert (m.period, m.grace, m.max_runtime, m.name) == (600, 60, 1800, "every-ten")


async def test_an_error_check_in_fails_the_monitor(client: TestClient, clock: FakeClock) -> None:
    m = await add_monitor(client, clock, slug="import-job")
    await send(client, envelope({"monitor_slug": "import-job", "status": "error"}))
    m = await created(client, "import-job")
    assert m.status == "down"
    [incident] = await open_incidents(client, m)
    assert incident.kind == "FAIL"


async def test_an_unknown_monitor_without_config_is_dropped_but_answered(
    client: TestClient,
) -> None:
    assert await send(client, envelope({"monitor_slug": "nobody", "status": "ok"})) == {
        "id": EVENT_ID
    }
    assert await by_slug(client, "nobody") is None


async def test_items_without_length_and_other_item_types_are_handled(
    client: TestClient, clock: FakeClock
) -> None:
    m = await add_monitor(client, clock, slug="job")
    report = b'{"type":"client_report"}\n{"timestamp":1,"discarded_events":[]}\n'
    body = envelope(
        {"monitor_slug": "job", "status": "in_progress"}, with_length=False, extra=report
    )
    await send(client, body)
    assert [p.kind for p in await stored_pings(client, m)] == ["start"]


async def test_a_rust_style_envelope_with_an_empty_header_is_taken(
    client: TestClient, clock: FakeClock
) -> None:
    # sentry-cli (Rust) writes `{}` as the envelope header and a check-in id with dashes.
    m = await add_monitor(client, clock, slug="cli-job")
    payload = json.dumps(
        {
            "check_in_id": str(uuidlib.uuid4()),
            "monitor_slug": "cli-job",
            "status": "ok",
            "duration": 1.5,
        }
    ).encode()
    body = b"{}\n" + json.dumps({"type": "check_in", "length": len(payload)}).encode()
    assert await send(client, body + b"\n" + payload) == {}
    assert [p.kind for p in await stored_pings(client, m)] == ["success"]


@pytest.mark.parametrize("where", ["query", "dsn"])
async def test_the_key_may_come_from_the_query_or_the_envelope_dsn(
    client: TestClient, clock: FakeClock, where: str
) -> None:
    m = await add_monitor(client, clock, slug="job")
    org = await default_org(client)
    body = envelope({"monitor_slug": "job", "status": "ok"})
    url = f"/api/{org.id}/envelope/"
    if where == "query":
        url += f"?sentry_key={org.ping_key}&sentry_version=7"
    else:
        header = json.dumps({"dsn": dsn("http://tokiflow.test", org)}).encode()
        body = header + body[body.index(b"\n") :]
    resp = await client.post(url, data=body)
    assert resp.status == 200, await resp.text()
    assert len(await stored_pings(client, m)) == 1


async def test_a_wrong_key_or_project_is_refused(client: TestClient, clock: FakeClock) -> None:
    m = await add_monitor(client, clock, slug="job")
    org = await default_org(client)
    body = envelope({"monitor_slug": "job", "status": "ok"})
    resp = await client.post(f"/api/{org.id}/envelope/", data=body)
    assert resp.status == 401
    resp = await client.post(f"/api/{org.id + 1}/envelope/", data=body, headers=auth(org))
    assert resp.status == 403
    bad = {"X-Sentry-Auth": "Sentry sentry_key=wrong, sentry_version=7"}
    resp = await client.post(f"/api/{org.id}/envelope/", data=body, headers=bad)
    assert resp.status == 403
    assert await stored_pings(client, m) == []


@pytest.mark.parametrize(
    "body",
    [b"not json\n", b'{}\n{"type":"check_in","length":500}\n{}', b"[1]\n"],
)
async def test_a_broken_envelope_gets_a_400(client: TestClient, body: bytes) -> None:
    org = await default_org(client)
    resp = await client.post(f"/api/{org.id}/envelope/", data=body, headers=auth(org))
    assert resp.status == 400
    assert "invalid envelope" in (await resp.json())["detail"]


async def test_a_body_that_is_not_really_gzip_gets_a_400(client: TestClient) -> None:
    org = await default_org(client)
    headers = {**auth(org), "Content-Encoding": "gzip"}
    resp = await client.post(f"/api/{org.id}/envelope/", data=b"plain", headers=headers)
    assert resp.status == 400


def test_parse_envelope_reads_lengths_and_lines() -> None:
    data = b'{"a":1}\n{"type":"x","length":3}\n{\n}\n{"type":"y"}\nline\n'
    headers, items = parse_envelope(data)
    assert headers == {"a": 1}
    assert items == [({"type": "x", "length": 3}, b"{\n}"), ({"type": "y"}, b"line")]
    with pytest.raises(BadCheckIn):
        parse_envelope(b"{}\n" + b'{"type":"x"}\nz\n' * 101)


async def test_it_answers_503_when_the_check_in_cannot_be_stored(
    client: TestClient, clock: FakeClock, settings: Settings
) -> None:
    await add_monitor(client, clock, slug="job")
    org = await default_org(client)
    make_pings_unwritable(settings)
    body = envelope({"monitor_slug": "job", "status": "ok"})
    resp = await client.post(f"/api/{org.id}/envelope/", data=body, headers=auth(org))
    assert (resp.status, resp.headers["Retry-After"]) == (503, "5")


# -- the HTTP check-in form (curl, sentry-cli's documented URL) --------------------------------


async def test_the_http_form_runs_a_job(client: TestClient, clock: FakeClock) -> None:
    m = await add_monitor(client, clock, slug="backup")
    org = await default_org(client)
    url = f"/api/{org.id}/cron/backup/{org.ping_key}/"
    check_in_id = str(uuidlib.uuid4())
    resp = await client.get(url, params={"status": "in_progress", "check_in_id": check_in_id})
    assert (resp.status, await resp.read()) == (202, b"")
    await clock.advance(8)
    resp = await client.post(url + f"?status=ok&check_in_id={check_in_id}&duration=8")
    assert resp.status == 202
    [run] = await stored_runs(client, m)
    assert (run.status, run.duration) == ("success", 8.0)


async def test_the_http_form_without_check_in_id_closes_the_latest_run(
    client: TestClient, clock: FakeClock
) -> None:
    m = await add_monitor(client, clock, slug="backup")
    org = await default_org(client)
    url = f"/api/{org.id}/cron/backup/{org.ping_key}"
    await client.get(url, params={"status": "in_progress"})
    await clock.advance(4)
    await client.get(url, params={"status": "error"})
    [run] = await stored_runs(client, m)
    assert (run.status, run.duration) == ("fail", 4.0)


async def test_the_http_form_takes_a_json_body_with_a_config(
    client: TestClient, clock: FakeClock
) -> None:
    org = await default_org(client)
    body = {"status": "ok", "monitor_config": {"schedule": {"type": "crontab", "value": "@hourly"}}}
    resp = await client.post(f"/api/{org.id}/cron/hourly-sync/{org.ping_key}/", json=body)
    assert resp.status == 202, await resp.text()
    m = await created(client, "hourly-sync")
    assert (m.cron, m.status) == ("0 * * * *", "up")


async def test_the_http_form_takes_the_key_from_the_auth_header(
    client: TestClient, clock: FakeClock
) -> None:
    m = await add_monitor(client, clock, slug="job")
    org = await default_org(client)
    resp = await client.get(f"/api/{org.id}/cron/job/?status=ok", headers=auth(org))
    assert resp.status == 202
    assert len(await stored_pings(client, m)) == 1


@pytest.mark.parametrize(
    ("query", "status", "detail"),
    [
        ("status=ok", 404, "no monitor 'ghost'"),
        ("status=missed", 400, "status must be"),
        ("", 400, "status must be"),
        ("status=ok&duration=soon", 400, "duration"),
    ],
)
async def test_the_http_form_explains_what_is_wrong(
    client: TestClient, query: str, status: int, detail: str
) -> None:
    org = await default_org(client)
    resp = await client.get(f"/api/{org.id}/cron/ghost/{org.ping_key}/?{query}")
    assert resp.status == status
    assert detail in (await resp.json())["detail"]


async def test_an_invalid_config_is_refused_with_the_reason(client: TestClient) -> None:
    org = await default_org(client)
    body = {"status": "ok", "monitor_config": {"schedule": {"type": "crontab", "value": "bad"}}}
    resp = await client.post(f"/api/{org.id}/cron/job/{org.ping_key}/", json=body)
    assert resp.status == 400
    assert "schedule" in (await resp.json())["detail"]
    assert await by_slug(client, "job") is None


def test_the_dsn_names_the_ping_key_the_host_and_the_organisation() -> None:
    org = Org(7, "acme", "Acme", "k" * 22, None)  # type: ignore[arg-type]
    assert dsn("https://cron.example.com/tf", org) == f"https://{'k' * 22}@cron.example.com/tf/7"
    assert dsn("http://localhost:8000", org) == f"http://{'k' * 22}@localhost:8000/7"
