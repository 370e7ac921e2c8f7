"""Incidents (open -> acknowledged -> resolved) and flips, the record of every status change."""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass

from tokiflow.storage.timefmt import from_db, opt_from_db, to_db

OPEN_STATES = ("open", "acknowledged")


@dataclass(frozen=True)
class Incident:
    id: int
    org_id: int
    monitor_id: int
    kind: str
    state: str
    reason: str
    opened_at: dt.datetime
    acknowledged_at: dt.datetime | None
    resolved_at: dt.datetime | None
    resolved_by: str | None
    run_id: int | None


@dataclass(frozen=True)
class Flip:
    id: int
    monitor_id: int
    at: dt.datetime
    old_status: str
    new_status: str
    reason: str


_COLUMNS = (
    "id, org_id, monitor_id, kind, state, reason, opened_at, acknowledged_at, resolved_at, "
    "resolved_by, run_id"
)


def _row(r: tuple) -> Incident:
    return Incident(
        r[0], r[1], r[2], r[3], r[4], r[5], from_db(r[6]), opt_from_db(r[7]),
        opt_from_db(r[8]), r[9], r[10],
    )  # fmt: skip


def open_incident(
    conn: sqlite3.Connection,
    *,
    org_id: int,
    monitor_id: int,
    kind: str,
    reason: str,
    at: dt.datetime,
    run_id: int | None = None,
) -> int:
    cur = conn.execute(
        "INSERT INTO incidents(org_id, monitor_id, kind, state, reason, opened_at, run_id) "
        "VALUES (?, ?, ?, 'open', ?, ?, ?)",
        (org_id, monitor_id, kind, reason, to_db(at), run_id),
    )
    return int(cur.lastrowid or 0)


def current(conn: sqlite3.Connection, monitor_id: int) -> list[Incident]:
    """The monitor's incidents that are open or acknowledged."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM incidents WHERE monitor_id = ? AND state IN ('open', "
        "'acknowledged') ORDER BY id",
        (monitor_id,),
    )
    return [_row(r) for r in rows]


def resolve(conn: sqlite3.Connection, incident_id: int, at: dt.datetime, by: str) -> bool:
    """Resolve an open or acknowledged incident; False if it was already resolved."""
    cur = conn.execute(
        "UPDATE incidents SET state = 'resolved', resolved_at = ?, resolved_by = ? "
        "WHERE id = ? AND state IN ('open', 'acknowledged')",
        (to_db(at), by, incident_id),
    )
    return cur.rowcount == 1


def acknowledge(conn: sqlite3.Connection, incident_id: int, at: dt.datetime) -> bool:
    """Acknowledge an open incident; False if it was not open."""
    cur = conn.execute(
        "UPDATE incidents SET state = 'acknowledged', acknowledged_at = ? "
        "WHERE id = ? AND state = 'open'",
        (to_db(at), incident_id),
    )
    return cur.rowcount == 1


def get(conn: sqlite3.Connection, incident_id: int) -> Incident | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM incidents WHERE id = ?", (incident_id,)).fetchone()
    return None if row is None else _row(row)


def list_recent(
    conn: sqlite3.Connection, *, org_id: int | None = None, limit: int = 100
) -> list[Incident]:
    if org_id is None:
        rows = conn.execute(f"SELECT {_COLUMNS} FROM incidents ORDER BY id DESC LIMIT ?", (limit,))
    else:
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM incidents WHERE org_id = ? ORDER BY id DESC LIMIT ?",
            (org_id, limit),
        )
    return [_row(r) for r in rows]


def _by_ids(conn: sqlite3.Connection, ids: list[int]) -> list[Incident]:
    found = (get(conn, i) for i in ids)
    return [i for i in found if i is not None]


def unresolved(conn: sqlite3.Connection, org_id: int, limit: int) -> list[Incident]:
    """The organisation's newest unresolved incidents (ids from the (org_id, state) index alone,
    then only those rows)."""
    rows = conn.execute(
        "SELECT id FROM incidents WHERE org_id = ? AND state != 'resolved' "
        "ORDER BY id DESC LIMIT ?",
        (org_id, limit),
    )
    return _by_ids(conn, [r[0] for r in rows])


def newest_of_monitor(conn: sqlite3.Connection, monitor_id: int, limit: int) -> list[Incident]:
    """The monitor's newest incidents, whatever their state."""
    rows = conn.execute(
        "SELECT id FROM incidents WHERE monitor_id = ? ORDER BY id DESC LIMIT ?",
        (monitor_id, limit),
    )
    return _by_ids(conn, [r[0] for r in rows])


def unresolved_count(conn: sqlite3.Connection, org_id: int) -> int:
    """How many of the organisation's incidents are open or acknowledged."""
    row = conn.execute(
        "SELECT COUNT(*) FROM incidents WHERE org_id = ? AND state != 'resolved'", (org_id,)
    ).fetchone()
    return int(row[0])


def unresolved_signature(conn: sqlite3.Connection, org_id: int) -> tuple[int, int, int]:
    """(open, acknowledged, newest id) of unresolved incidents: changes when any of them does."""
    row = conn.execute(
        "SELECT SUM(state = 'open'), SUM(state = 'acknowledged'), MAX(id) FROM incidents "
        "WHERE org_id = ? AND state != 'resolved'",
        (org_id,),
    ).fetchone()
    return int(row[0] or 0), int(row[1] or 0), int(row[2] or 0)


def add_flip(
    conn: sqlite3.Connection, monitor_id: int, at: dt.datetime, old: str, new: str, reason: str
) -> None:
    conn.execute(
        "INSERT INTO flips(monitor_id, at, old_status, new_status, reason) VALUES (?, ?, ?, ?, ?)",
        (monitor_id, to_db(at), old, new, reason),
    )


def flips(conn: sqlite3.Connection, monitor_id: int, limit: int = 100) -> list[Flip]:
    rows = conn.execute(
        "SELECT id, monitor_id, at, old_status, new_status, reason FROM flips "
        "WHERE monitor_id = ? ORDER BY id DESC LIMIT ?",
        (monitor_id, limit),
    )
    return [Flip(r[0], r[1], from_db(r[2]), r[3], r[4], r[5]) for r in rows]


def prune_resolved(conn: sqlite3.Connection, before: dt.datetime, limit: int = 1000) -> int:
    """Delete up to `limit` incidents resolved before `before`, and flips older than that."""
    cur = conn.execute(
        "DELETE FROM incidents WHERE id IN (SELECT id FROM incidents WHERE state = 'resolved' "
        "AND resolved_at < ? LIMIT ?)",
        (to_db(before), limit),
    )
    deleted = cur.rowcount
    cur = conn.execute(
        "DELETE FROM flips WHERE id IN (SELECT id FROM flips WHERE at < ? LIMIT ?)",
        (to_db(before), limit),
    )
    return deleted + cur.rowcount


def set_renotify(conn: sqlite3.Connection, incident_id: int, when: dt.datetime | None) -> None:
    """When the incident re-notifies next (None: never)."""
    conn.execute(
        "UPDATE incidents SET renotify_at = ? WHERE id = ?",
        (None if when is None else to_db(when), incident_id),
    )


def due_renotify(
    conn: sqlite3.Connection, now: dt.datetime, limit: int = 500
) -> list[tuple[int, int, str]]:
    """(incident id, monitor id, state) of incidents whose re-notify time has come."""
    rows = conn.execute(
        "SELECT id, monitor_id, state FROM incidents WHERE renotify_at IS NOT NULL "
        "AND renotify_at <= ? ORDER BY renotify_at LIMIT ?",
        (to_db(now), limit),
    ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


def next_renotify(conn: sqlite3.Connection) -> dt.datetime | None:
    row = conn.execute(
        "SELECT min(renotify_at) FROM incidents WHERE renotify_at IS NOT NULL"
    ).fetchone()
    return opt_from_db(row[0])


@dataclass(frozen=True)
class Comment:
    id: int
    author: str
    body: str
    at: dt.datetime


def add_comment(
    conn: sqlite3.Connection, incident_id: int, author: str, body: str, at: dt.datetime
) -> None:
    conn.execute(
        "INSERT INTO incident_comments(incident_id, author, body, at) VALUES (?, ?, ?, ?)",
        (incident_id, author, body, to_db(at)),
    )


def comments(conn: sqlite3.Connection, incident_id: int) -> list[Comment]:
    rows = conn.execute(
        "SELECT id, author, body, at FROM incident_comments WHERE incident_id = ? ORDER BY id",
        (incident_id,),
    )
    return [Comment(r[0], r[1], r[2], from_db(r[3])) for r in rows]


def search(
    conn: sqlite3.Connection,
    org_id: int,
    *,
    state: str | None = None,
    kind: str | None = None,
    monitor_uuid: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    limit: int = 100,
) -> list[Incident]:
    """The organisation's incidents, newest first, filtered by state, kind, monitor and the
    time they opened (`since` inclusive, `until` exclusive)."""
    where: list[str] = ["i.org_id = ?"]
    args: list[object] = [org_id]
    for column, value in (("i.state", state), ("i.kind", kind), ("m.uuid", monitor_uuid)):
        if value:
            where.append(f"{column} = ?")
            args.append(value)
    for op, when in ((">=", since), ("<", until)):
        if when is not None:
            where.append(f"i.opened_at {op} ?")
            args.append(to_db(when))
    columns = ", ".join("i." + c.strip() for c in _COLUMNS.split(","))
    rows = conn.execute(
        f"SELECT {columns} FROM incidents i JOIN monitors m ON m.id = i.monitor_id "
        f"WHERE {' AND '.join(where)} ORDER BY i.id DESC LIMIT ?",
        (*args, limit),
    )
    return [_row(r) for r in rows]
