"""The audit log table: one row per mutation, written in the mutation's own transaction."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from tokiflow.storage.timefmt import from_db, to_db


@dataclass(frozen=True)
class Entry:
    id: int
    org_id: int | None
    at: dt.datetime
    actor_kind: str
    actor_id: int | None
    actor_label: str
    action: str
    target_kind: str
    target_id: str
    before: Any
    after: Any
    ip: str
    user_agent: str


_COLUMNS = (
    "id, org_id, at, actor_kind, actor_id, actor_label, action, target_kind, target_id, before, "
    "after, ip, user_agent"
)


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value, default=str, sort_keys=True)


def _entry(r: tuple) -> Entry:
    before, after = (None if v is None else json.loads(v) for v in (r[9], r[10]))
    return Entry(
        id=r[0], org_id=r[1], at=from_db(r[2]), actor_kind=r[3], actor_id=r[4],
        actor_label=r[5], action=r[6], target_kind=r[7], target_id=r[8], before=before,
        after=after, ip=r[11], user_agent=r[12],
    )  # fmt: skip


def insert(
    conn: sqlite3.Connection,
    *,
    org_id: int | None,
    at: dt.datetime,
    actor_kind: str,
    actor_id: int | None,
    actor_label: str,
    action: str,
    target_kind: str,
    target_id: str,
    before: Any,
    after: Any,
    ip: str,
    user_agent: str,
) -> None:
    """Add one entry (`before` and `after` stored as JSON)."""
    conn.execute(
        f"INSERT INTO audit_log({_COLUMNS.removeprefix('id, ')}) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (org_id, to_db(at), actor_kind, actor_id, actor_label, action, target_kind, target_id,
         _dump(before), _dump(after), ip, user_agent),
    )  # fmt: skip


def entries(
    conn: sqlite3.Connection,
    org_id: int,
    *,
    action: str | None = None,
    actor: str | None = None,
    since: dt.datetime | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[Entry]:
    """Newest first, filtered by action (exact), actor label (any case) and time; `before_id`
    pages backwards."""
    where, args = _where(org_id, AuditFilter(actor=actor or "", since=since))
    if action:
        where.append("action = ?")
        args.append(action)
    return _page(conn, where, args, before_id=before_id, limit=limit)


@dataclass(frozen=True)
class AuditFilter:
    """Filters of an audit log search; empty ones are ignored.

    `action` is exact, or a prefix when it ends with `*` (`monitor.*`); `actor` is a user's email
    or an API key's label (any case); `target` is a kind (`monitor`), an id, or `kind:id`.
    """

    action: str = ""
    actor: str = ""
    target: str = ""
    since: dt.datetime | None = None
    until: dt.datetime | None = None


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _where(org_id: int, f: AuditFilter) -> tuple[list[str], list[Any]]:
    where: list[str] = ["org_id = ?"]
    args: list[Any] = [org_id]
    if f.action.endswith("*"):
        where.append("action LIKE ? ESCAPE '\\'")
        args.append(_like_prefix(f.action[:-1]))
    elif f.action:
        where.append("action = ?")
        args.append(f.action)
    if f.actor:
        where.append("actor_label = ? COLLATE NOCASE")
        args.append(f.actor)
    if f.target:
        kind, sep, ident = f.target.partition(":")
        if sep:
            where.append("target_kind = ? AND target_id = ?")
            args += [kind, ident]
        else:
            where.append("(target_kind = ? OR target_id = ?)")
            args += [f.target, f.target]
    if f.since is not None:
        where.append("at >= ?")
        args.append(to_db(f.since))
    if f.until is not None:
        where.append("at < ?")
        args.append(to_db(f.until))
    return where, args


def search(
    conn: sqlite3.Connection,
    org_id: int,
    f: AuditFilter,
    *,
    before_id: int | None = None,
    limit: int = 50,
) -> list[Entry]:
    """The organisation's entries matching `f`, newest first; `before_id` pages back (keyset
    paging on the (org_id, id) index, so later pages cost the same as the first)."""
    where, args = _where(org_id, f)
    return _page(conn, where, args, before_id=before_id, limit=limit)


def _page(
    conn: sqlite3.Connection,
    where: list[str],
    args: list[Any],
    *,
    before_id: int | None,
    limit: int,
) -> list[Entry]:
    if before_id is not None:
        where.append("id < ?")
        args.append(before_id)
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM audit_log WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?",
        (*args, limit),
    )
    return [_entry(r) for r in rows]
