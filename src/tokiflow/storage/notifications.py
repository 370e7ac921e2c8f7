"""The alert outbox: one row per (incident event, channel), and every delivery attempt."""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass

from tokiflow.storage import outbox
from tokiflow.storage.timefmt import from_db, opt_from_db, to_db


@dataclass(frozen=True)
class Notification:
    id: int
    org_id: int
    channel_id: int
    incident_id: int | None
    event: str
    state: str
    idempotency_key: str
    message: str
    attempts: int
    created_at: dt.datetime
    next_attempt_at: dt.datetime
    sent_at: dt.datetime | None
    last_error: str | None


@dataclass(frozen=True)
class Attempt:
    id: int
    notification_id: int
    at: dt.datetime
    ok: bool
    status: str
    error: str
    latency_ms: float


_COLUMNS = (
    "id, org_id, channel_id, incident_id, event, state, idempotency_key, message, attempts, "
    "created_at, next_attempt_at, sent_at, last_error"
)


def _row(r: tuple) -> Notification:
    return Notification(
        r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], from_db(r[9]), from_db(r[10]),
        opt_from_db(r[11]), r[12],
    )  # fmt: skip


def enqueue(
    conn: sqlite3.Connection,
    *,
    org_id: int,
    channel_id: int,
    incident_id: int | None,
    event: str,
    idempotency_key: str,
    message: str,
    now: dt.datetime,
) -> int | None:
    """Add a pending notification; None if one with this idempotency key already exists."""
    cur = conn.execute(
        "INSERT OR IGNORE INTO notifications(org_id, channel_id, incident_id, event, state, "
        "idempotency_key, message, created_at, next_attempt_at) "
        "VALUES (?, ?, ?, ?, 'pending', ?, ?, ?, ?)",
        (org_id, channel_id, incident_id, event, idempotency_key, message, to_db(now),
         to_db(now)),
    )  # fmt: skip
    return int(cur.lastrowid) if cur.rowcount == 1 and cur.lastrowid else None


# Claiming due rows (in order within one incident and channel), and marking them sent, to retry
# or dead: see storage.outbox.
_OUTBOX = outbox.Outbox("notifications", _COLUMNS, _row)
claim_due = _OUTBOX.claim_due
release_claims = _OUTBOX.release_claims
mark_sent = _OUTBOX.mark_sent
mark_retry = _OUTBOX.mark_retry
mark_dead = _OUTBOX.mark_dead
next_due = _OUTBOX.next_due


def record_attempt(
    conn: sqlite3.Connection,
    notification_id: int,
    *,
    at: dt.datetime,
    ok: bool,
    status: str,
    error: str,
    latency_ms: float,
) -> None:
    conn.execute(
        "INSERT INTO delivery_attempts(notification_id, at, ok, status, error, latency_ms) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (notification_id, to_db(at), int(ok), status, error, latency_ms),
    )


def get(conn: sqlite3.Connection, notification_id: int) -> Notification | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM notifications WHERE id = ?", (notification_id,)
    ).fetchone()
    return None if row is None else _row(row)


def list_recent(
    conn: sqlite3.Connection,
    *,
    org_id: int | None = None,
    channel_id: int | None = None,
    limit: int = 100,
) -> list[Notification]:
    where, args = [], []
    if org_id is not None:
        where.append("org_id = ?")
        args.append(org_id)
    if channel_id is not None:
        where.append("channel_id = ?")
        args.append(channel_id)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM notifications {clause} ORDER BY id DESC LIMIT ?", (*args, limit)
    )
    return [_row(r) for r in rows]


def attempts(conn: sqlite3.Connection, notification_id: int) -> list[Attempt]:
    rows = conn.execute(
        "SELECT id, notification_id, at, ok, status, error, latency_ms FROM delivery_attempts "
        "WHERE notification_id = ? ORDER BY id",
        (notification_id,),
    )
    return [Attempt(r[0], r[1], from_db(r[2]), bool(r[3]), r[4], r[5], r[6]) for r in rows]


def count_keys(conn: sqlite3.Connection, incident_id: int, event: str) -> int:
    """How many distinct notifications (idempotency keys) of `event` the incident has had."""
    row = conn.execute(
        "SELECT count(DISTINCT idempotency_key) FROM notifications "
        "WHERE incident_id = ? AND event = ?",
        (incident_id, event),
    ).fetchone()
    return int(row[0])


def last_id(conn: sqlite3.Connection) -> int:
    """The newest notification's id (0 when there is none)."""
    return int(conn.execute("SELECT coalesce(max(id), 0) FROM notifications").fetchone()[0])


def finish_test(
    conn: sqlite3.Connection, notification_id: int, *, ok: bool, error: str | None, at: dt.datetime
) -> None:
    """Settle a test notification that was sent at once rather than through the outbox."""
    conn.execute(
        "UPDATE notifications SET state = ?, attempts = 1, sent_at = ?, last_error = ? "
        "WHERE id = ?",
        ("sent" if ok else "dead", to_db(at) if ok else None, None if ok else error,
         notification_id),
    )  # fmt: skip
