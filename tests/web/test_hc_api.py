"""The Healthchecks-compatible management API (/hc/api/v1, v2, v3) through the real app, with
the field names, types, status codes and error messages Healthchecks documents."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.conftest import MakeApp
from tests.web.api_helpers import OrgAccess, make_org
from tokiflow.clock import FakeClock
from tokiflow.engine import audit, channel_setup
from tokiflow.licensing import UNLIMITED
from tokiflow.storage import monitors
from tokiflow.web import appkeys, hc_api
from tokiflow.web.hc_api_shapes import unique_key

V3 = "/hc/api/v3"
BASE = "http://127.0.0.1:8000"
COMMON = {
    "name", "slug", "tags", "desc", "grace", "n_pings", "status", "started", "last_ping",
    "next_ping", "manual_resume", "methods", "subject", "subject_fail", "start_kw", "success_kw",
    "failure_kw", "filter_subject", "filter_body",
}  # fmt: skip
READ_WRITE = COMMON | {"uuid", "ping_url", "update_url", "pause_url", "resume_url", "channels"}


@pytest.fixture
async def client(
    aiohttp_client: Callable[[web.Application], Awaitable[TestClient]], make_app: MakeApp
) -> TestClient:
    app = make_app(base_url=BASE)
    # Once the app factory registers these routes itself, do not add them twice.
    if not any(r.canonical.startswith("/hc/api/") for r in app.router.resources()):
        hc_api.add_routes(app)
    return await aiohttp_client(app)


def rw(a: OrgAccess) -> dict[str, str]:
    return {"X-Api-Key": a.rw_key}


def ro(a: OrgAccess) -> dict[str, str]:
    return {"X-Api-Key": a.ro_key}


async def create(
    client: TestClient, a: OrgAccess, v: int = 3, expect: int = 201, **body: Any
) -> dict[str, Any]:
    resp = await client.post(f"/hc/api/v{v}/checks/", json=body, headers=rw(a))
    assert resp.status == expect, await resp.text()
    data: dict[str, Any] = await resp.json()
    return data


async def call(
    client: TestClient, method: str, path: str, headers: dict[str, str], **kwargs: Any
) -> tuple[int, Any]:
    resp = await client.request(method, path, headers=headers, **kwargs)
    if resp.content_type == "application/json":
        return resp.status, await resp.json()
    return resp.status, await resp.text()


async def ping(client: TestClient, uuid: str, suffix: str = "", **kwargs: Any) -> None:
    resp = await client.post(f"/ping/{uuid}{suffix}", **kwargs)
    assert resp.status == 200, await resp.text()


async def add_channel(
    client: TestClient, clock: FakeClock, org_id: int, name: str, *, is_default: bool = False
) -> int:
    app = client.app
    assert app is not None

    def write(conn: sqlite3.Connection) -> int:
        return channel_setup.create(
            conn, app[appkeys.SEALER], org_id=org_id, kind="webhook", name=name,
            config={"url": "https://hooks.example.com/x"}, is_default=is_default, now=clock.now(),
            limits=UNLIMITED,
        ).id  # fmt: skip

    return await app[appkeys.DB].write(write)


async def stored(client: TestClient, uuid: str) -> monitors.Monitor:
    assert client.app is not None
    m = await client.app[appkeys.DB].read(lambda c: monitors.by_uuid(c, uuid))
    assert m is not None
    return m


# -- checks ---------------------------------------------------------------------------------------


async def test_it_creates_a_simple_check_with_the_documented_fields_and_types(
    client: TestClient, clock: FakeClock
) -> None:
    a = await make_org(client, clock, "acme")
    c = await create(client, a, name="Backups", tags="prod www", timeout=3600, grace=60)
    assert set(c) == READ_WRITE | {"timeout"}
    uuid = c["uuid"]
    assert c == {
        **c,
        "name": "Backups", "slug": "backups", "tags": "prod www", "desc": "", "grace": 60,
        "n_pings": 0, "status": "new", "started": False, "last_ping": None, "next_ping": None,
        "manual_resume": False, "methods": "", "timeout": 3600, "channels": "",
        "ping_url": f"{BASE}/ping/{uuid}",
        "update_url": f"{BASE}/hc/api/v3/checks/{uuid}",
        "pause_url": f"{BASE}/hc/api/v3/checks/{uuid}/pause",
        "resume_url": f"{BASE}/hc/api/v3/checks/{uuid}/resume",
    }  # fmt: skip
    assert c["filter_subject"] is False and c["success_kw"] == ""


async def test_a_schedule_makes_a_cron_check_and_wins_over_a_timeout(
    client: TestClient, clock: FakeClock
) -> None:
    a = await make_org(client, clock, "acme")
    c = await create(client, a, name="Nightly", schedule="15 5 * * *", tz="Europe/Riga",
                     timeout=600, methods="POST", manual_resume=True, desc="runs db-backup.sh")  # fmt: skip
    assert "timeout" not in c and (c["schedule"], c["tz"]) == ("15 5 * * *", "Europe/Riga")
    assert (c["methods"], c["manual_resume"], c["desc"]) == ("POST", True, "runs db-backup.sh")
    m = await stored(client, c["uuid"])
    assert (m.schedule_kind, m.cron, m.tz, m.methods) == (
        "cron",
        "15 5 * * *",
        "Europe/Riga",
        "post",
    )


async def test_defaults_are_a_one_day_timeout_and_one_hour_grace_and_unknown_fields_are_ignored(
    client: TestClient, clock: FakeClock
) -> None:
    a = await make_org(client, clock, "acme")
    c = await create(client, a, name="x", success_kw="DONE", filter_body=True, whatever=1)
    assert (c["timeout"], c["grace"], c["success_kw"]) == (86400, 3600, "")


async def test_a_check_without_a_name_is_named_after_its_uuid(
    client: TestClient, clock: FakeClock
) -> None:
    a = await make_org(client, clock, "acme")
    c = await create(client, a)
    assert c["name"] == c["uuid"] == c["slug"]


async def test_unique_returns_the_matching_check_updated_with_200(
    client: TestClient, clock: FakeClock
) -> None:
    a = await make_org(client, clock, "acme")
    first = await create(client, a, name="Backups", timeout=3600)
    again = await create(client, a, expect=200, name="Backups", timeout=7200, grace=120,
                         unique=["name"])  # fmt: skip
    assert again["uuid"] == first["uuid"] and (again["timeout"], again["grace"]) == (7200, 120)
    other = await create(client, a, name="Backups", timeout=60, unique=["name", "grace"])
    assert other["uuid"] != first["uuid"]  # "grace" was not given: no match, a new check
    renamed = await create(client, a, expect=200, name="Renamed", timeout=60, grace=3600,
                           unique=["timeout", "grace"])  # fmt: skip
    assert (renamed["uuid"], renamed["name"]) == (other["uuid"], "Renamed")
    tagged = await create(client, a, name="T", tags="b  a")
    again = await create(client, a, expect=200, tags="b a", grace=60, unique=["tags"])
    assert (again["uuid"], again["tags"], again["grace"]) == (tagged["uuid"], "b a", 60)
    status, body = await call(client, "GET", f"{V3}/checks/", rw(a))
    assert status == 200 and len(body["checks"]) == 3


async def test_a_second_check_with_the_same_name_gets_a_free_slug(
    client: TestClient, clock: FakeClock
) -> None:
    a = await make_org(client, clock, "acme")
    assert (await create(client, a, v=1, name="Backups"))["slug"] == "backups"
    assert (await create(client, a, v=1, name="Backups"))["slug"] == "backups-2"
    assert (await create(client, a, name="x", slug="my-custom_slug"))["slug"] == "my-custom_slug"
    status, body = await call(client, "POST", f"{V3}/checks/", rw(a), json={"slug": "backups"})
    assert status == 400 and "already used" in body["error"]


async def test_the_list_filters_by_every_given_tag_and_by_slug(
    client: TestClient, clock: FakeClock
) -> None:
    a = await make_org(client, clock, "acme")
    await create(client, a, name="one", tags="foo bar")
    await create(client, a, name="two", tags="foo")
    await create(client, a, name="three", tags="bar baz")

    async def names(query: str) -> list[str]:
        status, body = await call(client, "GET", f"{V3}/checks/{query}", ro(a))
        assert status == 200
        return sorted(c["name"] for c in body["checks"])

    assert await names("") == ["one", "three", "two"]
    assert await names("?tag=foo") == ["one", "two"]
    assert await names("?tag=foo&tag=bar") == ["one"]
    assert await names("?tag=fo") == []
    assert await names("?slug=three") == ["three"]
    assert await names("?slug=nope") == []


async def test_a_read_only_key_sees_the_reduced_view_and_can_use_the_unique_key(
    client: TestClient, clock: FakeClock
) -> None:
    a = await make_org(client, clock, "acme")
    c = await create(client, a, name="Backups", schedule="*/5 * * * *")
    status, body = await call(client, "GET", f"{V3}/checks/", ro(a))
    [shown] = body["checks"]
    assert status == 200 and set(shown) == COMMON | {"unique_key", "schedule", "tz"}
    key = shown["unique_key"]
    assert key == unique_key(c["uuid"]) and len(key) == 40
    status, by_key = await call(client, "GET", f"{V3}/checks/{key}", ro(a))
    assert status == 200 and by_key == shown
    status, by_uuid = await call(client, "GET", f"{V3}/checks/{c['uuid']}", ro(a))
    assert status == 200 and by_uuid == shown
    assert (await call(client, "GET", f"{V3}/checks/{key}/flips/", ro(a)))[0] == 200
    # A read-write key may use the unique key too, and then sees the full view.
    status, full = await call(client, "GET", f"{V3}/checks/{key}", rw(a))
    assert status == 200 and full["uuid"] == c["uuid"] and "unique_key" not in full


async def test_a_read_only_key_may_not_write_nor_read_pings_or_channels(
    client: TestClient, clock: FakeClock
) -> None:
    a = await make_org(client, clock, "acme")
    uuid = (await create(client, a, name="x"))["uuid"]
    for method, path in [
        ("POST", f"{V3}/checks/"), ("POST", f"{V3}/checks/{uuid}"),
        ("DELETE", f"{V3}/checks/{uuid}"), ("POST", f"{V3}/checks/{uuid}/pause"),
        ("POST", f"{V3}/checks/{uuid}/resume"), ("GET", f"{V3}/checks/{uuid}/pings/"),
        ("GET", f"{V3}/checks/{uuid}/pings/1/body"), ("GET", f"{V3}/channels/"),
    ]:  # fmt: skip
        status, body = await call(client, method, path, ro(a), json={"name": "y"})
        assert status == 403 and "read-only" in body["error"], (method, path)
    assert (await stored(client, uuid)).name == "x"
    assert (await call(client, "GET", f"{V3}/badges/", ro(a)))[0] == 200


async def test_it_answers_401_for_a_missing_or_wrong_key_and_takes_one_from_a_post_body(
    client: TestClient, clock: FakeClock
) -> None:
    a = await make_org(client, clock, "acme")
    assert await call(client, "GET", f"{V3}/checks/", {}) == (401, {"error": "missing api key"})
    assert await call(client, "GET", f"{V3}/checks/", {"X-Api-Key": ""}) == (
        401, {"error": "missing api key"},
    )  # fmt: skip
    wrong = {"X-Api-Key": "tfk_rw_" + "x" * 40}
    assert await call(client, "GET", f"{V3}/checks/", wrong) == (401, {"error": "wrong api key"})
    # Healthchecks does not take session cookies or bearer tokens here: only its own two ways.
    bearer = {"Authorization": f"Bearer {a.rw_key}"}
    assert (await call(client, "GET", f"{V3}/checks/", bearer))[0] == 401
    status, body = await call(client, "POST", f"{V3}/checks/", {},
                              json={"api_key": a.rw_key, "name": "via body"})  # fmt: skip
    assert status == 201 and body["name"] == "via body"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"timeout": 59}, "timeout is too small"),
        ({"timeout": 31536001}, "timeout is too large"),
        ({"timeout": "1h"}, "timeout is not a number"),
        ({"timeout": None}, "timeout is not a number"),
        ({"timeout": 3600.5}, "timeout is not a number"),
        ({"grace": 30}, "grace is too small"),
        ({"grace": True}, "grace is not a number"),
        ({"name": 5}, "name is not a string"),
        ({"name": "x" * 201}, "name is too long"),
        ({"tags": ["a"]}, "tags is not a string"),
        ({"manual_resume": "yes"}, "manual_resume is not a boolean"),
        ({"methods": "GET"}, "methods has unexpected value"),
        ({"unique": "name"}, "unique is not an array"),
        ({"unique": ["desc"]}, "an item in 'unique' has unexpected value"),
        ({"schedule": "61 * * * *"}, "schedule is not a valid cron or OnCalendar expression"),
        ({"schedule": "* * * *"}, "schedule is not a valid cron or OnCalendar expression"),
        ({"tz": "Mars/Olympus"}, "tz is not a valid timezone"),
        ({"slug": "Not OK"}, "slug does not match pattern"),
        ({"slug": "-leading"}, "slug does not match pattern"),
        ({"success_kw": "x" * 201}, "success_kw is too long"),
        ({"filter_subject": 1}, "filter_subject is not a boolean"),
    ],
)
async def test_invalid_fields_get_400_with_healthchecks_message(
    client: TestClient, clock: FakeClock, body: dict[str, Any], message: str
) -> None:
    a = await make_org(client, clock, "acme")
    status, data = await call(client, "POST", f"{V3}/checks/", rw(a), json=body)
    assert (status, data) == (400, {"error": f"json validation error: {message}"})


async def test_a_body_that_is_not_a_json_object_gets_400(
    client: TestClient, clock: FakeClock
) -> None:
    a = await make_org(client, clock, "acme")
    status, data = await call(client, "POST", f"{V3}/checks/", rw(a), data=b"{nope")
    assert (status, data) == (400, {"error": "could not parse request body"})
    status, data = await call(client, "POST", f"{V3}/checks/", rw(a), data=b"[1, 2]")
    assert (status, data) == (400, {"error": "json validation error: value is not an object"})


async def test_another_organisations_checks_are_not_found(
    client: TestClient, clock: FakeClock
) -> None:
    a = await make_org(client, clock, "acme")
    b = await make_org(client, clock, "other")
    c = await create(client, a, name="secret job")
    uuid, key = c["uuid"], unique_key(c["uuid"])
    for method, path in [
        ("GET", f"{V3}/checks/{uuid}"), ("GET", f"{V3}/checks/{key}"),
        ("POST", f"{V3}/checks/{uuid}"), ("DELETE", f"{V3}/checks/{uuid}"),
        ("POST", f"{V3}/checks/{uuid}/pause"), ("POST", f"{V3}/checks/{uuid}/resume"),
        ("GET", f"{V3}/checks/{uuid}/pings/"), ("GET", f"{V3}/checks/{uuid}/pings/1/body"),
        ("GET", f"{V3}/checks/{uuid}/flips/"), ("GET", f"{V3}/checks/{key}/flips/"),
    ]:  # fmt: skip
        assert await call(client, method, path, rw(b)) == (404, {"error": "not found"}), path
    assert (await call(client, "GET", f"{V3}/checks/", rw(b)))[1] == {"checks": []}
    assert (await stored(client, uuid)).name == "secret job"
    status, _ = await call(client, "GET", f"{V3}/checks/not-a-uuid", rw(a))
    assert status == 404


async def test_an_update_changes_only_the_given_fields(
    client: TestClient, clock: FakeClock
) -> None:
    a = await make_org(client, clock, "acme")
    c = await create(client, a, name="Backups", tags="prod", timeout=3600, grace=600, desc="d")
    status, new = await call(client, "POST", c["update_url"].removeprefix(BASE), rw(a),
                             json={"schedule": "0 3 * * *", "tz": "America/New_York"})  # fmt: skip
    assert status == 200
    assert (new["schedule"], new["tz"], new["grace"], new["tags"], new["desc"]) == (
        "0 3 * * *", "America/New_York", 600, "prod", "d",
    )  # fmt: skip
    assert "timeout" not in new
    status, new = await call(client, "POST", f"{V3}/checks/{c['uuid']}", rw(a),
                             json={"tz": "Europe/London"})  # fmt: skip
    assert (new["schedule"], new["tz"]) == ("0 3 * * *", "Europe/London")
    status, new = await call(client, "POST", f"{V3}/checks/{c['uuid']}", rw(a),
                             json={"timeout": 120, "manual_resume": True, "methods": "POST"})  # fmt: skip
    assert (new["timeout"], new["manual_resume"], new["methods"]) == (120, True, "POST")
    assert "schedule" not in new
    status, same = await call(client, "POST", f"{V3}/checks/{c['uuid']}", rw(a), data=b"")
    assert status == 200 and same == new


@pytest.mark.parametrize(("v", "slug"), [(1, "nightly-backups"), (2, "nightly-backups"), (3, "b")])
async def test_v1_and_v2_derive_the_slug_from_a_new_name_and_v3_keeps_it(
    client: TestClient, clock: FakeClock, v: int, slug: str
) -> None:
    a = await make_org(client, clock, "acme")
    c = await create(client, a, v=v, name="B", slug="b")
    status, new = await call(client, "POST", f"/hc/api/v{v}/checks/{c['uuid']}", rw(a),
                             json={"name": "Nightly Backups"})  # fmt: skip
    assert status == 200 and (new["name"], new["slug"]) == ("Nightly Backups", slug)
    assert new["update_url"] == f"{BASE}/hc/api/v{v}/checks/{c['uuid']}"
    status, new = await call(client, "POST", f"/hc/api/v{v}/checks/{c['uuid']}", rw(a),
                             json={"slug": "explicit"})  # fmt: skip
    assert new["slug"] == "explicit"


async def test_channels_are_assigned_by_star_id_or_name_and_cleared_by_empty(
    client: TestClient, clock: FakeClock
) -> None:
    a = await make_org(client, clock, "acme")
    alice = await add_channel(client, clock, a.org_id, "Email to Alice")
    ops = await add_channel(client, clock, a.org_id, "Ops hook")
    status, listed = await call(client, "GET", f"{V3}/channels/", rw(a))
    assert status == 200 and listed == {"channels": [
        {"id": str(alice), "name": "Email to Alice", "kind": "webhook"},
        {"id": str(ops), "name": "Ops hook", "kind": "webhook"},
    ]}  # fmt: skip
    c = await create(client, a, name="x", channels="*")
    assert c["channels"] == f"{alice},{ops}"
    url = f"{V3}/checks/{c['uuid']}"
    assert (await call(client, "POST", url, rw(a), json={"channels": ""}))[1]["channels"] == ""
    new = (await call(client, "POST", url, rw(a), json={"channels": f"Ops hook,{alice}"}))[1]
    assert new["channels"] == f"{alice},{ops}"
    for value, message in [
        ("nope", "invalid channel identifier: nope"),
        (f"{alice},", "empty channel identifier"),
    ]:
        status, body = await call(client, "POST", url, rw(a), json={"channels": value,
                                                                   "name": "changed"})  # fmt: skip
        assert (status, body) == (400, {"error": message})
    assert (await stored(client, c["uuid"])).name == "x"  # a failed update changes nothing
    await add_channel(client, clock, a.org_id, "Ops hook")
    status, body = await call(client, "POST", url, rw(a), json={"channels": "Ops hook"})
    assert (status, body) == (400, {"error": "non-unique channel identifier: Ops hook"})
    b = await make_org(client, clock, "other")
    status, body = await call(client, "POST", f"{V3}/checks/", rw(b), json={"channels": str(ops)})
    assert (status, body) == (400, {"error": f"invalid channel identifier: {ops}"})


async def test_a_new_check_gets_the_default_channels_unless_channels_is_sent(
    client: TestClient, clock: FakeClock
) -> None:
    a = await make_org(client, clock, "acme")
    default = await add_channel(client, clock, a.org_id, "Everyone", is_default=True)
    await add_channel(client, clock, a.org_id, "Opt-in")
    assert (await create(client, a, name="x"))["channels"] == str(default)
    assert (await create(client, a, name="y", channels=""))["channels"] == ""


async def test_pause_and_resume_move_the_scheduler_deadline_and_resume_needs_a_paused_check(
    client: TestClient, clock: FakeClock
) -> None:
    a = await make_org(client, clock, "acme")
    c = await create(client, a, name="x", timeout=60, grace=60)
    await ping(client, c["uuid"])
    m = await stored(client, c["uuid"])
    assert client.app is not None
    scheduler = client.app[appkeys.SCHEDULER]
    assert scheduler.deadline(m.id) == clock.now() + dt.timedelta(seconds=60)
    status, body = await call(client, "POST", f"{V3}/checks/{c['uuid']}/resume", rw(a))
    assert (status, body) == (409, {"error": "check is not paused"})
    status, paused = await call(client, "POST", f"{V3}/checks/{c['uuid']}/pause", rw(a), data=b"")
    assert status == 200 and (paused["status"], paused["next_ping"]) == ("paused", None)
    assert scheduler.deadline(m.id) is None
    assert (await call(client, "POST", f"{V3}/checks/{c['uuid']}/pause", rw(a)))[0] == 200
    status, resumed = await call(client, "POST", f"{V3}/checks/{c['uuid']}/resume", rw(a))
    assert status == 200 and resumed["status"] == "new"
    await ping(client, c["uuid"])
    status, body = await call(client, "POST", f"{V3}/checks/{c['uuid']}", rw(a),
                              json={"timeout": 600})  # fmt: skip
    assert scheduler.deadline(m.id) == clock.now() + dt.timedelta(seconds=600)


async def test_delete_answers_with_the_check_and_forgets_its_deadline(
    client: TestClient, clock: FakeClock
) -> None:
    a = await make_org(client, clock, "acme")
    c = await create(client, a, name="x", timeout=60)
    await ping(client, c["uuid"])
    m = await stored(client, c["uuid"])
    status, gone = await call(client, "DELETE", f"{V3}/checks/{c['uuid']}", rw(a))
    assert status == 200 and (gone["uuid"], gone["name"], gone["status"]) == (c["uuid"], "x", "up")
    assert client.app is not None and client.app[appkeys.SCHEDULER].deadline(m.id) is None
    assert await call(client, "GET", f"{V3}/checks/{c['uuid']}", rw(a)) == (
        404, {"error": "not found"},
    )  # fmt: skip


async def test_every_change_is_in_the_audit_log_with_the_key_as_actor(
    client: TestClient, clock: FakeClock
) -> None:
    a = await make_org(client, clock, "acme")
    c = await create(client, a, name="x")
    url = f"{V3}/checks/{c['uuid']}"
    await call(client, "POST", url, rw(a), json={"name": "y"})
    await call(client, "POST", url + "/pause", rw(a))
    await call(client, "POST", url + "/resume", rw(a))
    await call(client, "DELETE", url, rw(a))
    assert client.app is not None
    rows = await client.app[appkeys.DB].read(lambda conn: audit.entries(conn, a.org_id))
    assert [e.action for e in reversed(rows)] == [
        "monitor.create", "monitor.update", "monitor.pause", "monitor.resume", "monitor.delete",
    ]  # fmt: skip
    assert all(e.actor_kind == "key" and "(rw)" in e.actor_label for e in rows)
    assert {e.target_id for e in rows} == {c["uuid"]}


# -- status vocabulary, pings and flips -----------------------------------------------------------


async def test_a_running_check_is_started_in_v1_and_flagged_in_v2_and_v3(
    client: TestClient, clock: FakeClock
) -> None:
    a = await make_org(client, clock, "acme")
    c = await create(client, a, name="x", timeout=3600)
    await ping(client, c["uuid"])
    await ping(client, c["uuid"], "/start")
    shown = {}
    for v in (1, 2, 3):
        status, body = await call(client, "GET", f"/hc/api/v{v}/checks/{c['uuid']}", rw(a))
        shown[v] = (body["status"], body["started"])
    assert shown == {1: ("started", True), 2: ("up", True), 3: ("up", True)}
    await clock.advance(42)
    await ping(client, c["uuid"])
    body = (await call(client, "GET", f"/hc/api/v1/checks/{c['uuid']}", rw(a)))[1]
    assert (body["status"], body["started"], body["last_duration"], body["n_pings"]) == (
        "up", False, 42, 3,
    )  # fmt: skip
    assert body["last_ping"] == (clock.now()).isoformat() and "+00:00" in body["last_ping"]
    assert body["next_ping"] == (clock.now() + dt.timedelta(hours=1)).isoformat()


async def test_late_is_grace_then_down_and_flips_report_up_and_down(
    client: TestClient, clock: FakeClock
) -> None:
    a = await make_org(client, clock, "acme")
    c = await create(client, a, name="x", timeout=60, grace=60)
    url = f"{V3}/checks/{c['uuid']}"
    start = clock.now()
    await ping(client, c["uuid"])
    await clock.advance(61)
    assert (await call(client, "GET", url, rw(a)))[1]["status"] == "grace"
    await clock.advance(60)
    assert (await call(client, "GET", url, rw(a)))[1]["status"] == "down"
    await clock.advance(10)
    await ping(client, c["uuid"])
    status, body = await call(client, "GET", url + "/flips/", rw(a))
    t = [start, start + dt.timedelta(seconds=121), start + dt.timedelta(seconds=131)]
    assert status == 200 and body == {"flips": [
        {"timestamp": t[2].isoformat(), "up": 1},
        {"timestamp": t[1].isoformat(), "up": 0},
        {"timestamp": t[0].isoformat(), "up": 1},
    ]}  # fmt: skip
    since = int(t[1].timestamp())
    assert len((await call(client, "GET", url + f"/flips/?start={since}", rw(a)))[1]["flips"]) == 2
    assert len((await call(client, "GET", url + f"/flips/?end={since}", rw(a)))[1]["flips"]) == 1
    assert len((await call(client, "GET", url + "/flips/?seconds=5", rw(a)))[1]["flips"]) == 1
    assert len((await call(client, "GET", url + "/flips/?seconds=15", rw(a)))[1]["flips"]) == 2
    for bad in ("start=abc", "start=-1", "end=12345678901234567890", "seconds=31536001"):
        assert (await call(client, "GET", url + f"/flips/?{bad}", rw(a)))[0] == 400, bad


async def test_pings_are_listed_newest_first_with_healthchecks_field_names(
    client: TestClient, clock: FakeClock
) -> None:
    a = await make_org(client, clock, "acme")
    c = await create(client, a, name="x")
    rid = "123e4567-e89b-12d3-a456-426614174000"
    await ping(client, c["uuid"], f"/start?rid={rid}", headers={"User-Agent": "curl/8"})
    await clock.advance(2.5)
    await ping(client, c["uuid"], f"?rid={rid}", data=b"all done\n")
    await ping(client, c["uuid"], "/log", data=b"")
    status, body = await call(client, "GET", f"{V3}/checks/{c['uuid']}/pings/", rw(a))
    assert status == 200
    log, success, start = body["pings"]
    assert [p["n"] for p in body["pings"]] == [3, 2, 1]
    assert (start["type"], success["type"], log["type"]) == ("start", "success", "log")
    assert set(start) == {"type", "date", "n", "scheme", "remote_addr", "method", "ua", "rid",
                          "body_url"}  # fmt: skip
    assert (start["ua"], start["method"], start["scheme"], start["rid"]) == (
        "curl/8", "POST", "http", rid,
    )  # fmt: skip
    assert start["remote_addr"] == "127.0.0.1" and start["body_url"] is None
    assert success["duration"] == 2.5
    assert success["date"] == clock.now().isoformat()
    assert success["body_url"] == f"{BASE}/hc/api/v3/checks/{c['uuid']}/pings/2/body"
    resp = await client.get(success["body_url"].removeprefix(BASE), headers=rw(a))
    assert resp.status == 200 and resp.content_type == "text/plain"
    assert await resp.read() == b"all done\n"
    for n in ("1", "3", "99", "x"):
        status, _ = await call(client, "GET", f"{V3}/checks/{c['uuid']}/pings/{n}/body", rw(a))
        assert status == 404, n


async def test_badges_list_six_urls_for_every_tag_and_for_all_checks(
    client: TestClient, clock: FakeClock
) -> None:
    a = await make_org(client, clock, "acme")
    await create(client, a, name="x", tags="backup db")
    await create(client, a, name="y", tags="db")
    status, body = await call(client, "GET", f"{V3}/badges/", ro(a))
    assert status == 200 and sorted(body["badges"]) == ["*", "backup", "db"]
    for tag, urls in body["badges"].items():
        assert set(urls) == {"svg", "svg3", "json", "json3", "shields", "shields3"}
        assert all(u.startswith(f"{BASE}/badge/acme/") for u in urls.values())
        assert urls["svg"].endswith(".svg") and urls["shields3"].endswith(".shields")
        assert urls["json"].replace("-2", "", 1) == urls["json3"]
        assert (tag == "*") == urls["svg"].endswith("-2.svg")


async def test_status_answers_ok_without_a_key(client: TestClient) -> None:
    for v in (1, 2, 3):
        resp = await client.get(f"/hc/api/v{v}/status/")
        assert resp.status == 200 and await resp.text() == "OK"


# -- versions, methods, CORS ----------------------------------------------------------------------


@pytest.mark.parametrize("v", [1, 2, 3])
async def test_every_version_serves_every_endpoint(
    client: TestClient, clock: FakeClock, v: int
) -> None:
    a = await make_org(client, clock, "acme")
    p = f"/hc/api/v{v}"
    c = await create(client, a, v=v, name="x", tags="t")
    assert c["update_url"] == f"{BASE}{p}/checks/{c['uuid']}"
    await ping(client, c["uuid"], data=b"hi")
    for method, path in [
        ("GET", "/checks/"), ("GET", f"/checks/{c['uuid']}"), ("POST", f"/checks/{c['uuid']}"),
        ("GET", f"/checks/{c['uuid']}/pings/"), ("GET", f"/checks/{c['uuid']}/pings/1/body"),
        ("GET", f"/checks/{c['uuid']}/flips/"), ("GET", "/channels/"), ("GET", "/badges/"),
        ("POST", f"/checks/{c['uuid']}/pause"), ("POST", f"/checks/{c['uuid']}/resume"),
        ("DELETE", f"/checks/{c['uuid']}"),
    ]:  # fmt: skip
        assert (await call(client, method, p + path, rw(a)))[0] == 200, (method, path)


async def test_wrong_methods_get_405_and_every_answer_carries_cors_headers(
    client: TestClient, clock: FakeClock
) -> None:
    a = await make_org(client, clock, "acme")
    c = await create(client, a, name="x")
    for method, path in [("PUT", "/checks/"), ("DELETE", "/checks/"), ("GET", "/checks/x/pause"),
                         ("PATCH", f"/checks/{c['uuid']}"), ("POST", "/channels/"),
                         ("POST", f"/checks/{unique_key(c['uuid'])}")]:  # fmt: skip
        resp = await client.request(method, V3 + path.replace("x", c["uuid"]), headers=rw(a))
        assert resp.status == 405, (method, path)
        assert resp.headers["Access-Control-Allow-Origin"] == "*"
    resp = await client.options(f"{V3}/checks/{c['uuid']}")
    assert resp.status == 204
    assert resp.headers["Access-Control-Allow-Headers"] == "X-Api-Key"
    assert set(resp.headers["Access-Control-Allow-Methods"].split(", ")) == {
        "GET", "POST", "DELETE", "OPTIONS",
    }  # fmt: skip
    assert resp.headers["Access-Control-Max-Age"] == "600"
    for resp in [
        await client.get(f"{V3}/checks/"),
        await client.get(f"{V3}/checks/", headers=rw(a)),
    ]:
        assert resp.headers["Access-Control-Allow-Origin"] == "*"
