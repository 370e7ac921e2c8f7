"""The monitor state machine: what a ping or a passing deadline does to a monitor.

Every function here runs inside the writer's transaction and changes a monitor only through
conditional updates, so a transition can never happen twice. Deadlines are computed by
`next_check`, a pure function the scheduler also relies on.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass
from typing import Any

from tokiflow.engine import alerts
from tokiflow.engine.schedules import describe, format_duration, next_due, schedule_from_row
from tokiflow.storage import incidents, runs
from tokiflow.storage import monitors as store
from tokiflow.storage.monitors import Monitor

# A start and its finish this far apart are still paired into one run.
RUN_PAIRING_WINDOW = dt.timedelta(hours=72)
ALERTING_KINDS = ("FAIL", "MISSED", "LATE", "TIMEOUT")


@dataclass(frozen=True)
class Transition:
    """What an event did: the status before and after, and any incident opened."""

    old_status: str
    new_status: str
    monitor: Monitor
    incident_id: int | None = None
    incident_kind: str | None = None

    @property
    def changed(self) -> bool:
        return self.old_status != self.new_status


def due_after(m: Monitor, when: dt.datetime) -> dt.datetime:
    """When the next ping is expected, given a ping at `when`."""
    return next_due(schedule_from_row(m.schedule_kind, m.period, m.cron, m.tz), when)


def _restarted(when: dt.datetime, started_at: dt.datetime) -> dt.datetime:
    # A deadline that fell while the server was not running counts from start-up instead.
    return started_at if when < started_at else when


def down_at(m: Monitor, started_at: dt.datetime) -> dt.datetime | None:
    """When a monitor that is up or late goes down for want of a ping."""
    if m.due_at is None:
        return None
    return _restarted(m.due_at, started_at) + dt.timedelta(seconds=m.grace)


def timeout_at(m: Monitor, started_at: dt.datetime) -> dt.datetime | None:
    """When the oldest open run exceeds the monitor's max runtime."""
    if m.max_runtime is None or m.running_since is None:
        return None
    limit = m.running_since + dt.timedelta(seconds=m.max_runtime)
    if limit < started_at:
        return started_at + dt.timedelta(seconds=m.grace)
    return limit


def next_check(m: Monitor, started_at: dt.datetime) -> dt.datetime | None:
    """The next instant at which the scheduler must look at this monitor (None: never)."""
    if m.status == "paused":
        return None
    candidates: list[dt.datetime] = []
    if m.status == "up" and m.due_at is not None:
        candidates.append(m.due_at)
    elif m.status == "late":
        when = down_at(m, started_at)
        if when is not None:
            candidates.append(when)
    if m.status != "down" or m.open_runs:
        t = timeout_at(m, started_at)
        if t is not None:
            candidates.append(t)
    return min(candidates) if candidates else None


def set_state(
    conn: sqlite3.Connection,
    m: Monitor,
    now: dt.datetime,
    started_at: dt.datetime,
    fields: dict[str, Any],
    reason: str,
) -> Monitor:
    """Write new column values and the next check time in one update guarded by the old status,
    and a flip if the status changed; returns the monitor as now stored."""
    fields["updated_at"] = now
    # Built once from the old values and the changes (dataclasses.replace is slow on the hot path).
    updated = Monitor(**{**vars(m), **fields})
    fields["next_check_at"] = next_check(updated, started_at)
    object.__setattr__(updated, "next_check_at", fields["next_check_at"])
    if not store.update(conn, m.id, m.status, fields):
        raise RuntimeError(f"monitor {m.id} changed under the writer")
    if updated.status != m.status:
        incidents.add_flip(conn, m.id, now, m.status, updated.status, reason)
    return updated


def open_incident(
    conn: sqlite3.Connection,
    m: Monitor,
    kind: str,
    reason: str,
    now: dt.datetime,
    run_id: int | None = None,
) -> int | None:
    """Open an incident unless one of an alerting kind is already open for the monitor.

    A LATE incident gives way to the MISSED one that follows it.
    """
    current = [i for i in incidents.current(conn, m.id) if i.kind in ALERTING_KINDS]
    for inc in current:
        if inc.kind == "LATE" and kind != "LATE":
            incidents.resolve(conn, inc.id, now, f"superseded by {kind}")
            alerts.clear_renotify(conn, inc.id)
        else:
            return None
    incident_id = incidents.open_incident(
        conn, org_id=m.org_id, monitor_id=m.id, kind=kind, reason=reason, at=now, run_id=run_id
    )
    alerts.notify(conn, incident_id, "open", now)
    alerts.schedule_renotify(conn, incident_id, m, now)
    return incident_id


def resolve_incident(conn: sqlite3.Connection, incident_id: int, now: dt.datetime, by: str) -> bool:
    """Resolve an open or acknowledged incident and tell its channels; False if it was not open."""
    if not incidents.resolve(conn, incident_id, now, by):
        return False
    alerts.clear_renotify(conn, incident_id)
    alerts.notify(conn, incident_id, "resolved", now)
    return True


def resolve_on_recovery(conn: sqlite3.Connection, m: Monitor, now: dt.datetime) -> int:
    """Resolve the monitor's open alerting incidents because the job recovered."""
    if m.manual_resume or m.status == "up":
        # An up monitor has no open alerting incident: they open only as it goes late or down.
        return 0
    done = 0
    for inc in incidents.current(conn, m.id):
        if inc.kind in ALERTING_KINDS and resolve_incident(conn, inc.id, now, "recovered"):
            done += 1
    return done


def schedule_words(m: Monitor) -> str:
    return describe(schedule_from_row(m.schedule_kind, m.period, m.cron, m.tz))


def _clock_time(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M UTC")


def evaluate(
    conn: sqlite3.Connection, monitor_id: int, now: dt.datetime, started_at: dt.datetime
) -> tuple[Monitor | None, list[Transition]]:
    """Apply every deadline that has passed by `now` (late, missed, run timeout)."""
    m = store.get(conn, monitor_id)
    if m is None:
        return None, []
    done: list[Transition] = []
    if m.status != "paused" and (t := timeout_at(m, started_at)) is not None and t <= now:
        m, tr = _time_out_runs(conn, m, now, started_at)
        done.append(tr)
    if m.status == "up" and m.due_at is not None and m.due_at <= now:
        m, tr = _go_late(conn, m, now, started_at)
        done.append(tr)
    if m.status == "late" and (d := down_at(m, started_at)) is not None and d <= now:
        m, tr = _go_missed(conn, m, now, started_at)
        done.append(tr)
    if not done and m.next_check_at != next_check(m, started_at):
        m = set_state(conn, m, now, started_at, {}, "")
    return m, done


def _go_late(
    conn: sqlite3.Connection, m: Monitor, now: dt.datetime, started_at: dt.datetime
) -> tuple[Monitor, Transition]:
    assert m.due_at is not None
    reason = f"no ping since {_ping_words(m)}; expected by {_clock_time(m.due_at)}"
    incident = open_incident(conn, m, "LATE", reason, now) if m.late_incidents else None
    new = set_state(conn, m, now, started_at, {"status": "late"}, reason)
    return new, Transition(m.status, "late", new, incident, "LATE" if incident else None)


def _ping_words(m: Monitor) -> str:
    return _clock_time(m.last_ping_at) if m.last_ping_at else "it was created"


def _go_missed(
    conn: sqlite3.Connection, m: Monitor, now: dt.datetime, started_at: dt.datetime
) -> tuple[Monitor, Transition]:
    assert m.due_at is not None
    reason = (
        f"missed: expected a ping by {_clock_time(m.due_at)} ({schedule_words(m)}, grace "
        f"{format_duration(m.grace)}); last ping {_ping_words(m)}"
    )
    incident = open_incident(conn, m, "MISSED", reason, now)
    new = set_state(conn, m, now, started_at, {"status": "down"}, reason)
    return new, Transition(m.status, "down", new, incident, "MISSED" if incident else None)


def _time_out_runs(
    conn: sqlite3.Connection, m: Monitor, now: dt.datetime, started_at: dt.datetime
) -> tuple[Monitor, Transition]:
    assert m.max_runtime is not None
    limit = format_duration(m.max_runtime)
    timed_out: list[int] = []
    for run in runs.open_runs(conn, m.id):
        assert run.started_at is not None
        took = (now - run.started_at).total_seconds()
        if took >= m.max_runtime or run.started_at == m.running_since:
            reason = f"still running after {format_duration(round(took))} (max runtime {limit})"
            if runs.finish(conn, run.id, status="timeout", at=now, duration=None,
                           exit_status=None, ping_n=None, reason=reason):  # fmt: skip
                timed_out.append(run.id)
    started = m.running_since or now
    reason = (
        f"timed out: started {_clock_time(started)} and still running after "
        f"{format_duration(round((now - started).total_seconds()))} (max runtime {limit})"
    )
    incident = open_incident(conn, m, "TIMEOUT", reason, now, timed_out[0] if timed_out else None)
    fields: dict[str, Any] = {
        "status": "down",
        "open_runs": max(m.open_runs - len(timed_out), 0),
        "running_since": runs.oldest_open_start(conn, m.id),
    }
    new = set_state(conn, m, now, started_at, fields, reason)
    return new, Transition(m.status, "down", new, incident, "TIMEOUT" if incident else None)
