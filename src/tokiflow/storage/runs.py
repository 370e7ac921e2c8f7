"""Runs: a job execution from its start ping to its finish (or its timeout)."""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass

from tokiflow.storage.timefmt import opt_from_db, to_db


@dataclass(frozen=True)
class Run:
    id: int
    monitor_id: int
    rid: str | None
    status: str
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    duration: float | None
    exit_status: int | None
    start_ping: int | None
    end_ping: int | None
    reason: str
    output_size: int | None = None


_COLUMNS = (
    "id, monitor_id, rid, status, started_at, finished_at, duration, exit_status, start_ping, "
    "end_ping, reason, output_size"
)


def _row(r: tuple) -> Run:
    return Run(
        r[0], r[1], r[2], r[3], opt_from_db(r[4]), opt_from_db(r[5]), r[6], r[7], r[8], r[9], r[10],
        r[11],
    )  # fmt: skip


def start(
    conn: sqlite3.Connection, monitor_id: int, rid: str | None, at: dt.datetime, ping_n: int
) -> int:
    cur = conn.execute(
        "INSERT INTO runs(monitor_id, rid, status, started_at, start_ping) "
        "VALUES (?, ?, 'running', ?, ?)",
        (monitor_id, rid, to_db(at), ping_n),
    )
    return int(cur.lastrowid or 0)


def find_open(
    conn: sqlite3.Connection, monitor_id: int, rid: str | None, since: dt.datetime
) -> Run | None:
    """The open run a finish belongs to: the one with this rid, else the latest open one."""
    if rid is not None:
        row = conn.execute(
            f"SELECT {_COLUMNS} FROM runs WHERE monitor_id = ? AND status = 'running' "
            "AND rid = ? AND started_at >= ? ORDER BY id DESC LIMIT 1",
            (monitor_id, rid, to_db(since)),
        ).fetchone()
    else:
        row = conn.execute(
            f"SELECT {_COLUMNS} FROM runs WHERE monitor_id = ? AND status = 'running' "
            "AND started_at >= ? ORDER BY id DESC LIMIT 1",
            (monitor_id, to_db(since)),
        ).fetchone()
    return None if row is None else _row(row)


def finish(
    conn: sqlite3.Connection,
    run_id: int,
    *,
    status: str,
    at: dt.datetime,
    duration: float | None,
    exit_status: int | None,
    ping_n: int | None,
    reason: str = "",
    output_size: int | None = None,
) -> bool:
    """Close an open run; False if it was already closed (no transition happens twice).
    `output_size` is the size of the output the finish brought (None: no body)."""
    cur = conn.execute(
        "UPDATE runs SET status = ?, finished_at = ?, duration = ?, exit_status = ?, "
        "end_ping = ?, reason = ?, output_size = ? WHERE id = ? AND status = 'running'",
        (status, to_db(at), duration, exit_status, ping_n, reason, output_size, run_id),
    )
    return cur.rowcount == 1


def abandon_stale(
    conn: sqlite3.Connection, monitor_id: int, before: dt.datetime, at: dt.datetime
) -> int:
    """Close open runs that started before `before` and can no longer be paired with a finish."""
    cur = conn.execute(
        "UPDATE runs SET status = 'timeout', finished_at = ?, reason = ? "
        "WHERE monitor_id = ? AND status = 'running' AND started_at < ?",
        (to_db(at), "no finish within 72 hours of the start", monitor_id, to_db(before)),
    )
    return cur.rowcount


def open_runs(conn: sqlite3.Connection, monitor_id: int) -> list[Run]:
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM runs WHERE monitor_id = ? AND status = 'running' ORDER BY id",
        (monitor_id,),
    )
    return [_row(r) for r in rows]


def oldest_open_start(conn: sqlite3.Connection, monitor_id: int) -> dt.datetime | None:
    row = conn.execute(
        "SELECT min(started_at) FROM runs WHERE monitor_id = ? AND status = 'running'",
        (monitor_id,),
    ).fetchone()
    return opt_from_db(row[0])


def get(conn: sqlite3.Connection, run_id: int) -> Run | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM runs WHERE id = ?", (run_id,)).fetchone()
    return None if row is None else _row(row)


def recent(conn: sqlite3.Connection, monitor_id: int, limit: int = 50) -> list[Run]:
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM runs WHERE monitor_id = ? ORDER BY id DESC LIMIT ?",
        (monitor_id, limit),
    )
    return [_row(r) for r in rows]


def prune_finished(conn: sqlite3.Connection, before: dt.datetime, limit: int = 1000) -> int:
    """Delete up to `limit` runs that finished before `before`, except the successful ones
    with a duration: the analytics rollups count those, and `rollups.prune_runs` deletes them."""
    cur = conn.execute(
        "DELETE FROM runs WHERE id IN (SELECT id FROM runs WHERE status != 'running' "
        "AND NOT (status = 'success' AND duration IS NOT NULL) AND finished_at < ? LIMIT ?)",
        (to_db(before), limit),
    )
    return cur.rowcount
