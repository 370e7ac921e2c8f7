"""Changing monitors after creation: edit, pause, resume, delete. Each runs in the writer and
returns the monitor as stored, so the caller can move its deadline in the scheduler."""

from __future__ import annotations

import dataclasses
import datetime as dt
import sqlite3
from typing import Any

from tokiflow.engine import alerts, states
from tokiflow.engine.monitors import MonitorError, build_spec
from tokiflow.storage import incidents
from tokiflow.storage import monitors as store
from tokiflow.storage.monitors import Monitor

EDITABLE = (
    "name", "slug", "description", "tags", "period", "cron", "tz", "grace", "max_runtime",
    "min_runtime", "methods", "manual_resume", "failure_tolerance", "late_incidents",
    "renotify_every", "notify_resolve",
)  # fmt: skip


def _current_definition(m: Monitor) -> dict[str, Any]:
    return {
        "name": m.name, "slug": m.slug, "description": m.description, "tags": m.tags,
        "period": m.period if m.schedule_kind == "period" else None,
        "cron": m.cron if m.schedule_kind == "cron" else None, "tz": m.tz, "grace": m.grace,
        "max_runtime": m.max_runtime, "min_runtime": m.min_runtime, "methods": m.methods,
        "manual_resume": m.manual_resume, "failure_tolerance": m.failure_tolerance,
        "late_incidents": m.late_incidents, "renotify_every": m.renotify_every,
        "notify_resolve": m.notify_resolve,
    }  # fmt: skip


def update(
    conn: sqlite3.Connection,
    m: Monitor,
    changes: dict[str, Any],
    now: dt.datetime,
    started_at: dt.datetime,
) -> Monitor:
    """Apply a partial edit (validated as a whole); the next deadline follows a new schedule."""
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise MonitorError(sorted(unknown)[0], "cannot be changed")
    merged = {**_current_definition(m), **changes}
    if "cron" in changes and changes["cron"]:
        merged["period"] = None
    elif "period" in changes and changes["period"] is not None:
        merged["cron"] = None
    spec = build_spec(org_id=m.org_id, **merged)
    if spec.slug != m.slug and store.slug_taken(conn, m.org_id, spec.slug):
        raise MonitorError("slug", f"'{spec.slug}' is already used in this organisation")
    s = spec.schedule
    fields: dict[str, Any] = {
        "name": spec.name, "slug": spec.slug, "description": spec.description,
        "tags": " ".join(spec.tags), "schedule_kind": s.kind, "period": s.period, "cron": s.cron,
        "tz": s.tz, "grace": spec.grace, "max_runtime": spec.max_runtime,
        "min_runtime": spec.min_runtime, "methods": spec.methods,
        "manual_resume": spec.manual_resume, "failure_tolerance": spec.failure_tolerance,
        "late_incidents": spec.late_incidents, "renotify_every": spec.renotify_every,
        "notify_resolve": spec.notify_resolve,
    }  # fmt: skip
    if m.last_ping_at is not None and m.status in ("up", "late"):
        fields["due_at"] = states.due_after(dataclasses.replace(m, **fields), m.last_ping_at)
    return states.set_state(conn, m, now, started_at, fields, "monitor edited")


def pause(
    conn: sqlite3.Connection, m: Monitor, now: dt.datetime, started_at: dt.datetime
) -> Monitor:
    """Stop watching: no deadlines and no re-notifications until resumed (or pinged)."""
    if m.status == "paused":
        return m
    for inc in incidents.current(conn, m.id):
        alerts.clear_renotify(conn, inc.id)
    return states.set_state(conn, m, now, started_at, {"status": "paused"}, "paused")


def resume(
    conn: sqlite3.Connection, m: Monitor, now: dt.datetime, started_at: dt.datetime
) -> Monitor:
    """Watch again from the next ping (status new), as Healthchecks does."""
    if m.status != "paused":
        return m
    return states.set_state(conn, m, now, started_at, {"status": "new", "due_at": None}, "resumed")


def delete(conn: sqlite3.Connection, m: Monitor) -> None:
    """Delete the monitor with its history (the caller drops its deadline once committed)."""
    store.delete(conn, m.id)
