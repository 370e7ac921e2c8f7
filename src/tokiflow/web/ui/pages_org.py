"""Organisation settings (name, ping key, Sentry DSN, captured-output usage, redaction patterns)
and the audit log (filters, pages, CSV and JSON export)."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Awaitable
from functools import partial
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from tokiflow.engine import audit, org_admin
from tokiflow.engine.audit import Entry
from tokiflow.engine.schedules import format_duration
from tokiflow.storage import outputs
from tokiflow.web import appkeys
from tokiflow.web.api.framework import ApiError
from tokiflow.web.ping_sentry import dsn
from tokiflow.web.ui.context import (
    Fmt,
    Viewer,
    call_api,
    error_text,
    not_found,
    page,
    redirect,
    render,
    row_id,
)
from tokiflow.web.ui.security import add_headers

routes = web.RouteTableDef()

AUDIT_PAGE = 50
FILTER_FIELDS = ("actor", "action", "target", "since", "until")


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"  # not reached


def _days(seconds: int) -> str:
    if seconds >= 86400 and seconds % 86400 == 0:
        days = seconds // 86400
        return f"{days} day{'' if days == 1 else 's'}"
    return format_duration(seconds)


# -- organisation -------------------------------------------------------------------------------


async def _org_page(request: web.Request, viewer: Viewer, *, values: dict[str, str] | None = None,
                    errors: dict[str, str] | None = None, status: int = 200) -> web.Response:  # fmt: skip
    org = await call_api(request, viewer.caller, "GET", "/org")
    org_id = viewer.org.id

    def read(conn: sqlite3.Connection) -> tuple[outputs.Usage, list[outputs.Pattern]]:
        return org_admin.output_usage(conn, org_id), outputs.list_patterns(conn, org_id)

    usage, patterns = await request.app[appkeys.DB].read(read)
    settings = request.app[appkeys.SETTINGS]
    base = settings.public_url
    limits = {
        "capture": _size(settings.output_capture_limit) if settings.output_capture_limit else "off",
        "retention": _days(settings.output_retention),
        "total": _size(settings.output_max_total),
    }
    shown = {"name": org["name"], "pattern": "", "note": "", **(values or {})}
    return render(request, "ui/org.html", viewer, http_status=status, org=org,
                  sentry_dsn=dsn(base, viewer.org), slug_base=f"{base}/ping/{org['ping_key']}/",
                  usage=usage, stored=_size(usage.stored), sent=_size(usage.size), limits=limits,
                  patterns=patterns, values=shown, errors=errors or {})  # fmt: skip


@routes.get("/settings/org", name="ui.org")
@page("read")
async def org_page(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    return await _org_page(request, viewer)


@routes.post("/settings/org", name="ui.org_update")
@page("admin")
async def org_update(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    name = str((await request.post()).get("name", ""))  # the API strips it and refuses blank
    try:
        await call_api(request, viewer.caller, "PATCH", "/org", body={"name": name})
    except ApiError as exc:
        return await _org_page(request, viewer, values={"name": name},
                               errors={"name": error_text(exc)}, status=exc.status)  # fmt: skip
    raise redirect("/settings/org", "Organisation renamed.")


@routes.post("/settings/org/ping-key", name="ui.org_ping_key")
@page("admin")
async def org_rotate_ping_key(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    await call_api(request, viewer.caller, "POST", "/org/ping-key/rotate")
    raise redirect("/settings/org", "New ping key made: slug ping URLs with the old key no "
                   "longer work, update your jobs.")  # fmt: skip


@routes.post("/settings/org/redactions", name="ui.redaction_add")
@page("admin")
async def redaction_add(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    form = await request.post()
    pattern, note = str(form.get("pattern", "")), str(form.get("note", ""))
    app = request.app
    now, org_id, actor = app[appkeys.CLOCK].now(), viewer.org.id, viewer.caller.actor

    def write(conn: sqlite3.Connection) -> str | None:
        try:
            org_admin.add_redaction(conn, org_id, pattern, note, actor, now)
        except ValueError as exc:
            return str(exc)
        return None

    problem = await app[appkeys.DB].write(write)
    if problem:
        return await _org_page(request, viewer, values={"pattern": pattern, "note": note},
                               errors={"pattern": problem}, status=400)  # fmt: skip
    raise redirect("/settings/org", "Pattern added: it applies to output captured from now on.")


@routes.post("/settings/org/redactions/{id}/delete", name="ui.redaction_delete")
@page("admin")
async def redaction_delete(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    pattern_id = row_id(request.match_info["id"]) or 0
    app = request.app
    now, org_id, actor = app[appkeys.CLOCK].now(), viewer.org.id, viewer.caller.actor
    removed = await app[appkeys.DB].write(
        lambda c: org_admin.remove_redaction(c, org_id, pattern_id, actor, now)
    )
    if not removed:
        return not_found(request, viewer, "redaction pattern")
    raise redirect("/settings/org", "Pattern removed.")


# -- audit log ----------------------------------------------------------------------------------


def _local_time(text: str, fmt: Fmt) -> dt.datetime | None:
    """A `datetime-local` value (or a date) in the viewer's time zone, as UTC; ValueError when
    it is not one."""
    text = text.strip()
    if not text:
        return None
    when = dt.datetime.fromisoformat(text)
    if when.tzinfo is None:
        when = when.replace(tzinfo=fmt.zone)
    return when.astimezone(dt.UTC)


def _filters(request: web.Request, fmt: Fmt) -> tuple[dict[str, str], org_admin.AuditFilter,
                                                      dict[str, str]]:  # fmt: skip
    """(the query's filter values, the filter, errors by field)."""
    values = {k: request.query.get(k, "").strip()[:254] for k in FILTER_FIELDS}
    errors: dict[str, str] = {}
    times: dict[str, dt.datetime | None] = {}
    for name in ("since", "until"):
        try:
            times[name] = _local_time(values[name], fmt)
        except ValueError:
            errors[name] = "not a date and time (YYYY-MM-DDTHH:MM)"
            times[name] = None
    f = org_admin.AuditFilter(action=values["action"], actor=values["actor"],
                              target=values["target"], since=times["since"],
                              until=times["until"])  # fmt: skip
    return values, f, errors


def _viewer_fmt(request: web.Request, viewer: Viewer) -> Fmt:
    return Fmt(request.app[appkeys.CLOCK].now(), viewer.user.tz)


def _json(value: Any) -> str:
    return "" if value is None else json.dumps(value, sort_keys=True, ensure_ascii=False)


@routes.get("/settings/audit", name="ui.audit")
@page("admin")
async def audit_page(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    values, f, errors = _filters(request, _viewer_fmt(request, viewer))
    before_id = row_id(request.query.get("before_id"))
    org_id = viewer.org.id
    rows: list[Entry] = []
    if not errors:
        rows = await request.app[appkeys.DB].read(
            lambda c: org_admin.search_audit(
                c, org_id, f, before_id=before_id, limit=AUDIT_PAGE + 1
            )  # fmt: skip
        )
    more = len(rows) > AUDIT_PAGE
    rows = rows[:AUDIT_PAGE]
    active = {k: v for k, v in values.items() if v}
    older = ("/settings/audit?" + urlencode({**active, "before_id": rows[-1].id})
             if more else None)  # fmt: skip
    newest = ("/settings/audit?" + urlencode(active)) if before_id is not None else None
    exports = {fmt_: "/settings/audit/export?" + urlencode({**active, "format": fmt_})
               for fmt_ in ("csv", "json")}  # fmt: skip
    return render(request, "ui/audit.html", viewer, http_status=400 if errors else 200,
                  entries=[(e, _json(e.before), _json(e.after)) for e in rows], values=values,
                  errors=errors, older=older, newest=newest, exports=exports,
                  filtered=bool(active))  # fmt: skip


@routes.get("/settings/audit/export", name="ui.audit_export")
@page("admin")
async def audit_export(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """The filtered log as a CSV or JSON download, in the same format as the API's export."""
    _, f, errors = _filters(request, _viewer_fmt(request, viewer))
    out = request.query.get("format", "csv")
    if errors or out not in ("csv", "json"):
        raise web.HTTPBadRequest(text="; ".join(f"{k}: {v}" for k, v in errors.items())
                                 or "format must be csv or json")  # fmt: skip
    app, org = request.app, viewer.org
    name = audit.export_filename(org.slug, app[appkeys.CLOCK].now(), out)
    resp = web.StreamResponse(headers={"Content-Disposition": f'attachment; filename="{name}"'})
    resp.content_type = audit.EXPORT_TYPES[out]
    resp.charset = "utf-8"
    add_headers(request, resp)
    await resp.prepare(request)

    def page(before_id: int | None, limit: int) -> Awaitable[list[Entry]]:
        return app[appkeys.DB].read(partial(org_admin.search_audit, org_id=org.id, f=f,
                                            before_id=before_id, limit=limit))  # fmt: skip

    async for chunk in audit.export(out, page):
        await resp.write(chunk)
    await resp.write_eof()
    return resp
