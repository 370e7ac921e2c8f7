"""The alert outbox: one row per (incident event, channel), and every delivery attempt."""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass

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


def claim_due(conn: sqlite3.Connection, now: dt.datetime, limit: int) -> list[Notification]:
    """Mark up to `limit` due pending rows as sending and return them (oldest first).

    A row waits while an earlier row of the same incident and channel is still unsent, so a
    channel always hears "open" before "resolved" (PagerDuty would keep an incident open
    forever otherwise), even when the first one needed retries.
    """
    rows = conn.execute(
        f"UPDATE notifications SET state = 'sending', attempts = attempts + 1 WHERE id IN ("
        "SELECT n.id FROM notifications n WHERE n.state = 'pending' AND n.next_attempt_at <= ? "
        "AND NOT EXISTS (SELECT 1 FROM notifications p WHERE p.incident_id = n.incident_id "
        "AND p.channel_id = n.channel_id AND p.id < n.id AND p.state IN ('pending', 'sending')) "
        f"ORDER BY n.next_attempt_at, n.id LIMIT ?) RETURNING {_COLUMNS}",
        (to_db(now), limit),
    ).fetchall()
    return sorted((_row(r) for r in rows), key=lambda n: (n.next_attempt_at, n.id))


def release_claims(conn: sqlite3.Connection) -> int:
    """At start-up: rows left `sending` by a stopped process go back to pending."""
    return conn.execute(
        "UPDATE notifications SET state = 'pending' WHERE state = 'sending'"
    ).rowcount


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


def mark_sent(conn: sqlite3.Connection, notification_id: int, at: dt.datetime) -> bool:
    cur = conn.execute(
        "UPDATE notifications SET state = 'sent', sent_at = ?, last_error = NULL "
        "WHERE id = ? AND state = 'sending'",
        (to_db(at), notification_id),
    )
    return cur.rowcount == 1


def mark_retry(
    conn: sqlite3.Connection, notification_id: int, error: str, next_at: dt.datetime
) -> bool:
    cur = conn.execute(
        "UPDATE notifications SET state = 'pending', last_error = ?, next_attempt_at = ? "
        "WHERE id = ? AND state = 'sending'",
        (error, to_db(next_at), notification_id),
    )
    return cur.rowcount == 1


def mark_dead(conn: sqlite3.Connection, notification_id: int, error: str) -> bool:
    cur = conn.execute(
        "UPDATE notifications SET state = 'dead', last_error = ? WHERE id = ? AND state = 'sending'",
        (error, notification_id),
    )
    return cur.rowcount == 1


def next_due(conn: sqlite3.Connection) -> dt.datetime | None:
    row = conn.execute(
        "SELECT min(next_attempt_at) FROM notifications WHERE state = 'pending'"
    ).fetchone()
    return opt_from_db(row[0])


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
