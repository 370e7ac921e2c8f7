"""The JSON shapes of monitors, pings, runs and incidents, shared by the API and the CLI."""

from __future__ import annotations

import datetime as dt
from typing import Any

from tokiflow.engine.states import schedule_words
from tokiflow.storage.incidents import Flip, Incident
from tokiflow.storage.monitors import Monitor
from tokiflow.storage.orgs import Org
from tokiflow.storage.pings import Ping
from tokiflow.storage.runs import Run


def iso(value: dt.datetime | None) -> str | None:
    """RFC 3339 with a Z, as every time in the API and CLI JSON."""
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def display_status(m: Monitor) -> str:
    """The status users see: `running` while a run is open (unless paused)."""
    return "running" if m.open_runs and m.status != "paused" else m.status


def monitor_view(m: Monitor, org: Org | None, base_url: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "uuid": m.uuid,
        "name": m.name,
        "slug": m.slug,
        "description": m.description,
        "status": display_status(m),
        "state": m.status,
        "schedule": m.cron if m.schedule_kind == "cron" else m.period,
        "schedule_kind": m.schedule_kind,
        "schedule_words": schedule_words(m),
        "tz": m.tz,
        "grace": m.grace,
        "max_runtime": m.max_runtime,
        "min_runtime": m.min_runtime,
        "methods": m.methods,
        "manual_resume": m.manual_resume,
        "failure_tolerance": m.failure_tolerance,
        "late_alerts": m.late_incidents,
        "tags": m.tags.split(),
        "renotify_every": m.renotify_every,
        "notify_resolve": m.notify_resolve,
        "last_ping": iso(m.last_ping_at),
        "last_success": iso(m.last_success_at),
        "last_start": iso(m.last_start_at),
        "last_duration": m.last_duration,
        "next_due": iso(m.due_at),
        "ping_count": m.n_pings,
        "open_runs": m.open_runs,
        "created_at": iso(m.created_at),
        "ping_url": f"{base_url}/ping/{m.uuid}",
    }
    if org is not None:
        data["org"] = org.slug
        data["slug_url"] = f"{base_url}/ping/{org.ping_key}/{m.slug}"
    return data


def ping_view(p: Ping) -> dict[str, Any]:
    return {
        "n": p.n,
        "at": iso(p.created_at),
        "kind": p.kind,
        "exit_status": p.exit_status,
        "rid": p.rid,
        "method": p.method,
        "scheme": p.scheme,
        "remote_addr": p.remote_addr,
        "user_agent": p.user_agent,
        "protocol": p.protocol,
        "body_size": p.body_size,
        "duration": p.duration,
    }


def run_view(r: Run) -> dict[str, Any]:
    return {
        "id": r.id,
        "rid": r.rid,
        "status": r.status,
        "started_at": iso(r.started_at),
        "finished_at": iso(r.finished_at),
        "duration": r.duration,
        "exit_status": r.exit_status,
        "reason": r.reason,
    }


def incident_view(i: Incident, m: Monitor | None) -> dict[str, Any]:
    return {
        "id": i.id,
        "kind": i.kind,
        "state": i.state,
        "reason": i.reason,
        "monitor": m.name if m else None,
        "monitor_uuid": m.uuid if m else None,
        "opened_at": iso(i.opened_at),
        "acknowledged_at": iso(i.acknowledged_at),
        "resolved_at": iso(i.resolved_at),
        "resolved_by": i.resolved_by,
        "run_id": i.run_id,
    }


def flip_view(f: Flip) -> dict[str, Any]:
    return {"at": iso(f.at), "from": f.old_status, "to": f.new_status, "reason": f.reason}
