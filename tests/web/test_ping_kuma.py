"""The Uptime Kuma push front door, replaying the push URLs Kuma hands out (`?status=up&msg=OK
&ping=`), against the real app and a real SQLite file."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.web.compat_helpers import (
    add_monitor,
    by_uuid,
    make_pings_unwritable,
    open_incidents,
    stored_pings,
    with_compat_routes,
)
from tokiflow.clock import FakeClock
from tokiflow.config import Settings
from tokiflow.importers.uptime_kuma import push_token, token_uuid

AiohttpClient = Callable[[web.Application], Awaitable[TestClient]]
MakeApp = Callable[..., web.Application]


@pytest.fixture
async def client(aiohttp_client: AiohttpClient, make_app: MakeApp) -> TestClient:
    return await aiohttp_client(with_compat_routes(make_app()))


@pytest.mark.parametrize("method", ["GET", "POST", "PUT"])
async def test_the_default_push_url_is_a_success(
    client: TestClient, clock: FakeClock, method: str
) -> None:
    m = await add_monitor(client, clock)
    resp = await client.request(method, f"/api/push/{push_token(m.uuid)}?status=up&msg=OK&ping=")
    assert (resp.status, await resp.json()) == (200, {"ok": True})
    [p] = await stored_pings(client, m)
    assert (p.kind, p.protocol, p.method, p.body) == ("success", "kuma", method, b"OK")
    assert (await by_uuid(client, m.uuid)).status == "up"


async def test_a_bare_push_is_up(client: TestClient, clock: FakeClock) -> None:
    m = await add_monitor(client, clock)
    resp = await client.get(f"/api/push/{push_token(m.uuid)}")
    assert await resp.json() == {"ok": True}
    [p] = await stored_pings(client, m)
    assert (p.kind, p.body) == ("success", None)


async def test_status_down_fails_the_monitor_with_the_message(
    client: TestClient, clock: FakeClock
) -> None:
    m = await add_monitor(client, clock)
    resp = await client.get(
        f"/api/push/{push_token(m.uuid)}", params={"status": "down", "msg": "db unreachable"}
    )
    assert await resp.json() == {"ok": True}
    assert (await by_uuid(client, m.uuid)).status == "down"
    [incident] = await open_incidents(client, m)
    assert incident.kind == "FAIL"
    [p] = await stored_pings(client, m)
    assert (p.kind, p.body) == ("fail", b"db unreachable")


async def test_the_ping_figure_is_kept_with_the_message(
    client: TestClient, clock: FakeClock
) -> None:
    m = await add_monitor(client, clock)
    await client.get(f"/api/push/{push_token(m.uuid)}", params={"msg": "OK", "ping": "1234.5"})
    [p] = await stored_pings(client, m)
    assert json.loads(p.body or b"") == {"message": "OK", "ping_ms": 1234.5}


async def test_a_dashed_uuid_works_as_a_token_too(client: TestClient, clock: FakeClock) -> None:
    m = await add_monitor(client, clock)
    resp = await client.get(f"/api/push/{m.uuid}")
    assert await resp.json() == {"ok": True}


async def test_an_imported_kuma_token_reaches_its_monitor(
    client: TestClient, clock: FakeClock
) -> None:
    m = await add_monitor(client, clock, uuid=token_uuid("Xk3pQ9zLmN"))
    resp = await client.get("/api/push/Xk3pQ9zLmN?status=up&msg=OK&ping=12")
    assert await resp.json() == {"ok": True}
    assert len(await stored_pings(client, m)) == 1


async def test_an_unknown_token_gets_kumas_answer(client: TestClient) -> None:
    resp = await client.get("/api/push/nosuchtoken?status=up")
    assert resp.status == 404
    assert await resp.json() == {"ok": False, "msg": "Monitor not found or not active."}


@pytest.mark.parametrize(
    ("ping", "reason"),
    [("abc", "is not a valid number"), ("-1", "cannot be negative"), ("90000000", "exceeds")],
)
async def test_a_bad_ping_value_gets_a_400_and_stores_nothing(
    client: TestClient, clock: FakeClock, ping: str, reason: str
) -> None:
    m = await add_monitor(client, clock)
    resp = await client.get(f"/api/push/{push_token(m.uuid)}", params={"ping": ping})
    body = await resp.json()
    assert (resp.status, body["ok"]) == (400, False)
    assert reason in body["msg"]
    assert await stored_pings(client, m) == []


async def test_it_rate_limits_pushes(
    aiohttp_client: AiohttpClient, make_app: MakeApp, clock: FakeClock
) -> None:
    client = await aiohttp_client(
        with_compat_routes(make_app(ping_rate_limit=1, ping_rate_burst=1))
    )
    m = await add_monitor(client, clock)
    await client.get(f"/api/push/{push_token(m.uuid)}")
    resp = await client.get(f"/api/push/{push_token(m.uuid)}")
    assert (resp.status, (await resp.json())["ok"], resp.headers["Retry-After"]) == (
        429,
        False,
        "1",
    )
    assert len(await stored_pings(client, m)) == 1


async def test_it_answers_503_when_the_push_cannot_be_stored(
    client: TestClient, clock: FakeClock, settings: Settings
) -> None:
    m = await add_monitor(client, clock)
    make_pings_unwritable(settings)
    resp = await client.get(f"/api/push/{push_token(m.uuid)}")
    assert (resp.status, (await resp.json())["ok"], resp.headers["Retry-After"]) == (
        503,
        False,
        "5",
    )
    assert (await by_uuid(client, m.uuid)).n_pings == 0
