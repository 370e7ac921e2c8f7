"""Device codes of `tokiflow login`: a pending sign-in of the command line, approved in the browser.

Only digests of the codes are stored (`user_code` holds the digest of the short code the user
types, `device_code_hash` that of the long code the command line polls with). `approved_by` is
the user who decided; `org_id` the organisation they chose (NULL with `approved_by` set: denied);
`api_key` the prefix of the key handed out, set once when the command line collects it.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass

from tokiflow.storage.timefmt import from_db, to_db

_COLUMNS = "id, created_at, expires_at, approved_by, org_id, api_key"


@dataclass(frozen=True)
class DeviceCode:
    id: int
    created_at: dt.datetime
    expires_at: dt.datetime
    approved_by: int | None
    org_id: int | None
    issued_key: str | None  # the prefix of the API key handed out, once it was

    def state(self, now: dt.datetime) -> str:
        """pending, approved, denied, issued or expired."""
        if self.issued_key is not None:
            return "issued"
        if self.expires_at <= now:
            return "expired"
        if self.approved_by is None:
            return "pending"
        return "denied" if self.org_id is None else "approved"


def _row(r: tuple) -> DeviceCode:
    return DeviceCode(r[0], from_db(r[1]), from_db(r[2]), r[3], r[4], r[5])


def create(
    conn: sqlite3.Connection,
    *,
    user_code_hash: str,
    device_code_hash: str,
    now: dt.datetime,
    expires_at: dt.datetime,
) -> DeviceCode | None:
    """Insert a pending code; None when the user code's digest is already taken (pick another)."""
    try:
        cur = conn.execute(
            "INSERT INTO device_codes(user_code, device_code_hash, created_at, expires_at) "
            "VALUES (?, ?, ?, ?)",
            (user_code_hash, device_code_hash, to_db(now), to_db(expires_at)),
        )
    except sqlite3.IntegrityError:
        return None
    return get(conn, int(cur.lastrowid or 0))


def get(conn: sqlite3.Connection, code_id: int) -> DeviceCode | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM device_codes WHERE id = ?", (code_id,)).fetchone()
    return None if row is None else _row(row)


def by_user_code(conn: sqlite3.Connection, user_code_hash: str) -> DeviceCode | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM device_codes WHERE user_code = ?", (user_code_hash,)
    ).fetchone()
    return None if row is None else _row(row)


def by_device_code(conn: sqlite3.Connection, device_code_hash: str) -> DeviceCode | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM device_codes WHERE device_code_hash = ?", (device_code_hash,)
    ).fetchone()
    return None if row is None else _row(row)


def decide(
    conn: sqlite3.Connection, code_id: int, *, user_id: int, org_id: int | None, now: dt.datetime
) -> bool:
    """Approve (for `org_id`) or deny (`org_id` None) a pending, unexpired code; False when it
    was not pending any more (decided, collected or expired)."""
    cur = conn.execute(
        "UPDATE device_codes SET approved_by = ?, org_id = ? "
        "WHERE id = ? AND approved_by IS NULL AND api_key IS NULL AND expires_at > ?",
        (user_id, org_id, code_id, to_db(now)),
    )
    return cur.rowcount == 1


def mark_issued(conn: sqlite3.Connection, code_id: int, key_prefix: str, now: dt.datetime) -> bool:
    """Record that the approved code's key was handed out; False when it already was (or the
    code is not approved, or expired): a code yields one key at most."""
    cur = conn.execute(
        "UPDATE device_codes SET api_key = ? WHERE id = ? AND api_key IS NULL "
        "AND approved_by IS NOT NULL AND org_id IS NOT NULL AND expires_at > ?",
        (key_prefix, code_id, to_db(now)),
    )
    return cur.rowcount == 1


def prune(conn: sqlite3.Connection, before: dt.datetime) -> int:
    """Delete codes that expired before `before`; returns how many."""
    cur = conn.execute("DELETE FROM device_codes WHERE expires_at < ?", (to_db(before),))
    return cur.rowcount


def count_pending(conn: sqlite3.Connection, now: dt.datetime) -> int:
    """Codes still waiting for a decision (bounds how many an anonymous caller can start)."""
    row = conn.execute(
        "SELECT count(*) FROM device_codes WHERE approved_by IS NULL AND expires_at > ?",
        (to_db(now),),
    ).fetchone()
    return int(row[0])
