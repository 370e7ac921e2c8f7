"""Bounded reads of an organisation's monitors for lists: counts by status, a filtered and sorted
page, the tags in use, the rows changed since a time, and a search by name or slug. Every query
is filtered and limited in SQL, so none loads the whole organisation into Python."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from tokiflow.storage.monitors import COLUMNS, Monitor, from_row

# Down and late monitors first; then running ones; then the rest by most recent activity.
_ATTENTION = (
    "CASE WHEN status = 'down' THEN 0 WHEN status = 'late' THEN 1 "
    "WHEN open_runs > 0 AND status != 'paused' THEN 2 ELSE 3 END"
)
_SORTS = {
    "attention": f"{_ATTENTION}, name, id",
    "name": "name, id",
    "last_ping": "last_ping_at IS NULL, last_ping_at DESC, id",
    "next_due": "due_at IS NULL, due_at, id",
}


def status_counts(conn: sqlite3.Connection, org_id: int) -> list[tuple[str, bool, int]]:
    """(status, whether a run is open and the monitor is not paused, how many) per group."""
    rows = conn.execute(
        "SELECT status, open_runs > 0 AND status != 'paused', COUNT(*) FROM monitors "
        "WHERE org_id = ? GROUP BY 1, 2",
        (org_id,),
    )
    return [(status, bool(running), int(n)) for status, running, n in rows]


def attention_first(conn: sqlite3.Connection, org_id: int, limit: int) -> list[Monitor]:
    """Up to `limit` monitors, down and late ones first, then running, then most recently changed."""
    rows = conn.execute(
        f"SELECT {COLUMNS} FROM monitors WHERE org_id = ? "
        f"ORDER BY {_ATTENTION}, updated_at DESC, id LIMIT ?",
        (org_id, limit),
    )
    return [from_row(r) for r in rows]


@dataclass(frozen=True)
class MonitorPage:
    monitors: list[Monitor]
    total: int


def page(
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
    """One page of an organisation's monitors and how many match in all. `status` may be
    `running` (a run is open); `tag` is one whole tag; `q` is found in the name, slug or
    description; an unknown `sort` sorts by attention."""
    where, args = _filters(org_id, status, tag, q)
    sql_where = " AND ".join(where)
    total = conn.execute(f"SELECT COUNT(*) FROM monitors WHERE {sql_where}", args).fetchone()[0]
    rows = conn.execute(
        f"SELECT {COLUMNS} FROM monitors WHERE {sql_where} "
        f"ORDER BY {_SORTS.get(sort, _SORTS['attention'])} LIMIT ? OFFSET ?",
        (*args, limit, offset),
    )
    return MonitorPage([from_row(r) for r in rows], int(total))


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
    """Every tag the organisation's monitors carry, sorted."""
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


def by_uuids(conn: sqlite3.Connection, org_id: int, uuids: list[str]) -> list[Monitor]:
    """The monitors among `uuids` that belong to the organisation (others are left out), by
    name; asked in chunks of 500 to stay under SQLite's limit on parameters."""
    found: list[Monitor] = []
    for start in range(0, len(uuids), 500):
        chunk = uuids[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        rows = conn.execute(
            f"SELECT {COLUMNS} FROM monitors WHERE org_id = ? AND uuid IN ({marks}) "
            "ORDER BY name, id",
            (org_id, *chunk),
        )
        found.extend(from_row(r) for r in rows)
    return found


@dataclass(frozen=True)
class Found:
    uuid: str
    name: str
    slug: str
    status: str
    open_runs: int


def find(conn: sqlite3.Connection, org_id: int, q: str, limit: int) -> list[Found]:
    """Monitors whose name or slug holds `q` (names starting with it first); without `q`, the
    ones that need attention first."""
    if not q:
        rows = conn.execute(
            "SELECT uuid, name, slug, status, open_runs FROM monitors WHERE org_id = ? "
            f"ORDER BY {_ATTENTION}, name, id LIMIT ?",
            (org_id, limit),
        )
        return [Found(*r) for r in rows]
    pattern = _like(q)
    rows = conn.execute(
        "SELECT uuid, name, slug, status, open_runs FROM monitors WHERE org_id = ? "
        "AND (name LIKE ? ESCAPE '\\' OR slug LIKE ? ESCAPE '\\') "
        "ORDER BY name NOT LIKE ? ESCAPE '\\', name, id LIMIT ?",
        (org_id, f"%{pattern}%", f"%{pattern}%", f"{pattern}%", limit),
    )
    return [Found(*r) for r in rows]
