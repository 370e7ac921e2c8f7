"""Alert policy: which channels hear of an incident event, and what the message says.

`notify` runs inside the writer transaction that changes the incident, so the outbox rows
commit (or roll back) together with the state change: an alert is never lost nor invented.
"""

from __future__ import annotations

import datetime as dt
import sqlite3

from tokiflow.channels.base import Alert
from tokiflow.engine.schedules import describe, format_duration, schedule_from_row
from tokiflow.storage import channels, incidents, monitors, notifications, orgs
from tokiflow.storage.incidents import Incident
from tokiflow.storage.monitors import Monitor
from tokiflow.storage.timefmt import to_db

OUTPUT_TAIL_LINES = 20
OUTPUT_TAIL_CHARS = 2000

_TITLES = {
    "open": "[{status}] {name}: {what}",
    "renotify": "[STILL {status}] {name}: {what}",
    "acknowledged": "[ACKNOWLEDGED] {name}: {what}",
    "resolved": "[RESOLVED] {name} is up again",
}
_WHAT = {
    "FAIL": "the job failed",
    "MISSED": "no ping arrived",
    "LATE": "the job is late",
    "TIMEOUT": "the job is running too long",
    "ANOMALY": "the run was unusually slow",
    "OUTPUT": "the job's output shrank",
}


def _when(value: dt.datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else ""


def output_tail(conn: sqlite3.Connection, monitor_id: int) -> str:
    """The last lines of the newest ping body of the monitor (already redacted on the way in)."""
    row = conn.execute(
        "SELECT body FROM pings WHERE monitor_id = ? AND body IS NOT NULL ORDER BY n DESC LIMIT 1",
        (monitor_id,),
    ).fetchone()
    if row is None or row[0] is None:
        return ""
    return tail_of(bytes(row[0]))


def tail_of(data: bytes) -> str:
    """The last lines of some output, short enough for a chat message."""
    text = data.decode("utf-8", errors="replace")
    tail = "\n".join(text.rstrip().splitlines()[-OUTPUT_TAIL_LINES:])
    return tail[-OUTPUT_TAIL_CHARS:]


def build_alert(
    conn: sqlite3.Connection, inc: Incident, m: Monitor, event: str, now: dt.datetime
) -> Alert:
    """The message for one incident event, in words."""
    org = orgs.get(conn, m.org_id)
    status = "DOWN" if inc.kind in ("FAIL", "MISSED", "TIMEOUT") else inc.kind
    title = _TITLES[event].format(status=status, name=m.name, what=_WHAT.get(inc.kind, inc.kind))
    if event == "resolved":
        summary = f"{m.name} recovered; the {inc.kind} incident opened {_when(inc.opened_at)} is resolved."
    elif event == "acknowledged":
        summary = f"Someone acknowledged the {inc.kind} incident of {m.name}: {inc.reason}."
    else:
        summary = f"{m.name}: {inc.reason}."
    schedule = describe(schedule_from_row(m.schedule_kind, m.period, m.cron, m.tz))
    return Alert(
        idempotency_key="",
        event=event,
        title=title,
        summary=summary,
        monitor_name=m.name,
        monitor_uuid=m.uuid,
        monitor_status=m.status,
        org_slug=org.slug if org else "",
        incident_id=inc.id,
        incident_kind=inc.kind,
        reason=inc.reason,
        at=_when(now),
        opened_at=_when(inc.opened_at),
        last_ping_at=_when(m.last_ping_at) or "never",
        schedule=f"{schedule}, grace {format_duration(m.grace)}",
        last_duration=format_duration(round(m.last_duration, 2)) if m.last_duration else "",
        output_tail=output_tail(conn, m.id) if event != "resolved" else "",
    )


def notify(conn: sqlite3.Connection, incident_id: int, event: str, now: dt.datetime) -> int:
    """Queue the event for every channel of the incident's monitor; returns how many rows."""
    inc = incidents.get(conn, incident_id)
    if inc is None:
        return 0
    m = monitors.get(conn, inc.monitor_id)
    if m is None or (event == "resolved" and not m.notify_resolve):
        return 0
    subscribed = channels.for_monitor(conn, m.id)
    if not subscribed:
        return 0
    alert = build_alert(conn, inc, m, event, now)
    suffix = event
    if event == "renotify":
        count = conn.execute(
            "SELECT count(DISTINCT idempotency_key) FROM notifications "
            "WHERE incident_id = ? AND event = 'renotify'",
            (inc.id,),
        ).fetchone()[0]
        suffix = f"renotify{count // len(subscribed) + 1}"
    queued = 0
    for channel in subscribed:
        key = f"tokiflow-{inc.id}-{suffix}-{channel.id}"
        message = Alert(**{**vars(alert), "idempotency_key": key}).to_json()
        if notifications.enqueue(
            conn, org_id=m.org_id, channel_id=channel.id, incident_id=inc.id, event=event,
            idempotency_key=key, message=message, now=now,
        ) is not None:  # fmt: skip
            queued += 1
    return queued


def schedule_renotify(
    conn: sqlite3.Connection, incident_id: int, m: Monitor, now: dt.datetime
) -> None:
    """Set when an open incident re-notifies, from the monitor's policy (None: never)."""
    when = None if not m.renotify_every else to_db(now + dt.timedelta(seconds=m.renotify_every))
    conn.execute("UPDATE incidents SET renotify_at = ? WHERE id = ?", (when, incident_id))


def clear_renotify(conn: sqlite3.Connection, incident_id: int) -> None:
    conn.execute("UPDATE incidents SET renotify_at = NULL WHERE id = ?", (incident_id,))


def due_renotifies(conn: sqlite3.Connection, now: dt.datetime, limit: int = 500) -> int:
    """Re-notify every open, unacknowledged incident whose time has come; returns how many."""
    rows = conn.execute(
        "SELECT id, monitor_id, state FROM incidents WHERE renotify_at IS NOT NULL "
        "AND renotify_at <= ? ORDER BY renotify_at LIMIT ?",
        (to_db(now), limit),
    ).fetchall()
    done = 0
    for incident_id, monitor_id, state in rows:
        m = monitors.get(conn, monitor_id)
        if state != "open" or m is None:
            clear_renotify(conn, incident_id)
            continue
        notify(conn, incident_id, "renotify", now)
        schedule_renotify(conn, incident_id, m, now)
        done += 1
    return done


def next_renotify(conn: sqlite3.Connection) -> dt.datetime | None:
    row = conn.execute(
        "SELECT min(renotify_at) FROM incidents WHERE renotify_at IS NOT NULL"
    ).fetchone()
    return None if row[0] is None else dt.datetime.fromisoformat(row[0])
