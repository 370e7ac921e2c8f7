"""Bounded read queries the UI pages need beyond the API's (counts, a page of monitors, changes
since a time). Raw parameterised SQL, each returning plain rows or frozen dataclasses."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from tokiflow.storage import monitors
from tokiflow.storage.monitors import Monitor

STATUSES = ("down", "late", "running", "up", "new", "paused")
# Down and late monitors first; then running ones; then the rest by most recent activity.
_ATTENTION = (
    "CASE WHEN status = 'down' THEN 0 WHEN status = 'late' THEN 1 "
    "WHEN open_runs > 0 AND status != 'paused' THEN 2 ELSE 3 END"
)


def status_counts(conn: sqlite3.Connection, org_id: int) -> dict[str, int]:
    """How many monitors are in each displayed status (`running` while a run is open)."""
    counts = dict.fromkeys(STATUSES, 0)
    for status, running, n in conn.execute(
        "SELECT status, open_runs > 0 AND status != 'paused', COUNT(*) FROM monitors "
        "WHERE org_id = ? GROUP BY 1, 2",
        (org_id,),
    ):
        shown = "running" if running else status  # as engine.views.display_status
        counts[shown] = counts.get(shown, 0) + n
    return counts


def attention_first(conn: sqlite3.Connection, org_id: int, limit: int) -> list[Monitor]:
    rows = conn.execute(
        f"SELECT {monitors.COLUMNS} FROM monitors WHERE org_id = ? "
        f"ORDER BY {_ATTENTION}, updated_at DESC, id LIMIT ?",
        (org_id, limit),
    )
    return [monitors.from_row(r) for r in rows]


@dataclass(frozen=True)
class MonitorPage:
    monitors: list[Monitor]
    total: int


_SORTS = {
    "attention": f"{_ATTENTION}, name, id",
    "name": "name, id",
    "last_ping": "last_ping_at IS NULL, last_ping_at DESC, id",
    "next_due": "due_at IS NULL, due_at, id",
}


def monitor_page(
    conn: sqlite3.Connection,
    org_id: int,
    *,
    status: str | None,
    tag: str | None,
    q: str | None,
    sort: str,
    offset: int,
    limit: int,
) -> MonitorPage:
    """One page of an organisation's monitors, filtered in SQL (no full load into Python)."""
    where, args = _filters(org_id, status, tag, q)
    sql_where = " AND ".join(where)
    total = conn.execute(f"SELECT COUNT(*) FROM monitors WHERE {sql_where}", args).fetchone()[0]
    rows = conn.execute(
        f"SELECT {monitors.COLUMNS} FROM monitors WHERE {sql_where} "
        f"ORDER BY {_SORTS.get(sort, _SORTS['attention'])} LIMIT ? OFFSET ?",
        (*args, limit, offset),
    )
    return MonitorPage([monitors.from_row(r) for r in rows], int(total))


def _filters(
    org_id: int, status: str | None, tag: str | None, q: str | None
) -> tuple[list[str], list[object]]:
    where: list[str] = ["org_id = ?"]
    args: list[object] = [org_id]
    if status == "running":
        where.append("open_runs > 0 AND status != 'paused'")
    elif status:
        where.append("status = ?")
        args.append(status)
    if tag:
        where.append("(' ' || tags || ' ') LIKE ? ESCAPE '\\'")
        args.append(f"% {_like(tag)} %")
    if q:
        where.append(
            "(name LIKE ? ESCAPE '\\' OR slug LIKE ? ESCAPE '\\' OR description LIKE ? ESCAPE '\\')"
        )
        pattern = f"%{_like(q)}%"
        args += [pattern, pattern, pattern]
    return where, args


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def tags(conn: sqlite3.Connection, org_id: int) -> list[str]:
    found: set[str] = set()
    for (text,) in conn.execute(
        "SELECT DISTINCT tags FROM monitors WHERE org_id = ? AND tags != ''", (org_id,)
    ):
        found.update(text.split())
    return sorted(found)


@dataclass(frozen=True)
class Change:
    uuid: str
    name: str
    status: str
    open_runs: int
    last_ping_at: str | None
    updated_at: str


def changes_since(conn: sqlite3.Connection, org_id: int, since: str, limit: int) -> list[Change]:
    """Monitors whose row changed after `since` (stored-time text), oldest change first."""
    rows = conn.execute(
        "SELECT uuid, name, status, open_runs, last_ping_at, updated_at FROM monitors "
        "WHERE org_id = ? AND updated_at > ? ORDER BY updated_at LIMIT ?",
        (org_id, since, limit),
    )
    return [Change(*r) for r in rows]


def incident_signature(conn: sqlite3.Connection, org_id: int) -> tuple[int, int, int]:
    """(open, acknowledged, newest id) of unresolved incidents: changes when any of them does."""
    row = conn.execute(
        "SELECT SUM(state = 'open'), SUM(state = 'acknowledged'), MAX(id) FROM incidents "
        "WHERE org_id = ? AND state != 'resolved'",
        (org_id,),
    ).fetchone()
    return int(row[0] or 0), int(row[1] or 0), int(row[2] or 0)


def open_incident_count(conn: sqlite3.Connection, org_id: int) -> int:
    row = conn.execute(
        "SELECT COUNT(*) FROM incidents WHERE org_id = ? AND state != 'resolved'", (org_id,)
    ).fetchone()
    return int(row[0])
