"""Device-code sign-in of the command line: the API routes (start, poll, approve) and the `/device`
page, through the real app and SQLite, with time moved only by the fake clock."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from yarl import URL

from tests.conftest import MakeApp
from tests.web.api_helpers import OrgAccess, make_org, make_user
from tokiflow.clock import FakeClock
from tokiflow.engine import audit
from tokiflow.storage import accounts, device_codes
from tokiflow.web import appkeys

PASSWORD = "a long password"
CODE_RE = re.compile(r"^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$")
TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
async def dc(
    aiohttp_client: Callable[[web.Application], Awaitable[TestClient]], make_app: MakeApp
) -> TestClient:
    return await aiohttp_client(make_app(base_url="http://tokiflow.example.com"))


async def start(client: TestClient) -> dict[str, Any]:
    resp = await client.post("/api/v1/auth/device", json={"client_name": "laptop"})
    assert resp.status == 200, await resp.text()
    return dict(await resp.json())


async def poll(client: TestClient, device_code: str, **extra: Any) -> tuple[int, dict[str, Any]]:
    body = {"device_code": device_code, "client_name": "laptop", **extra}
    resp = await client.post("/api/v1/auth/device/token", json=body)
    return resp.status, dict(await resp.json())


async def api_sign_in(client: TestClient, email: str) -> str:
    """Sign in over the API (session cookie); returns the CSRF token for changes."""
    resp = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert resp.status == 200, await resp.text()
    return str((await resp.json())["csrf_token"])


async def approve(
    client: TestClient, csrf: str, user_code: str, *, ok: bool = True, org: str | None = None
) -> tuple[int, dict[str, Any]]:
    headers = {"X-CSRF-Token": csrf, **({"X-Tokiflow-Org": org} if org else {})}
    resp = await client.post("/api/v1/auth/device/approve", headers=headers,
                             json={"user_code": user_code, "approve": ok})  # fmt: skip
    return resp.status, dict(await resp.json())


async def owner(client: TestClient, clock: FakeClock, slug: str = "acme") -> OrgAccess:
    org = await make_org(client, clock, slug)
    await make_user(client, clock, f"ops@{slug}.example", org.org_id, "owner")
    return org


async def test_starting_gives_a_short_code_and_the_device_page_and_stores_only_digests(
    dc: TestClient,
) -> None:
    got = await start(dc)
    assert CODE_RE.match(got["user_code"])
    assert got["verification_uri"] == "http://tokiflow.example.com/device"
    assert got["verification_uri_complete"] == (
        f"http://tokiflow.example.com/device?code={got['user_code']}"
    )
    assert (got["interval"], got["expires_in"]) == (5, 900)
    assert len(got["device_code"]) >= 40
    rows = await dc.app[appkeys.DB].read(
        lambda c: c.execute("SELECT * FROM device_codes").fetchall()
    )
    assert len(rows) == 1
    stored = " ".join(str(v) for v in rows[0])
    letters = got["user_code"].replace("-", "")
    assert got["device_code"] not in stored and letters not in stored
    assert got["user_code"] not in stored


async def test_the_routes_are_in_the_openapi_document(dc: TestClient) -> None:
    doc = await (await dc.get("/api/v1/openapi.json")).json()
    for path in ("/api/v1/auth/device", "/api/v1/auth/device/token", "/api/v1/auth/device/approve"):
        assert "post" in doc["paths"][path], path
    assert doc["paths"]["/api/v1/auth/device/approve"]["post"]["x-tokiflow-scope"] == "admin"
    assert doc["paths"]["/api/v1/auth/device"]["post"]["security"] == []


async def test_an_approved_code_yields_one_read_write_key_of_the_chosen_org_once(
    dc: TestClient, clock: FakeClock
) -> None:
    org = await owner(dc, clock)
    got = await start(dc)
    status, body = await poll(dc, got["device_code"])
    assert (status, body["detail"]["code"]) == (400, "authorization_pending")
    csrf = await api_sign_in(dc, "ops@acme.example")
    # The code is accepted however it is typed.
    typed = got["user_code"].lower().replace("-", " ")
    assert await approve(dc, csrf, typed) == (200, {"status": "approved", "org": "acme"})
    await clock.advance(5)
    dc.session.cookie_jar.clear()  # the command line has no session
    status, issued = await poll(dc, got["device_code"])
    assert status == 200, issued
    assert issued["api_key"].startswith("tfk_rw_")
    assert issued["org"] == {"slug": "acme", "name": "Acme"}
    assert issued["key_name"] == "CLI login on laptop"
    resp = await dc.get("/api/v1/org", headers={"X-Api-Key": issued["api_key"]})
    assert resp.status == 200 and (await resp.json())["slug"] == "acme"
    resp = await dc.post("/api/v1/monitors", headers={"X-Api-Key": issued["api_key"]},
                         json={"name": "made by the CLI", "period": "1h"})  # fmt: skip
    assert resp.status == 201
    # Once only: the next poll gets nothing.
    await clock.advance(5)
    status, again = await poll(dc, got["device_code"])
    assert (status, again["detail"]["code"]) == (400, "expired_token")
    assert "already used" in again["error"]
    # Made through the key function and audited as the approving user.
    keys = await dc.app[appkeys.DB].read(lambda c: accounts.keys_of(c, org.org_id))
    made = [k for k in keys if k.name == "CLI login on laptop"]
    assert len(made) == 1 and not made[0].read_only
    assert made[0].created_by == "ops@acme.example (tokiflow login)"
    entries = await dc.app[appkeys.DB].read(lambda c: audit.entries(c, org.org_id))
    actions = [(e.action, e.actor_kind, e.actor_label) for e in entries]
    assert ("apikey.create", "user", "ops@acme.example") in actions
    assert ("device.approve", "user", "ops@acme.example") in actions


async def test_polling_faster_than_the_interval_is_told_to_slow_down(
    dc: TestClient, clock: FakeClock
) -> None:
    got = await start(dc)
    assert (await poll(dc, got["device_code"]))[1]["detail"]["code"] == "authorization_pending"
    status, body = await poll(dc, got["device_code"])
    assert status == 429
    assert body["detail"] == {"code": "slow_down", "interval": 10}
    await clock.advance(5)
    status, body = await poll(dc, got["device_code"])
    assert (status, body["detail"]["code"], body["detail"]["interval"]) == (
        429, "slow_down", 15,
    )  # fmt: skip
    await clock.advance(15)
    status, body = await poll(dc, got["device_code"])
    assert (status, body["detail"]["code"]) == (400, "authorization_pending")


async def test_a_code_expires_after_fifteen_minutes(dc: TestClient, clock: FakeClock) -> None:
    await owner(dc, clock)
    got = await start(dc)
    await clock.advance(15 * 60)
    status, body = await poll(dc, got["device_code"])
    assert (status, body["detail"]["code"]) == (400, "expired_token")
    assert "expired" in body["error"]
    csrf = await api_sign_in(dc, "ops@acme.example")
    status, body = await approve(dc, csrf, got["user_code"])
    assert status == 400 and "expired" in body["error"]
    assert body["detail"]["field"] == "user_code"


async def test_a_denied_code_ends_the_sign_in_without_a_key(
    dc: TestClient, clock: FakeClock
) -> None:
    org = await owner(dc, clock)
    before = await dc.app[appkeys.DB].read(lambda c: len(accounts.keys_of(c, org.org_id)))
    got = await start(dc)
    csrf = await api_sign_in(dc, "ops@acme.example")
    assert await approve(dc, csrf, got["user_code"], ok=False) == (
        200, {"status": "denied", "org": "acme"},
    )  # fmt: skip
    status, body = await poll(dc, got["device_code"])
    assert (status, body["detail"]["code"]) == (400, "access_denied")
    # Decided once: it cannot be approved afterwards.
    status, body = await approve(dc, csrf, got["user_code"])
    assert status == 400 and "already used" in body["error"]
    after = await dc.app[appkeys.DB].read(lambda c: len(accounts.keys_of(c, org.org_id)))
    assert after == before


async def test_a_held_poll_answers_as_soon_as_the_code_is_approved(
    dc: TestClient, clock: FakeClock
) -> None:
    await owner(dc, clock)
    got = await start(dc)
    csrf = await api_sign_in(dc, "ops@acme.example")
    waiting = asyncio.create_task(poll(dc, got["device_code"], wait=20))
    await clock.settle()
    assert not waiting.done()
    assert (await approve(dc, csrf, got["user_code"]))[0] == 200
    status, issued = await asyncio.wait_for(waiting, 10)
    assert status == 200 and issued["api_key"].startswith("tfk_rw_")


async def test_a_held_poll_answers_pending_after_its_wait(dc: TestClient, clock: FakeClock) -> None:
    got = await start(dc)
    waiting = asyncio.create_task(poll(dc, got["device_code"], wait=20))
    await clock.settle()
    await clock.advance(19)
    assert not waiting.done()
    await clock.advance(1)
    status, body = await asyncio.wait_for(waiting, 10)
    assert (status, body["detail"]["code"], body["detail"]["waited"]) == (
        400, "authorization_pending", True,
    )  # fmt: skip
    # Held for its interval: polling again at once is not too fast.
    assert (await poll(dc, got["device_code"]))[1]["detail"]["code"] == "authorization_pending"


async def test_unknown_and_malformed_codes_are_refused_with_reasons(
    dc: TestClient, clock: FakeClock
) -> None:
    await owner(dc, clock)
    status, body = await poll(dc, "no-such-code")
    assert (status, body["detail"]["code"]) == (400, "invalid_grant")
    resp = await dc.post("/api/v1/auth/device/token", json={"client_name": "x"})
    assert resp.status == 400 and "device_code" in (await resp.json())["error"]
    csrf = await api_sign_in(dc, "ops@acme.example")
    for code in ("BCDF-GHJK", "AEIO-UAEI", "not a code", ""):
        status, body = await approve(dc, csrf, code)
        assert status == 400, code
        assert body["error"]


async def test_only_roles_that_may_create_keys_can_approve(
    dc: TestClient, clock: FakeClock
) -> None:
    org = await make_org(dc, clock, "acme")
    await make_user(dc, clock, "ed@acme.example", org.org_id, "editor")
    got = await start(dc)
    csrf = await api_sign_in(dc, "ed@acme.example")
    status, body = await approve(dc, csrf, got["user_code"])
    assert status == 403 and "admin" in body["error"]
    # An API key (never admin) cannot approve either, nor can anyone without CSRF.
    resp = await dc.post("/api/v1/auth/device/approve", headers=org.rw(),
                         json={"user_code": got["user_code"]})  # fmt: skip
    assert resp.status == 403
    dc.session.cookie_jar.clear()
    await make_user(dc, clock, "ops@acme.example", org.org_id, "owner")
    await api_sign_in(dc, "ops@acme.example")
    status, _ = await approve(dc, "wrong-token", got["user_code"])
    assert status == 403
    row = await dc.app[appkeys.DB].read(
        lambda c: c.execute("SELECT approved_by FROM device_codes").fetchone()
    )
    assert row == (None,)


# -- the /device page ---------------------------------------------------------------------------


async def ui_sign_in(client: TestClient, email: str) -> None:
    resp = await client.get("/login")
    token = TOKEN_RE.search(await resp.text())
    assert token
    resp = await client.post("/login", data={"csrf_token": token.group(1), "email": email,
                                             "password": PASSWORD, "next": "/"},
                             allow_redirects=False)  # fmt: skip
    assert resp.status == 303, await resp.text()


async def test_the_device_page_sends_signed_out_visitors_to_sign_in_and_back(
    dc: TestClient, clock: FakeClock
) -> None:
    await owner(dc, clock)
    resp = await dc.get("/device?code=BCDF-GHJK", allow_redirects=False)
    assert resp.status == 303
    assert URL(resp.headers["Location"]).query["next"] == "/device?code=BCDF-GHJK"


async def test_approving_on_the_page_needs_the_forms_csrf_token_and_issues_the_key(
    dc: TestClient, clock: FakeClock
) -> None:
    await owner(dc, clock)
    got = await start(dc)
    await ui_sign_in(dc, "ops@acme.example")
    page = await dc.get(f"/device?code={got['user_code'].lower()}")
    html = await page.text()
    assert page.status == 200
    assert f'value="{got["user_code"]}"' in html and "Acme" in html
    token = TOKEN_RE.search(html)
    assert token
    form = {"user_code": got["user_code"], "org": "acme", "decision": "approve"}
    forged = await dc.post("/device", data={**form, "csrf_token": "forged"})
    assert forged.status == 403
    assert (await poll(dc, got["device_code"]))[1]["detail"]["code"] == "authorization_pending"
    done = await dc.post("/device", data={**form, "csrf_token": token.group(1)})
    assert done.status == 200 and "Sign-in approved" in await done.text()
    await clock.advance(5)
    status, issued = await poll(dc, got["device_code"])
    assert status == 200 and issued["org"]["slug"] == "acme"


async def test_the_page_explains_a_wrong_code_next_to_the_field(
    dc: TestClient, clock: FakeClock
) -> None:
    await owner(dc, clock)
    await ui_sign_in(dc, "ops@acme.example")
    html = await (await dc.get("/device")).text()
    token = TOKEN_RE.search(html)
    assert token
    resp = await dc.post("/device", data={"csrf_token": token.group(1), "user_code": "BCDF-GHJK",
                                          "org": "acme", "decision": "approve"})  # fmt: skip
    body = await resp.text()
    assert resp.status == 400
    assert re.search(r'id="user_code-error"[^>]*>no sign-in is waiting with this code', body)


async def test_the_page_offers_only_orgs_where_the_user_may_create_keys_and_denies(
    dc: TestClient, clock: FakeClock
) -> None:
    acme = await owner(dc, clock)
    beta = await make_org(dc, clock, "beta")
    gamma = await make_org(dc, clock, "gamma")
    now = clock.now()

    def join(conn: Any) -> None:
        user = accounts.user_by_email(conn, "ops@acme.example")
        assert user is not None
        accounts.add_member(conn, user.id, beta.org_id, "admin", now)
        accounts.add_member(conn, user.id, gamma.org_id, "viewer", now)

    await dc.app[appkeys.DB].write(join)
    await ui_sign_in(dc, "ops@acme.example")
    first, second = await start(dc), await start(dc)
    html = await (await dc.get("/device")).text()
    select = re.search(r'<select id="device-org".*?</select>', html, flags=re.S)
    assert select is not None
    offered = re.findall(r'<option value="([^"]+)"', select.group(0))
    assert offered == ["acme", "beta"]
    token = TOKEN_RE.search(html)
    assert token

    def form(org: str, code: dict[str, Any], decision: str) -> dict[str, str]:
        assert token is not None
        return {"csrf_token": token.group(1), "org": org, "user_code": code["user_code"],
                "decision": decision}  # fmt: skip

    resp = await dc.post("/device", data=form("gamma", first, "approve"))
    assert resp.status == 400
    resp = await dc.post("/device", data=form("beta", first, "approve"))
    assert resp.status == 200
    resp = await dc.post("/device", data=form("acme", second, "deny"))
    assert resp.status == 200 and "Sign-in denied" in await resp.text()
    await clock.advance(5)
    status, issued = await poll(dc, first["device_code"])
    assert status == 200 and issued["org"]["slug"] == "beta"
    keys = await dc.app[appkeys.DB].read(lambda c: accounts.keys_of(c, beta.org_id))
    assert [k.name for k in keys if k.name.startswith("CLI login")] == ["CLI login on laptop"]
    status, body = await poll(dc, second["device_code"])
    assert (status, body["detail"]["code"]) == (400, "access_denied")
    assert acme.org_id != beta.org_id


async def test_a_viewer_is_told_their_role_cannot_approve(dc: TestClient, clock: FakeClock) -> None:
    org = await make_org(dc, clock, "acme")
    await make_user(dc, clock, "viewer@acme.example", org.org_id, "viewer")
    await ui_sign_in(dc, "viewer@acme.example")
    resp = await dc.get("/device")
    assert resp.status == 403 and "may not create API keys" in await resp.text()


async def test_expired_codes_are_pruned_a_day_later(dc: TestClient, clock: FakeClock) -> None:
    await start(dc)
    await clock.advance(15 * 60 + 86400 + 1)
    await start(dc)
    count = await dc.app[appkeys.DB].read(
        lambda c: c.execute("SELECT count(*) FROM device_codes").fetchone()[0]
    )
    assert count == 1
    assert await dc.app[appkeys.DB].read(lambda c: device_codes.count_pending(c, clock.now())) == 1
