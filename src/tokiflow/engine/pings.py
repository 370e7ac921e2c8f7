"""Ping ingress for the engine: one `PingEvent` from any front door becomes a stored ping, a run
change and a state change, all inside one writer transaction."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass

from tokiflow import licensing
from tokiflow.engine import anomaly, states
from tokiflow.engine import monitors as monitor_defs
from tokiflow.engine.scheduler import Scheduler
from tokiflow.engine.schedules import format_duration
from tokiflow.storage import metrics as ping_metrics
from tokiflow.storage import monitors as store
from tokiflow.storage import notifications, orgs, pings, rollups, runs, user_notifications
from tokiflow.storage.database import Database
from tokiflow.storage.monitors import Monitor
from tokiflow.storage.outputs import OutputStore
from tokiflow.storage.pings import Ping

KINDS = ("start", "success", "fail", "log")
PRUNE_EVERY = 100


@dataclass(frozen=True)
class PingEvent:
    """A ping as every front door hands it to the engine."""

    kind: str
    received_at: dt.datetime
    uuid: str | None = None
    ping_key: str | None = None
    slug: str | None = None
    create: bool = False
    exit_status: int | None = None
    rid: str | None = None
    method: str = "GET"
    scheme: str = "http"
    remote_addr: str = ""
    user_agent: str = ""
    body: bytes = b""
    body_size: int = 0
    protocol: str = "hc"
    duration: float | None = None  # the job's own measure, when the client reports one
    metrics: Mapping[str, float] | None = None  # numbers the client reports (Cronitor metric=)


@dataclass(frozen=True)
class PingOutcome:
    """How the ping was taken: found / created / not found / ambiguous, and what it changed."""

    result: str  # "ok", "created", "not_found", "ambiguous", "limit" (plan allows no new one)
    monitor: Monitor | None = None
    kind: str | None = None
    transition: states.Transition | None = None
    alerts_queued: bool = False  # the dispatcher has something new to send


def _last_notification(conn: sqlite3.Connection) -> tuple[int, int]:
    # Channel alerts and personal emails: either means the dispatcher has work.
    return notifications.last_id(conn), user_notifications.last_id(conn)


def _find(
    conn: sqlite3.Connection, ev: PingEvent, limits: licensing.Limits
) -> tuple[str, Monitor | None]:
    if ev.uuid is not None:
        m = store.by_uuid(conn, ev.uuid)
        return ("ok", m) if m else ("not_found", None)
    org = orgs.by_ping_key(conn, ev.ping_key or "")
    if org is None or ev.slug is None:
        return "not_found", None
    found = store.by_slug(conn, org.id, ev.slug)
    if len(found) > 1:
        return "ambiguous", None
    if found:
        return "ok", found[0]
    if not ev.create:
        return "not_found", None
    try:
        created = monitor_defs.insert_monitor(
            conn, monitor_defs.auto_created(org.id, ev.slug), ev.received_at, limits=limits
        )
    except monitor_defs.MonitorLimitError:
        return "limit", None
    return "created", created


def record_ping(
    conn: sqlite3.Connection,
    ev: PingEvent,
    *,
    started_at: dt.datetime,
    pings_kept: int,
    stats_window: int = 100,
    outputs: OutputStore | None = None,
    limits: licensing.Limits,
) -> PingOutcome:
    """Store a ping and apply it to its monitor; runs in the writer.

    With `outputs`, a non-empty body is captured to disk (redacted, capped, encrypted) instead
    of the ping row; `stats_window` is how many recent runs the anomaly median looks at;
    `limits`, the plan in force, decides whether a `?create=1` ping may add a monitor and
    whether finished runs are judged for anomalies.
    """
    result, m = _find(conn, ev, limits)
    if m is None:
        return PingOutcome(result)
    now = ev.received_at
    kind = ev.kind
    if m.methods == "post" and ev.method != "POST":
        kind = "ignored"
    elif m.status == "paused" and m.manual_resume:
        kind = "ignored"
    n = m.n_pings + 1
    duration: float | None = None
    transition: states.Transition | None = None
    fields: dict[str, object] = {"n_pings": n}
    run = None
    run_id: int | None = None
    if kind == "start":
        run_id = _start_run(conn, m, ev, n, fields)
    elif kind in ("success", "fail") and m.open_runs:
        run = runs.find_open(conn, m.id, ev.rid, now - states.RUN_PAIRING_WINDOW)
        if run is not None:
            run_id = run.id
            if run.started_at is not None:
                duration = max((now - run.started_at).total_seconds(), 0.0)
    if ev.duration is not None and kind in ("success", "fail"):
        duration = max(ev.duration, 0.0)  # the client measured the job itself
    _store(conn, m, ev, n, kind, duration, run_id, outputs)
    queued = False
    if kind in ("success", "fail"):
        # An incident can open or resolve here (FAIL, ANOMALY, OUTPUT, recovery): notice when
        # alerts were queued so the caller can wake the dispatcher (a rowid max is O(1)).
        before = _last_notification(conn)
        judge = limits.allows("anomaly_detection")
        transition = _finish(
            conn, m, kind, ev, run, duration, n, fields, started_at, stats_window, judge
        )
        queued = _last_notification(conn) != before
    if transition is None:
        m = states.set_state(conn, m, now, started_at, fields, "")
    else:
        m = transition.monitor
    if n % PRUNE_EVERY == 0 and n > pings_kept:
        rollups.forget_pings(conn, m.id, n - pings_kept)
        pings.prune(conn, m.id, n, pings_kept)
    return PingOutcome(result, m, kind, transition, queued)


def _store(
    conn: sqlite3.Connection,
    m: Monitor,
    ev: PingEvent,
    n: int,
    kind: str,
    duration: float | None,
    run_id: int | None,
    outputs: OutputStore | None,
) -> None:
    """Write the ping row, its captured output and its reported metrics."""
    body = ev.body or None
    if body is not None and outputs is not None:
        # Captured output lives on disk, redacted and encrypted; the ping row keeps no body.
        outputs.capture(conn, m, n, body, ev.body_size, ev.received_at, run_id)
        body = None
    pings.insert(
        conn,
        Ping(m.id, n, ev.received_at, kind, ev.exit_status, ev.rid, ev.method, ev.scheme,
             ev.remote_addr, ev.user_agent, ev.protocol, body, ev.body_size, duration),
    )  # fmt: skip
    if ev.metrics:
        ping_metrics.insert(conn, m.id, n, ev.metrics)


def _start_run(
    conn: sqlite3.Connection, m: Monitor, ev: PingEvent, n: int, fields: dict[str, object]
) -> int:
    now = ev.received_at
    open_count, since = m.open_runs, m.running_since
    window_start = now - states.RUN_PAIRING_WINDOW
    if since is not None and since < window_start:
        # Runs too old to pair with a finish would show the monitor running forever.
        open_count -= runs.abandon_stale(conn, m.id, window_start, now)
        since = runs.oldest_open_start(conn, m.id)
    run_id = runs.start(conn, m.id, ev.rid, now, n)
    fields.update(last_start_at=now, open_runs=open_count + 1, running_since=since or now)
    return run_id


def _finish(
    conn: sqlite3.Connection,
    m: Monitor,
    kind: str,
    ev: PingEvent,
    run: runs.Run | None,
    duration: float | None,
    n: int,
    fields: dict[str, object],
    started_at: dt.datetime,
    stats_window: int,
    judge: bool,
) -> states.Transition:
    now = ev.received_at
    # Output sizes are tracked once a monitor has sent output, so that an empty one is noticed.
    output_size = max(ev.body_size, len(ev.body)) if ev.body or m.output_tracked else None
    failed = kind == "fail"
    reason = _fail_reason(ev)
    if not failed and m.min_runtime is not None and duration is not None:
        if duration < m.min_runtime:
            failed = True
            reason = (
                f"finished too fast: took {format_duration(round(duration, 2))} "
                f"(min runtime {format_duration(m.min_runtime)})"
            )
    if run is not None:
        runs.finish(
            conn, run.id, status="fail" if failed else "success", at=now, duration=duration,
            exit_status=ev.exit_status, ping_n=n, reason=reason if failed else "",
            output_size=output_size,
        )  # fmt: skip
        fields["open_runs"] = max(m.open_runs - 1, 0)
        fields["running_since"] = runs.oldest_open_start(conn, m.id)
    _roll_up(conn, m, kind, n, now, None if failed else run, duration)
    fields.update(last_ping_at=now, due_at=states.due_after(m, now))
    if duration is not None:
        fields["last_duration"] = duration
    if not failed:
        fields.update(status="up", last_success_at=now, consecutive_failures=0)
        states.resolve_on_recovery(conn, m, now)
        opened = None
        if duration is not None or output_size is not None:
            if ev.body and not m.output_tracked:
                fields["output_tracked"] = True
            finish = anomaly.Finish(True, run.id if run else None, duration, output_size)
            opened = anomaly.apply_finish(
                conn, m, finish, now, window=stats_window,
                judge=judge,
            )  # fmt: skip
        new = states.set_state(conn, m, now, started_at, fields, "success ping")
        if opened is not None:
            return states.Transition(m.status, new.status, new, *opened)
        return states.Transition(m.status, new.status, new)
    failures = m.consecutive_failures + 1
    fields["consecutive_failures"] = failures
    if failures <= m.failure_tolerance:
        # Tolerated: the job did run, so it is not late; the status stays as it was.
        if m.status in ("new", "paused", "late"):
            fields["status"] = "up"
        tolerated = f"{reason} ({failures} of {m.failure_tolerance} tolerated failures)"
        new = states.set_state(conn, m, now, started_at, fields, tolerated)
        return states.Transition(m.status, new.status, new)
    fields["status"] = "down"
    if m.failure_tolerance:
        reason = f"{reason} ({failures} failures in a row)"
    incident = states.open_incident(conn, m, "FAIL", reason, now, run.id if run else None)
    new = states.set_state(conn, m, now, started_at, fields, reason)
    return states.Transition(m.status, new.status, new, incident, "FAIL" if incident else None)


def _roll_up(
    conn: sqlite3.Connection, m: Monitor, kind: str, n: int, now: dt.datetime,
    succeeded: runs.Run | None, duration: float | None,
) -> None:  # fmt: skip
    """The analytics rollups count every success ping, and the run it finished when that run
    succeeded with a duration."""
    if kind != "success":
        return
    timed = None if succeeded is None or duration is None else (succeeded.id, duration)
    rollups.add_ping(conn, m.org_id, m.id, n, now, timed)


def _fail_reason(ev: PingEvent) -> str:
    if ev.exit_status:
        return f"the job failed with exit status {ev.exit_status}"
    return "the job reported failure"


async def ingest(
    db: Database,
    scheduler: Scheduler,
    ev: PingEvent,
    *,
    pings_kept: int,
    stats_window: int = 100,
    outputs: OutputStore | None = None,
    limits: licensing.Limits,
) -> PingOutcome:
    """Record a ping durably; returns once it is committed, with the scheduler updated.
    `limits` is the plan in force (see record_ping)."""

    def after(outcome: PingOutcome) -> None:
        if outcome.monitor is not None:
            scheduler.set_deadline(outcome.monitor.id, outcome.monitor.next_check_at)

    return await db.write(
        lambda conn: record_ping(
            conn,
            ev,
            started_at=scheduler.started_at,
            pings_kept=pings_kept,
            stats_window=stats_window,
            outputs=outputs,
            limits=limits,
        ),  # fmt: skip
        after_commit=after,
    )
