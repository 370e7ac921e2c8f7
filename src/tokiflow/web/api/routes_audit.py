"""/api/v1 audit log of the caller's organisation: filtered pages and CSV or JSON export."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import sqlite3
from functools import partial
from typing import Any

from aiohttp import web

from tokiflow.engine.views import iso
from tokiflow.storage import audit as audit_log
from tokiflow.storage.audit import Entry
from tokiflow.web import appkeys
from tokiflow.web.api.framework import ApiError, ApiRequest, Param
from tokiflow.web.api.native import API
from tokiflow.web.api.schema import INT, STR, TIME, nullable, obj

EXPORT_PAGE = 1000
EXPORT_MAX = 100_000
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
CSV_COLUMNS = ("id", "at", "actor_kind", "actor_id", "actor_label", "action", "target_kind",
               "target_id", "before", "after", "ip", "user_agent")  # fmt: skip


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


def entry_view(e: Entry) -> dict[str, Any]:
    return {
        "id": e.id, "at": iso(e.at),
        "actor": {"kind": e.actor_kind, "id": e.actor_id, "label": e.actor_label},
        "action": e.action, "target_kind": e.target_kind, "target_id": e.target_id,
        "before": e.before, "after": e.after, "ip": e.ip, "user_agent": e.user_agent,
    }  # fmt: skip


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


def _cell(value: Any) -> str:
    """A CSV cell that spreadsheets will not run as a formula."""
    text = "" if value is None else value if isinstance(value, str) else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv_rows(rows: list[Entry]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    for e in rows:
        writer.writerow([_cell(v) for v in (
            e.id, iso(e.at), e.actor_kind, e.actor_id, e.actor_label, e.action, e.target_kind,
            e.target_id, None if e.before is None else json.dumps(e.before, sort_keys=True),
            None if e.after is None else json.dumps(e.after, sort_keys=True), e.ip, e.user_agent,
        )])  # fmt: skip
    return out.getvalue()


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
    db, stamp = req.app[appkeys.DB], req.app[appkeys.CLOCK].now().strftime("%Y%m%d-%H%M%S")
    resp = web.StreamResponse(headers={
        "Content-Disposition": f'attachment; filename="audit-{req.caller.org.slug}-{stamp}.{fmt}"',
        "Cache-Control": "no-store",
    })  # fmt: skip
    resp.content_type = "text/csv" if fmt == "csv" else "application/json"
    resp.charset = "utf-8"
    await resp.prepare(req.request)
    if fmt == "csv":
        header = io.StringIO()
        csv.writer(header).writerow(CSV_COLUMNS)
        await resp.write(header.getvalue().encode())
    else:
        await resp.write(b"[")
    before_id: int | None = None
    sent = 0
    while sent < EXPORT_MAX:
        page = await db.read(partial(_entries, org_id=org_id, query=req.query,
                                     before_id=before_id, limit=EXPORT_PAGE))  # fmt: skip
        if not page:
            break
        if fmt == "csv":
            chunk = _csv_rows(page)
        else:
            chunk = ("," if sent else "") + ",".join(json.dumps(entry_view(e)) for e in page)
        await resp.write(chunk.encode())
        sent += len(page)
        before_id = page[-1].id
    if fmt == "json":
        await resp.write(b"]")
    await resp.write_eof()
    return resp
