"""The native API's organisation routes: channels, keys, members, invitations, password reset,
two-factor sign-in, account settings, notification preferences, audit log and the organisation,
through the real app with real SQLite (and a real SMTP server where email is involved)."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import io
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tests.cli_helpers import free_port
from tests.engine.alert_env import Mailbox
from tests.web.api_helpers import OrgAccess, body_of, make_org, totp_code
from tokiflow.clock import FakeClock
from tokiflow.engine import accounts as account_ops
from tokiflow.engine import auth
from tokiflow.storage import accounts
from tokiflow.web import appkeys
from tokiflow.web.api import routes_account

PASSWORD = "a long password"
_PHC = auth.hash_password(PASSWORD)  # one Argon2 hash for every user made here

Start = Callable[..., Awaitable[TestClient]]


@pytest.fixture(name="api")
def api_fixture(
    aiohttp_client: Callable[[web.Application], Awaitable[TestClient]], make_app: Any
) -> Start:
    """Start the real app (with its account set-up, as create_app does) and a client for it."""

    async def start(**overrides: Any) -> TestClient:
        app = make_app(**overrides)
        routes_account.setup(app)
        return await aiohttp_client(app)

    return start


@dataclass
class Login:
    """A signed-in session, sent by hand so that several users can act in one test."""

    user_id: int
    email: str
    token: str
    csrf: str

    def h(self, **extra: str) -> dict[str, str]:
        return {"Cookie": f"tokiflow_session={self.token}", "X-CSRF-Token": self.csrf, **extra}


async def sign_in(client: TestClient, clock: FakeClock, email_: str, org_id: int,
                  role: str) -> Login:  # fmt: skip
    """Make (or reuse) a user with `role` in the organisation and start a session for them."""
    now = clock.now()

    def write(conn: Any) -> Login:
        user = accounts.user_by_email(conn, email_) or accounts.create_user(
            conn, email=email_, name="", password_hash=_PHC, now=now
        )
        accounts.add_member(conn, user.id, org_id, role, now)
        session = auth.start_session(conn, user, now)
        return Login(user.id, email_, session.token, session.csrf_token)

    return await client.app[appkeys.DB].write(write)


async def setup_org(
    client: TestClient, clock: FakeClock, slug: str = "acme"
) -> tuple[OrgAccess, Login]:
    org = await make_org(client, clock, slug)
    return org, await sign_in(client, clock, f"owner@{slug}.example", org.org_id, "owner")


async def call(client: TestClient, method: str, path: str, headers: dict[str, str],
               body: Any = None, status: int = 200) -> Any:  # fmt: skip
    resp = await client.request(method, f"/api/v1{path}", json=body, headers=headers)
    text = await resp.text()
    assert resp.status == status, f"{method} {path}: {resp.status} {text}"
    return json.loads(text) if text and resp.content_type == "application/json" else text


# -- API keys ------------------------------------------------------------------------------------


async def test_a_new_key_is_shown_once_and_then_only_by_its_prefix(
    api: Start, clock: FakeClock
) -> None:
    client = await api()
    _, owner = await setup_org(client, clock)
    new = await call(client, "POST", "/keys", owner.h(), {"name": "deploy bot"}, 201)
    key = new["key"]
    assert key.startswith("tfk_rw_") and new["prefix"] == key[:12] and new["kind"] == "read-write"
    listing = await client.get("/api/v1/keys", headers=owner.h())
    text = await listing.text()
    assert key not in text
    [shown] = [k for k in json.loads(text)["keys"] if k["id"] == new["id"]]
    assert "key" not in shown and (shown["prefix"], shown["status"], shown["last_used_at"]) == (
        key[:12], "active", None)  # fmt: skip
    await call(client, "GET", "/monitors", {"X-Api-Key": key})
    await clock.advance(60)
    await call(client, "GET", "/monitors", {"X-Api-Key": key})
    [used] = [k for k in (await call(client, "GET", "/keys", owner.h()))["keys"]
              if k["id"] == new["id"]]  # fmt: skip
    assert used["last_used_at"] == "2026-03-02T12:01:00Z"
    ro = await call(client, "POST", "/keys", owner.h(), {"name": "dash", "read_only": True}, 201)
    assert ro["key"].startswith("tfk_ro_") and ro["kind"] == "read-only"
    await call(client, "POST", "/monitors", {"X-Api-Key": ro["key"]}, {"name": "x"}, 403)
    # Keys cannot make keys: a leaked key must not mint more.
    await call(client, "POST", "/keys", {"X-Api-Key": key}, {"name": "more"}, 403)


async def test_a_revoked_key_gets_401_at_once(api: Start, clock: FakeClock) -> None:
    client = await api()
    _, owner = await setup_org(client, clock)
    new = await call(client, "POST", "/keys", owner.h(), {"name": "ci"}, 201)
    await call(client, "DELETE", f"/keys/{new['id']}", owner.h(), status=204)
    resp = await client.get("/api/v1/monitors", headers={"X-Api-Key": new["key"]})
    assert resp.status == 401 and "revoked" in (await resp.json())["error"]
    [shown] = [k for k in (await call(client, "GET", "/keys", owner.h()))["keys"]
               if k["id"] == new["id"]]  # fmt: skip
    assert shown["status"] == "revoked" and shown["revoked_at"] == "2026-03-02T12:00:00Z"


async def test_ids_in_paths_that_are_not_row_ids_are_not_found(
    api: Start, clock: FakeClock
) -> None:
    client = await api()
    _, owner = await setup_org(client, clock)
    for bad in (str(2**63), "99999999999999999999999", "²", "-1", "0", "1e3"):
        for path in (f"/channels/{bad}", f"/keys/{bad}"):
            method = "GET" if path.startswith("/channels") else "DELETE"
            resp = await client.request(method, f"/api/v1{path}", headers=owner.h())
            assert resp.status == 404, (path, resp.status, await resp.text())


async def test_a_key_can_revoke_itself_and_only_itself(api: Start, clock: FakeClock) -> None:
    client = await api()
    _, owner = await setup_org(client, clock)
    first = await call(client, "POST", "/keys", owner.h(), {"name": "laptop", "read_only": True},
                       201)  # fmt: skip
    second = await call(client, "POST", "/keys", owner.h(), {"name": "ci"}, 201)
    await call(client, "DELETE", "/keys/current", {"X-Api-Key": first["key"]}, status=204)
    resp = await client.get("/api/v1/monitors", headers={"X-Api-Key": first["key"]})
    assert resp.status == 401
    assert (
        await client.get("/api/v1/monitors", headers={"X-Api-Key": second["key"]})
    ).status == 200
    refused = await call(client, "DELETE", "/keys/current", owner.h(), status=400)
    assert "not made with an API key" in refused["error"]
    audit = (await call(client, "GET", "/audit", owner.h()))["entries"]
    assert any(e["action"] == "apikey.revoke" and e["target_id"] == str(first["id"])
               for e in audit)  # fmt: skip


async def test_a_key_past_its_expiry_gets_401(api: Start, clock: FakeClock) -> None:
    client = await api()
    _, owner = await setup_org(client, clock)
    await call(client, "POST", "/keys", owner.h(),
               {"name": "old", "expires_at": "2026-03-01T00:00:00Z"}, 400)  # fmt: skip
    new = await call(client, "POST", "/keys", owner.h(),
                     {"name": "temp", "expires_at": "2026-03-02T13:00:00+00:00"}, 201)  # fmt: skip
    assert new["expires_at"] == "2026-03-02T13:00:00Z"
    await call(client, "GET", "/monitors", {"X-Api-Key": new["key"]})
    await clock.advance(3600)
    resp = await client.get("/api/v1/monitors", headers={"X-Api-Key": new["key"]})
    assert resp.status == 401 and "expired" in (await resp.json())["error"]


# -- members and invitations -------------------------------------------------------------------


async def test_the_last_owner_can_be_neither_demoted_nor_removed(
    api: Start, clock: FakeClock
) -> None:
    client = await api()
    org, owner = await setup_org(client, clock)
    admin = await sign_in(client, clock, "admin@acme.example", org.org_id, "admin")
    resp = await client.patch(f"/api/v1/members/{owner.user_id}", json={"role": "admin"},
                              headers=owner.h())  # fmt: skip
    assert resp.status == 409 and "last owner" in (await resp.json())["error"]
    await call(client, "DELETE", f"/members/{owner.user_id}", owner.h(), status=409)
    # An admin may not touch owners, nor make one.
    await call(client, "DELETE", f"/members/{owner.user_id}", admin.h(), status=403)
    await call(client, "PATCH", f"/members/{admin.user_id}", admin.h(), {"role": "owner"}, 403)
    promoted = await call(
        client, "PATCH", f"/members/{admin.user_id}", owner.h(), {"role": "owner"}
    )
    assert promoted["role"] == "owner"
    # With a second owner, the first may step down.
    await call(client, "PATCH", f"/members/{owner.user_id}", owner.h(), {"role": "viewer"})
    members = (await call(client, "GET", "/members", admin.h()))["members"]
    assert {m["email"]: m["role"] for m in members} == {
        "owner@acme.example": "viewer", "admin@acme.example": "owner"}  # fmt: skip
    await call(client, "DELETE", f"/members/{owner.user_id}", admin.h(), status=204)
    assert (await client.get("/api/v1/monitors", headers=owner.h())).status == 403


async def test_an_accepted_invitation_makes_a_member_with_its_role_and_cannot_be_reused(
    api: Start, clock: FakeClock
) -> None:
    client = await api(base_url="https://tokiflow.example")
    org, owner = await setup_org(client, clock)
    inv = await call(client, "POST", "/invitations", owner.h(),
                     {"email": "New@Example.com", "role": "editor"}, 201)  # fmt: skip
    assert inv["link"].startswith("https://tokiflow.example/invite/")
    assert (inv["emailed"], inv["email_error"]) == (False, None)  # no SMTP server configured
    token = inv["link"].rsplit("/", 1)[1]
    pending = (await call(client, "GET", "/invitations", owner.h()))["invitations"]
    assert [(i["email"], i["role"], i["expired"]) for i in pending] == [
        ("New@Example.com", "editor", False)]  # fmt: skip
    assert token not in json.dumps(pending)
    await call(client, "POST", "/auth/invitations/accept", {}, {"token": token, "password": "short"},
               400)  # fmt: skip
    resp = await client.post("/api/v1/auth/invitations/accept",
                             json={"token": token, "password": "new user pw!", "name": "Nia"})  # fmt: skip
    me = await resp.json()
    assert me["user"]["email"] == "New@Example.com" and me["orgs"][0]["role"] == "editor"
    # Signed in by the reply's cookie (Secure, as the public URL is https): the new member can
    # create monitors.
    cookie = resp.cookies["tokiflow_session"]
    assert cookie["secure"] and cookie["httponly"]
    created = await client.post("/api/v1/monitors", json={"name": "job"},
                                headers={"Cookie": f"tokiflow_session={cookie.value}",
                                         "X-CSRF-Token": me["csrf_token"]})  # fmt: skip
    assert created.status == 201
    again = await client.post("/api/v1/auth/invitations/accept",
                              json={"token": token, "password": "another password"})  # fmt: skip
    assert again.status == 400 and "already used" in (await again.json())["error"]
    assert (await call(client, "GET", "/invitations", owner.h()))["invitations"] == []
    members = (await call(client, "GET", "/members", owner.h()))["members"]
    assert ("New@Example.com", "editor", "Nia") in [
        (m["email"], m["role"], m["name"]) for m in members
    ]
    login = await client.post("/api/v1/auth/login",
                              json={"email": "new@example.com", "password": "new user pw!"})  # fmt: skip
    assert login.status == 200


async def test_an_invitation_expires_after_seven_days_and_can_be_withdrawn(
    api: Start, clock: FakeClock
) -> None:
    client = await api()
    _, owner = await setup_org(client, clock)
    late = await call(
        client, "POST", "/invitations", owner.h(), {"email": "a@x.example", "role": "viewer"}, 201
    )
    gone = await call(
        client, "POST", "/invitations", owner.h(), {"email": "b@x.example", "role": "viewer"}, 201
    )
    await call(client, "DELETE", f"/invitations/{gone['id']}", owner.h(), status=204)
    await call(client, "DELETE", f"/invitations/{gone['id']}", owner.h(), status=404)
    body = {"token": gone["link"].rsplit("/", 1)[1], "password": "a fine password"}
    await call(client, "POST", "/auth/invitations/accept", {}, body, 400)
    await clock.advance(7 * 86400)
    [listed] = (await call(client, "GET", "/invitations", owner.h()))["invitations"]
    assert listed["expired"] is True
    body = {"token": late["link"].rsplit("/", 1)[1], "password": "a fine password"}
    resp = await client.post("/api/v1/auth/invitations/accept", json=body)
    assert resp.status == 400 and "expired" in (await resp.json())["error"]


async def test_a_signed_in_user_joins_another_organisation_by_invitation(
    api: Start, clock: FakeClock
) -> None:
    client = await api()
    _, owner_a = await setup_org(client, clock, "acme")
    b, owner_b = await setup_org(client, clock, "beta")
    inv = await call(client, "POST", "/invitations", owner_b.h(),
                     {"email": owner_a.email, "role": "viewer"}, 201)  # fmt: skip
    body = {"token": inv["link"].rsplit("/", 1)[1]}
    # Not signed in: the address already has an account, so sign in first.
    await call(client, "POST", "/auth/invitations/accept", {}, body, 409)
    # Signed in, the CSRF token is needed as for any change.
    await call(
        client, "POST", "/auth/invitations/accept", {"Cookie": owner_a.h()["Cookie"]}, body, 403
    )
    me = await call(client, "POST", "/auth/invitations/accept", owner_a.h(), body)
    assert {(o["slug"], o["role"]) for o in me["orgs"]} == {("acme", "owner"), ("beta", "viewer")}
    seen = await client.get("/api/v1/monitors", headers=owner_a.h(**{"X-Tokiflow-Org": "beta"}))
    assert seen.status == 200
    # Someone else's invitation cannot be taken by a signed-in user.
    other = await call(client, "POST", "/invitations", owner_b.h(),
                       {"email": "c@x.example", "role": "admin"}, 201)  # fmt: skip
    await call(client, "POST", "/auth/invitations/accept", owner_a.h(),
               {"token": other["link"].rsplit("/", 1)[1]}, 403)  # fmt: skip
    assert b.slug == "beta"


async def test_invitations_are_emailed_when_smtp_is_configured(
    api: Start, clock: FakeClock, mailbox: Mailbox
) -> None:
    client = await api(smtp_from="tokiflow@acme.example", **mailbox.settings())
    _, owner = await setup_org(client, clock)
    inv = await call(client, "POST", "/invitations", owner.h(),
                     {"email": "nia@example.com", "role": "viewer"}, 201)  # fmt: skip
    assert (inv["emailed"], inv["email_error"]) == (True, None)
    [msg] = await mailbox.wait_for(1)
    assert (msg["To"], msg["From"]) == ("nia@example.com", "tokiflow@acme.example")
    text = body_of(msg)
    assert inv["link"] in text and "owner@acme.example invited you to join Acme" in text


async def test_a_failed_invitation_email_is_reported_to_the_admin(
    api: Start, clock: FakeClock
) -> None:
    client = await api(smtp_host="127.0.0.1", smtp_port=free_port(), smtp_tls="none")
    _, owner = await setup_org(client, clock)
    inv = await call(client, "POST", "/invitations", owner.h(),
                     {"email": "nia@example.com", "role": "viewer"}, 201)  # fmt: skip
    assert inv["emailed"] is False and "127.0.0.1" in inv["email_error"] and inv["link"]


# -- password reset ----------------------------------------------------------------------------


async def test_a_password_reset_link_works_once_and_signs_out_every_session(
    api: Start, clock: FakeClock, mailbox: Mailbox
) -> None:
    client = await api(base_url="https://t.example", **mailbox.settings())
    org, owner = await setup_org(client, clock)
    viewer = await sign_in(client, clock, "v@acme.example", org.org_id, "viewer")
    unknown = await client.post(
        "/api/v1/auth/password-reset", json={"email": "nobody@acme.example"}
    )
    known = await client.post("/api/v1/auth/password-reset", json={"email": "V@acme.example"})
    assert unknown.status == known.status == 202
    assert await unknown.json() == await known.json()
    await client.app[routes_account.MAILER].drain()
    [msg] = await mailbox.wait_for(1)
    assert msg["To"] == "v@acme.example"
    link = next(w for w in body_of(msg).split() if w.startswith("https://t.example/reset/"))
    token = link.rsplit("/", 1)[1]
    await call(client, "POST", "/auth/password-reset/confirm", {},
               {"token": token, "password": "short"}, 400)  # fmt: skip
    await call(client, "POST", "/auth/password-reset/confirm", {},
               {"token": token, "password": "my new password"})  # fmt: skip
    assert (await client.get("/api/v1/monitors", headers=viewer.h())).status == 401
    assert (await client.get("/api/v1/monitors", headers=owner.h())).status == 200
    again = await client.post("/api/v1/auth/password-reset/confirm",
                              json={"token": token, "password": "yet another one"})  # fmt: skip
    assert again.status == 400
    old = await client.post(
        "/api/v1/auth/login", json={"email": viewer.email, "password": PASSWORD}
    )
    assert old.status == 401
    new = await client.post("/api/v1/auth/login",
                            json={"email": viewer.email, "password": "my new password"})  # fmt: skip
    assert new.status == 200


async def test_a_password_reset_link_expires_after_an_hour(
    api: Start, clock: FakeClock, mailbox: Mailbox
) -> None:
    client = await api(**mailbox.settings())
    org, owner = await setup_org(client, clock)
    await call(client, "POST", "/auth/password-reset", {}, {"email": owner.email}, 202)
    await client.app[routes_account.MAILER].drain()
    [msg] = await mailbox.wait_for(1)
    token = next(w for w in body_of(msg).split() if "/reset/" in w).rsplit("/", 1)[1]
    await clock.advance(3600)
    resp = await client.post("/api/v1/auth/password-reset/confirm",
                             json={"token": token, "password": "my new password"})  # fmt: skip
    assert resp.status == 400 and "expired" in (await resp.json())["error"]
    assert (await client.get("/api/v1/monitors", headers=owner.h())).status == 200


async def test_reset_requests_are_rate_limited_per_address(api: Start, clock: FakeClock) -> None:
    client = await api()
    statuses = []
    for _ in range(11):
        resp = await client.post("/api/v1/auth/password-reset", json={"email": "x@example.com"})
        statuses.append(resp.status)
    assert statuses == [202] * 10 + [429]


# -- two-factor sign-in --------------------------------------------------------------------------


async def test_two_factor_sign_in_needs_the_right_code_once_turned_on(
    api: Start, clock: FakeClock
) -> None:
    client = await api()
    _, owner = await setup_org(client, clock)
    started = await call(client, "POST", "/account/totp/setup", owner.h())
    assert started["otpauth_uri"].startswith("otpauth://totp/Tokiflow:owner%40acme.example?")
    assert f"secret={started['secret']}" in started["otpauth_uri"]
    # Not on until confirmed: sign-in still works without a code.
    creds = {"email": owner.email, "password": PASSWORD}
    assert (await client.post("/api/v1/auth/login", json=creds)).status == 200
    client.session.cookie_jar.clear()
    confirm = {"setup_token": started["setup_token"]}
    await call(
        client, "POST", "/account/totp/confirm", owner.h(), {**confirm, "code": "000000"}, 400
    )
    on = await call(client, "POST", "/account/totp/confirm", owner.h(),
                    {**confirm, "code": totp_code(started["secret"], clock.now())})  # fmt: skip
    assert on["two_factor"] is True
    await clock.advance(90)
    no_code = await client.post("/api/v1/auth/login", json=creds)
    assert no_code.status == 401 and "two-factor" in (await no_code.json())["error"]
    wrong = await client.post("/api/v1/auth/login", json={**creds, "totp": "123456"})
    assert wrong.status == 401
    right = await client.post(
        "/api/v1/auth/login", json={**creds, "totp": totp_code(started["secret"], clock.now())}
    )
    assert right.status == 200 and (await right.json())["user"]["two_factor"] is True
    client.session.cookie_jar.clear()
    # Turning it off takes the password and a current code (a fresh one: codes work once).
    await clock.advance(30)
    code = totp_code(started["secret"], clock.now())
    await call(
        client, "DELETE", "/account/totp", owner.h(), {"password": "wrong one!!", "code": code}, 400
    )
    off = await call(
        client, "DELETE", "/account/totp", owner.h(), {"password": PASSWORD, "code": code}
    )
    assert off["two_factor"] is False
    assert (await client.post("/api/v1/auth/login", json=creds)).status == 200


async def test_a_two_factor_code_works_once_and_a_replay_within_its_window_is_refused(
    api: Start, clock: FakeClock
) -> None:
    client = await api()
    _, owner = await setup_org(client, clock)
    started = await call(client, "POST", "/account/totp/setup", owner.h())
    secret = started["secret"]
    confirming = totp_code(secret, clock.now())
    await call(client, "POST", "/account/totp/confirm", owner.h(),
               {"setup_token": started["setup_token"], "code": confirming})  # fmt: skip
    creds = {"email": owner.email, "password": PASSWORD}
    # The code that turned it on is spent: it cannot sign in, even seconds later.
    await clock.advance(5)
    reused = await client.post("/api/v1/auth/login", json={**creds, "totp": confirming})
    assert reused.status == 401 and "two-factor" in (await reused.json())["error"]
    await clock.advance(30)
    code = totp_code(secret, clock.now())
    first = await client.post("/api/v1/auth/login", json={**creds, "totp": code})
    assert first.status == 200
    client.session.cookie_jar.clear()
    # The same code again, still inside its 30-second window (and the drift allowance).
    await clock.advance(10)
    assert totp_code(secret, clock.now()) == code
    replay = await client.post("/api/v1/auth/login", json={**creds, "totp": code})
    assert replay.status == 401
    # An older code (the step before, inside the drift allowance) is refused as well.
    older = totp_code(secret, clock.now() - dt.timedelta(seconds=30))
    assert (await client.post("/api/v1/auth/login", json={**creds, "totp": older})).status == 401
    # The next step's code works, once.
    await clock.advance(30)
    nxt = totp_code(secret, clock.now())
    assert (await client.post("/api/v1/auth/login", json={**creds, "totp": nxt})).status == 200
    client.session.cookie_jar.clear()
    # Turning two-factor off cannot reuse it either.
    await call(client, "DELETE", "/account/totp", owner.h(),
               {"password": PASSWORD, "code": nxt}, 400)  # fmt: skip
    last_step = await client.app[appkeys.DB].read(
        lambda c: accounts.get_user(c, owner.user_id).totp_last_step  # type: ignore[union-attr]
    )
    assert last_step == int(clock.now().timestamp()) // 30


async def test_a_totp_setup_token_is_bound_to_its_user_and_expires(
    api: Start, clock: FakeClock
) -> None:
    client = await api()
    org, owner = await setup_org(client, clock)
    other = await sign_in(client, clock, "e@acme.example", org.org_id, "editor")
    started = await call(client, "POST", "/account/totp/setup", owner.h())
    code = totp_code(started["secret"], clock.now())
    await call(client, "POST", "/account/totp/confirm", other.h(),
               {"setup_token": started["setup_token"], "code": code}, 400)  # fmt: skip
    await clock.advance(15 * 60)
    resp = await client.post("/api/v1/account/totp/confirm", headers=owner.h(),
                             json={"setup_token": started["setup_token"],
                                   "code": totp_code(started["secret"], clock.now())})  # fmt: skip
    assert resp.status == 400 and "expired" in (await resp.json())["error"]


# -- own account -------------------------------------------------------------------------------


async def test_the_account_name_and_time_zone_change_and_bad_zones_are_refused(
    api: Start, clock: FakeClock
) -> None:
    client = await api()
    org, owner = await setup_org(client, clock)
    resp = await client.patch("/api/v1/account", json={"tz": "Mars/Olympus"}, headers=owner.h())
    assert resp.status == 400 and (await resp.json())["detail"] == {"field": "tz"}
    changed = await call(
        client, "PATCH", "/account", owner.h(), {"name": " Ada ", "tz": "Europe/London"}
    )
    assert (changed["name"], changed["tz"]) == ("Ada", "Europe/London")
    assert (await call(client, "GET", "/account", owner.h()))["tz"] == "Europe/London"
    await call(client, "GET", "/account", org.rw(), status=403)


async def test_changing_the_password_needs_the_current_one_and_signs_out_other_sessions(
    api: Start, clock: FakeClock
) -> None:
    client = await api()
    org, owner = await setup_org(client, clock)
    elsewhere = await sign_in(client, clock, owner.email, org.org_id, "owner")
    await call(client, "POST", "/account/password", owner.h(),
               {"current_password": "not the one!", "new_password": "brand new password"}, 400)  # fmt: skip
    await call(client, "POST", "/account/password", owner.h(),
               {"current_password": PASSWORD, "new_password": "brand new password"}, 204)  # fmt: skip
    assert (await client.get("/api/v1/account", headers=owner.h())).status == 200
    assert (await client.get("/api/v1/account", headers=elsewhere.h())).status == 401
    login = await client.post("/api/v1/auth/login",
                              json={"email": owner.email, "password": "brand new password"})  # fmt: skip
    assert login.status == 200


async def test_notification_preferences_are_kept_per_user_and_organisation(
    api: Start, clock: FakeClock
) -> None:
    client = await api()
    org, owner = await setup_org(client, clock)
    b = await make_org(client, clock, "beta")
    # Nobody gets personal emails until they ask for them.
    assert (await call(client, "GET", "/account/notifications", owner.h()))["mode"] == "off"
    prefs = {"mode": "digest", "tags": ["prod", "db"], "quiet_start": "22:00", "quiet_end": "07:30"}
    saved = await call(client, "PUT", "/account/notifications", owner.h(), prefs)
    assert saved == {**prefs, "tz": "UTC"}
    assert await call(client, "GET", "/account/notifications", owner.h()) == saved
    await sign_in(client, clock, owner.email, b.org_id, "viewer")
    in_beta = await call(
        client, "GET", "/account/notifications", owner.h(**{"X-Tokiflow-Org": "beta"})
    )
    assert in_beta["mode"] == "off"
    for bad, field in (({"mode": "loud"}, "mode"), ({"mode": "off", "quiet_start": "25:00",
                                                      "quiet_end": "07:00"}, "quiet_start"),
                       ({"mode": "off", "quiet_start": "22:00"}, "quiet_end"),
                       ({"mode": "off", "tags": ["two words"]}, "tags")):  # fmt: skip
        resp = await client.put("/api/v1/account/notifications", json=bad, headers=owner.h())
        assert resp.status == 400 and field in (await resp.json())["error"], bad
    assert org.slug == "acme"


LONDON_PREFS = account_ops.NotificationPrefs("immediate", (), "22:00", "07:00")


@pytest.mark.parametrize(
    ("prefs", "tags", "at", "expected"),
    [
        (account_ops.NotificationPrefs("off"), ["prod"], "2026-03-02T12:00:00Z", ("skip", None)),
        (account_ops.NotificationPrefs("immediate", ("prod",)), ["dev"], "2026-03-02T12:00:00Z",
         ("skip", None)),
        (account_ops.NotificationPrefs("digest", ("prod",)), ["prod"], "2026-03-02T12:00:00Z",
         ("digest", None)),
        (LONDON_PREFS, [], "2026-03-02T21:59:00Z", ("now", None)),
        (LONDON_PREFS, [], "2026-03-02T22:00:00Z", ("hold", "2026-03-03T07:00:00+00:00")),
        (LONDON_PREFS, [], "2026-03-03T06:59:00Z", ("hold", "2026-03-03T07:00:00+00:00")),
        (LONDON_PREFS, [], "2026-03-03T07:00:00Z", ("now", None)),
        # Summer time: 21:30 UTC is 22:30 in London, quiet until 07:00 BST = 06:00 UTC.
        (LONDON_PREFS, [], "2026-07-01T21:30:00Z", ("hold", "2026-07-02T06:00:00+00:00")),
        # The night the clocks go forward: quiet ends at 07:00 BST, 06:00 UTC.
        (LONDON_PREFS, [], "2026-03-29T00:30:00Z", ("hold", "2026-03-29T06:00:00+00:00")),
        (account_ops.NotificationPrefs("immediate", (), "09:00", "17:00"), [],
         "2026-03-02T16:59:00Z", ("hold", "2026-03-02T17:00:00+00:00")),
    ],
)  # fmt: skip
def test_preferences_decide_whether_an_alert_goes_now_later_or_not_at_all(
    prefs: account_ops.NotificationPrefs, tags: list[str], at: str, expected: tuple[str, str | None]
) -> None:
    when = dt.datetime.fromisoformat(at.replace("Z", "+00:00"))
    decision = account_ops.decide(prefs, tags, when, "Europe/London")
    until = decision.until.isoformat() if decision.until else None
    assert (decision.action, until) == expected


# -- channels and deliveries -------------------------------------------------------------------


class Hook:
    """A local webhook receiver that answers `status` and keeps each request."""

    def __init__(self) -> None:
        self.status = 200
        self.requests: list[tuple[dict[str, str], bytes]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), await request.read()))
        return web.Response(status=self.status, text="ok")


@pytest.fixture
async def hook(
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]],
) -> AsyncIterator[tuple[Hook, str]]:
    receiver = Hook()
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    server = await aiohttp_server(app)
    yield receiver, str(server.make_url("/hook"))


def signed_with(secret: str, headers: dict[str, str], body: bytes) -> bool:
    stamp, mac = (part.split("=", 1)[1] for part in headers["X-Tokiflow-Signature"].split(","))
    expected = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(mac, expected)


async def test_channels_are_added_with_secrets_masked_tested_edited_and_deleted(
    api: Start, clock: FakeClock, hook: tuple[Hook, str]
) -> None:
    receiver, url = hook
    client = await api(outbound_block_private=False)
    org, owner = await setup_org(client, clock)
    bad = await client.post("/api/v1/channels", headers=org.rw(),
                            json={"kind": "webhook", "name": "x", "config": {"url": "ftp://x"}})  # fmt: skip
    assert bad.status == 400 and (await bad.json())["detail"] == {"field": "config.url"}
    config = {"url": url, "secret": "s3cret-value"}
    ch = await call(client, "POST", "/channels", org.rw(),
                    {"kind": "webhook", "name": "Ops hook", "config": config}, 201)  # fmt: skip
    assert ch["config"]["secret"] == "***" and ch["default"] is True
    listed = await client.get("/api/v1/channels", headers=org.ro())
    assert "s3cret-value" not in await listed.text()
    tested = await call(client, "POST", f"/channels/{ch['id']}/test", org.rw())
    assert (tested["ok"], tested["status"]) == (True, "HTTP 200")
    headers, body = receiver.requests[-1]
    assert headers["X-Tokiflow-Event"] == "test" and signed_with("s3cret-value", headers, body)
    # Edit the name and URL; the masked secret sent back keeps its stored value.
    edited = await call(client, "PATCH", f"/channels/{ch['id']}", org.rw(),
                        {"name": "Ops", "config": {**ch["config"], "url": url + "?v=2"}})  # fmt: skip
    assert edited["name"] == "Ops" and edited["config"]["url"].endswith("?v=2")
    await call(client, "POST", f"/channels/{ch['id']}/test", org.rw())
    assert signed_with("s3cret-value", *receiver.requests[-1])
    receiver.status = 500
    failed = await call(client, "POST", f"/channels/{ch['id']}/test", org.rw())
    assert failed["ok"] is False and "500" in failed["error"]
    assert (await call(client, "GET", f"/channels/{ch['id']}", org.ro()))["last_error"] == failed[
        "error"
    ]
    deliveries = (await call(client, "GET", f"/channels/{ch['id']}/deliveries", org.ro()))[
        "deliveries"
    ]
    assert [(d["event"], d["state"], len(d["history"])) for d in deliveries] == [
        ("test", "dead", 1), ("test", "sent", 1), ("test", "sent", 1)]  # fmt: skip
    everything = (await call(client, "GET", "/deliveries?limit=2", org.ro()))["deliveries"]
    assert [d["id"] for d in everything] == [d["id"] for d in deliveries[:2]]
    await call(client, "DELETE", f"/channels/{ch['id']}", org.rw(), status=204)
    await call(client, "GET", f"/channels/{ch['id']}", org.ro(), status=404)
    assert owner.user_id


async def test_a_monitor_alerts_only_the_channels_chosen_for_it(
    api: Start, clock: FakeClock
) -> None:
    client = await api()
    org, _ = await setup_org(client, clock)
    b = await make_org(client, clock, "beta")
    mon = await call(client, "POST", "/monitors", org.rw(), {"name": "job"}, 201)
    hook = {"kind": "webhook", "name": "a", "config": {"url": "https://hooks.example/a"}}
    everyone = await call(client, "POST", "/channels", org.rw(), hook, 201)
    chosen = await call(
        client, "POST", "/channels", org.rw(), {**hook, "name": "b", "default": False}, 201
    )
    theirs = await call(client, "POST", "/channels", b.rw(), hook, 201)
    path = f"/monitors/{mon['uuid']}/channels"
    assert [c["id"] for c in (await call(client, "GET", path, org.ro()))["channels"]] == [
        everyone["id"]
    ]
    await call(client, "PUT", path, org.rw(), {"channels": [chosen["id"], theirs["id"]]}, 400)
    result = await call(client, "PUT", path, org.rw(), {"channels": [chosen["id"]]})
    assert [c["id"] for c in result["channels"]] == [chosen["id"]]
    assert [c["id"] for c in (await call(client, "GET", path, org.ro()))["channels"]] == [
        chosen["id"]
    ]
    await call(client, "PUT", path, b.rw(), {"channels": []}, 404)


# -- audit log -----------------------------------------------------------------------------------


async def test_every_change_is_in_the_audit_log_with_before_and_after(
    api: Start, clock: FakeClock
) -> None:
    client = await api()
    org, owner = await setup_org(client, clock)
    ch = await call(client, "POST", "/channels", org.rw(),
                    {"kind": "webhook", "name": "hook", "config": {"url": "https://h.example/x",
                                                                   "secret": "zzz-secret"}}, 201)  # fmt: skip
    await clock.advance(60)
    await call(client, "PATCH", f"/channels/{ch['id']}", owner.h(), {"name": "renamed"})
    await call(client, "PATCH", "/org", owner.h(), {"name": "Acme Ltd"})
    key = await call(client, "POST", "/keys", owner.h(), {"name": "bot"}, 201)
    await call(client, "DELETE", f"/keys/{key['id']}", owner.h(), status=204)
    page = await client.get("/api/v1/audit", headers=owner.h())
    text = await page.text()
    assert "zzz-secret" not in text and key["key"] not in text
    entries = json.loads(text)["entries"]
    assert [e["action"] for e in entries] == [
        "apikey.revoke", "apikey.create", "org.update", "channel.update", "channel.create"]  # fmt: skip
    update = entries[3]
    assert (update["before"]["name"], update["after"]["name"]) == ("hook", "renamed")
    assert update["actor"] == {"kind": "user", "id": owner.user_id, "label": owner.email}
    assert entries[4]["actor"]["kind"] == "key" and entries[4]["before"] is None
    assert (entries[2]["before"], entries[2]["after"]) == ({"name": "Acme"}, {"name": "Acme Ltd"})
    assert (entries[0]["before"]["status"], entries[0]["after"]["status"]) == ("active", "revoked")
    # Filters and pages.
    mine = (await call(client, "GET", f"/audit?actor={owner.email}", owner.h()))["entries"]
    assert len(mine) == 4
    since = (await call(client, "GET", "/audit?since=2026-03-02T12:00:30Z", owner.h()))["entries"]
    assert len(since) == 4
    first = await call(client, "GET", "/audit?limit=2", owner.h())
    rest = await call(client, "GET", f"/audit?before_id={first['next_before_id']}", owner.h())
    assert [e["id"] for e in first["entries"] + rest["entries"]] == [e["id"] for e in entries]
    assert rest["next_before_id"] is None
    await call(client, "GET", "/audit?since=yesterday", owner.h(), status=400)
    await call(client, "GET", "/audit", org.rw(), status=403)


async def test_the_audit_log_exports_as_csv_and_json_attachments(
    api: Start, clock: FakeClock
) -> None:
    client = await api()
    org, owner = await setup_org(client, clock)
    await call(client, "PATCH", "/org", owner.h(), {"name": '=HYPERLINK("x")'})
    await call(client, "PATCH", "/org", owner.h(), {"name": "Acme, Inc."})
    resp = await client.get("/api/v1/audit/export?format=csv", headers=owner.h())
    assert resp.status == 200 and resp.content_type == "text/csv"
    assert resp.headers["Content-Disposition"].startswith('attachment; filename="audit-acme-')
    rows = list(csv.DictReader(io.StringIO(await resp.text())))
    assert [r["action"] for r in rows] == ["org.update", "org.update"]
    assert json.loads(rows[0]["after"]) == {"name": "Acme, Inc."}
    assert rows[0]["actor_label"] == owner.email and rows[0]["at"] == "2026-03-02T12:00:00Z"
    resp = await client.get("/api/v1/audit/export?format=json&action=org.update", headers=owner.h())
    assert resp.content_type == "application/json"
    exported = json.loads(await resp.text())
    assert [e["after"]["name"] for e in exported] == ["Acme, Inc.", '=HYPERLINK("x")']
    assert org.slug == "acme"


# -- the organisation --------------------------------------------------------------------------


async def test_the_organisation_is_renamed_and_a_rotated_ping_key_stops_old_ping_urls(
    api: Start, clock: FakeClock
) -> None:
    client = await api()
    org, owner = await setup_org(client, clock)
    await call(client, "POST", "/monitors", org.rw(), {"name": "Nightly", "slug": "nightly"}, 201)
    before = await call(client, "GET", "/org", org.ro())
    assert (await client.get(f"/ping/{before['ping_key']}/nightly")).status == 200
    renamed = await call(client, "PATCH", "/org", owner.h(), {"name": "Acme Ltd"})
    assert renamed["name"] == "Acme Ltd"
    await call(client, "POST", "/org/ping-key/rotate", org.rw(), status=403)
    after = await call(client, "POST", "/org/ping-key/rotate", owner.h())
    assert after["ping_key"] != before["ping_key"] and len(after["ping_key"]) == 22
    assert (await client.get(f"/ping/{before['ping_key']}/nightly")).status == 404
    assert (await client.get(f"/ping/{after['ping_key']}/nightly")).status == 200
    log = (await call(client, "GET", "/audit?action=org.ping_key_rotate", owner.h()))["entries"]
    assert before["ping_key"] not in json.dumps(log) and len(log) == 1


async def test_wrong_two_factor_codes_count_towards_the_account_lock(
    api: Start, clock: FakeClock
) -> None:
    client = await api()
    _, owner = await setup_org(client, clock)
    started = await call(client, "POST", "/account/totp/setup", owner.h())
    await call(client, "POST", "/account/totp/confirm", owner.h(),
               {"setup_token": started["setup_token"],
                "code": totp_code(started["secret"], clock.now())})  # fmt: skip
    creds = {"email": owner.email, "password": PASSWORD}
    for _ in range(10):  # the right password, a wrong code: each attempt counts
        await clock.advance(10)  # stay under the per-address limit
        wrong = await client.post("/api/v1/auth/login", json={**creds, "totp": "000000"})
        assert wrong.status == 401
    await clock.advance(10)
    right = await client.post(
        "/api/v1/auth/login", json={**creds, "totp": totp_code(started["secret"], clock.now())}
    )
    assert right.status == 401 and "too many failed" in (await right.json())["error"]
