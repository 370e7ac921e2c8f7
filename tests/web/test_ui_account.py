"""The account, organisation and settings pages of the web UI: password reset, two-factor set-up
and two-step sign-in, account forms, the organisation switcher, organisation settings, the audit
log, member roles, and onboarding; through the real app, real SQLite and a real SMTP server."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import html as htmllib
import io
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.cli_helpers import HookReceiver
from tests.conftest import MakeApp
from tests.engine.alert_env import Mailbox
from tests.web.api_helpers import body_of, make_org, make_user, totp_code
from tests.web.test_ui import PASSWORD, page_token, sign_in, token_of, ui_app
from tokiflow.clock import FakeClock
from tokiflow.engine import audit
from tokiflow.storage import accounts, monitors, orgs, outputs
from tokiflow.web import appkeys
from tokiflow.web.api import routes_account
from tokiflow.web.ui.context import ORG_COOKIE, current_viewer
from tokiflow.web.ui.pages_onboarding import welcome_redirect

ClientMaker = Callable[..., Awaitable[TestClient]]


@pytest.fixture
def start(
    aiohttp_client: Callable[[web.Application], Awaitable[TestClient]], make_app: MakeApp
) -> ClientMaker:
    async def make(**overrides: Any) -> TestClient:
        app = ui_app(make_app, **overrides)

        async def probe(request: web.Request) -> web.StreamResponse:
            """What the dashboard does first (the lead wires it into the dashboard)."""
            viewer = await current_viewer(request)
            assert viewer is not None
            await welcome_redirect(request, viewer)
            return web.Response(text="stay")

        app.router.add_get("/probe-welcome", probe)
        return await aiohttp_client(app)

    return make


@pytest.fixture
async def uic(start: ClientMaker) -> TestClient:
    return await start()


def field_error(html: str, name: str) -> str:
    found = re.search(rf'id="{re.escape(name)}-error"[^>]*>([^<]*)<', html)
    assert found, f"no error element for {name}"
    return htmllib.unescape(found.group(1))


def hidden(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no field {name}"
    return htmllib.unescape(found.group(1))


async def owner_org(client: TestClient, clock: FakeClock, slug: str = "acme",
                    email: str = "ops@example.com") -> int:  # fmt: skip
    org = await make_org(client, clock, slug)
    await make_user(client, clock, email, org.org_id, "owner")
    return org.org_id


async def user_row(client: TestClient, email: str) -> accounts.User:
    user = await client.app[appkeys.DB].read(lambda c: accounts.user_by_email(c, email))
    assert user is not None
    return user


async def audit_actions(client: TestClient, org_id: int) -> list[str]:
    rows = await client.app[appkeys.DB].read(lambda c: audit.entries(c, org_id, limit=500))
    return [e.action for e in rows]


async def post(client: TestClient, path: str, form: dict[str, str], *, token_page: str,
               follow: bool = True) -> tuple[int, str, Any]:  # fmt: skip
    token = await page_token(client, token_page)
    resp = await client.post(path, data={"csrf_token": token, **form}, allow_redirects=follow)
    return resp.status, await resp.text(), resp


# -- password reset ------------------------------------------------------------------------------


async def test_forgot_password_answers_alike_for_any_address_and_the_link_works_once(
    start: ClientMaker, clock: FakeClock, mailbox: Mailbox
) -> None:
    client = await start(**mailbox.settings())
    await owner_org(client, clock)
    login = await (await client.get("/login")).text()
    assert 'href="/password/forgot"' in login
    answers = []
    for email in ("nobody@example.com", "OPS@example.com"):
        status, html, _ = await post(client, "/password/forgot", {"email": email},
                                     token_page="/password/forgot")  # fmt: skip
        assert status == 200
        answers.append(html.replace(htmllib.escape(email), "EMAIL"))
    assert (
        answers[0] == answers[1] and "a link to choose a new password is on its way" in answers[0]
    )
    await client.app[routes_account.MAILER].drain()
    [msg] = await mailbox.wait_for(1)
    assert msg["To"] == "ops@example.com"
    base = client.app[appkeys.SETTINGS].public_url
    link = next(w for w in body_of(msg).split() if w.startswith(f"{base}/reset/"))
    path = link.removeprefix(base)
    resp = await client.get(path, allow_redirects=False)
    assert resp.status == 303
    form_path = resp.headers["Location"]
    assert form_path.startswith("/password/reset/")
    status, html, _ = await post(client, form_path, {"password": "my new password",
                                                     "password2": "another one!"},
                                 token_page=form_path)  # fmt: skip
    assert status == 400 and field_error(html, "password2") == "the two passwords differ"
    status, html, _ = await post(client, form_path, {"password": "short", "password2": "short"},
                                 token_page=form_path)  # fmt: skip
    assert status == 400 and "at least 10 characters" in field_error(html, "password")
    status, html, resp = await post(client, form_path, {"password": "my new password",
                                                        "password2": "my new password"},
                                    token_page=form_path, follow=False)  # fmt: skip
    assert (status, resp.headers["Location"]) == (303, "/login")
    # Used once: the link is refused now, before anyone types a password.
    again = await client.get(form_path)
    assert again.status == 400 and "already used or has expired" in await again.text()
    await sign_in(client, "ops@example.com", "my new password")


async def test_a_reset_signs_out_every_session_of_the_user(
    start: ClientMaker, clock: FakeClock, mailbox: Mailbox
) -> None:
    client = await start(**mailbox.settings())
    await owner_org(client, clock)
    await sign_in(client, "ops@example.com")
    assert (await client.get("/incidents", allow_redirects=False)).status == 200
    old = next(c.value for c in client.session.cookie_jar if c.key == "tokiflow_session")
    status, _, _ = await post(client, "/password/forgot", {"email": "ops@example.com"},
                              token_page="/password/forgot")  # fmt: skip
    assert status == 200
    await client.app[routes_account.MAILER].drain()
    [msg] = await mailbox.wait_for(1)
    token = next(w for w in body_of(msg).split() if "/reset/" in w).rsplit("/", 1)[1]
    form = {"password": "my new password", "password2": "my new password"}
    page = f"/password/reset/{token}"
    status, html, _ = await post(client, page, form, token_page=page)
    assert status == 200 and "every session signed out" in html
    jar_session = [c for c in client.session.cookie_jar if c.key == "tokiflow_session"]
    assert jar_session == []
    # The old session cookie, sent again by hand, no longer works either.
    client.session.cookie_jar.update_cookies({"tokiflow_session": old})
    resp = await client.get("/incidents", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith("/login")


async def test_a_reset_link_expires_after_an_hour(
    start: ClientMaker, clock: FakeClock, mailbox: Mailbox
) -> None:
    client = await start(**mailbox.settings())
    await owner_org(client, clock)
    await post(client, "/password/forgot", {"email": "ops@example.com"},
               token_page="/password/forgot")  # fmt: skip
    await client.app[routes_account.MAILER].drain()
    [msg] = await mailbox.wait_for(1)
    page = (
        "/password/reset/"
        + next(w for w in body_of(msg).split() if "/reset/" in w).rsplit("/", 1)[1]
    )
    assert (await client.get(page)).status == 200
    await clock.advance(3601)
    shown = await client.get(page)
    assert shown.status == 400 and "has expired" in await shown.text()
    status, html, _ = await post(client, page, {"password": "my new password",
                                                "password2": "my new password"},
                                 token_page="/login")  # fmt: skip
    assert status == 400 and "has expired" in field_error(html, "token")
    await sign_in(client, "ops@example.com")  # the old password still works


async def test_the_forgot_form_checks_its_token_and_the_address(
    uic: TestClient, clock: FakeClock
) -> None:
    await owner_org(uic, clock)
    await page_token(uic, "/password/forgot")
    resp = await uic.post("/password/forgot", data={"email": "ops@example.com",
                                                   "csrf_token": "forged-" * 6})  # fmt: skip
    assert resp.status == 403 and "form expired" in await resp.text()
    status, html, _ = await post(uic, "/password/forgot", {"email": "not-an-address"},
                                 token_page="/password/forgot")  # fmt: skip
    assert status == 400 and field_error(html, "email") == "enter the email address of your account"
    bad = await uic.get("/password/reset/made-up-token")
    assert bad.status == 400 and "invalid" in await bad.text()


# -- two-factor sign-in --------------------------------------------------------------------------


async def turn_on_totp(client: TestClient, clock: FakeClock) -> str:
    """Set up two-factor sign-in through the account page; the base32 secret."""
    status, html, _ = await post(client, "/account/totp/setup", {}, token_page="/account")
    assert status == 200, html
    secret = re.search(r'id="totp-secret" class="mono">([A-Z2-7]+)<', html)
    assert secret, "the secret is shown"
    uri = re.search(r'id="totp-uri" class="mono">([^<]+)<', html)
    assert uri and htmllib.unescape(uri.group(1)).startswith("otpauth://totp/Tokiflow:")
    form = {k: hidden(html, k) for k in ("setup_token", "secret", "otpauth_uri", "expires_at")}
    token = token_of(html)
    wrong = await client.post("/account/totp/confirm",
                              data={"csrf_token": token, **form, "code": "000000"})  # fmt: skip
    text = await wrong.text()
    assert wrong.status == 400 and "not right" in field_error(text, "code")
    assert secret.group(1) in text  # the set-up is still shown, to try again
    right = await client.post("/account/totp/confirm", data={
        "csrf_token": token, **form, "code": totp_code(secret.group(1), clock.now())})  # fmt: skip
    assert right.status == 200 and "Two-factor sign-in is on" in await right.text()
    return secret.group(1)


async def password_step(client: TestClient, email: str, password: str) -> str:
    status, html, _ = await post(client, "/login", {"email": email, "password": password,
                                                    "next": "/monitors"}, token_page="/login")  # fmt: skip
    assert status == 200, html
    return html


async def test_two_factor_sign_in_asks_for_the_code_without_telling_if_the_password_was_right(
    uic: TestClient, clock: FakeClock
) -> None:
    await owner_org(uic, clock)
    await sign_in(uic, "ops@example.com")
    secret = await turn_on_totp(uic, clock)
    assert "Turn two-factor sign-in off" in await (await uic.get("/account")).text()
    uic.session.cookie_jar.clear()
    await clock.advance(30)
    right_pw = await password_step(uic, "ops@example.com", PASSWORD)
    wrong_pw = await password_step(uic, "ops@example.com", "not the password")
    for page in (right_pw, wrong_pw):
        assert "Two-factor code" in page and 'action="/login/code"' in page
        assert "wrong" not in page.lower()
    assert not [c for c in uic.session.cookie_jar if c.key == "tokiflow_session"]

    async def code_step(page: str, code: str) -> Any:
        form = {k: hidden(page, k) for k in ("csrf_token", "next", "email", "ticket")}
        return await uic.post("/login/code", data={**form, "code": code}, allow_redirects=False)

    code = totp_code(secret, clock.now())
    refused = await code_step(wrong_pw, code)  # the right code cannot rescue a wrong password
    assert refused.status == 401
    assert "wrong email, password or two-factor code" in await refused.text()
    wrong_code = await code_step(right_pw, "123456")
    assert wrong_code.status == 401
    assert "wrong email, password or two-factor code" in await wrong_code.text()
    assert (await user_row(uic, "ops@example.com")).failed_logins == 2
    signed = await code_step(right_pw, code)
    assert (signed.status, signed.headers["Location"]) == (303, "/monitors")
    assert (await uic.get("/monitors", allow_redirects=False)).status == 200
    assert (await user_row(uic, "ops@example.com")).failed_logins == 0
    # A code works once: signing in again in the same 30 s with it is refused.
    uic.session.cookie_jar.clear()
    again = await password_step(uic, "ops@example.com", PASSWORD)
    assert (await code_step(again, code)).status == 401


async def test_the_code_step_refuses_an_old_or_altered_ticket(
    uic: TestClient, clock: FakeClock
) -> None:
    await owner_org(uic, clock)
    await sign_in(uic, "ops@example.com")
    secret = await turn_on_totp(uic, clock)
    uic.session.cookie_jar.clear()
    page = await password_step(uic, "ops@example.com", PASSWORD)
    form = {k: hidden(page, k) for k in ("csrf_token", "next", "email", "ticket")}
    await clock.advance(301)
    late = await uic.post("/login/code",
                          data={**form, "code": totp_code(secret, clock.now())})  # fmt: skip
    assert late.status == 400 and "took too long" in await late.text()
    page = await password_step(uic, "ops@example.com", PASSWORD)
    form = {k: hidden(page, k) for k in ("csrf_token", "next", "email", "ticket")}
    ticket = form["ticket"]
    altered = ticket[:-6] + ("AAAA" if not ticket[-6:-2] == "AAAA" else "BBBB") + ticket[-2:]
    resp = await uic.post("/login/code", data={**form, "ticket": altered,
                                               "code": totp_code(secret, clock.now())})  # fmt: skip
    assert resp.status == 400
    resp = await uic.post("/login/code", data={**form, "csrf_token": "forged-" * 6,
                                               "code": totp_code(secret, clock.now())})  # fmt: skip
    assert resp.status == 403
    assert (await uic.get("/login/code", allow_redirects=False)).headers["Location"] == "/login"


async def test_turning_two_factor_off_takes_the_password_and_a_current_code(
    uic: TestClient, clock: FakeClock
) -> None:
    org_id = await owner_org(uic, clock)
    await sign_in(uic, "ops@example.com")
    secret = await turn_on_totp(uic, clock)
    await clock.advance(30)
    code = totp_code(secret, clock.now())
    status, html, _ = await post(uic, "/account/totp/disable",
                                 {"password": "not my password", "code": code},
                                 token_page="/account")  # fmt: skip
    assert status == 400 and "not your current password" in field_error(html, "totp_password")
    status, html, _ = await post(uic, "/account/totp/disable",
                                 {"password": PASSWORD, "code": "000000"},
                                 token_page="/account")  # fmt: skip
    assert status == 400 and "not right" in field_error(html, "totp_code")
    status, html, _ = await post(uic, "/account/totp/disable",
                                 {"password": PASSWORD, "code": code}, token_page="/account")  # fmt: skip
    assert status == 200 and "Two-factor sign-in is off" in html
    assert (await user_row(uic, "ops@example.com")).totp_secret is None
    # Sign-in is one step again.
    uic.session.cookie_jar.clear()
    await sign_in(uic, "ops@example.com")
    actions = await audit_actions(uic, org_id)
    assert "account.totp_on" in actions and "account.totp_off" in actions


# -- account forms -------------------------------------------------------------------------------


async def test_the_account_forms_save_and_explain_bad_input_next_to_the_field(
    start: ClientMaker, clock: FakeClock
) -> None:
    uic = await start()
    await owner_org(uic, clock)
    await sign_in(uic, "ops@example.com")
    html = await (await uic.get("/account")).text()
    assert "Two-factor sign-in" in html and "Set up two-factor sign-in" in html
    status, html, _ = await post(uic, "/account/profile", {"name": "Olive", "tz": "Mars/Base"},
                                 token_page="/account")  # fmt: skip
    assert status == 400 and "unknown time zone" in field_error(html, "tz")
    status, html, _ = await post(uic, "/account/profile",
                                 {"name": "Olive", "tz": "Europe/London"}, token_page="/account")  # fmt: skip
    assert status == 200 and "Profile saved" in html
    user = await user_row(uic, "ops@example.com")
    assert (user.name, user.tz) == ("Olive", "Europe/London")
    status, html, _ = await post(uic, "/account/notifications",
                                 {"mode": "immediate", "quiet_start": "22:00", "quiet_end": ""},
                                 token_page="/account")  # fmt: skip
    assert status == 400 and "both" in field_error(html, "quiet_end")
    status, html, _ = await post(uic, "/account/notifications",
                                 {"mode": "bogus"}, token_page="/account")  # fmt: skip
    assert status == 400 and field_error(html, "mode")
    status, html, _ = await post(uic, "/account/notifications",
                                 {"mode": "digest", "tags": "db, prod", "quiet_start": "22:00",
                                  "quiet_end": "07:00"}, token_page="/account")  # fmt: skip
    assert status == 200 and "Notification preferences for Acme saved" in html
    assert 'value="digest" checked' in html and 'value="db prod"' in html
    # Password: the two must match and the current one must be right.
    status, html, _ = await post(uic, "/account/password",
                                 {"current_password": PASSWORD, "new_password": "a new password!",
                                  "new_password2": "different"}, token_page="/account")  # fmt: skip
    assert status == 400 and field_error(html, "new_password2") == "the two passwords differ"
    status, html, _ = await post(uic, "/account/password",
                                 {"current_password": "wrong password", "new_password": "x" * 12,
                                  "new_password2": "x" * 12}, token_page="/account")  # fmt: skip
    assert status == 400 and "not your current password" in field_error(html, "current_password")
    status, html, _ = await post(uic, "/account/password",
                                 {"current_password": PASSWORD, "new_password": "a new password!",
                                  "new_password2": "a new password!"}, token_page="/account")  # fmt: skip
    assert status == 200 and "Password changed" in html
    assert (await uic.get("/account", allow_redirects=False)).status == 200  # still signed in


async def test_a_password_change_signs_out_the_other_sessions(
    uic: TestClient, clock: FakeClock, aiohttp_client: Any
) -> None:
    await owner_org(uic, clock)
    await sign_in(uic, "ops@example.com")
    second = await aiohttp_client(uic.server)  # another browser on the same server
    await sign_in(second, "ops@example.com")
    assert (await second.get("/incidents", allow_redirects=False)).status == 200
    status, _, _ = await post(uic, "/account/password",
                              {"current_password": PASSWORD, "new_password": "a new password!",
                               "new_password2": "a new password!"}, token_page="/account")  # fmt: skip
    assert status == 200
    assert (await second.get("/incidents", allow_redirects=False)).status == 303
    assert (await uic.get("/incidents", allow_redirects=False)).status == 200


async def test_session_forms_without_the_csrf_token_change_nothing(
    uic: TestClient, clock: FakeClock
) -> None:
    org_id = await owner_org(uic, clock)
    await sign_in(uic, "ops@example.com")
    for path, form in (
        ("/account/profile", {"name": "Sneaky", "tz": "UTC"}),
        ("/account/password", {"current_password": PASSWORD, "new_password": "x" * 12,
                               "new_password2": "x" * 12}),
        ("/settings/org", {"name": "Sneaky"}),
        ("/settings/org/ping-key", {}),
        ("/settings/org/redactions", {"pattern": "abc"}),
        ("/welcome", {"name": "Sneaky"}),
        ("/welcome/alerts", {"kind": "webhook", "target": "https://example.com"}),
        ("/account/org", {"org": "acme"}),
        ("/settings/members/1/role", {"role": "viewer"}),
    ):  # fmt: skip
        for token in (None, "wrong-token"):
            data = form if token is None else {**form, "csrf_token": token}
            resp = await uic.post(path, data=data, allow_redirects=False)
            assert resp.status == 403, path
    org = await uic.app[appkeys.DB].read(lambda c: orgs.get(c, org_id))
    assert org is not None and org.name == "Acme"
    assert (await user_row(uic, "ops@example.com")).name == ""
    assert await uic.app[appkeys.DB].read(lambda c: monitors.list_for_org(c, org_id)) == []


# -- organisation switcher -----------------------------------------------------------------------


async def test_a_member_of_two_organisations_switches_between_them_from_the_header(
    uic: TestClient, clock: FakeClock
) -> None:
    await owner_org(uic, clock, "acme")
    beta = await make_org(uic, clock, "beta")
    await make_org(uic, clock, "gamma")  # not a member of this one
    uid = (await user_row(uic, "ops@example.com")).id
    await uic.app[appkeys.DB].write(
        lambda c: accounts.add_member(c, uid, beta.org_id, "viewer", clock.now())
    )
    await sign_in(uic, "ops@example.com")
    html = await (await uic.get("/settings/org")).text()
    assert 'id="org-switch"' in html and '<option value="beta" >Beta (viewer)' in html
    assert "Acme · ops@example.com (owner)" in html
    status, html, resp = await post(uic, "/account/org", {"org": "beta"}, token_page="/account",
                                    follow=False)  # fmt: skip
    assert (status, resp.headers["Location"]) == (303, "/")
    assert resp.cookies[ORG_COOKIE].value == "beta"
    html = await (await uic.get("/settings/org")).text()
    assert "Beta · ops@example.com (viewer)" in html
    assert 'action="/settings/org/ping-key"' not in html  # a viewer here
    status, html, _ = await post(uic, "/account/org", {"org": "gamma"}, token_page="/account")
    assert status == 404 and "not a member" in html
    assert "Beta · ops@example.com (viewer)" in await (await uic.get("/settings/org")).text()
    # A role that may read nothing here (billing) may still switch away.
    await uic.app[appkeys.DB].write(lambda c: accounts.set_role(c, uid, beta.org_id, "billing"))
    status, _, resp = await post(uic, "/account/org", {"org": "acme"}, token_page="/account",
                                 follow=False)  # fmt: skip
    assert status == 303 and resp.cookies[ORG_COOKIE].value == "acme"


async def test_a_single_organisation_shows_no_switcher(uic: TestClient, clock: FakeClock) -> None:
    await owner_org(uic, clock)
    await sign_in(uic, "ops@example.com")
    assert 'id="org-switch"' not in await (await uic.get("/account")).text()


# -- organisation settings -----------------------------------------------------------------------


async def test_organisation_settings_rename_rotate_and_redaction_patterns(
    uic: TestClient, clock: FakeClock
) -> None:
    org_id = await owner_org(uic, clock)
    await sign_in(uic, "ops@example.com")
    old = await uic.app[appkeys.DB].read(lambda c: orgs.get(c, org_id))
    assert old is not None
    html = await (await uic.get("/settings/org")).text()
    for text in (old.ping_key, "Sentry DSN", "Captured output", "0 B on disk in 0 files",
                 "Redaction patterns", 'href="/settings/audit"',
                 'aria-current="page">Organisation'):  # fmt: skip
        assert text in html, text
    status, html, _ = await post(uic, "/settings/org", {"name": "  "}, token_page="/settings/org")
    assert status == 400 and "blank" in field_error(html, "name")
    status, html, _ = await post(uic, "/settings/org", {"name": "Acme Ops"},
                                 token_page="/settings/org")  # fmt: skip
    assert status == 200 and "Organisation renamed" in html and "Acme Ops ·" in html
    status, html, _ = await post(uic, "/settings/org/ping-key", {}, token_page="/settings/org")
    new = await uic.app[appkeys.DB].read(lambda c: orgs.get(c, org_id))
    assert new is not None and new.ping_key != old.ping_key
    assert new.ping_key in html and old.ping_key not in html
    status, html, _ = await post(uic, "/settings/org/redactions", {"pattern": "acct-(", "note": ""},
                                 token_page="/settings/org")  # fmt: skip
    assert status == 400 and "invalid redaction pattern" in field_error(html, "pattern")
    assert 'value="acct-("' in html
    status, html, _ = await post(uic, "/settings/org/redactions",
                                 {"pattern": r"acct-(?P<secret>\d{8})", "note": "account numbers"},
                                 token_page="/settings/org")  # fmt: skip
    assert status == 200 and "account numbers" in html
    [pattern] = await uic.app[appkeys.DB].read(lambda c: outputs.list_patterns(c, org_id))
    assert pattern.pattern == r"acct-(?P<secret>\d{8})"
    # Another organisation's pattern (and a made-up id) is not found here.
    other = await make_org(uic, clock, "other")
    theirs = await uic.app[appkeys.DB].write(
        lambda c: outputs.add_pattern(c, other.org_id, "theirs", "", clock.now())
    )
    for pid in (theirs.id, 999, "x", "²", 2**63):
        status, html, _ = await post(uic, f"/settings/org/redactions/{pid}/delete", {},
                                     token_page="/settings/org")  # fmt: skip
        assert status == 404, pid
    status, html, _ = await post(uic, f"/settings/org/redactions/{pattern.id}/delete", {},
                                 token_page="/settings/org")  # fmt: skip
    assert status == 200 and "Pattern removed" in html
    assert await uic.app[appkeys.DB].read(lambda c: outputs.list_patterns(c, org_id)) == []
    assert len(await uic.app[appkeys.DB].read(lambda c: outputs.list_patterns(c, other.org_id)))
    actions = await audit_actions(uic, org_id)
    for action in ("org.update", "org.ping_key_rotate", "redaction.add", "redaction.remove"):
        assert action in actions, action


async def test_a_viewer_sees_the_organisation_but_changes_nothing(
    uic: TestClient, clock: FakeClock
) -> None:
    org_id = await owner_org(uic, clock)
    await make_user(uic, clock, "look@example.com", org_id, "viewer")
    await sign_in(uic, "look@example.com")
    html = await (await uic.get("/settings/org")).text()
    assert "Acme" in html and "Rotate the ping key" not in html and "Add a pattern" not in html
    assert 'href="/settings/audit"' not in html
    token = token_of(html)
    for path, form in (("/settings/org", {"name": "Mine"}), ("/settings/org/ping-key", {}),
                       ("/settings/org/redactions", {"pattern": "abc"}),
                       ("/settings/members/1/role", {"role": "viewer"}),
                       ("/settings/members/1/remove", {})):  # fmt: skip
        resp = await uic.post(path, data={"csrf_token": token, **form})
        assert resp.status == 403, path
    assert (await uic.get("/settings/audit")).status == 403
    assert (await uic.get("/settings/audit/export?format=csv")).status == 403
    org = await uic.app[appkeys.DB].read(lambda c: orgs.get(c, org_id))
    assert org is not None and org.name == "Acme"


# -- audit log -----------------------------------------------------------------------------------


async def test_the_audit_log_filters_pages_and_exports_what_it_shows(
    uic: TestClient, clock: FakeClock
) -> None:
    org_id = await owner_org(uic, clock)
    await sign_in(uic, "ops@example.com")
    db, start_at = uic.app[appkeys.DB], clock.now()

    def write(conn: Any) -> None:
        for n in range(60):
            actor = audit.Actor("user", 1, "ops@example.com" if n % 2 else "ci-key")
            action = "monitor.update" if n % 3 else "monitor.create"
            audit.record(conn, org_id=org_id, actor=actor, action=action,
                         target_kind="monitor", target_id=f"m{n}", after={"n": n},
                         now=start_at + dt.timedelta(minutes=n))  # fmt: skip

    await db.write(write)
    other = await make_org(uic, clock, "other")
    await db.write(lambda c: audit.record(c, org_id=other.org_id, actor=audit.CLI,
                                          action="monitor.create", now=start_at))  # fmt: skip
    html = await (await uic.get("/settings/audit")).text()
    assert html.count("data-audit-id=") == 50 and "Older entries" in html
    older = re.search(r'href="(/settings/audit\?before_id=\d+)" rel="next"', html)
    assert older
    rest = await (await uic.get(htmllib.unescape(older.group(1)))).text()
    assert rest.count("data-audit-id=") == 10 and "Older entries" not in rest and "Newest" in rest
    for bad in ("x", "²", str(2**63)):  # a made-up cursor shows the newest page
        resp = await uic.get("/settings/audit", params={"before_id": bad})
        assert resp.status == 200 and (await resp.text()).count("data-audit-id=") == 50, bad
    by_actor = await (await uic.get("/settings/audit", params={"actor": "CI-KEY"})).text()
    assert by_actor.count("data-audit-id=") == 30
    created = await (await uic.get("/settings/audit", params={"action": "monitor.create"})).text()
    assert created.count("data-audit-id=") == 20
    prefix = await (await uic.get("/settings/audit", params={"action": "monitor.*"})).text()
    assert prefix.count("data-audit-id=") == 50
    one = await (await uic.get("/settings/audit", params={"target": "monitor:m7"})).text()
    assert one.count("data-audit-id=") == 1 and '{"n": 7}' in htmllib.unescape(one)
    # The time range is read in the viewer's time zone (UTC here): minutes 10 to 19.
    window = {"since": "2026-03-02T12:10", "until": "2026-03-02T12:20"}
    ranged = await (await uic.get("/settings/audit", params=window)).text()
    assert ranged.count("data-audit-id=") == 10
    bad = await uic.get("/settings/audit", params={"since": "yesterday"})
    assert bad.status == 400 and "not a date" in field_error(await bad.text(), "since")
    assert "No entry matches" in await (await uic.get("/settings/audit",
                                                        params={"actor": "nobody"})).text()  # fmt: skip
    # Exports carry the same filters and the API's columns.
    links = re.findall(r'href="(/settings/audit/export\?[^"]+)"', ranged)
    assert len(links) == 2
    resp = await uic.get(htmllib.unescape(next(u for u in links if "format=csv" in u)))
    assert resp.status == 200 and resp.content_type == "text/csv"
    assert "attachment" in resp.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(await resp.text())))
    assert len(rows) == 10 and {r["target_id"] for r in rows} == {f"m{n}" for n in range(10, 20)}
    resp = await uic.get("/settings/audit/export", params={"format": "json", "actor": "ci-key"})
    data = json.loads(await resp.text())
    assert len(data) == 30 and all(e["actor"]["label"] == "ci-key" for e in data)
    everything = json.loads(await (await uic.get("/settings/audit/export?format=json")).text())
    assert len(everything) == 60  # nothing of the other organisation
    assert (await uic.get("/settings/audit/export?format=xml")).status == 400


# -- members -------------------------------------------------------------------------------------


async def test_admins_change_roles_and_remove_members_within_the_rules(
    uic: TestClient, clock: FakeClock
) -> None:
    org_id = await owner_org(uic, clock)
    await make_user(uic, clock, "ed@example.com", org_id, "editor")
    await make_user(uic, clock, "ad@example.com", org_id, "admin")
    other = await make_org(uic, clock, "other")
    await make_user(uic, clock, "them@example.com", other.org_id, "editor")
    ed, owner = await user_row(uic, "ed@example.com"), await user_row(uic, "ops@example.com")
    them = await user_row(uic, "them@example.com")
    await sign_in(uic, "ops@example.com")
    html = await (await uic.get("/settings/members")).text()
    assert f'action="/settings/members/{ed.id}/role"' in html and "Pending invitations" in html
    status, html, _ = await post(uic, f"/settings/members/{ed.id}/role", {"role": "viewer"},
                                 token_page="/settings/members")  # fmt: skip
    assert status == 200 and "ed@example.com is now viewer" in html
    m = await uic.app[appkeys.DB].read(lambda c: accounts.membership(c, ed.id, org_id))
    assert m is not None and m.role == "viewer"
    status, html, _ = await post(uic, f"/settings/members/{ed.id}/role", {"role": "king"},
                                 token_page="/settings/members")  # fmt: skip
    assert status == 200 and "must be one of" in html
    status, html, _ = await post(uic, f"/settings/members/{owner.id}/role", {"role": "admin"},
                                 token_page="/settings/members")  # fmt: skip
    assert "last owner" in html
    for path in (f"/settings/members/{them.id}/role", f"/settings/members/{them.id}/remove",
                 "/settings/members/nope/remove"):  # fmt: skip
        status, html, _ = await post(uic, path, {"role": "viewer"}, token_page="/settings/members")
        assert status == 404, path
    status, html, _ = await post(uic, f"/settings/members/{ed.id}/remove", {},
                                 token_page="/settings/members")  # fmt: skip
    assert status == 200 and "Member removed" in html and "ed@example.com" not in html
    actions = await audit_actions(uic, org_id)
    assert "member.role" in actions and "member.remove" in actions
    # An admin (not owner) cannot hand out the owner role.
    uic.session.cookie_jar.clear()
    await sign_in(uic, "ad@example.com")
    ad = await user_row(uic, "ad@example.com")
    status, html, _ = await post(uic, f"/settings/members/{ad.id}/role", {"role": "owner"},
                                 token_page="/settings/members")  # fmt: skip
    assert "only an owner" in html
    m = await uic.app[appkeys.DB].read(lambda c: accounts.membership(c, ad.id, org_id))
    assert m is not None and m.role == "admin"


# -- onboarding ----------------------------------------------------------------------------------


async def test_a_new_organisation_is_welcomed_until_it_has_a_monitor_or_skips_the_tour(
    uic: TestClient, clock: FakeClock
) -> None:
    org_id = await owner_org(uic, clock)
    await make_user(uic, clock, "look@example.com", org_id, "viewer")
    await sign_in(uic, "ops@example.com")
    resp = await uic.get("/probe-welcome", allow_redirects=False)
    assert (resp.status, resp.headers["Location"]) == (303, "/welcome")
    assert await (await uic.get("/probe-welcome?partial=1")).text() == "stay"
    status, html, resp = await post(uic, "/welcome/done", {}, token_page="/welcome",
                                    follow=False)  # fmt: skip
    assert (status, resp.headers["Location"]) == (303, "/")
    assert await (await uic.get("/probe-welcome")).text() == "stay"
    # Another browser of the same user is still welcomed; a viewer never is.
    uic.session.cookie_jar.clear()
    await sign_in(uic, "ops@example.com")
    assert (await uic.get("/probe-welcome", allow_redirects=False)).status == 303
    uic.session.cookie_jar.clear()
    await sign_in(uic, "look@example.com")
    assert await (await uic.get("/probe-welcome")).text() == "stay"
    assert (await uic.get("/welcome")).status == 403


async def test_onboarding_creates_a_monitor_shows_its_first_ping_and_adds_a_tested_channel(
    uic: TestClient, clock: FakeClock
) -> None:
    org_id = await owner_org(uic, clock)
    await sign_in(uic, "ops@example.com")
    html = await (await uic.get("/welcome")).text()
    assert "Step 1 of 3" in html and 'aria-current="step"' in html
    status, html, _ = await post(uic, "/welcome", {"name": " ", "period": "1d", "grace": "1h"},
                                 token_page="/welcome")  # fmt: skip
    assert status == 400 and "give the job a name" in field_error(html, "name")
    status, html, _ = await post(uic, "/welcome", {"name": "Backup", "period": "fortnightly",
                                                   "grace": "1h"}, token_page="/welcome")  # fmt: skip
    assert status == 400 and field_error(html, "period")
    status, html, resp = await post(uic, "/welcome", {"name": "Nightly backup", "period": "1d",
                                                      "grace": "1h"},
                                    token_page="/welcome", follow=False)  # fmt: skip
    assert status == 303
    step2 = resp.headers["Location"]
    uuid = step2.rsplit("/", 1)[1]
    html = await (await uic.get(step2)).text()
    assert f"/ping/{uuid}" in html and f'data-live-src="/welcome/ping/{uuid}/status"' in html
    assert "/static/onboarding.js" in html and f'data-test-ping="/ping/{uuid}"' in html
    assert 'data-first-ping="waiting"' in html
    assert await (await uic.get("/probe-welcome")).text() == "stay"  # it has a monitor now
    assert (await uic.get(f"/ping/{uuid}")).status == 200
    part = await (await uic.get(f"/welcome/ping/{uuid}/status")).text()
    assert "<html" not in part and 'data-first-ping="received"' in part

    # Step 3: a webhook channel, then a test alert that reaches the receiver.
    receiver = HookReceiver()
    try:
        status, html, _ = await post(uic, "/welcome/alerts", {"kind": "webhook", "target": ""},
                                     token_page="/welcome/alerts")  # fmt: skip
        assert status == 400 and field_error(html, "target") == "this is needed to send alerts"
        status, html, _ = await post(uic, "/welcome/alerts", {"kind": "webhook",
                                                              "target": "not a url"},
                                     token_page="/welcome/alerts")  # fmt: skip
        assert status == 400 and field_error(html, "target")
        status, html, _ = await post(uic, "/welcome/alerts", {"kind": "pigeon", "target": "x"},
                                     token_page="/welcome/alerts")  # fmt: skip
        assert status == 400 and field_error(html, "kind")
        status, html, resp = await post(uic, "/welcome/alerts",
                                        {"kind": "webhook", "target": receiver.url,
                                         "name": "Ops hook"},
                                        token_page="/welcome/alerts", follow=False)  # fmt: skip
        assert status == 303
        location = resp.headers["Location"]
        channel_id = location.rsplit("=", 1)[1]
        html = await (await uic.get(location)).text()
        assert "Ops hook" in html and "Send test alert" in html
        status, html, _ = await post(uic, f"/welcome/alerts/{channel_id}/test", {},
                                     token_page=location)  # fmt: skip
        assert status == 200 and "Test alert sent" in html
        await asyncio.to_thread(receiver.wait_for, 1)
    finally:
        receiver.close()
    status, html, resp = await post(uic, "/welcome/done?finished=1", {}, token_page=location,
                                    follow=False)  # fmt: skip
    assert (status, resp.headers["Location"]) == (303, "/")
    actions = await audit_actions(uic, org_id)
    assert "monitor.create" in actions and "channel.create" in actions


async def test_onboarding_pages_show_nothing_of_another_organisation(
    uic: TestClient, clock: FakeClock
) -> None:
    other = await make_org(uic, clock, "other")
    resp = await uic.post("/api/v1/monitors", json={"name": "Theirs", "period": "1h"},
                          headers=other.rw())  # fmt: skip
    theirs = (await resp.json())["uuid"]
    resp = await uic.post("/api/v1/channels", headers=other.rw(), json={
        "kind": "webhook", "name": "Their hook", "config": {"url": "https://example.com/h"}})  # fmt: skip
    their_channel = (await resp.json())["id"]
    await owner_org(uic, clock)
    await sign_in(uic, "ops@example.com")
    for path in (f"/welcome/ping/{theirs}", f"/welcome/ping/{theirs}/status"):
        resp = await uic.get(path)
        assert resp.status == 404 and "Theirs" not in await resp.text(), path
    html = await (await uic.get(f"/welcome/alerts?channel={their_channel}")).text()
    assert "Their hook" not in html
    for bad in ("²", str(2**63)):
        assert (await uic.get(f"/welcome/alerts?channel={bad}")).status == 200, bad
    status, _, _ = await post(uic, f"/welcome/alerts/{their_channel}/test", {},
                              token_page="/welcome/alerts")  # fmt: skip
    assert status == 404


async def test_every_new_page_renders(uic: TestClient, clock: FakeClock) -> None:
    await owner_org(uic, clock)
    await sign_in(uic, "ops@example.com")
    expected = {
        "/account": ["Your account", "Notifications in Acme", "Change password"],
        "/settings/org": ["Ping key", "Captured output"],
        "/settings/audit": ["Audit log", "Export CSV", "Export JSON"],
        "/settings/members": ["Change role", "Invite someone"],
        "/welcome": ["Step 1 of 3", "Skip the tour"],
        "/welcome/alerts": ["Step 3 of 3", "Webhook"],
    }
    for path, texts in expected.items():
        resp = await uic.get(path)
        html = await resp.text()
        assert resp.status == 200, (path, html)
        for text in texts:
            assert text in html, (path, text)
        assert " style=" not in html and "<script>" not in html
    uic.session.cookie_jar.clear()
    for path in ("/password/forgot", "/login"):
        assert (await uic.get(path)).status == 200
    for path in ("/account", "/settings/org", "/settings/audit", "/welcome"):
        resp = await uic.get(path, allow_redirects=False)
        assert resp.status == 303 and resp.headers["Location"].startswith("/login?next="), path
