"""Pings: every request a monitor received, keyed (monitor, n) so the primary key is the only index."""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass

from tokiflow.storage.timefmt import from_db, to_db


@dataclass(frozen=True)
class Ping:
    monitor_id: int
    n: int
    created_at: dt.datetime
    kind: str
    exit_status: int | None
    rid: str | None
    method: str
    scheme: str
    remote_addr: str
    user_agent: str
    protocol: str
    body: bytes | None
    body_size: int
    duration: float | None


_COLUMNS = (
    "monitor_id, n, created_at, kind, exit_status, rid, method, scheme, remote_addr, "
    "user_agent, protocol, body, body_size, duration"
)


def insert(conn: sqlite3.Connection, ping: Ping) -> None:
    conn.execute(
        f"INSERT INTO pings({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            ping.monitor_id, ping.n, to_db(ping.created_at), ping.kind, ping.exit_status,
            ping.rid, ping.method, ping.scheme, ping.remote_addr, ping.user_agent,
            ping.protocol, ping.body, ping.body_size, ping.duration,
        ),
    )  # fmt: skip


def _row(r: tuple) -> Ping:
    return Ping(
        r[0], r[1], from_db(r[2]), r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10],
        None if r[11] is None else bytes(r[11]), r[12], r[13],
    )  # fmt: skip


def recent(conn: sqlite3.Connection, monitor_id: int, limit: int = 100) -> list[Ping]:
    """The newest pings first."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM pings WHERE monitor_id = ? ORDER BY n DESC LIMIT ?",
        (monitor_id, limit),
    )
    return [_row(r) for r in rows]


def get(conn: sqlite3.Connection, monitor_id: int, n: int) -> Ping | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM pings WHERE monitor_id = ? AND n = ?", (monitor_id, n)
    ).fetchone()
    return None if row is None else _row(row)


def count(conn: sqlite3.Connection, monitor_id: int) -> int:
    return int(
        conn.execute("SELECT count(*) FROM pings WHERE monitor_id = ?", (monitor_id,)).fetchone()[0]
    )


def prune(conn: sqlite3.Connection, monitor_id: int, newest_n: int, keep: int) -> int:
    """Delete all but the `keep` newest pings of a monitor: a range on the primary key."""
    cur = conn.execute(
        "DELETE FROM pings WHERE monitor_id = ? AND n <= ?", (monitor_id, newest_n - keep)
    )
    conn.execute(
        "DELETE FROM ping_metrics WHERE monitor_id = ? AND n <= ?", (monitor_id, newest_n - keep)
    )
    return cur.rowcount


def latest_body(conn: sqlite3.Connection, monitor_id: int) -> bytes | None:
    """The body of the monitor's newest ping that has one."""
    row = conn.execute(
        "SELECT body FROM pings WHERE monitor_id = ? AND body IS NOT NULL ORDER BY n DESC LIMIT 1",
        (monitor_id,),
    ).fetchone()
    return None if row is None or row[0] is None else bytes(row[0])
