"""The native API: monitors, incidents and auth, through the real app with real SQLite."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from tests.web.api_helpers import make_org, make_user
from tokiflow.clock import FakeClock


async def test_a_key_creates_lists_edits_pauses_and_deletes_monitors(
    client: TestClient, clock: FakeClock
) -> None:
    a = await make_org(client, clock, "acme")
    resp = await client.post("/api/v1/monitors", json={"name": "Nightly backup", "cron": "30 2 * * *",
                                                       "tz": "Europe/London", "grace": "10m",
                                                       "tags": ["db", "prod"]}, headers=a.rw())  # fmt: skip
    assert resp.status == 201, await resp.text()
    m = await resp.json()
    assert (m["slug"], m["status"], m["grace"], m["tags"]) == (
        "nightly-backup",
        "new",
        600,
        ["db", "prod"],
    )
    listed = await (await client.get("/api/v1/monitors?tag=db", headers=a.ro())).json()
    assert [x["uuid"] for x in listed["monitors"]] == [m["uuid"]] and listed["total"] == 1
    assert (await (await client.get("/api/v1/monitors?tag=nope", headers=a.ro())).json())[
        "total"
    ] == 0
    patched = await client.patch(f"/api/v1/monitors/{m['uuid']}", json={"period": "1h", "grace": 60},
                                 headers=a.rw())  # fmt: skip
    body = await patched.json()
    assert patched.status == 200 and (body["schedule"], body["schedule_kind"], body["grace"]) == (
        3600,
        "period",
        60,
    )
    paused = await (await client.post(f"/api/v1/monitors/{m['uuid']}/pause", headers=a.rw())).json()
    assert paused["status"] == "paused"
    resumed = await (
        await client.post(f"/api/v1/monitors/{m['uuid']}/resume", headers=a.rw())
    ).json()
    assert resumed["status"] == "new"
    assert (await client.delete(f"/api/v1/monitors/{m['uuid']}", headers=a.rw())).status == 204
    assert (await client.get(f"/api/v1/monitors/{m['uuid']}", headers=a.rw())).status == 404


async def test_bad_input_gets_a_4xx_with_the_field(client: TestClient, clock: FakeClock) -> None:
    a = await make_org(client, clock, "acme")
    cases = [
        ({"name": "x", "cron": "61 * * * *"}, "schedule"),
        ({"name": "x", "period": "soon"}, "period"),
        ({"name": ""}, "name"),
        ({"nme": "x"}, "name"),
        ({"name": "x", "grace": True}, "grace"),
        ({"name": "x", "methods": "GET"}, "methods"),
    ]
    for body, field in cases:
        resp = await client.post("/api/v1/monitors", json=body, headers=a.rw())
        data = await resp.json()
        assert resp.status == 400, body
        assert set(data) == {"error", "detail"} and field in data["error"], data
    resp = await client.post("/api/v1/monitors", data=b"{not json", headers=a.rw())
    assert (
        resp.status == 400 and (await resp.json())["error"] == "the request body is not valid JSON"
    )
    resp = await client.get("/api/v1/monitors?limit=0", headers=a.rw())
    assert resp.status == 400 and "query.limit" in (await resp.json())["error"]


async def test_keys_see_only_their_organisation_and_read_only_keys_cannot_write(
    client: TestClient, clock: FakeClock
) -> None:
    a = await make_org(client, clock, "acme")
    b = await make_org(client, clock, "other")
    m = await (
        await client.post("/api/v1/monitors", json={"name": "secret job"}, headers=a.rw())
    ).json()
    assert (await client.get(f"/api/v1/monitors/{m['uuid']}", headers=b.rw())).status == 404
    assert (await client.delete(f"/api/v1/monitors/{m['uuid']}", headers=b.rw())).status == 404
    assert (await (await client.get("/api/v1/monitors", headers=b.rw())).json())["total"] == 0
    resp = await client.post("/api/v1/monitors", json={"name": "x"}, headers=a.ro())
    assert resp.status == 403 and "may not" in (await resp.json())["error"]
    assert (
        await client.get("/api/v1/monitors", headers={"X-Api-Key": "tfk_rw_nope"})
    ).status == 401
    assert (await client.get("/api/v1/monitors")).status == 401


async def test_incidents_are_listed_acknowledged_commented_and_resolved(
    client: TestClient, clock: FakeClock
) -> None:
    a = await make_org(client, clock, "acme")
    m = await (await client.post("/api/v1/monitors", json={"name": "job"}, headers=a.rw())).json()
    await client.get(f"/ping/{m['uuid']}/fail")
    [inc] = (await (await client.get("/api/v1/incidents?state=open", headers=a.ro())).json())[
        "incidents"
    ]
    assert (inc["kind"], inc["monitor_uuid"]) == ("FAIL", m["uuid"])
    acked = await (await client.post(f"/api/v1/incidents/{inc['id']}/ack", headers=a.rw())).json()
    assert acked["state"] == "acknowledged"
    again = await client.post(f"/api/v1/incidents/{inc['id']}/ack", headers=a.rw())
    assert again.status == 409
    commented = await client.post(
        f"/api/v1/incidents/{inc['id']}/comments", json={"body": "on it"}, headers=a.rw()
    )
    assert commented.status == 201 and (await commented.json())["comments"][0]["body"] == "on it"
    resolved = await (
        await client.post(f"/api/v1/incidents/{inc['id']}/resolve", headers=a.rw())
    ).json()
    assert resolved["state"] == "resolved"
    b = await make_org(client, clock, "other")
    assert (await client.get(f"/api/v1/incidents/{inc['id']}", headers=b.rw())).status == 404


async def test_first_run_setup_happens_once_then_sign_in_uses_a_session_and_csrf(
    client: TestClient, clock: FakeClock
) -> None:
    creds = {"email": "owner@example.com", "password": "a long password"}
    resp = await client.post("/api/v1/auth/setup", json={**creds, "org_name": "Acme"})
    assert resp.status == 200, await resp.text()
    me = await resp.json()
    assert me["orgs"] == [{"slug": "default", "name": "Acme", "role": "owner"}]
    cookie = resp.cookies["tokiflow_session"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    again = await client.post("/api/v1/auth/setup", json={**creds, "email": "x@example.com"})
    assert again.status == 409
    # The session works for reads; changes need the CSRF token.
    assert (await client.get("/api/v1/monitors")).status == 200
    no_csrf = await client.post("/api/v1/monitors", json={"name": "x"})
    assert no_csrf.status == 403 and "X-CSRF-Token" in (await no_csrf.json())["error"]
    ok = await client.post(
        "/api/v1/monitors", json={"name": "x"}, headers={"X-CSRF-Token": me["csrf_token"]}
    )
    assert ok.status == 201
    out = await client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": me["csrf_token"]})
    assert out.status == 204
    assert (await client.get("/api/v1/monitors")).status == 401
    bad = await client.post("/api/v1/auth/login", json={**creds, "password": "wrong password!"})
    assert bad.status == 401 and (await bad.json())["error"] == "wrong email or password"
    good = await client.post("/api/v1/auth/login", json=creds)
    assert good.status == 200


async def test_sign_in_is_rate_limited_per_address(client: TestClient, clock: FakeClock) -> None:
    statuses = []
    for _ in range(12):
        resp = await client.post(
            "/api/v1/auth/login", json={"email": "n@example.com", "password": "whatever!!"}
        )
        statuses.append(resp.status)
    assert statuses[:10] == [401] * 10 and statuses[10:] == [429, 429]
    await clock.advance(60)
    resp = await client.post(
        "/api/v1/auth/login", json={"email": "n@example.com", "password": "whatever!!"}
    )
    assert resp.status == 401


async def test_an_account_locks_after_repeated_failures(
    make_app, aiohttp_client, clock: FakeClock
) -> None:  # type: ignore[no-untyped-def]
    client = await aiohttp_client(make_app())
    a = await make_org(client, clock, "acme")
    await make_user(client, clock, "v@example.com", a.org_id, "viewer")
    for i in range(10):
        await clock.advance(10)  # stay under the per-address limit
        resp = await client.post(
            "/api/v1/auth/login", json={"email": "v@example.com", "password": f"wrong {i} xxxxx"}
        )
        assert resp.status == 401
    locked = await client.post(
        "/api/v1/auth/login", json={"email": "v@example.com", "password": "a long password"}
    )
    assert locked.status == 401 and "too many failed" in (await locked.json())["error"]
    await clock.advance(16 * 60)
    ok = await client.post(
        "/api/v1/auth/login", json={"email": "v@example.com", "password": "a long password"}
    )
    assert ok.status == 200


async def test_a_viewer_session_reads_but_cannot_change(
    client: TestClient, clock: FakeClock
) -> None:
    a = await make_org(client, clock, "acme")
    await make_user(client, clock, "v@example.com", a.org_id, "viewer")
    me = await (
        await client.post(
            "/api/v1/auth/login", json={"email": "v@example.com", "password": "a long password"}
        )
    ).json()
    assert (await client.get("/api/v1/monitors")).status == 200
    resp = await client.post(
        "/api/v1/monitors", json={"name": "x"}, headers={"X-CSRF-Token": me["csrf_token"]}
    )
    assert resp.status == 403 and "your role" in (await resp.json())["error"]


async def test_the_openapi_document_lists_every_route(client: TestClient) -> None:
    doc = await (await client.get("/api/v1/openapi.json")).json()
    assert doc["openapi"] == "3.1.0"
    routes = {(r.method, r.resource.canonical) for r in client.app.router.routes()
              if r.resource is not None and r.resource.canonical.startswith("/api/v1/")
              and r.method != "HEAD"}  # fmt: skip
    documented = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    missing = {
        r for r in routes if r not in documented and not r[1].endswith(("openapi.json", "/docs"))
    }
    assert missing == set()
    assert len(documented) >= 20
    page = await client.get("/api/v1/docs")
    assert page.status == 200 and "/api/v1/monitors" in await page.text()
