"""The monitor workflows in a real browser (Debian's headless Chromium via Playwright) against a
real `tokiflow serve`: a job wrapped in the real `tokiflow run` sends its output, the run page
shows it with line numbers, log highlighting and the redaction marker, Copy and Download work;
two monitors are paused at once from the list; the command palette (Ctrl+K) finds a monitor by
name and Enter opens it. Screenshots go to tests/e2e/artifacts/."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.cli_helpers import Server
from tests.e2e.browser import axe_source, axe_violations, browser_page, describe, shot

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

EMAIL = "owner@example.com"
PASSWORD = "correct horse battery"
SECRET = "ghp_" + "a1B2c3D4e5" * 4
JOB = f"""
import sys
print("2026-03-02 02:00:00 INFO backup started")
for i in range(40):
    print(f"2026-03-02 02:00:{{i:02d}} INFO copied chunk {{i}}")
print("2026-03-02 02:01:00 WARNING disk 91% full")
print("2026-03-02 02:01:01 ERROR upload failed: token={SECRET}")
sys.exit(3)
"""


def setup_owner(page: Any, server: Server) -> None:
    """The first-run form, wherever it sends the new owner next."""
    page.goto(server.url + "/setup")
    page.fill("#email", EMAIL)
    page.fill("#name", "Olive Owner")
    page.fill("#org_name", "Acme")
    page.fill("#password", PASSWORD)
    page.fill("#password2", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/setup" not in url)


def new_monitor(page: Any, server: Server, name: str) -> str:
    page.goto(server.url + "/monitors/new")
    page.fill("#name", name)
    page.fill("#period", "1h")
    page.fill("#grace", "5m")
    page.click("button.primary[type=submit]")
    page.wait_for_url(re.compile(r"/monitors/[0-9a-f-]{36}$"))
    return str(page.url.rsplit("/", 1)[1])


def run_wrapped_job(server: Server, uuid: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKIFLOW_")}
    return subprocess.run(
        [sys.executable, "-m", "tokiflow", "run", "--url", f"{server.url}/ping/{uuid}", "--",
         sys.executable, "-c", JOB],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip


def test_run_output_bulk_pause_and_the_command_palette_in_a_real_browser(
    server_factory: type[Server], tmp_path: Path
) -> None:
    server = server_factory(tmp_path / "data", licensed=True)
    server.wait_ready()
    with browser_page(server.url) as (page, watch):
        page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
        setup_owner(page, server)
        backup = new_monitor(page, server, "Nightly backup")
        sync = new_monitor(page, server, "Hourly sync")
        report = new_monitor(page, server, "Weekly report")

        # A job run through the real wrapper: its output arrives with the finish ping.
        done = run_wrapped_job(server, backup)
        assert done.returncode == 3, done.stderr
        assert "ERROR upload failed" in done.stdout  # the wrapper passes output through

        # The monitor page links the run; the run page shows its output.
        page.goto(f"{server.url}/monitors/{backup}")
        page.click("tr[data-run] a")
        page.wait_for_url(re.compile(rf"/monitors/{backup}/runs/\d+$"))
        run_url = page.url
        assert page.is_visible("[data-status=fail]")
        assert re.search(r"Exit status\s*3", page.inner_text(".facts"))
        output = page.locator("#output")
        output.wait_for()
        assert page.locator("#output .l").count() == 43
        first = "getComputedStyle(document.querySelector('#output .l'), '::before').content"
        assert page.evaluate(first) == '"1"'  # line numbers drawn by CSS
        last = page.locator("#output .l").nth(42)
        assert last.get_attribute("data-n") == "43"
        assert "lv-error" in (last.get_attribute("class") or "")
        marker = page.locator("#output mark.redacted")
        assert marker.count() == 1 and marker.is_visible()
        assert marker.inner_text() == "[REDACTED]"
        assert "lv-warn" in (page.locator("#output .l").nth(41).get_attribute("class") or "")
        assert SECRET not in page.content()
        marker.scroll_into_view_if_needed()
        shot(page, "10-run-output")

        # Copy puts the output (without line numbers) on the clipboard.
        page.click("button[data-copy='#output']")
        page.locator("button[data-copy='#output']", has_text="Copied").wait_for()
        copied = page.evaluate("navigator.clipboard.readText()")
        lines = copied.split("\n")
        assert lines[0] == "2026-03-02 02:00:00 INFO backup started" and len(lines) == 43
        assert lines[-1] == "2026-03-02 02:01:01 ERROR upload failed: token=[REDACTED]"

        # Download saves the raw output as a file.
        with page.expect_download() as info:
            page.click("a[data-download]")
        download = info.value
        assert re.fullmatch(r"nightly-backup-run-\d+\.log", download.suggested_filename)
        raw = Path(download.path()).read_text()
        assert raw.startswith("2026-03-02 02:00:00 INFO backup started\n")
        assert "token=[REDACTED]" in raw and SECRET not in raw

        # Bulk pause two monitors from the list.
        page.goto(server.url + "/monitors")
        assert page.is_disabled("button[value=pause]")
        page.check(f"#sel-{sync}")
        page.check(f"#sel-{report}")
        page.locator("[data-bulk-count]", has_text="2 monitors selected").wait_for()
        assert page.is_enabled("button[value=pause]")
        assert page.evaluate("document.querySelector('[data-bulk-all]').indeterminate")
        shot(page, "11-monitors-bulk")
        page.click("button[value=pause]")
        page.wait_for_selector(".flash:has-text('Paused 2 monitors')")
        for uuid, status in ((sync, "paused"), (report, "paused"), (backup, "down")):
            page.wait_for_selector(f"tr[data-uuid='{uuid}'] [data-status={status}]")

        # The command palette: Ctrl+K, type a name, Enter opens the monitor.
        page.keyboard.press("Control+k")
        page.wait_for_selector("#palette[open]")
        assert page.evaluate("document.activeElement.id") == "palette-input"
        page.keyboard.type("weekly")
        page.locator(
            "#palette-list [role=option][aria-selected=true]", has_text="Weekly report"
        ).wait_for()
        shot(page, "12-palette")
        page.keyboard.press("Enter")
        page.wait_for_url(f"{server.url}/monitors/{report}")
        # Arrow keys move the choice; Escape closes and gives focus back.
        page.keyboard.press("Control+k")
        page.wait_for_selector("#palette[open]")
        page.keyboard.type("go to")
        page.locator("#palette-list [role=option]", has_text="Go to incidents").wait_for()
        page.keyboard.press("ArrowDown")
        selected = page.locator("#palette-list [aria-selected=true]")
        assert selected.inner_text().endswith("/monitors")
        assert page.get_attribute("#palette-input", "aria-activedescendant") == "palette-option-1"
        page.keyboard.press("Tab")  # focus stays in the dialog
        assert page.evaluate("document.activeElement.id") == "palette-input"
        page.keyboard.press("Escape")
        page.wait_for_selector("#palette", state="hidden")
        # `?` still opens the shortcut help, which names the palette.
        page.keyboard.press("?")
        page.wait_for_selector("#help[open] >> text=Command palette")
        page.keyboard.press("Escape")

        assert watch.foreign() == [], watch.foreign()
        assert watch.csp_errors == [], watch.csp_errors

        # These pages, and the open palette, have no serious accessibility problems.
        source = axe_source()
        if source is not None:
            problems: dict[str, Any] = {}
            for path in (run_url.removeprefix(server.url), "/monitors", f"/monitors/{backup}",
                         f"/monitors/{backup}/edit"):  # fmt: skip
                for theme in ("light", "dark"):
                    page.goto(server.url + path)
                    page.evaluate(f"document.documentElement.dataset.theme = '{theme}'")
                    found = axe_violations(page, source)
                    if found:
                        problems[f"{path} ({theme})"] = found
            page.keyboard.press("Control+k")
            page.locator("#palette-list [role=option]", has_text="Nightly backup").wait_for()
            problems["palette"] = axe_violations(page, source)
            problems = {k: v for k, v in problems.items() if v}
            assert problems == {}, describe([{"page": k, "violations": v}
                                             for k, v in problems.items()])  # fmt: skip
