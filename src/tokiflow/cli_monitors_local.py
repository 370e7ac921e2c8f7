"""The data folder's side of `tokiflow monitors` and `tokiflow incidents` (cli_monitors defines
the commands and picks this side or the server's, cli_remote)."""

from __future__ import annotations

import argparse
import sqlite3
from collections.abc import Callable
from typing import Any

from tokiflow import cli_output as out
from tokiflow import cli_remote, licensing
from tokiflow.cli import warn
from tokiflow.cli_admin import (
    AdminError,
    _org_readonly,
    monitor_json,
    org_for,
    reading,
    transaction,
)
from tokiflow.cli_analytics import cmd_monitor_stats, cmd_set_anomaly, cmd_set_capture
from tokiflow.cli_remote import as_uuid, channel_ids, monitor_fields
from tokiflow.clock import SystemClock
from tokiflow.config import Settings
from tokiflow.engine import audit, monitor_ops, views
from tokiflow.engine import incidents as incident_actions
from tokiflow.engine.monitors import MonitorError, build_spec, create_monitor
from tokiflow.storage import channels, incidents, monitors, orgs
from tokiflow.storage.monitors import Monitor

LocalHandler = Callable[[Settings, argparse.Namespace], int]


def _engine_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """API field names to the engine's (the API calls late alerts `late_alerts`)."""
    fields = dict(fields)
    if "late_alerts" in fields:
        fields["late_incidents"] = fields.pop("late_alerts")
    return fields


def _set_channels(conn: sqlite3.Connection, m: Monitor, ids: list[int] | None) -> None:
    if ids is None:
        return
    known = {c.id for c in channels.list_for_org(conn, m.org_id)}
    missing = [i for i in ids if i not in known]
    if missing:
        raise AdminError(
            f"no channel #{missing[0]} in this organisation (see 'tokiflow channels list')"
        )
    channels.set_monitor_channels(conn, m.id, ids)


def _find(conn: sqlite3.Connection, ident: str, org_slug: str | None) -> Monitor:
    """A monitor by uuid or slug (a slug in several organisations needs --org)."""
    org_id = _org_readonly(conn, org_slug)
    uuid = as_uuid(ident)
    if uuid is not None:
        m = monitors.by_uuid(conn, uuid)
        if m is None or (org_id is not None and m.org_id != org_id):
            raise AdminError(f"no monitor with uuid {ident}")
        return m
    org_ids = [org_id] if org_id is not None else [o.id for o in orgs.list_all(conn)]
    found = [m for oid in org_ids for m in monitors.by_slug(conn, oid, ident)]
    if not found:
        raise AdminError(f"no monitor with slug '{ident}'")
    if len(found) > 1:
        raise AdminError(f"the slug '{ident}' is used in several organisations: add --org SLUG "
                         "or give the uuid")  # fmt: skip
    return found[0]


def _view(conn: sqlite3.Connection, m: Monitor, settings: Settings) -> dict[str, Any]:
    return monitor_json(m, orgs.get(conn, m.org_id), settings)


def _audit(conn: sqlite3.Connection, action: str, m: Monitor, before: Any, after: Any) -> None:
    audit.record(conn, org_id=m.org_id, actor=audit.CLI, action=action, target_kind="monitor",
                 target_id=m.uuid, before=before, after=after, now=SystemClock().now())  # fmt: skip


def local_list(settings: Settings, args: argparse.Namespace) -> int:
    with reading(settings) as conn:
        by_id = {o.id: o for o in orgs.list_all(conn)}
        org_id = _org_readonly(conn, args.org)
        rows = [monitor_json(m, by_id.get(m.org_id), settings)
                for m in monitors.list_for_org(conn, org_id)]  # fmt: skip
    out.monitor_table(rows, as_json=args.json)
    return 0


def local_get(settings: Settings, args: argparse.Namespace) -> int:
    with reading(settings) as conn:
        data = _view(conn, _find(conn, args.monitor, args.org), settings)
    out.monitor_details(data, as_json=args.json)
    return 0


def local_create(settings: Settings, args: argparse.Namespace) -> int:
    fields, ids = _engine_fields(monitor_fields(args)), channel_ids(args.channels)
    now = SystemClock().now()
    with transaction(settings) as conn:
        org = org_for(conn, args.org)
        try:
            spec = build_spec(org_id=org.id, **fields)
            limits = licensing.limits_in_force(settings.data_dir, now, warn=warn)
            m = create_monitor(conn, spec, now, limits=limits)
        except MonitorError as exc:
            raise AdminError(str(exc)) from None
        _set_channels(conn, m, ids)
        data = monitor_json(m, org, settings)
        _audit(conn, "monitor.create", m, None, views.monitor_view(m, None, ""))
    out.monitor_created(data, as_json=args.json)
    return 0


def local_update(settings: Settings, args: argparse.Namespace) -> int:
    fields, ids = _engine_fields(monitor_fields(args)), channel_ids(args.channels)
    cli_remote.require_changes(fields, ids)
    now = SystemClock().now()
    with transaction(settings) as conn:
        m = _find(conn, args.monitor, args.org)
        new = m
        if fields:
            try:
                new = monitor_ops.update(conn, m, fields, now, now)
            except MonitorError as exc:
                raise AdminError(str(exc)) from None
            _audit(conn, "monitor.update", new, views.monitor_view(m, None, ""),
                   views.monitor_view(new, None, ""))  # fmt: skip
        _set_channels(conn, new, ids)
        data = _view(conn, new, settings)
    out.monitor_changed(data, "updated", as_json=args.json)
    return 0


def local_delete(settings: Settings, args: argparse.Namespace) -> int:
    with reading(settings) as conn:  # ask before taking the write lock
        m = _find(conn, args.monitor, args.org)
    cli_remote.confirm_delete(m.name, args.yes)
    with transaction(settings) as conn:
        current = monitors.by_uuid(conn, m.uuid)
        if current is None:
            raise AdminError(f"no monitor with uuid {m.uuid}")
        monitor_ops.delete(conn, current)
        _audit(conn, "monitor.delete", current, views.monitor_view(current, None, ""), None)
    print(f"deleted monitor '{m.name}' ({m.uuid}) and its history")
    return 0


def local_pause_or_resume(settings: Settings, args: argparse.Namespace) -> int:
    now = SystemClock().now()
    op = monitor_ops.pause if args.action == "pause" else monitor_ops.resume
    with transaction(settings) as conn:
        m = _find(conn, args.monitor, args.org)
        new = op(conn, m, now, now)
        if new.status != m.status:
            _audit(conn, f"monitor.{args.action}", new, {"status": m.status},
                   {"status": new.status})  # fmt: skip
        data = _view(conn, new, settings)
    out.monitor_changed(data, "paused" if args.action == "pause" else "resumed", as_json=args.json)
    return 0


def local_incidents_list(settings: Settings, args: argparse.Namespace) -> int:
    with reading(settings) as conn:
        org_id = _org_readonly(conn, args.org)
        rows = [views.incident_view(inc, monitors.get(conn, inc.monitor_id))
                for inc in incidents.list_recent(conn, org_id=org_id, limit=args.limit)]  # fmt: skip
    out.incident_table(rows, as_json=args.json)
    return 0


def local_incidents_act(settings: Settings, args: argparse.Namespace) -> int:
    now = SystemClock().now()
    with transaction(settings) as conn:
        try:
            if args.action == "ack":
                inc = incident_actions.acknowledge(conn, args.id, now)
            else:
                inc = incident_actions.resolve(conn, args.id, now, "cli")
        except incident_actions.IncidentError as exc:
            raise AdminError(str(exc)) from None
        audit.record(conn, org_id=inc.org_id, actor=audit.CLI, action=f"incident.{args.action}",
                     target_kind="incident", target_id=inc.id, after={"state": inc.state},
                     now=now)  # fmt: skip
        data = views.incident_view(inc, monitors.get(conn, inc.monitor_id))
    out.incident_state(data, as_json=args.json)
    return 0


# The data folder's handler of each command (the server's are cli_remote.REMOTE).
LOCAL: dict[str, LocalHandler] = {
    "monitors list": local_list,
    "monitors get": local_get,
    "monitors create": local_create,
    "monitors update": local_update,
    "monitors delete": local_delete,
    "monitors pause": local_pause_or_resume,
    "monitors resume": local_pause_or_resume,
    "monitors stats": cmd_monitor_stats,
    "monitors set-anomaly": cmd_set_anomaly,
    "monitors set-capture": cmd_set_capture,
    "incidents list": local_incidents_list,
    "incidents ack": local_incidents_act,
    "incidents resolve": local_incidents_act,
}
