"""Every declared /api/v1 route, walked automatically (a new route is covered the day it is
added): another organisation's callers never reach this organisation's objects or data, a
read-only key never changes anything, and each role gets exactly what auth.ROLE_SCOPES allows,
plus the `member` routes (one's own account, signing out) that every role may use."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from aiohttp.test_utils import TestClient

from tests.web.api_helpers import make_org
from tests.web.test_api_org import Login, Start, api_fixture, sign_in
from tokiflow.clock import FakeClock
from tokiflow.engine import auth
from tokiflow.storage import accounts
from tokiflow.web import appkeys
from tokiflow.web.api.framework import MEMBER, Endpoint
from tokiflow.web.api.native import API

assert api_fixture  # the `api` fixture, shared with test_api_org

PATH_PARAM = re.compile(r"\{([a-z_]+)\}")
ROLES = tuple(auth.ROLE_SCOPES)
KNOWN_SCOPES = {"public", MEMBER, "read", "write", "admin", "billing"}


def scopes_of(*scopes: str) -> frozenset[str]:
    """What a caller may do: its own scopes, and the member routes every signed-in member and
    every key of the organisation may call."""
    return frozenset({*scopes, MEMBER})


# Bodies that a permitted caller's request should get through validation with; other routes
# get the smallest body their schema accepts (see `example`).
BODIES: dict[tuple[str, str], Any] = {
    ("PATCH", "/members/{user_id}"): {"role": "viewer"},
    ("POST", "/invitations"): {"email": "iso@beta.example", "role": "viewer"},
    ("POST", "/channels"): {"kind": "webhook", "name": "iso", "config": {"url": "http://127.0.0.1:9/"}},
    ("PUT", "/monitors/{uuid}/channels"): {"channels": []},
    ("PUT", "/account/notifications"): {"mode": "off"},
    ("POST", "/monitors"): {"name": "iso"},
}  # fmt: skip


def example(schema: dict[str, Any]) -> Any:
    """The smallest value a schema accepts (required fields only)."""
    kinds = schema.get("type", "object")
    kind = next(k for k in kinds if k != "null") if isinstance(kinds, list) else kinds
    if "enum" in schema:
        return schema["enum"][0]
    if kind == "object":
        props = schema.get("properties", {})
        return {name: example(props.get(name, {})) for name in schema.get("required", [])}
    if kind == "string":
        return "x" * max(schema.get("minLength", 1), 1)
    if kind in ("integer", "number"):
        return schema.get("minimum", 1)
    if kind == "boolean":
        return False
    return []


@dataclass
class World:
    """Organisation "alpha" with one of everything (every name says alpha), and "beta"."""

    ids: dict[str, str]
    markers: list[str]
    alpha_ro: str
    beta_rw: str
    role_users: dict[str, str]  # role -> email in alpha
    beta_owner: str
    alpha_id: int
    beta_id: int


async def build(client: TestClient, clock: FakeClock) -> World:
    a = await make_org(client, clock, "alpha")
    b = await make_org(client, clock, "beta")
    owner = await sign_in(client, clock, "owner@alpha.example", a.org_id, "owner")
    roles = {role: f"{role}@alpha.example" for role in ROLES}
    for role, email in roles.items():
        await sign_in(client, clock, email, a.org_id, role)
    target = await sign_in(client, clock, "target@alpha.example", a.org_id, "editor")
    await sign_in(client, clock, "owner@beta.example", b.org_id, "owner")

    async def post(path: str, body: Any, headers: dict[str, str]) -> Any:
        resp = await client.post(f"/api/v1{path}", json=body, headers=headers)
        assert resp.status == 201, await resp.text()
        return await resp.json()

    mon = await post("/monitors", {"name": "alpha monitor", "tags": ["alpha"]}, a.rw())
    assert (await client.get(f"/ping/{mon['uuid']}/fail", data=b"alpha output")).status == 200
    # A finished run with captured output, for the /runs/{id} routes.
    assert (await client.get(f"/ping/{mon['uuid']}/start")).status == 200
    assert (await client.post(f"/ping/{mon['uuid']}", data=b"alpha run output")).status == 200
    runs = await (await client.get(f"/api/v1/monitors/{mon['uuid']}/runs", headers=a.ro())).json()
    channel = await post("/channels", {"kind": "webhook", "name": "alpha channel",
                                       "config": {"url": "http://127.0.0.1:9/alpha"}}, a.rw())  # fmt: skip
    inv = await post("/invitations", {"email": "new@alpha.example", "role": "viewer"}, owner.h())
    key = await post("/keys", {"name": "alpha key"}, owner.h())
    incidents = await (await client.get("/api/v1/incidents", headers=a.ro())).json()
    org = await (await client.get("/api/v1/org", headers=a.ro())).json()
    ids = {
        "uuid": mon["uuid"], "n": "1", "user_id": str(target.user_id),
        "channels": str(channel["id"]), "keys": str(key["id"]), "invitations": str(inv["id"]),
        "incidents": str(incidents["incidents"][0]["id"]), "runs": str(runs["runs"][0]["id"]),
    }  # fmt: skip
    markers = ["alpha", mon["uuid"], org["ping_key"], key["prefix"], key["key"]]
    return World(ids, markers, a.ro_key, b.rw_key, roles, "owner@beta.example", a.org_id, b.org_id)


def fill(ep: Endpoint, ids: dict[str, str]) -> str:
    """The route's path with alpha's real ids; the first segment says what an {id} is."""
    resource = ep.path.split("/")[1]

    def value(m: re.Match[str]) -> str:
        name = m.group(1)
        key = resource if name == "id" else name
        assert key in ids, f"{ep.method} {ep.path}: add a real alpha id for {{{name}}} to build()"
        return ids[key]

    return PATH_PARAM.sub(value, ep.path)


@dataclass(frozen=True)
class Caller:
    label: str
    scopes: frozenset[str]
    is_key: bool
    other_org: bool


async def headers_for(
    client: TestClient, clock: FakeClock, world: World, caller: Caller
) -> dict[str, str]:
    """Fresh credentials for one request (a session may be ended by the route it calls)."""
    if caller.is_key:
        return {"X-Api-Key": world.beta_rw if caller.other_org else world.alpha_ro}
    email = world.beta_owner if caller.other_org else world.role_users[caller.label]
    org_id = world.beta_id if caller.other_org else world.alpha_id
    now = clock.now()

    def write(conn: Any) -> Login:
        user = accounts.user_by_email(conn, email)
        assert user is not None and accounts.membership(conn, user.id, org_id) is not None
        session = auth.start_session(conn, user, now)
        return Login(user.id, email, session.token, session.csrf_token)

    return (await client.app[appkeys.DB].write(write)).h()


def expected(ep: Endpoint, caller: Caller) -> int | None:
    """403 without the scope, 403 for keys on a user's own account, 404 for another
    organisation's objects; None: allowed (any answer but 401, 403 or 5xx)."""
    if ep.scope not in caller.scopes:
        return 403
    if caller.is_key and ep.tag == "account":
        return 403
    if caller.other_org and PATH_PARAM.search(ep.path):
        return 404
    return None


async def walk(client: TestClient, clock: FakeClock, world: World, caller: Caller) -> list[str]:
    """Call every non-public route as `caller`; returns what went wrong."""
    problems = []
    # DELETE /keys/current revokes the caller's own key (what `tokiflow logout` does): last.
    for ep in sorted(API.endpoints, key=lambda ep: ep.path == "/keys/current"):
        if ep.scope == "public":
            continue
        path = fill(ep, world.ids)
        body = BODIES.get((ep.method, ep.path), example(ep.body) if ep.body is not None else None)
        headers = await headers_for(client, clock, world, caller)
        resp = await client.request(ep.method, f"/api/v1{path}", json=body, headers=headers)
        text = await resp.text()
        want = expected(ep, caller)
        where = f"{caller.label}: {ep.method} {ep.path} -> {resp.status} {text[:120]}"
        if want is not None and resp.status != want:
            problems.append(f"{where} (expected {want})")
        elif want is None and (resp.status in (401, 403) or resp.status >= 500):
            problems.append(f"{where} (expected it allowed)")
        if caller.other_org:
            leaked = [m for m in world.markers if m.lower() in text.lower()]
            if leaked:
                problems.append(f"{where} shows alpha's data: {leaked}")
    return problems


async def test_another_organisations_key_and_owner_never_see_or_touch_this_organisations_things(
    api: Start, clock: FakeClock
) -> None:
    client = await api()
    world = await build(client, clock)
    problems = []
    for caller in (
        Caller("beta rw key", scopes_of("read", "write"), True, True),
        Caller("beta owner", scopes_of(*auth.ROLE_SCOPES["owner"]), False, True),
    ):
        problems += await walk(client, clock, world, caller)
    assert problems == []
    # And alpha's things are all still there.
    still = await client.get(
        f"/api/v1/monitors/{world.ids['uuid']}", headers={"X-Api-Key": world.alpha_ro}
    )
    assert still.status == 200


async def test_a_read_only_key_is_refused_every_change(api: Start, clock: FakeClock) -> None:
    client = await api()
    world = await build(client, clock)
    assert (
        await walk(client, clock, world, Caller("alpha ro key", scopes_of("read"), True, False))
        == []
    )
    actions = await client.app[appkeys.DB].read(
        lambda c: [r[0] for r in c.execute(
            "SELECT action FROM audit_log WHERE actor_kind = 'key' ORDER BY id")]
    )  # fmt: skip
    # The monitor and channel made by build(); the read-only key changed nothing but could
    # revoke itself (signing out), which the walk does last.
    assert actions == ["monitor.create", "channel.create", "apikey.revoke"]


async def test_each_role_gets_what_its_scopes_allow_on_every_route(
    api: Start, clock: FakeClock
) -> None:
    client = await api()
    world = await build(client, clock)
    assert {ep.scope for ep in API.endpoints} <= KNOWN_SCOPES
    problems = []
    for role in ROLES:
        caller = Caller(role, scopes_of(*auth.ROLE_SCOPES[role]), False, False)
        problems += await walk(client, clock, world, caller)
    assert problems == []


async def test_a_billing_member_manages_their_own_account_but_sees_no_monitors(
    api: Start, clock: FakeClock
) -> None:
    client = await api()
    world = await build(client, clock)
    email = world.role_users["billing"]
    billing = Caller("billing", scopes_of(*auth.ROLE_SCOPES["billing"]), False, False)
    h = await headers_for(client, clock, world, billing)
    me = await client.get("/api/v1/auth/me", headers=h)
    assert me.status == 200
    body = await me.json()
    assert body["user"]["email"] == email
    assert [(o["slug"], o["role"]) for o in body["orgs"]] == [("alpha", "billing")]
    account = await client.get("/api/v1/account", headers=h)
    assert account.status == 200 and (await account.json())["email"] == email
    changed = await client.patch("/api/v1/account", json={"tz": "Europe/Paris"}, headers=h)
    assert changed.status == 200 and (await changed.json())["tz"] == "Europe/Paris"
    setup = await client.post("/api/v1/account/totp/setup", headers=h)
    assert setup.status == 200 and "otpauth_uri" in await setup.json()
    # Still nothing of the organisation's monitoring: monitors, incidents, their emails.
    for path in ("/monitors", "/incidents", "/channels", "/account/notifications"):
        resp = await client.get(f"/api/v1{path}", headers=h)
        assert resp.status == 403, path
        assert "alpha monitor" not in await resp.text()
    out = await client.post("/api/v1/auth/logout", headers=h)
    assert out.status == 204
    assert (await client.get("/api/v1/account", headers=h)).status == 401


async def test_public_routes_answer_anyone_without_a_server_error(
    api: Start, clock: FakeClock
) -> None:
    client = await api()
    await build(client, clock)
    public = [ep for ep in API.endpoints if ep.scope == "public"]
    assert len(public) >= 5
    for ep in public:
        body = example(ep.body) if ep.body is not None else None
        resp = await client.request(ep.method, f"/api/v1{ep.path}", json=body)
        assert resp.status < 500, (ep.path, resp.status)
        assert "alpha" not in json.dumps(await resp.json()), ep.path
