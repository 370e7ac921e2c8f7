"""Personal incident emails: an outbox of one row per (incident event, user) or per digest, and
the digest items each user collects until their digest goes out."""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass

from tokiflow.storage import outbox
from tokiflow.storage.timefmt import from_db, opt_from_db, to_db


@dataclass(frozen=True)
class UserNotification:
    id: int
    user_id: int
    org_id: int | None  # None for a digest (it may cover several organisations)
    incident_id: int | None
    kind: str  # alert or digest
    event: str
    state: str
    idempotency_key: str
    message: str
    attempts: int
    created_at: dt.datetime
    due_at: dt.datetime  # when it was first meant to go (the end of quiet hours, if held)
    next_attempt_at: dt.datetime
    sent_at: dt.datetime | None
    last_error: str | None


@dataclass(frozen=True)
class DigestItem:
    id: int
    user_id: int
    org_id: int
    incident_id: int | None
    event: str
    message: str
    created_at: dt.datetime
    due_at: dt.datetime
    digest_id: int | None


_COLUMNS = (
    "id, user_id, org_id, incident_id, kind, event, state, idempotency_key, message, attempts, "
    "created_at, due_at, next_attempt_at, sent_at, last_error"
)
_ITEM = "id, user_id, org_id, incident_id, event, message, created_at, due_at, digest_id"


def _row(r: tuple) -> UserNotification:
    return UserNotification(
        r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], from_db(r[10]),
        from_db(r[11]), from_db(r[12]), opt_from_db(r[13]), r[14],
    )  # fmt: skip


def _item(r: tuple) -> DigestItem:
    return DigestItem(r[0], r[1], r[2], r[3], r[4], r[5], from_db(r[6]), from_db(r[7]), r[8])


def enqueue(
    conn: sqlite3.Connection,
    *,
    user_id: int,
    org_id: int | None,
    incident_id: int | None,
    kind: str,
    event: str,
    idempotency_key: str,
    message: str,
    now: dt.datetime,
    due: dt.datetime,
) -> int | None:
    """Add a pending email due at `due`; None if one with this idempotency key exists."""
    cur = conn.execute(
        "INSERT OR IGNORE INTO user_notifications(user_id, org_id, incident_id, kind, event, "
        "state, idempotency_key, message, created_at, due_at, next_attempt_at) "
        "VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?)",
        (user_id, org_id, incident_id, kind, event, idempotency_key, message, to_db(now),
         to_db(due), to_db(due)),
    )  # fmt: skip
    return int(cur.lastrowid) if cur.rowcount == 1 and cur.lastrowid else None


def add_digest_item(
    conn: sqlite3.Connection,
    *,
    user_id: int,
    org_id: int,
    incident_id: int | None,
    event: str,
    idempotency_key: str,
    message: str,
    now: dt.datetime,
    due: dt.datetime,
) -> int | None:
    """Keep an alert for the user's next digest (due at `due`); None if already kept."""
    cur = conn.execute(
        "INSERT OR IGNORE INTO digest_items(user_id, org_id, incident_id, event, "
        "idempotency_key, message, created_at, due_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (user_id, org_id, incident_id, event, idempotency_key, message, to_db(now), to_db(due)),
    )
    return int(cur.lastrowid) if cur.rowcount == 1 and cur.lastrowid else None


def users_with_due_digest(conn: sqlite3.Connection, now: dt.datetime) -> list[int]:
    rows = conn.execute(
        "SELECT DISTINCT user_id FROM digest_items WHERE digest_id IS NULL AND due_at <= ? "
        "ORDER BY user_id",
        (to_db(now),),
    )
    return [r[0] for r in rows]


def due_items(conn: sqlite3.Connection, user_id: int, now: dt.datetime) -> list[DigestItem]:
    """The user's items not in a digest yet whose digest time has come, oldest first."""
    rows = conn.execute(
        f"SELECT {_ITEM} FROM digest_items WHERE digest_id IS NULL AND user_id = ? "
        "AND due_at <= ? ORDER BY id",
        (user_id, to_db(now)),
    )
    return [_item(r) for r in rows]


def attach_items(conn: sqlite3.Connection, item_ids: list[int], digest_id: int) -> int:
    """Put items into a digest (each into one digest only)."""
    done = 0
    for item_id in item_ids:
        done += conn.execute(
            "UPDATE digest_items SET digest_id = ? WHERE id = ? AND digest_id IS NULL",
            (digest_id, item_id),
        ).rowcount
    return done


def items_of(conn: sqlite3.Connection, digest_id: int) -> list[DigestItem]:
    rows = conn.execute(
        f"SELECT {_ITEM} FROM digest_items WHERE digest_id = ? ORDER BY id", (digest_id,)
    )
    return [_item(r) for r in rows]


def pending_items(conn: sqlite3.Connection, user_id: int) -> list[DigestItem]:
    rows = conn.execute(
        f"SELECT {_ITEM} FROM digest_items WHERE digest_id IS NULL AND user_id = ? ORDER BY id",
        (user_id,),
    )
    return [_item(r) for r in rows]


def next_digest_due(conn: sqlite3.Connection) -> dt.datetime | None:
    row = conn.execute("SELECT min(due_at) FROM digest_items WHERE digest_id IS NULL").fetchone()
    return opt_from_db(row[0])


# Claiming due rows (in order within one incident and user), and marking them sent, to retry
# or dead: see storage.outbox.
_OUTBOX = outbox.Outbox("user_notifications", _COLUMNS, _row)
claim_due = _OUTBOX.claim_due
release_claims = _OUTBOX.release_claims
mark_sent = _OUTBOX.mark_sent
mark_retry = _OUTBOX.mark_retry
mark_dead = _OUTBOX.mark_dead
next_due = _OUTBOX.next_due


def get(conn: sqlite3.Connection, notification_id: int) -> UserNotification | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM user_notifications WHERE id = ?", (notification_id,)
    ).fetchone()
    return None if row is None else _row(row)


def list_for_user(
    conn: sqlite3.Connection, user_id: int, limit: int = 100
) -> list[UserNotification]:
    """The user's personal emails, newest first."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM user_notifications WHERE user_id = ? ORDER BY id DESC LIMIT ?",
        (user_id, limit),
    )
    return [_row(r) for r in rows]


def prune_sent(conn: sqlite3.Connection, before: dt.datetime, limit: int = 1000) -> int:
    """Delete up to `limit` sent or dead emails (and their digest items) created before
    `before`."""
    return conn.execute(
        "DELETE FROM user_notifications WHERE id IN (SELECT id FROM user_notifications "
        "WHERE state IN ('sent', 'dead') AND created_at < ? LIMIT ?)",
        (to_db(before), limit),
    ).rowcount


def last_id(conn: sqlite3.Connection) -> int:
    """The newest personal email's id (0 when there is none)."""
    return int(conn.execute("SELECT coalesce(max(id), 0) FROM user_notifications").fetchone()[0])
