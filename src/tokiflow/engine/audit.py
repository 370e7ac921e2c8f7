"""The audit log: every mutation through the UI, the API or the CLI, with who, what and how."""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass
from typing import Any

from tokiflow.storage import audit as store
from tokiflow.storage.audit import Entry

__all__ = ["CLI", "Actor", "Entry", "entries", "record"]


@dataclass(frozen=True)
class Actor:
    """Who did it: a user (session), an API key, the local CLI, or the system itself."""

    kind: str  # user, key, cli, system
    id: int | None = None
    label: str = ""
    ip: str = ""
    user_agent: str = ""


CLI = Actor("cli", None, "local command line")


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
    store.insert(
        conn, org_id=org_id, at=now, actor_kind=actor.kind, actor_id=actor.id,
        actor_label=actor.label, action=action, target_kind=target_kind,
        target_id=str(target_id), before=before, after=after, ip=actor.ip,
        user_agent=actor.user_agent[:200],
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
    return store.entries(conn, org_id, action=action, before_id=before_id, limit=limit)
