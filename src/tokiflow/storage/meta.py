"""Server bookkeeping in `server_meta`: small key/value facts such as when the server was last alive."""

from __future__ import annotations

import datetime as dt
import sqlite3

from tokiflow.storage.timefmt import to_db


def put(conn: sqlite3.Connection, key: str, value: str | dt.datetime) -> None:
    """Set one fact (a datetime is stored in the database's time format)."""
    text = to_db(value) if isinstance(value, dt.datetime) else value
    conn.execute(
        "INSERT INTO server_meta(key, value) VALUES (?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (key, text),
    )


def get(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM server_meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def read_all(conn: sqlite3.Connection) -> dict[str, str]:
    return {k: v for k, v in conn.execute("SELECT key, value FROM server_meta")}
