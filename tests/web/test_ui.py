"""The web UI on the server side: pages for signed-in users, sign-in redirects, CSRF on forms,
security headers, organisation isolation and live updates, through the real app and SQLite."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from yarl import URL

from tests.cli_helpers import HookReceiver
from tests.conftest import MakeApp
from tests.web.api_helpers import make_org, make_user
from tokiflow.clock import FakeClock
from tokiflow.storage import accounts, incidents, monitors
from tokiflow.web import appkeys, ui
from tokiflow.web.ui.context import TEMPLATES

PASSWORD = "a long password"
TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def ui_app(make_app: MakeApp, **overrides: Any) -> web.Application:
    app = make_app(**overrides)
    if TEMPLATES not in app:  # until create_app registers the UI itself
        ui.setup(app)
    return app


@pytest.fixture
async def uic(
    aiohttp_client: Callable[[web.Application], Awaitable[TestClient]], make_app: MakeApp
) -> TestClient:
    return await aiohttp_client(ui_app(make_app))


def token_of(html: str) -> str:
    found = TOKEN_RE.search(html)
    assert found, "no CSRF token in the page"
    return found.group(1)


async def page_token(client: TestClient, path: str) -> str:
    resp = await client.get(path)
    assert resp.status == 200, await resp.text()
    return token_of(await resp.text())


async def sign_in(client: TestClient, email: str, password: str = PASSWORD) -> None:
    token = await page_token(client, "/login")
    resp = await client.post("/login", data={"csrf_token": token, "email": email,
                                             "password": password, "next": "/"},
                             allow_redirects=False)  # fmt: skip
    assert resp.status == 303, await resp.text()
    assert resp.headers["Location"] == "/"


async def owner_of_new_org(client: TestClient, clock: FakeClock, slug: str, email: str) -> int:
    org = await make_org(client, clock, slug)
    await make_user(client, clock, email, org.org_id, "owner")
    return org.org_id


async def create_monitor(client: TestClient, **fields: str) -> str:
    token = await page_token(client, "/monitors/new")
    form = {"csrf_token": token, "name": "Nightly backup", "kind": "period", "period": "1h",
            "grace": "5m", "tags": "db prod", **fields}  # fmt: skip
    resp = await client.post("/monitors/new", data=form, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    location = resp.headers["Location"]
    assert location.startswith("/monitors/")
    return location.rsplit("/", 1)[1]


async def test_a_new_server_sends_everyone_to_first_run_setup_then_signs_the_owner_in(
    uic: TestClient,
) -> None:
    resp = await uic.get("/", allow_redirects=False)
    assert (resp.status, resp.headers["Location"]) == (303, "/setup")
    token = await page_token(uic, "/setup")
    form = {"csrf_token": token, "email": "ops@example.com", "name": "Ops", "org_name": "Acme",
            "password": PASSWORD, "password2": PASSWORD}  # fmt: skip
    resp = await uic.post("/setup", data=form, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    assert resp.headers["Location"] == "/welcome"
    page = await uic.get("/")
    html = await page.text()
    assert page.status == 200 and "Dashboard" in html and "ops@example.com" in html
    assert "Acme" in html
    # Set-up happens once: afterwards it sends people to sign in.
    again = await uic.get("/setup", allow_redirects=False)
    assert (again.status, again.headers["Location"]) == (303, "/login")


async def test_setup_explains_a_weak_password_next_to_the_field(uic: TestClient) -> None:
    token = await page_token(uic, "/setup")
    form = {"csrf_token": token, "email": "ops@example.com", "password": "short",
            "password2": "short"}  # fmt: skip
    resp = await uic.post("/setup", data=form)
    html = await resp.text()
    assert resp.status == 400
    assert re.search(r'id="password-error"[^>]*>password must be at least 10 characters<', html)
    assert await uic.app[appkeys.DB].read(accounts.count_users) == 0


async def test_setup_and_sign_in_refuse_a_form_without_its_token(
    uic: TestClient, clock: FakeClock
) -> None:
    await page_token(uic, "/setup")  # sets the pre-session cookie
    form = {"email": "ops@example.com", "password": PASSWORD, "password2": PASSWORD}
    resp = await uic.post("/setup", data={**form, "csrf_token": "forged-" * 6})
    assert resp.status == 403
    assert await uic.app[appkeys.DB].read(accounts.count_users) == 0
    await owner_of_new_org(uic, clock, "acme", "ops@example.com")
    resp = await uic.post("/login", data={"email": "ops@example.com", "password": PASSWORD},
                          allow_redirects=False)  # fmt: skip
    assert resp.status == 403
    assert "tokiflow_session" not in {c.key for c in uic.session.cookie_jar}


async def test_signed_out_visitors_are_sent_to_sign_in(uic: TestClient, clock: FakeClock) -> None:
    await owner_of_new_org(uic, clock, "acme", "ops@example.com")
    for path in ("/", "/monitors", "/monitors/new", "/incidents", "/settings/channels",
                 "/settings/keys", "/settings/members", "/ui/events", "/ui/schedule"):  # fmt: skip
        resp = await uic.get(path, allow_redirects=False)
        assert resp.status == 303, path
        assert URL(resp.headers["Location"]).query["next"] == path
    resp = await uic.get("/monitors?status=up&q=a b", allow_redirects=False)
    assert URL(resp.headers["Location"]).query["next"] in (
        "/monitors?status=up&q=a+b",
        "/monitors?status=up&q=a%20b",
    )
    resp = await uic.post("/monitors/new", data={"name": "x"}, allow_redirects=False)
    assert (resp.status, resp.headers["Location"]) == (303, "/login?next=/")


async def test_a_wrong_password_is_explained_and_next_never_leaves_the_site(
    uic: TestClient, clock: FakeClock
) -> None:
    await owner_of_new_org(uic, clock, "acme", "ops@example.com")
    token = await page_token(uic, "/login")
    resp = await uic.post("/login", data={"csrf_token": token, "email": "ops@example.com",
                                          "password": "not the password"})  # fmt: skip
    assert resp.status == 401 and "wrong email or password" in await resp.text()
    resp = await uic.post("/login", data={"csrf_token": token, "email": "ops@example.com",
                                          "password": PASSWORD, "next": "//evil.example/x"},
                          allow_redirects=False)  # fmt: skip
    assert (resp.status, resp.headers["Location"]) == (303, "/")


async def test_every_page_renders_for_a_signed_in_user(uic: TestClient, clock: FakeClock) -> None:
    await owner_of_new_org(uic, clock, "acme", "ops@example.com")
    await sign_in(uic, "ops@example.com")
    uuid = await create_monitor(uic)
    assert (await uic.get(f"/ping/{uuid}/start")).status == 200
    await clock.advance(3)
    assert (await uic.post(f"/ping/{uuid}/fail", data=b"disk full")).status == 200
    incident_id = await uic.app[appkeys.DB].read(
        lambda c: c.execute("SELECT id FROM incidents").fetchone()[0]
    )
    expected = {
        "/": ["Nightly backup", "Open incidents", "FAIL"],
        "/monitors": ["Nightly backup", "every 1h", 'href="/monitors?tag=db"'],
        "/monitors?status=down&q=night": ["Nightly backup"],
        "/monitors?status=up": ["No monitor matches these filters"],
        "/monitors/new": ["Cron expression", "Time zone"],
        f"/monitors/{uuid}": [f"/ping/{uuid}", "Kubernetes CronJob", "GitHub Actions",
                              "systemd timer", "tokiflow run", "Node.js", "<svg", "FAIL",
                              "Cronitor clients", "/p/", "Sentry Crons", "sentry_sdk.init(dsn=",
                              f"/api/push/{uuid.replace('-', '')}"],
        f"/monitors/{uuid}/edit": ["Save changes", 'value="Nightly backup"'],
        "/incidents": [f"#{incident_id} FAIL", "Acknowledge"],
        f"/incidents/{incident_id}": ["Timeline", "Add a comment"],
        "/settings/channels": ["Add a channel"],
        "/settings/keys": ["Create an API key", "Sentry DSN", "Ping key"],
        "/settings/members": ["ops@example.com", "Invite someone"],
    }  # fmt: skip
    for path, texts in expected.items():
        resp = await uic.get(path)
        html = await resp.text()
        assert resp.status == 200, (path, html)
        for text in texts:
            assert text in html, (path, text)


async def test_forms_without_the_sessions_csrf_token_change_nothing(
    uic: TestClient, clock: FakeClock
) -> None:
    await owner_of_new_org(uic, clock, "acme", "ops@example.com")
    await sign_in(uic, "ops@example.com")
    uuid = await create_monitor(uic)
    form = {"name": "Sneaky", "kind": "period", "period": "1h", "grace": "5m"}
    for token in (None, "", "wrong-token"):
        data = form if token is None else {**form, "csrf_token": token}
        resp = await uic.post("/monitors/new", data=data)
        assert resp.status == 403
        paused = await uic.post(f"/monitors/{uuid}/pause", data={} if token is None else
                                {"csrf_token": token})  # fmt: skip
        assert paused.status == 403
    names = await uic.app[appkeys.DB].read(lambda c: [m.name for m in monitors.list_for_org(c)])
    assert names == ["Nightly backup"]
    m = await uic.app[appkeys.DB].read(lambda c: monitors.by_uuid(c, uuid))
    assert m is not None and m.status == "new"


async def test_every_ui_response_carries_the_security_headers(
    uic: TestClient, clock: FakeClock
) -> None:
    await owner_of_new_org(uic, clock, "acme", "ops@example.com")
    for path in ("/login", "/static/app.css", "/static/app.js"):
        resp = await uic.get(path)
        assert resp.status == 200, path
        csp = resp.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp
        assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp
        assert resp.headers["X-Frame-Options"] == "DENY"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["Referrer-Policy"] == "same-origin"
        assert "Strict-Transport-Security" not in resp.headers  # served over plain http
    redirect = await uic.get("/", allow_redirects=False)
    assert redirect.status == 303 and redirect.headers["X-Frame-Options"] == "DENY"
    await sign_in(uic, "ops@example.com")
    page = await uic.get("/")
    assert page.headers["Cache-Control"] == "no-store"
    html = await page.text()
    assert "<script>" not in html and " onclick=" not in html and " style=" not in html
    # The machine-facing API keeps its own headers.
    assert "Content-Security-Policy" not in (await uic.get("/healthz")).headers


async def test_https_base_url_adds_hsts(
    aiohttp_client: Callable[[web.Application], Awaitable[TestClient]], make_app: MakeApp
) -> None:
    client = await aiohttp_client(ui_app(make_app, base_url="https://cron.example.com"))
    resp = await client.get("/setup")
    assert resp.headers["Strict-Transport-Security"].startswith("max-age=31536000")


async def test_another_organisations_monitor_and_incident_are_not_found(
    uic: TestClient, clock: FakeClock
) -> None:
    other = await make_org(uic, clock, "other")
    resp = await uic.post("/api/v1/monitors", json={"name": "Theirs", "period": "1h"},
                          headers=other.rw())  # fmt: skip
    theirs = (await resp.json())["uuid"]
    await clock.advance(1)
    await uic.get(f"/ping/{theirs}/fail")
    their_incident = await uic.app[appkeys.DB].read(
        lambda c: c.execute("SELECT id FROM incidents").fetchone()[0]
    )
    await owner_of_new_org(uic, clock, "acme", "ops@example.com")
    await sign_in(uic, "ops@example.com")
    token = await page_token(uic, "/monitors/new")
    for path in (f"/monitors/{theirs}", f"/monitors/{theirs}/edit", f"/incidents/{their_incident}"):
        resp = await uic.get(path)
        assert resp.status == 404, path
        assert "Theirs" not in await resp.text()
    for path in (f"/monitors/{theirs}/pause", f"/monitors/{theirs}/delete",
                 f"/incidents/{their_incident}/ack"):  # fmt: skip
        assert (await uic.post(path, data={"csrf_token": token})).status == 404, path
    assert "Theirs" not in await (await uic.get("/monitors")).text()
    assert "Theirs" not in await (await uic.get("/")).text()
    m = await uic.app[appkeys.DB].read(lambda c: monitors.by_uuid(c, theirs))
    inc = await uic.app[appkeys.DB].read(lambda c: incidents.get(c, their_incident))
    assert m is not None and m.status == "down" and inc is not None and inc.state == "open"


async def test_a_viewer_sees_pages_but_cannot_change_anything(
    uic: TestClient, clock: FakeClock
) -> None:
    org_id = await owner_of_new_org(uic, clock, "acme", "ops@example.com")
    await make_user(uic, clock, "look@example.com", org_id, "viewer")
    await sign_in(uic, "look@example.com")
    assert (await uic.get("/monitors")).status == 200
    assert (await uic.get("/monitors/new")).status == 403
    token = await page_token(uic, "/monitors")
    resp = await uic.post("/monitors/new", data={"csrf_token": token, "name": "x"})
    assert resp.status == 403


async def test_the_create_form_explains_errors_next_to_the_field(
    uic: TestClient, clock: FakeClock
) -> None:
    await owner_of_new_org(uic, clock, "acme", "ops@example.com")
    await sign_in(uic, "ops@example.com")
    token = await page_token(uic, "/monitors/new")
    resp = await uic.post("/monitors/new", data={"csrf_token": token, "name": "Job",
                                                 "kind": "cron", "cron": "61 * * * *",
                                                 "tz": "UTC", "grace": "5m"})  # fmt: skip
    html = await resp.text()
    assert resp.status == 400
    assert re.search(r'id="cron-error"[^>]*>[^<]*61', html), html
    assert 'id="cron" name="cron" class="mono" value="61 * * * *" aria-invalid="true"' in html
    uuid = await create_monitor(uic, kind="cron", cron="30 2 * * *", tz="Europe/London")
    m = await uic.app[appkeys.DB].read(lambda c: monitors.by_uuid(c, uuid))
    assert m is not None and (m.cron, m.tz, m.tags) == ("30 2 * * *", "Europe/London", "db prod")


async def test_the_schedule_preview_says_the_cron_in_words_with_the_next_five_runs(
    uic: TestClient, clock: FakeClock
) -> None:
    await owner_of_new_org(uic, clock, "acme", "ops@example.com")
    await sign_in(uic, "ops@example.com")
    resp = await uic.get("/ui/schedule", params={"kind": "cron", "cron": "0 9 * * 1-5",
                                                 "tz": "Europe/London"})  # fmt: skip
    data = await resp.json()
    assert data["ok"] and "Monday" in data["words"] and data["tz"] == "Europe/London"
    # 2026-03-02 is a Monday at 12:00 UTC: next is Tuesday 09:00 London time (GMT in March).
    assert len(data["next"]) == 5 and data["next"][0].startswith("2026-03-03 09:00:00 GMT")
    bad = await (
        await uic.get("/ui/schedule", params={"kind": "cron", "cron": "0 25 * * *"})
    ).json()
    assert bad["ok"] is False and bad["field"] == "cron" and "25" in bad["error"]
    period = await (
        await uic.get("/ui/schedule", params={"kind": "period", "period": "15m"})
    ).json()
    assert period["words"] == "every 15m"


async def test_acknowledge_resolve_and_comment_an_incident(
    uic: TestClient, clock: FakeClock
) -> None:
    await owner_of_new_org(uic, clock, "acme", "ops@example.com")
    await sign_in(uic, "ops@example.com")
    uuid = await create_monitor(uic)
    await uic.get(f"/ping/{uuid}/fail")
    inc_id = await uic.app[appkeys.DB].read(
        lambda c: c.execute("SELECT id FROM incidents").fetchone()[0]
    )
    token = await page_token(uic, f"/incidents/{inc_id}")
    resp = await uic.post(f"/incidents/{inc_id}/ack", data={"csrf_token": token})
    assert resp.status == 200 and "acknowledged" in await resp.text()
    resp = await uic.post(f"/incidents/{inc_id}/comment",
                          data={"csrf_token": token, "body": "Looking at the disk"})  # fmt: skip
    assert "Looking at the disk" in await resp.text()
    empty = await uic.post(f"/incidents/{inc_id}/comment", data={"csrf_token": token, "body": " "})
    assert empty.status == 400
    await uic.post(f"/incidents/{inc_id}/resolve", data={"csrf_token": token})
    inc = await uic.app[appkeys.DB].read(lambda c: incidents.get(c, inc_id))
    assert inc is not None and inc.state == "resolved" and inc.acknowledged_at is not None
    listed = await (await uic.get("/incidents")).text()
    assert f"#{inc_id} FAIL" not in listed  # the default list hides resolved incidents
    assert f"#{inc_id} FAIL" in await (await uic.get("/incidents?state=resolved")).text()


async def test_pause_and_resume_a_monitor(uic: TestClient, clock: FakeClock) -> None:
    await owner_of_new_org(uic, clock, "acme", "ops@example.com")
    await sign_in(uic, "ops@example.com")
    uuid = await create_monitor(uic)
    token = await page_token(uic, f"/monitors/{uuid}")
    html = await (await uic.post(f"/monitors/{uuid}/pause", data={"csrf_token": token})).text()
    assert "paused: no alerts" in html and ">Resume<" in html
    html = await (await uic.post(f"/monitors/{uuid}/resume", data={"csrf_token": token})).text()
    assert ">Pause<" in html


async def test_a_channel_is_added_tested_and_its_delivery_logged(
    uic: TestClient, clock: FakeClock
) -> None:
    await owner_of_new_org(uic, clock, "acme", "ops@example.com")
    await sign_in(uic, "ops@example.com")
    receiver = HookReceiver()
    try:
        token = await page_token(uic, "/settings/channels")
        bad = await uic.post("/settings/channels", data={"csrf_token": token, "kind": "webhook",
                                                         "name": "Hook", "config": "{nope"})  # fmt: skip
        assert bad.status == 400 and "not valid JSON" in await bad.text()
        resp = await uic.post("/settings/channels", data={
            "csrf_token": token, "kind": "webhook", "name": "Hook",
            "config": f'{{"url": "{receiver.url}"}}', "default": "on"}, allow_redirects=False)  # fmt: skip
        assert resp.status == 303, await resp.text()
        channel_page = resp.headers["Location"]
        resp = await uic.post(channel_page + "/test", data={"csrf_token": token})
        html = await resp.text()
        assert "Test alert sent" in html, html
        await asyncio.to_thread(receiver.wait_for, 1)
        assert "<td>test</td>" in html and "sent</span>" in html  # the delivery log
    finally:
        receiver.close()


async def test_a_new_api_key_is_shown_once(uic: TestClient, clock: FakeClock) -> None:
    await owner_of_new_org(uic, clock, "acme", "ops@example.com")
    await sign_in(uic, "ops@example.com")
    token = await page_token(uic, "/settings/keys")
    resp = await uic.post("/settings/keys", data={"csrf_token": token, "name": "deploy"})
    key = re.search(r'id="new-key" class="secret">(tfk_rw_[^<]+)<', await resp.text())
    assert key, "the new key is shown"
    api = await uic.get("/api/v1/monitors", headers={"X-Api-Key": key.group(1)})
    assert api.status == 200
    assert key.group(1) not in await (await uic.get("/settings/keys")).text()


async def test_an_invitation_link_is_shown_and_accepted(
    uic: TestClient, clock: FakeClock, aiohttp_client: Any
) -> None:
    await owner_of_new_org(uic, clock, "acme", "ops@example.com")
    await sign_in(uic, "ops@example.com")
    token = await page_token(uic, "/settings/members")
    resp = await uic.post("/settings/members/invite", data={"csrf_token": token,
                                                           "email": "new@example.com",
                                                           "role": "editor"})  # fmt: skip
    link = re.search(r'id="invite-link">[^<]*(/invite/[^<]+)<', await resp.text())
    assert link, "the invitation link is shown"
    uic.session.cookie_jar.clear()
    form_token = await page_token(uic, link.group(1))
    resp = await uic.post(link.group(1), data={"csrf_token": form_token, "name": "New",
                                               "password": PASSWORD}, allow_redirects=False)  # fmt: skip
    assert resp.status == 303, await resp.text()
    html = await (await uic.get("/")).text()
    assert "new@example.com (editor)" in html


async def test_the_event_stream_reports_a_monitor_that_changed(
    uic: TestClient, clock: FakeClock
) -> None:
    await owner_of_new_org(uic, clock, "acme", "ops@example.com")
    await sign_in(uic, "ops@example.com")
    uuid = await create_monitor(uic)
    stream = await uic.get("/ui/events")
    assert stream.status == 200 and stream.headers["Content-Type"] == "text/event-stream"
    assert b"event: hello" in await stream.content.readuntil(b"\n\n")
    await clock.advance(1)
    assert (await uic.get(f"/ping/{uuid}")).status == 200
    await clock.advance(1)
    event = await asyncio.wait_for(stream.content.readuntil(b"\n\n"), 5)
    assert event.startswith(b"event: monitors") and uuid.encode() in event
    assert b'"status":"up"' in event
    await uic.get(f"/ping/{uuid}/fail")
    await clock.advance(1)
    seen = b""
    while b"event: incidents" not in seen:
        seen += await asyncio.wait_for(stream.content.readuntil(b"\n\n"), 5)
    assert b'"open":1' in seen
    stream.close()


async def test_the_dashboard_partial_is_what_live_updates_swap_in(
    uic: TestClient, clock: FakeClock
) -> None:
    await owner_of_new_org(uic, clock, "acme", "ops@example.com")
    await sign_in(uic, "ops@example.com")
    uuid = await create_monitor(uic)
    await uic.get(f"/ping/{uuid}")
    part = await (await uic.get("/?partial=1")).text()
    assert "<html" not in part and 'data-count="up"' in part and uuid in part
    assert re.search(r'data-count="up">\s*<span class="n">1<', part)


async def test_metrics_reported_by_a_cronitor_client_are_charted_on_the_monitor_page(
    uic: TestClient, clock: FakeClock
) -> None:
    org_id = await owner_of_new_org(uic, clock, "acme", "ops@example.com")
    await sign_in(uic, "ops@example.com")
    uuid = await create_monitor(uic)
    ping_key = await uic.app[appkeys.DB].read(
        lambda c: c.execute("SELECT ping_key FROM orgs WHERE id = ?", (org_id,)).fetchone()[0]
    )
    for count in (10, 30, 20):
        resp = await uic.get(f"/p/{ping_key}/nightly-backup?state=complete&metric=count:{count}")
        assert resp.status == 200, await resp.text()
    html = await (await uic.get(f"/monitors/{uuid}")).text()
    assert "Reported metrics" in html and 'aria-label="count: last 3 values, latest 20"' in html
