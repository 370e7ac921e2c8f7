"""The audit log: every mutation through the UI, the API or the CLI, with who, what and how."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from tokiflow.engine.views import iso
from tokiflow.storage import audit as store
from tokiflow.storage.audit import Entry

__all__ = [
    "CLI", "EXPORT_MAX", "EXPORT_PAGE", "EXPORT_TYPES", "Actor", "Entry", "entries",
    "entry_view", "export", "record",
]  # fmt: skip

EXPORT_PAGE = 1000
EXPORT_MAX = 100_000
EXPORT_TYPES = {"csv": "text/csv", "json": "application/json"}
CSV_COLUMNS = ("id", "at", "actor_kind", "actor_id", "actor_label", "action", "target_kind",
               "target_id", "before", "after", "ip", "user_agent")  # fmt: skip


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


def entry_view(e: Entry) -> dict[str, Any]:
    """One entry as JSON (the API's form, also used by the exports)."""
    return {
        "id": e.id, "at": iso(e.at),
        "actor": {"kind": e.actor_kind, "id": e.actor_id, "label": e.actor_label},
        "action": e.action, "target_kind": e.target_kind, "target_id": e.target_id,
        "before": e.before, "after": e.after, "ip": e.ip, "user_agent": e.user_agent,
    }  # fmt: skip


def _cell(value: Any) -> str:
    """A CSV cell that spreadsheets will not run as a formula."""
    text = "" if value is None else value if isinstance(value, str) else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv(rows: list[Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerows(rows)
    return out.getvalue()


def _csv_rows(entries: list[Entry]) -> str:
    return _csv([[_cell(v) for v in (
        e.id, iso(e.at), e.actor_kind, e.actor_id, e.actor_label, e.action, e.target_kind,
        e.target_id, None if e.before is None else json.dumps(e.before, sort_keys=True),
        None if e.after is None else json.dumps(e.after, sort_keys=True), e.ip, e.user_agent,
    )] for e in entries])  # fmt: skip


def export_filename(org_slug: str, now: dt.datetime, fmt: str) -> str:
    return f"audit-{org_slug}-{now.strftime('%Y%m%d-%H%M%S')}.{fmt}"


async def export(
    fmt: str, page: Callable[[int | None, int], Awaitable[list[Entry]]]
) -> AsyncIterator[bytes]:
    """The body of a CSV (`fmt` "csv") or JSON export, newest first, in pieces to stream.

    `page(before_id, limit)` reads the next (filtered) page of entries older than `before_id`;
    at most EXPORT_MAX entries are exported.
    """
    yield (_csv([CSV_COLUMNS]) if fmt == "csv" else "[").encode()
    before_id: int | None = None
    sent = 0
    while sent < EXPORT_MAX:
        chunk = await page(before_id, EXPORT_PAGE)
        if not chunk:
            break
        if fmt == "csv":
            text = _csv_rows(chunk)
        else:
            text = ("," if sent else "") + ",".join(json.dumps(entry_view(e)) for e in chunk)
        yield text.encode()
        sent += len(chunk)
        before_id = chunk[-1].id
    if fmt == "json":
        yield b"]"
