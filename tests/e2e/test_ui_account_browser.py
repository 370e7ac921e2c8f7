"""Account and organisation pages in a real browser (Debian's headless Chromium via Playwright)
against a real `tokiflow serve`: first-run setup leads into onboarding (a monitor whose first
ping, sent by the test, turns the waiting panel green without a reload; a webhook channel and
its test alert reaching a local receiver), inviting a member who accepts in a fresh browser
context and signs in, and the audit log showing all of it. Screenshots go to
tests/e2e/artifacts/."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.cli_helpers import HookReceiver, Server
from tests.e2e.browser import PageWatch, browser_page, shot
from tests.e2e.test_ui_browser import ping

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

EMAIL = "owner@example.com"
PASSWORD = "correct horse battery"
MEMBER = "new.member@example.com"
MEMBER_PASSWORD = "member's long password"


def setup_into_onboarding(page: Any, server: Server) -> None:
    page.goto(server.url + "/")
    assert page.url.endswith("/setup")
    page.fill("#email", EMAIL)
    page.fill("#name", "Olive Owner")
    page.fill("#org_name", "Acme")
    page.fill("#password", PASSWORD)
    page.fill("#password2", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/welcome$"))


def first_monitor_and_its_first_ping(page: Any, server: Server) -> str:
    assert page.is_visible("text=Step 1 of 3")
    shot(page, "acct-01-welcome")
    page.click("button:has-text('Create the monitor')")  # no name yet
    page.locator("#name-error").filter(has_text="give the job a name").wait_for()
    assert page.get_attribute("#name", "aria-invalid") == "true"
    page.fill("#name", "Nightly backup")
    page.select_option("#period", "1h")
    page.click("button:has-text('Create the monitor')")
    page.wait_for_url(re.compile(r"/welcome/ping/[0-9a-f-]{36}$"))
    uuid = str(page.url.rsplit("/", 1)[1])
    assert f"/ping/{uuid}" in (page.text_content("#welcome-url") or "")
    page.wait_for_selector("[data-first-ping=waiting]")
    page.wait_for_selector("body[data-live-connected='1']")
    page.evaluate("window.__noReload = 'still here'")
    shot(page, "acct-02-welcome-waiting")
    ping(server, f"/ping/{uuid}")
    page.wait_for_selector("[data-first-ping=received]", timeout=20_000)
    assert page.evaluate("window.__noReload") == "still here"
    # The page's own button pings too (onboarding.js; same origin, allowed by the CSP).
    page.click("button[data-test-ping]")
    page.locator("#test-ping-result").filter(has_text="Sent").wait_for()
    shot(page, "acct-03-welcome-received")
    return uuid


def webhook_channel_and_test_alert(page: Any, receiver: HookReceiver) -> None:
    page.click("text=Next: alerts")
    page.wait_for_url(re.compile(r"/welcome/alerts$"))
    page.check("input[name=kind][value=webhook]")
    page.fill("#target", "")
    page.click("button:has-text('Add the channel')")
    page.locator("#target-error").filter(has_text="needed").wait_for()
    page.fill("#target", receiver.url)
    page.fill("#channel-name", "Ops hook")
    page.click("button:has-text('Add the channel')")
    page.wait_for_url(re.compile(r"/welcome/alerts\?channel=\d+$"))
    page.click("button:has-text('Send test alert')")
    page.wait_for_selector(".flash:has-text('Test alert sent')")
    receiver.wait_for(1)
    _, headers, body = receiver.requests[0]
    assert b"test" in body.lower(), body
    shot(page, "acct-04-welcome-alerts")
    page.click("button:has-text('Finish')")
    page.wait_for_url(re.compile(r"/$"))


def invite_member(page: Any, server: Server) -> str:
    page.goto(server.url + "/settings/members")
    page.fill("#invite-email", MEMBER)
    page.select_option("#invite-role", "editor")
    page.click("button:has-text('Send invitation')")
    page.wait_for_selector("#invite-link")
    link = (page.text_content("#invite-link") or "").strip()
    assert "/invite/" in link, link
    assert page.is_visible(f"td:has-text('{MEMBER}')")  # the pending invitation
    shot(page, "acct-05-members-invited")
    return link.split("/invite/", 1)[1]


def accept_in_a_fresh_context(page: Any, server: Server, token: str) -> PageWatch:
    """The invited person, in a browser context sharing nothing with the owner's."""
    context = page.context.browser.new_context(viewport={"width": 1280, "height": 900})
    member = context.new_page()
    member.set_default_timeout(15_000)
    watch = PageWatch(server.url)
    watch.attach(member)
    member.goto(f"{server.url}/invite/{token}")
    member.fill("#name", "Nia Member")
    member.fill("#password", MEMBER_PASSWORD)
    shot(member, "acct-06-invite")
    member.click("button:has-text('Accept invitation')")
    member.wait_for_url(re.compile(r"/(welcome)?$"))
    member.goto(server.url + "/monitors")
    assert member.is_visible(f"text={MEMBER} (editor)")
    member.click("text=Sign out")
    member.wait_for_url(re.compile(r"/login$"))
    member.fill("#email", MEMBER)
    member.fill("#password", MEMBER_PASSWORD)
    member.click("button[type=submit]")
    member.wait_for_url(re.compile(r"/(welcome)?$"))
    member.goto(server.url + "/settings/members")
    assert member.is_visible(f"text={MEMBER} (editor)")
    assert member.locator("button:has-text('Change role')").count() == 0  # editors cannot
    context.close()
    return watch


def audit_log_shows_it_all(page: Any, server: Server) -> None:
    page.goto(server.url + "/settings/audit")
    table = page.text_content("#audit-table") or ""
    for action in ("setup", "monitor.create", "channel.create", "invitation.create",
                   "invitation.accept"):  # fmt: skip
        assert action in table, action
    shot(page, "acct-07-audit")
    page.fill("#f-action", "invitation.*")
    page.click("button:has-text('Filter')")
    page.wait_for_url(re.compile(r"action=invitation"))
    assert page.locator("#audit-table tbody tr").count() == 2
    with page.expect_download() as download:
        page.click("text=Export CSV")
    saved = Path(download.value.path())
    lines = saved.read_text().splitlines()
    assert lines[0].startswith("id,at,actor_kind") and len(lines) == 3, lines


def account_and_org_pages(page: Any, server: Server) -> None:
    page.goto(server.url + "/settings/org")
    assert page.is_visible("text=Captured output")
    shot(page, "acct-08-org")
    page.goto(server.url + "/account")
    page.select_option("#tz", "Europe/London")
    page.click("button:has-text('Save profile')")
    page.wait_for_selector(".flash:has-text('Profile saved')")
    shot(page, "acct-09-account")
    page.click("button:has-text('Set up two-factor sign-in')")
    page.wait_for_selector("#totp-uri")
    assert (page.text_content("#totp-uri") or "").startswith("otpauth://totp/Tokiflow:")
    shot(page, "acct-10-totp-setup")
    page.goto(server.url + "/password/forgot")  # signed in or not, the form is there
    shot(page, "acct-11-forgot")


def test_onboarding_invitation_and_audit_in_a_real_browser(
    server_factory: type[Server], tmp_path: Path
) -> None:
    server = server_factory(tmp_path / "data", licensed=True)
    server.wait_ready()
    receiver = HookReceiver()
    try:
        with browser_page(server.url) as (page, watch):
            setup_into_onboarding(page, server)
            first_monitor_and_its_first_ping(page, server)
            webhook_channel_and_test_alert(page, receiver)
            token = invite_member(page, server)
            member_watch = accept_in_a_fresh_context(page, server, token)
            audit_log_shows_it_all(page, server)
            account_and_org_pages(page, server)
            for w in (watch, member_watch):
                assert w.foreign() == [], w.foreign()
                assert w.csp_errors == [], w.csp_errors
    finally:
        receiver.close()
