"""Monitors: their definition, schedule and the state the engine keeps for each."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from tokiflow.storage.timefmt import from_db, opt_from_db, to_db


@dataclass(frozen=True)
class Monitor:
    id: int
    uuid: str
    org_id: int
    name: str
    slug: str
    description: str
    tags: str
    schedule_kind: str
    period: int | None
    cron: str | None
    tz: str
    grace: int
    max_runtime: int | None
    min_runtime: int | None
    methods: str
    manual_resume: bool
    failure_tolerance: int
    late_incidents: bool
    status: str
    last_ping_at: dt.datetime | None
    last_success_at: dt.datetime | None
    last_start_at: dt.datetime | None
    last_duration: float | None
    running_since: dt.datetime | None
    due_at: dt.datetime | None
    next_check_at: dt.datetime | None
    consecutive_failures: int
    n_pings: int
    open_runs: int
    created_at: dt.datetime
    updated_at: dt.datetime
    renotify_every: int | None
    notify_resolve: bool
    anomaly_alerts: bool
    anomaly_factor: float
    anomaly_z: float
    output_drop: float
    output_limit: int | None
    output_tracked: bool


COLUMNS = (
    "id, uuid, org_id, name, slug, description, tags, schedule_kind, period, cron, tz, grace, "
    "max_runtime, min_runtime, methods, manual_resume, failure_tolerance, late_incidents, status, "
    "last_ping_at, last_success_at, last_start_at, last_duration, running_since, due_at, "
    "next_check_at, consecutive_failures, n_pings, open_runs, created_at, updated_at, "
    "renotify_every, notify_resolve, anomaly_alerts, anomaly_factor, anomaly_z, output_drop, "
    "output_limit, output_tracked"
)
_TIME_FIELDS = {
    "last_ping_at",
    "last_success_at",
    "last_start_at",
    "running_since",
    "due_at",
    "next_check_at",
    "created_at",
    "updated_at",
}
_NAMES = [c.strip() for c in COLUMNS.split(",")]


def from_row(r: tuple) -> Monitor:
    return Monitor(
        r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13],
        r[14], bool(r[15]), r[16], bool(r[17]), r[18], opt_from_db(r[19]), opt_from_db(r[20]),
        opt_from_db(r[21]), r[22], opt_from_db(r[23]), opt_from_db(r[24]), opt_from_db(r[25]),
        r[26], r[27], r[28], from_db(r[29]), from_db(r[30]), r[31], bool(r[32]),
        bool(r[33]), r[34], r[35], r[36], r[37], bool(r[38]),
    )  # fmt: skip


def _db_value(name: str, value: Any) -> Any:
    if name in _TIME_FIELDS and value is not None:
        return to_db(value)
    if isinstance(value, bool):
        return int(value)
    return value


def get(conn: sqlite3.Connection, monitor_id: int) -> Monitor | None:
    row = conn.execute(f"SELECT {COLUMNS} FROM monitors WHERE id = ?", (monitor_id,)).fetchone()
    return None if row is None else from_row(row)


def by_uuid(conn: sqlite3.Connection, uuid: str) -> Monitor | None:
    row = conn.execute(f"SELECT {COLUMNS} FROM monitors WHERE uuid = ?", (uuid,)).fetchone()
    return None if row is None else from_row(row)


def by_slug(conn: sqlite3.Connection, org_id: int, slug: str) -> list[Monitor]:
    """Every monitor of the organisation with this slug (more than one means ambiguous)."""
    rows = conn.execute(
        f"SELECT {COLUMNS} FROM monitors WHERE org_id = ? AND slug = ? LIMIT 2", (org_id, slug)
    ).fetchall()
    return [from_row(r) for r in rows]


def slug_taken(conn: sqlite3.Connection, org_id: int, slug: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM monitors WHERE org_id = ? AND slug = ? LIMIT 1", (org_id, slug)
    ).fetchone()
    return row is not None


def org_has_any(conn: sqlite3.Connection, org_id: int) -> bool:
    """Whether the organisation has any monitor (one indexed lookup, not a count)."""
    row = conn.execute("SELECT 1 FROM monitors WHERE org_id = ? LIMIT 1", (org_id,)).fetchone()
    return row is not None


def newest_ping_at(conn: sqlite3.Connection) -> dt.datetime | None:
    """The latest ping any monitor received (None before the first)."""
    return opt_from_db(conn.execute("SELECT max(last_ping_at) FROM monitors").fetchone()[0])


def count_all(conn: sqlite3.Connection) -> int:
    """How many monitors the installation holds, every organisation together."""
    return int(conn.execute("SELECT count(*) FROM monitors").fetchone()[0])


def insert(conn: sqlite3.Connection, fields: Mapping[str, Any]) -> Monitor:
    """Insert a monitor from column values (the engine validates them first)."""
    names = list(fields)
    unknown = set(names) - set(_NAMES)
    if unknown:
        raise ValueError(f"unknown monitor columns: {sorted(unknown)}")
    cur = conn.execute(
        f"INSERT INTO monitors({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
        [_db_value(n, fields[n]) for n in names],
    )
    monitor = get(conn, int(cur.lastrowid or 0))
    assert monitor is not None
    return monitor


def update(
    conn: sqlite3.Connection, monitor_id: int, expected_status: str, fields: Mapping[str, Any]
) -> bool:
    """Change columns only if the monitor is still in `expected_status`; False if it was not."""
    names = list(fields)
    unknown = set(names) - set(_NAMES)
    if unknown:
        raise ValueError(f"unknown monitor columns: {sorted(unknown)}")
    sets = ", ".join(f"{n} = ?" for n in names)
    cur = conn.execute(
        f"UPDATE monitors SET {sets} WHERE id = ? AND status = ?",
        [*(_db_value(n, fields[n]) for n in names), monitor_id, expected_status],
    )
    return cur.rowcount == 1


def delete(conn: sqlite3.Connection, monitor_id: int) -> None:
    """Delete a monitor; its pings, runs, incidents and other rows go with it (foreign keys
    cascade)."""
    conn.execute("DELETE FROM monitors WHERE id = ?", (monitor_id,))


def list_for_org(conn: sqlite3.Connection, org_id: int | None = None) -> list[Monitor]:
    if org_id is None:
        rows = conn.execute(f"SELECT {COLUMNS} FROM monitors ORDER BY org_id, name, id")
    else:
        rows = conn.execute(
            f"SELECT {COLUMNS} FROM monitors WHERE org_id = ? ORDER BY name, id", (org_id,)
        )
    return [from_row(r) for r in rows]


def deadlines(conn: sqlite3.Connection) -> Iterator[tuple[int, dt.datetime]]:
    """(monitor id, next check) for every monitor the scheduler must watch."""
    for monitor_id, when in conn.execute(
        "SELECT id, next_check_at FROM monitors WHERE next_check_at IS NOT NULL"
    ):
        yield monitor_id, from_db(when)
