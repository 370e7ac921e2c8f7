"""/api/v1 audit log of the caller's organisation: filtered pages and CSV or JSON export."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Awaitable
from functools import partial
from typing import Any

from aiohttp import web

from tokiflow.engine import audit
from tokiflow.engine.audit import entry_view
from tokiflow.storage import audit as audit_log
from tokiflow.storage.audit import Entry
from tokiflow.web import appkeys
from tokiflow.web.api.framework import ApiError, ApiRequest, Param
from tokiflow.web.api.native import API
from tokiflow.web.api.schema import INT, STR, TIME, nullable, obj

FILTERS = (
    Param("action", {"type": "string", "maxLength": 100}, "only this action, e.g. monitor.update"),
    Param("actor", {"type": "string", "maxLength": 254},
          "only this actor: a user's email or an API key's label"),
    Param("since", {"type": "string", "maxLength": 40}, "at or after this time (RFC 3339)"),
)  # fmt: skip
ENTRY = obj(
    extra=True, id=INT, at=TIME,
    actor=obj(extra=True, kind=STR, id=nullable(INT), label=STR), action=STR,
    target_kind=STR, target_id=STR, before={}, after={}, ip=STR, user_agent=STR,
)  # fmt: skip


def _since(raw: str | None) -> dt.datetime | None:
    if not raw:
        return None
    try:
        when = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
        if when.tzinfo is None:
            raise ValueError
    except ValueError:
        raise ApiError(400, "query.since: must be an RFC 3339 time with a zone",
                       field="since") from None  # fmt: skip
    return when


def _entries(
    conn: sqlite3.Connection,
    org_id: int,
    query: dict[str, Any],
    *,
    before_id: int | None,
    limit: int,
) -> list[Entry]:
    """Newest first, filtered by action, actor and time (`before_id` pages backwards)."""
    return audit_log.entries(
        conn, org_id, action=query.get("action") or None, actor=query.get("actor") or None,
        since=_since(query.get("since")), before_id=before_id, limit=limit,
    )  # fmt: skip


@API.route(
    "GET", "/audit",
    summary="The audit log, newest first (filter by action, actor, time; page with before_id)",
    scope="admin", tag="audit",
    query=(*FILTERS,
           Param("before_id", {"type": "integer", "minimum": 1}, "entries older than this id"),
           Param("limit", {"type": "integer", "minimum": 1, "maximum": 500, "default": 100})),
    response=obj(entries={"type": "array", "items": ENTRY}, next_before_id=nullable(INT)),
)  # fmt: skip
async def list_audit(req: ApiRequest) -> Any:
    org_id, limit = req.caller.org.id, req.query["limit"]
    _since(req.query["since"])  # a bad time is a 400, not a storage error
    rows = await req.app[appkeys.DB].read(
        lambda c: _entries(c, org_id, req.query, before_id=req.query["before_id"], limit=limit + 1)
    )
    more = len(rows) > limit
    page = rows[:limit]
    return {"entries": [entry_view(e) for e in page],
            "next_before_id": page[-1].id if more else None}  # fmt: skip


@API.route(
    "GET", "/audit/export",
    summary="Export the audit log (filtered) as a CSV or JSON attachment, newest first",
    scope="admin", tag="audit",
    query=(*FILTERS, Param("format", {"type": "string", "enum": ["csv", "json"], "default": "csv"})),
    content_type="text/csv",
)  # fmt: skip
async def export_audit(req: ApiRequest) -> Any:
    org_id, fmt = req.caller.org.id, req.query["format"]
    _since(req.query["since"])
    db, now = req.app[appkeys.DB], req.app[appkeys.CLOCK].now()
    resp = web.StreamResponse(headers={
        "Content-Disposition":
            f'attachment; filename="{audit.export_filename(req.caller.org.slug, now, fmt)}"',
        "Cache-Control": "no-store",
    })  # fmt: skip
    resp.content_type = audit.EXPORT_TYPES[fmt]
    resp.charset = "utf-8"
    await resp.prepare(req.request)

    def page(before_id: int | None, limit: int) -> Awaitable[list[Entry]]:
        return db.read(partial(_entries, org_id=org_id, query=req.query, before_id=before_id,
                               limit=limit))  # fmt: skip

    async for chunk in audit.export(fmt, page):
        await resp.write(chunk)
    await resp.write_eof()
    return resp
