"""The web UI in a real browser (Debian's headless Chromium via Playwright) against a real
`tokiflow serve` process: first-run setup, sign in, create a monitor, watch pings arrive live,
a failure become an incident, acknowledge it, add a webhook channel and send a test alert.
Screenshots of the main pages go to tests/e2e/artifacts/."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.cli_helpers import HookReceiver, Server
from tests.e2e.browser import axe_source, axe_violations, browser_page, describe, shot

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

EMAIL = "owner@example.com"
PASSWORD = "correct horse battery"


def ping(server: Server, path: str) -> None:
    with urllib.request.urlopen(server.url + path, timeout=10) as resp:
        assert resp.status == 200


def first_run_setup(page: Any, server: Server) -> None:
    page.goto(server.url + "/")
    assert page.url.endswith("/setup")
    page.fill("#email", EMAIL)
    page.fill("#name", "Olive Owner")
    page.fill("#org_name", "Acme")
    page.fill("#password", PASSWORD)
    page.fill("#password2", PASSWORD)
    shot(page, "01-setup")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/welcome$"))


def create_monitor(page: Any, name: str) -> str:
    """Fill the new-monitor form (checking the live schedule explanation) and return the uuid."""
    page.goto(re.sub(r"^(https?://[^/]+).*$", r"\1", page.url) + "/monitors/new")
    page.fill("#name", name)
    page.check("input[name=kind][value=cron]")
    assert page.is_hidden("#period")
    page.fill("#cron", "61 * * * *")
    # (Locators, not wait_for_function: the page's CSP forbids the eval it needs.)
    page.locator("#schedule-error").filter(has_text="61").wait_for()
    assert page.get_attribute("#cron", "aria-invalid") == "true"
    page.fill("#tz", "Europe/London")
    page.fill("#cron", "30 2 * * 1-5")
    page.locator("#schedule-next li").nth(4).wait_for()
    page.locator("#schedule-words").filter(has_text="02:30").wait_for()
    words = page.text_content("#schedule-words") or ""
    assert "02:30" in words and "Monday" in words, words
    assert "BST" in (page.text_content("#schedule-next") or "") or "GMT" in (
        page.text_content("#schedule-next") or ""
    )
    page.fill("#grace", "5m")
    page.fill("#tags", "db prod")
    shot(page, "03-monitor-form")
    page.click("button.primary[type=submit]")
    page.wait_for_url(re.compile(r"/monitors/[0-9a-f-]{36}$"))
    return str(page.url.rsplit("/", 1)[1])


def test_the_core_workflow_in_a_real_browser(server_factory: type[Server], tmp_path: Path) -> None:
    server = server_factory(tmp_path / "data", licensed=True)
    server.wait_ready()
    receiver = HookReceiver()
    try:
        with browser_page(server.url) as (page, watch):
            first_run_setup(page, server)
            uuid = create_monitor(page, "Nightly backup")
            assert f"/ping/{uuid}" in (page.text_content("#url-uuid") or "")
            assert page.is_visible("text=Kubernetes CronJob")
            shot(page, "04-monitor-detail")

            # Sign out, then sign in again.
            page.click("text=Sign out")
            page.wait_for_url(re.compile(r"/login$"))
            page.fill("#email", EMAIL)
            page.fill("#password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(server.url + "/")

            # The dashboard follows pings live, without a reload.
            row = f"#live tr[data-uuid='{uuid}']"
            page.wait_for_selector(f"{row} [data-status=new]")
            page.wait_for_selector("body[data-live-connected='1']")
            page.evaluate("window.__noReload = 'still here'")
            ping(server, f"/ping/{uuid}")
            page.wait_for_selector(f"{row} [data-status=up]", timeout=20_000)
            shot(page, "02-dashboard")
            ping(server, f"/ping/{uuid}/fail")
            page.wait_for_selector(f"{row} [data-status=down]", timeout=20_000)
            page.wait_for_selector("#live .timeline >> text=FAIL")
            assert page.evaluate("window.__noReload") == "still here"

            # Keyboard shortcuts: `?` opens help, `g i` goes to incidents.
            page.keyboard.press("?")
            page.wait_for_selector("#help[open]")
            page.keyboard.press("Escape")
            page.keyboard.press("g")
            page.keyboard.press("i")
            page.wait_for_url(server.url + "/incidents")
            page.wait_for_selector("tr[data-incident] >> text=Nightly backup")
            shot(page, "05-incidents")
            page.click("tr[data-incident] button:has-text('Acknowledge')")
            page.wait_for_selector(".flash:has-text('acknowledged')")
            assert page.is_visible("tr[data-incident] [data-status=acknowledged]")
            # `g a` goes to the analytics page.
            page.keyboard.press("g")
            page.keyboard.press("a")
            page.wait_for_url(server.url + "/analytics")
            page.wait_for_selector("h1:has-text('Analytics')")

            # A webhook channel and its test alert.
            page.goto(server.url + "/settings/channels")
            page.select_option("#channel-kind", "webhook")
            page.fill("#channel-name", "Ops hook")
            page.fill("#channel-config", f'{{"url": "{receiver.url}"}}')
            page.click("button:has-text('Add channel')")
            page.wait_for_url(re.compile(r"/settings/channels/\d+$"))
            page.click("button:has-text('Send test alert')")
            page.wait_for_selector(".flash:has-text('Test alert sent')")
            receiver.wait_for(1)
            assert page.is_visible("td:has-text('test')")
            shot(page, "06-channel")

            # The search shortcut and the monitors list.
            page.goto(server.url + "/monitors")
            page.keyboard.press("/")
            assert page.evaluate("document.activeElement.id") == "q"
            shot(page, "07-monitors")

            # The theme toggle switches to dark and back.
            page.click("#theme-toggle")
            assert page.evaluate("document.documentElement.dataset.theme") == "dark"
            shot(page, "08-monitors-dark")

            assert watch.foreign() == [], watch.foreign()
            assert watch.csp_errors == [], watch.csp_errors
        with browser_page(server.url, viewport=(390, 844)) as (phone, watch):
            phone.goto(server.url + "/login")
            phone.fill("#email", EMAIL)
            phone.fill("#password", PASSWORD)
            phone.click("button[type=submit]")
            phone.wait_for_url(server.url + "/")
            width = phone.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, f"the dashboard is {width}px wide on a phone"
            shot(phone, "09-dashboard-phone")
    finally:
        receiver.close()


def test_the_main_pages_have_no_serious_accessibility_violations(
    server_factory: type[Server], tmp_path: Path
) -> None:
    source = axe_source()
    if source is None:
        pytest.skip("axe-core could not be installed from the npm registry (see the output)")
    server = server_factory(tmp_path / "data", licensed=True)
    server.wait_ready()
    with browser_page(server.url) as (page, watch):
        problems: dict[str, Any] = {}
        page.goto(server.url + "/setup")
        problems["/setup"] = axe_violations(page, source)
        first_run_setup(page, server)
        uuid = create_monitor(page, "Nightly backup")
        ping(server, f"/ping/{uuid}/start")
        ping(server, f"/ping/{uuid}/fail")
        for path in ("/", "/monitors", "/monitors/new", f"/monitors/{uuid}",
                     f"/monitors/{uuid}/runs/1", "/incidents", "/incidents/1",
                     "/analytics", f"/monitors/{uuid}/analytics",
                     "/settings/channels", "/settings/keys",
                     "/settings/members", "/settings/org", "/settings/audit", "/account",
                     "/welcome", f"/welcome/ping/{uuid}", "/welcome/alerts"):  # fmt: skip
            for theme in ("light", "dark"):
                page.goto(server.url + path)
                page.evaluate(f"document.documentElement.dataset.theme = '{theme}'")
                found = axe_violations(page, source)
                if found:
                    problems[f"{path} ({theme})"] = found
        page.click("text=Sign out")
        page.wait_for_url(re.compile(r"/login$"))
        problems["/login"] = axe_violations(page, source)
        page.goto(server.url + "/password/forgot")
        problems["/password/forgot"] = axe_violations(page, source)
        problems = {k: v for k, v in problems.items() if v}
        assert problems == {}, describe([{"page": k, "violations": v} for k, v in problems.items()])
        assert watch.foreign() == [], watch.foreign()
