"""The audit log: every mutation through the UI, the API or the CLI, with who, what and how."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from tokiflow.storage.timefmt import from_db, to_db


@dataclass(frozen=True)
class Actor:
    """Who did it: a user (session), an API key, the local CLI, or the system itself."""

    kind: str  # user, key, cli, system
    id: int | None = None
    label: str = ""
    ip: str = ""
    user_agent: str = ""


CLI = Actor("cli", None, "local command line")


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


def _dump(value: Any) -> str | None:
    return None if value is None else json.dumps(value, default=str, sort_keys=True)


def record(
    conn: sqlite3.Connection,
    *,
    org_id: int | None,
    actor: Actor,
    action: str,
    target_kind: str = "",
    target_id: str | int = "",
    before: Any = None,
    after: Any = None,
    now: dt.datetime,
) -> None:
    """Write one audit entry in the caller's transaction (with the change it describes)."""
    conn.execute(
        "INSERT INTO audit_log(org_id, at, actor_kind, actor_id, actor_label, action, target_kind, "
        "target_id, before, after, ip, user_agent) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (org_id, to_db(now), actor.kind, actor.id, actor.label, action, target_kind, str(target_id),
         _dump(before), _dump(after), actor.ip, actor.user_agent[:200]),
    )  # fmt: skip


def entries(
    conn: sqlite3.Connection,
    org_id: int,
    *,
    action: str | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[Entry]:
    """Newest first; `before_id` pages backwards."""
    where, args = ["org_id = ?"], [org_id]
    if action:
        where.append("action = ?")
        args.append(action)  # type: ignore[arg-type]
    if before_id is not None:
        where.append("id < ?")
        args.append(before_id)
    rows = conn.execute(
        "SELECT id, org_id, at, actor_kind, actor_id, actor_label, action, target_kind, target_id, "
        f"before, after, ip, user_agent FROM audit_log WHERE {' AND '.join(where)} "
        "ORDER BY id DESC LIMIT ?",
        (*args, limit),
    )
    return [
        Entry(
            r[0],
            r[1],
            from_db(r[2]),
            r[3],
            r[4],
            r[5],
            r[6],
            r[7],
            r[8],
            None if r[9] is None else json.loads(r[9]),
            None if r[10] is None else json.loads(r[10]),
            r[11],
            r[12],
        )  # fmt: skip
        for r in rows
    ]
