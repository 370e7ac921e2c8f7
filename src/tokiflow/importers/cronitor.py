"""Cronitor monitor definitions: from its YAML config (`cronitor.yaml`: `jobs:`, `heartbeats:`,
... keyed by monitor key) or its JSON API shape (`{"monitors": [...]}` or a list), to Tokiflow
monitors, and back (the Cronitor API subset answers in Cronitor's shape).

The monitor key becomes the slug, so telemetry pings `/p/<key>/<monitor-key>` find the monitor.
"""

from __future__ import annotations

import json
import re
import sqlite3
from typing import Any

from tokiflow.engine.monitors import MonitorError
from tokiflow.importers import Planner, SourceError, slug_for_key
from tokiflow.storage.monitors import Monitor

# YAML sections and the monitor type each holds.
SECTIONS = {
    "jobs": "job",
    "heartbeats": "heartbeat",
    "events": "heartbeat",
    "checks": "check",
    "synthetics": "check",
    "sites": "site",
}
SUPPORTED_TYPES = {"job": "job", "heartbeat": "heartbeat", "event": "heartbeat"}
_UNITS = {
    "ms": 0.001, "millisecond": 0.001, "milliseconds": 0.001,
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hr": 3600, "hrs": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "w": 604800, "week": 604800, "weeks": 604800,
    "month": 2592000, "months": 2592000,
}  # fmt: skip
_AMOUNT = r"(\d+(?:\.\d+)?)\s*([a-z]+)"
_EVERY_RE = re.compile(r"every\s+(?:(\d+(?:\.\d+)?)\s*)?([a-z]+)", re.I)
_ASSERT_RE = re.compile(rf"metric\.duration\s*(<=|<|>=|>)\s*{_AMOUNT}", re.I)


class Unsupported(MonitorError):
    """A Cronitor monitor Tokiflow cannot watch (an HTTP check, a site)."""


def _seconds(amount: str | None, unit: str) -> float:
    factor = _UNITS.get(unit.lower()) or _UNITS.get(unit.lower().rstrip("s"))
    if factor is None:
        raise ValueError(unit)
    return float(amount or 1) * factor


def schedule_args(text: str) -> dict[str, Any]:
    """build_spec arguments for a Cronitor schedule: "every 10 minutes" is a period, anything
    else a cron expression."""
    text = text.strip()
    every = _EVERY_RE.fullmatch(text)
    if every:
        try:
            return {"period": max(round(_seconds(every.group(1), every.group(2))), 1)}
        except ValueError:
            raise MonitorError("schedule", f"cannot read the schedule '{text}'") from None
    return {"cron": text}


def assertion_args(assertions: list[Any]) -> tuple[dict[str, Any], list[str]]:
    """max/min runtime from `metric.duration < 5 minutes`-style assertions, and the assertions
    Tokiflow has no equivalent for."""
    args: dict[str, Any] = {}
    ignored: list[str] = []
    for item in assertions:
        found = _ASSERT_RE.fullmatch(str(item).strip())
        try:
            seconds = _seconds(found.group(2), found.group(3)) if found else None
        except ValueError:
            seconds = None
        if found is None or seconds is None:
            ignored.append(str(item))
            continue
        field = "max_runtime" if found.group(1).startswith("<") else "min_runtime"
        args[field] = max(round(seconds), 1)
    return args, ignored


def _tags(value: Any) -> list[str]:
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list):
        return []
    return ["-".join(str(t).split()) for t in value if str(t).strip()]


def spec_args(data: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """build_spec arguments (without org) for one Cronitor monitor, and notes on what was not
    carried over; raises MonitorError (Unsupported for HTTP checks)."""
    key = str(data.get("key") or "").strip()
    if not key:
        raise MonitorError("key", "is required")
    kind = str(data.get("type") or "job").lower()
    if kind not in SUPPORTED_TYPES:
        raise Unsupported(
            "type", f"'{kind}' monitors are not supported: Tokiflow watches jobs and heartbeats"
        )
    args: dict[str, Any] = {"name": str(data.get("name") or key)[:200], "slug": slug_for_key(key)}
    notes: list[str] = []
    schedules = data.get("schedules") or ([data["schedule"]] if data.get("schedule") else [])
    if schedules:
        args.update(schedule_args(str(schedules[0])))
        if len(schedules) > 1:
            notes.append("only the first of its schedules is used")
    if data.get("timezone"):
        args["tz"] = str(data["timezone"])
    if data.get("grace_seconds") is not None:
        args["grace"] = _positive_int("grace_seconds", data["grace_seconds"])
    if data.get("failure_tolerance") is not None:
        args["failure_tolerance"] = _positive_int("failure_tolerance", data["failure_tolerance"], 0)
    if data.get("note") or data.get("description"):
        args["description"] = str(data.get("note") or data.get("description"))
    args["tags"] = _tags(data.get("tags"))
    found, ignored = assertion_args(list(data.get("assertions") or []))
    args.update(found)
    notes += [f"assertion '{a}' has no Tokiflow equivalent" for a in ignored]
    if data.get("notify"):
        notes.append("alert targets are not imported: choose channels in Tokiflow")
    return args, notes


def _positive_int(name: str, value: Any, minimum: int = 1) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise MonitorError(name, "must be a whole number") from None
    return max(number, minimum)


def monitors_from(doc: Any) -> list[dict[str, Any]]:
    """Monitor dicts from a parsed document: the YAML sections, `{"monitors": [...]}` or a list."""
    if isinstance(doc, list):
        items = doc
    elif isinstance(doc, dict) and isinstance(doc.get("monitors"), list):
        items = doc["monitors"]
    elif isinstance(doc, dict) and any(s in doc for s in SECTIONS):
        items = []
        for section, kind in SECTIONS.items():
            entries = doc.get(section) or {}
            if not isinstance(entries, dict):
                raise SourceError(f"'{section}' must map monitor keys to their settings")
            for key, fields in entries.items():
                items.append({"type": kind, **(fields or {}), "key": str(key)})
    else:
        raise SourceError("no monitors found: expected jobs:/heartbeats: sections or a list")
    if not all(isinstance(i, dict) for i in items):
        raise SourceError("every monitor must be an object")
    return items


def load(text: str) -> list[dict[str, Any]]:
    """Monitors from the text of a Cronitor YAML or JSON export."""
    try:
        doc = json.loads(text)
    except ValueError:
        import yaml

        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise SourceError(f"neither JSON nor YAML: {str(exc).splitlines()[0]}") from None
    return monitors_from(doc)


def plan(conn: sqlite3.Connection, org_id: int, monitors: list[dict[str, Any]]) -> Planner:
    """What importing these monitors would do (the monitor key is the identity: an existing
    slug is skipped, not renamed)."""
    planner = Planner(conn, org_id)
    for data in monitors:
        source = str(data.get("key") or data.get("name") or "?")
        try:
            args, notes = spec_args(data)
        except MonitorError as exc:
            planner.skip(source, str(exc))
            continue
        planner.add(
            source, args, paused=bool(data.get("paused")), notes=tuple(notes),
            rename_on_clash=False,
        )  # fmt: skip
    return planner


def schedule_text(m: Monitor) -> str:
    if m.schedule_kind == "cron":
        return m.cron or ""
    period = m.period or 0
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if period % size == 0:
            count = period // size
            return f"every {count} {unit}{'s' if count != 1 else ''}"
    return f"every {period} seconds"


def to_cronitor(m: Monitor) -> dict[str, Any]:
    """A monitor in the shape Cronitor's API returns (the fields its clients read)."""
    assertions = []
    if m.max_runtime:
        assertions.append(f"metric.duration < {m.max_runtime} seconds")
    if m.min_runtime:
        assertions.append(f"metric.duration > {m.min_runtime} seconds")
    return {
        "key": m.slug,
        "name": m.name,
        "type": "job",
        "schedule": schedule_text(m),
        "timezone": m.tz,
        "grace_seconds": m.grace,
        "assertions": assertions,
        "tags": m.tags.split(),
        "note": m.description,
        "failure_tolerance": m.failure_tolerance,
        "paused": m.status == "paused",
        "passing": m.status in ("new", "up", "late"),
        "initialized": m.last_ping_at is not None,
        "disabled": False,
        "attributes": {"key": m.slug, "code": m.uuid.replace("-", "")},
    }
