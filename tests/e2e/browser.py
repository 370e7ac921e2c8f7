"""Helpers for browser tests: Debian's headless Chromium driven by Playwright, a guard that every
request stays on the server's origin, screenshots, and axe-core from the npm registry."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
HERE = Path(__file__).resolve().parent
ARTIFACTS = HERE / "artifacts"
CACHE = HERE / ".cache"
AXE_VERSION = "4.10.2"


class PageWatch:
    """Every request a page makes and every CSP complaint in its console."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.requests: list[str] = []
        self.csp_errors: list[str] = []

    def attach(self, page: Any) -> None:
        page.on("request", lambda r: self.requests.append(r.url))
        page.on("console", self._console)

    def _console(self, msg: Any) -> None:
        if "Content Security Policy" in msg.text or "Content-Security-Policy" in msg.text:
            self.csp_errors.append(msg.text)

    def foreign(self) -> list[str]:
        own = (self.origin + "/", "data:", "blob:", "about:")
        return [u for u in self.requests if not u.startswith(own)]


@contextmanager
def browser_page(origin: str, *, viewport: tuple[int, int] = (1280, 900)) -> Iterator[Any]:
    """A fresh browser page; yields (page, watch)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        raise AssertionError(
            f"{CHROMIUM} is missing: run-tests installs it (apt-get install -y chromium)"
        )
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = browser.new_context(
                viewport={"width": viewport[0], "height": viewport[1]}, locale="en-GB"
            )
            page = context.new_page()
            page.set_default_timeout(15_000)
            watch = PageWatch(origin)
            watch.attach(page)
            yield page, watch
        finally:
            browser.close()


def shot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def axe_source() -> str | None:
    """axe.min.js, installed from the npm registry into a cache folder on first use; None (with
    the reason printed) when npm is not available or the install fails."""
    target = CACHE / "axe" / "node_modules" / "axe-core" / "axe.min.js"
    if not target.exists():
        npm = shutil.which("npm")
        if npm is None:
            print("axe-core check skipped: npm is not installed")
            return None
        (CACHE / "axe").mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [npm, "install", "--prefix", str(CACHE / "axe"), "--no-audit", "--no-fund",
             "--silent", f"axe-core@{AXE_VERSION}"],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        if result.returncode != 0 or not target.exists():
            print(f"axe-core check skipped: npm install failed: {result.stderr[-500:]}")
            return None
    return target.read_text()


def axe_violations(page: Any, source: str) -> list[dict[str, Any]]:
    """Serious and critical axe-core violations on the current page (WCAG 2.1 A/AA rules)."""
    # page.evaluate runs through the DevTools protocol, which the page's CSP does not block.
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(source + "\n;undefined")
    result = page.evaluate(
        """async () => {
            const r = await axe.run(document, {
                runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}
            });
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
        }"""
    )
    return [v for v in result if v["impact"] in ("serious", "critical")]


def describe(violations: list[dict[str, Any]]) -> str:
    return json.dumps(violations, indent=1)
