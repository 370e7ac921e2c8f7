"""Alert policy: which channels and which people hear of an incident event, and what the
message says.

`notify` runs inside the writer transaction that changes the incident, so the outbox rows
commit (or roll back) together with the state change: an alert is never lost nor invented.
Besides the monitor's channels, members who opted in to incident emails (their notification
preferences) get a personal email, at once, after their quiet hours, or in their digest.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import sqlite3

from tokiflow.channels.base import Alert
from tokiflow.engine import accounts as account_ops
from tokiflow.engine import auth
from tokiflow.engine.schedules import describe, format_duration, schedule_from_row
from tokiflow.storage import (
    accounts,
    channels,
    incidents,
    monitors,
    notifications,
    orgs,
    pings,
    user_notifications,
)
from tokiflow.storage.incidents import Incident
from tokiflow.storage.monitors import Monitor

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


# Incidents that reach people's own mailboxes (acknowledgements and re-notifications are for
# the on-call channels).
PERSONAL_EVENTS = ("open", "resolved")
_UTC_TIME = re.compile(r"\b(\d{4}-\d{2}-\d{2} \d{2}:\d{2})(:\d{2})? UTC\b")


def _zone_name(local: dt.datetime) -> str:
    name = local.tzname() or "UTC"
    return f"UTC{name}" if name[:1] in "+-" else name


def local_time(value: dt.datetime | None, tz: str = "UTC") -> str:
    """A time for people to read, on the wall clock of `tz` with the zone's abbreviation."""
    if value is None:
        return ""
    if tz == "UTC":
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")
    local = value.astimezone(account_ops.zone_of(tz))
    return f"{local:%Y-%m-%d %H:%M:%S} {_zone_name(local)}"


def localise(text: str, tz: str) -> str:
    """`text` with the UTC times it quotes ("2026-03-02 13:00 UTC") on the wall clock of `tz`."""
    if tz == "UTC":
        return text

    def local(m: re.Match[str]) -> str:
        seconds = m.group(2) or ""
        when = dt.datetime.fromisoformat(m.group(1) + seconds).replace(tzinfo=dt.UTC)
        shown = when.astimezone(account_ops.zone_of(tz))
        fmt = "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
        return f"{shown.strftime(fmt)} {_zone_name(shown)}"

    return _UTC_TIME.sub(local, text)


def output_tail(conn: sqlite3.Connection, monitor_id: int) -> str:
    """The last lines of the newest ping body of the monitor (already redacted on the way in)."""
    body = pings.latest_body(conn, monitor_id)
    return "" if body is None else tail_of(body)


def tail_of(data: bytes) -> str:
    """The last lines of some output, short enough for a chat message."""
    text = data.decode("utf-8", errors="replace")
    tail = "\n".join(text.rstrip().splitlines()[-OUTPUT_TAIL_LINES:])
    return tail[-OUTPUT_TAIL_CHARS:]


def build_alert(
    conn: sqlite3.Connection,
    inc: Incident,
    m: Monitor,
    event: str,
    now: dt.datetime,
    tz: str = "UTC",
) -> Alert:
    """The message for one incident event, in words, with times on the wall clock of `tz`."""
    org = orgs.get(conn, m.org_id)
    status = "DOWN" if inc.kind in ("FAIL", "MISSED", "TIMEOUT") else inc.kind
    title = _TITLES[event].format(status=status, name=m.name, what=_WHAT.get(inc.kind, inc.kind))
    if event == "resolved":
        summary = (
            f"{m.name} recovered; the {inc.kind} incident opened {local_time(inc.opened_at, tz)} "
            "is resolved."
        )
    elif event == "acknowledged":
        summary = f"Someone acknowledged the {inc.kind} incident of {m.name}: {inc.reason}."
    else:
        summary = f"{m.name}: {inc.reason}."
    reason = localise(inc.reason, tz)
    summary = localise(summary, tz)
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
        reason=reason,
        at=local_time(now, tz),
        opened_at=local_time(inc.opened_at, tz),
        last_ping_at=local_time(m.last_ping_at, tz) or "never",
        schedule=f"{schedule}, grace {format_duration(m.grace)}",
        last_duration=format_duration(round(m.last_duration, 2)) if m.last_duration else "",
        output_tail=output_tail(conn, m.id) if event != "resolved" else "",
    )


def notify(conn: sqlite3.Connection, incident_id: int, event: str, now: dt.datetime) -> int:
    """Queue the event for every channel of the incident's monitor and for every member who
    opted in to it; returns how many rows."""
    inc = incidents.get(conn, incident_id)
    if inc is None:
        return 0
    m = monitors.get(conn, inc.monitor_id)
    if m is None or (event == "resolved" and not m.notify_resolve):
        return 0
    return _notify_channels(conn, inc, m, event, now) + notify_people(conn, inc, m, event, now)


def _notify_channels(
    conn: sqlite3.Connection, inc: Incident, m: Monitor, event: str, now: dt.datetime
) -> int:
    subscribed = channels.for_monitor(conn, m.id)
    if not subscribed:
        return 0
    alert = build_alert(conn, inc, m, event, now)
    suffix = event
    if event == "renotify":
        count = notifications.count_keys(conn, inc.id, "renotify")
        suffix = f"renotify{count // len(subscribed) + 1}"
    queued = 0
    for channel in subscribed:
        key = f"tokiflow-{inc.id}-{suffix}-{channel.id}"
        message = dataclasses.replace(alert, idempotency_key=key).to_json()
        if notifications.enqueue(
            conn, org_id=m.org_id, channel_id=channel.id, incident_id=inc.id, event=event,
            idempotency_key=key, message=message, now=now,
        ) is not None:  # fmt: skip
            queued += 1
    return queued


def notify_people(
    conn: sqlite3.Connection, inc: Incident, m: Monitor, event: str, now: dt.datetime
) -> int:
    """Queue personal emails about an incident opening or resolving for the organisation's
    members whose preferences select it: due now, at the end of their quiet hours, or kept for
    their digest. Members whose role cannot read monitors (billing) get none."""
    if event not in PERSONAL_EVENTS:
        return 0
    tags = m.tags.split()
    built: dict[str, Alert] = {}
    queued = 0
    for user, role, prefs in accounts.opted_in(conn, m.org_id):
        if "read" not in auth.ROLE_SCOPES.get(role, set()):
            continue
        decision = account_ops.decide(prefs, tags, now, user.tz)
        if decision.action == "skip":
            continue
        if user.tz not in built:
            built[user.tz] = build_alert(conn, inc, m, event, now, tz=user.tz)
        key = f"tokiflow-{inc.id}-{event}-user{user.id}"
        alert = built[user.tz]
        personal = {**alert.extra, "personal": "1"}
        message = dataclasses.replace(alert, idempotency_key=key, extra=personal).to_json()
        if decision.action == "digest":
            added = user_notifications.add_digest_item(
                conn, user_id=user.id, org_id=m.org_id, incident_id=inc.id, event=event,
                idempotency_key=key, message=message, now=now,
                due=account_ops.next_digest_at(prefs, now, user.tz),
            )  # fmt: skip
        else:
            added = user_notifications.enqueue(
                conn, user_id=user.id, org_id=m.org_id, incident_id=inc.id, kind="alert",
                event=event, idempotency_key=key, message=message, now=now,
                due=decision.until or now,
            )  # fmt: skip
        queued += added is not None
    return queued


def schedule_renotify(
    conn: sqlite3.Connection, incident_id: int, m: Monitor, now: dt.datetime
) -> None:
    """Set when an open incident re-notifies, from the monitor's policy (None: never)."""
    when = None if not m.renotify_every else now + dt.timedelta(seconds=m.renotify_every)
    incidents.set_renotify(conn, incident_id, when)


def clear_renotify(conn: sqlite3.Connection, incident_id: int) -> None:
    incidents.set_renotify(conn, incident_id, None)


def due_renotifies(conn: sqlite3.Connection, now: dt.datetime, limit: int = 500) -> int:
    """Re-notify every open, unacknowledged incident whose time has come; returns how many."""
    done = 0
    for incident_id, monitor_id, state in incidents.due_renotify(conn, now, limit):
        m = monitors.get(conn, monitor_id)
        if state != "open" or m is None:
            clear_renotify(conn, incident_id)
            continue
        notify(conn, incident_id, "renotify", now)
        schedule_renotify(conn, incident_id, m, now)
        done += 1
    return done


def next_renotify(conn: sqlite3.Connection) -> dt.datetime | None:
    return incidents.next_renotify(conn)
