"""Healthchecks: checks read from its Management API v3 (`GET <url>/api/v3/checks/` with a
read-write API key) become monitors with the same uuid, so that every existing `/ping/<uuid>`
URL keeps working once it points at Tokiflow; schedules, grace, tags and descriptions carry
over."""

from __future__ import annotations

import json
import re
import sqlite3
import urllib.error
import urllib.request
from typing import Any

from tokiflow import __version__
from tokiflow.importers import Planner, SourceError

TIMEOUT = 30.0
_UUID_RE = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


def api_base(url: str) -> str:
    """The API root from what a user gives: the site, its /api/v3, or the /checks/ URL."""
    base = url.strip().rstrip("/")
    if not re.match(r"^https?://", base):
        raise SourceError(f"'{url}' is not an http(s) URL")
    base = re.sub(r"/checks$", "", base)
    if not re.search(r"/api/v\d+$", base):
        base += "/api/v3"
    return base


def fetch(url: str, api_key: str, *, timeout: float = TIMEOUT) -> list[dict[str, Any]]:
    """Every check of the project the API key belongs to."""
    request = urllib.request.Request(
        api_base(url) + "/checks/",
        headers={"X-Api-Key": api_key, "User-Agent": f"tokiflow/{__version__} import"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            raise SourceError(f"the Healthchecks API refused the API key ({exc.code})") from None
        raise SourceError(f"the Healthchecks API answered {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SourceError(f"cannot reach {api_base(url)}: {reason}") from None
    try:
        checks = json.loads(raw)["checks"]
    except (ValueError, KeyError, TypeError):
        raise SourceError("the Healthchecks API did not answer with a list of checks") from None
    if not isinstance(checks, list) or not all(isinstance(c, dict) for c in checks):
        raise SourceError("the Healthchecks API did not answer with a list of checks")
    return checks


def check_uuid(check: dict[str, Any]) -> str | None:
    """A check's uuid: its `uuid` field, else the end of its ping URL."""
    if check.get("uuid"):
        return str(check["uuid"])
    found = _UUID_RE.search(str(check.get("ping_url") or ""))
    return found.group(0) if found else None


def spec_args(check: dict[str, Any], check_id: str) -> dict[str, Any]:
    """build_spec arguments (without org) for one Healthchecks check."""
    name = str(check.get("name") or check.get("slug") or check_id)[:200]
    args: dict[str, Any] = {
        "name": name,
        "uuid": check_id,
        "description": str(check.get("desc") or ""),
        "tags": str(check.get("tags") or ""),
        "grace": check.get("grace", 3600),
        "methods": "post" if str(check.get("methods") or "").upper() == "POST" else "any",
        "manual_resume": bool(check.get("manual_resume")),
    }
    if check.get("slug"):
        args["slug"] = str(check["slug"])
    if check.get("schedule"):
        args["cron"] = str(check["schedule"])
        args["tz"] = str(check.get("tz") or "UTC")
    else:
        args["period"] = check.get("timeout", 86400)
    return args


def plan(conn: sqlite3.Connection, org_id: int, checks: list[dict[str, Any]]) -> Planner:
    """What importing these checks would do; uuids already present are skipped."""
    if checks and all(check_uuid(c) is None and c.get("unique_key") for c in checks):
        raise SourceError(
            "this is a read-only API key, which hides the checks' uuids (and so their ping "
            "URLs): use the project's read-write API key"
        )
    planner = Planner(conn, org_id)
    for check in checks:
        check_id = check_uuid(check)
        source = str(check.get("name") or check_id or "?")
        if check_id is None:
            planner.skip(source, "no uuid or ping URL in the API answer")
            continue
        notes: tuple[str, ...] = ()
        if check.get("channels"):
            notes = ("its integrations are not imported: choose channels in Tokiflow",)
        paused = check.get("status") == "paused"
        planner.add(source, spec_args(check, check_id), paused=paused, notes=notes)
    return planner
