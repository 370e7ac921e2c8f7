"""Monitors: the list (filters, search, sort), create and edit with a self-explaining schedule
field, the detail page (ping URLs, snippets, pings, runs, duration chart, incidents), pause and
resume, delete; and the JSON schedule preview the form calls as the user types."""

from __future__ import annotations

import sqlite3
import zoneinfo
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from tokiflow.engine import schedules
from tokiflow.engine.views import display_status
from tokiflow.storage import incidents, monitors, pings, runs
from tokiflow.storage import metrics as ping_metrics
from tokiflow.storage.monitors import Monitor
from tokiflow.web import appkeys
from tokiflow.web.api.framework import ApiError
from tokiflow.web.ping_sentry import dsn
from tokiflow.web.ui import queries
from tokiflow.web.ui.charts import duration_chart, metric_chart
from tokiflow.web.ui.context import (
    Fmt,
    Viewer,
    call_api,
    error_text,
    not_found,
    page,
    redirect,
    render,
)
from tokiflow.web.ui.snippets import client_snippets, snippets

routes = web.RouteTableDef()

PAGE_SIZE = 50
SORTS = ("attention", "name", "last_ping", "next_due")
FORM_FIELDS = ("name", "slug", "kind", "period", "cron", "tz", "grace", "max_runtime", "tags",
               "description")  # fmt: skip


def _zones() -> list[str]:
    return sorted(z for z in zoneinfo.available_timezones() if "/" in z or z == "UTC")


# -- list ---------------------------------------------------------------------------------------


@routes.get("/monitors", name="ui.monitors")
@page("read")
async def monitor_list(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    q = request.query
    status = q.get("status") or None
    if status not in (None, *queries.STATUSES):
        status = None
    tag = (q.get("tag") or "").strip() or None
    text = (q.get("q") or "").strip()[:200] or None
    sort = q.get("sort") or "attention"
    if sort not in SORTS:
        sort = "attention"
    try:
        pageno = max(int(q.get("page", "1")), 1)
    except ValueError:
        pageno = 1
    org_id = viewer.org.id

    def read(conn: sqlite3.Connection) -> tuple[queries.MonitorPage, list[str], dict[str, int]]:
        found = queries.monitor_page(
            conn, org_id, status=status, tag=tag, q=text, sort=sort,
            offset=(pageno - 1) * PAGE_SIZE, limit=PAGE_SIZE,
        )  # fmt: skip
        return found, queries.tags(conn, org_id), queries.status_counts(conn, org_id)

    found, all_tags, counts = await request.app[appkeys.DB].read(read)
    filters = {k: v for k, v in (("status", status), ("tag", tag), ("q", text)) if v}
    if sort != "attention":
        filters["sort"] = sort

    def link(**changes: Any) -> str:
        merged = {**filters, **changes}
        return "/monitors?" + urlencode({k: v for k, v in merged.items() if v})

    pages = max((found.total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    context: dict[str, Any] = {
        "rows": [(m, display_status(m)) for m in found.monitors],
        "total": found.total,
        "tags": all_tags,
        "counts": counts,
        "filters": filters,
        "status": status,
        "tag": tag,
        "q": text or "",
        "sort": sort,
        "sorts": SORTS,
        "pageno": pageno,
        "pages": pages,
        "prev_link": link(page=pageno - 1) if pageno > 1 else None,
        "next_link": link(page=pageno + 1) if pageno < pages else None,
        "partial_src": link(page=pageno, partial=1),
    }
    template = "ui/_monitors_live.html" if q.get("partial") else "ui/monitors.html"
    return render(request, template, viewer, **context)


# -- create and edit ----------------------------------------------------------------------------


def _form_body(form: dict[str, str], *, editing: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"name": form.get("name", "").strip()}
    slug = form.get("slug", "").strip()
    if slug or editing:
        body["slug"] = slug or None
    if form.get("kind") == "cron":
        body["cron"] = form.get("cron", "").strip()
        body["tz"] = form.get("tz", "").strip() or "UTC"
    else:
        body["period"] = form.get("period", "").strip() or "1d"
    body["grace"] = form.get("grace", "").strip() or "1h"
    max_runtime = form.get("max_runtime", "").strip()
    if max_runtime or editing:
        body["max_runtime"] = max_runtime or None
    body["tags"] = form.get("tags", "").replace(",", " ").split()
    body["description"] = form.get("description", "")
    if editing and body.get("slug") is None:
        body.pop("slug")
    return body


def _values(m: Monitor | None) -> dict[str, str]:
    if m is None:
        return {"kind": "period", "period": "1d", "grace": "1h", "tz": "UTC", "cron": "0 * * * *"}
    return {
        "name": m.name, "slug": m.slug, "kind": m.schedule_kind,
        "period": schedules.format_duration(m.period) if m.period else "1d",
        "cron": m.cron or "0 * * * *", "tz": m.tz, "grace": schedules.format_duration(m.grace),
        "max_runtime": schedules.format_duration(m.max_runtime) if m.max_runtime else "",
        "tags": m.tags, "description": m.description,
    }  # fmt: skip


def _form_page(request: web.Request, viewer: Viewer, m: Monitor | None, values: dict[str, str],
               errors: dict[str, str], status: int = 200) -> web.Response:  # fmt: skip
    return render(request, "ui/monitor_form.html", viewer, http_status=status, monitor=m,
                  values=values, errors=errors, zones=_zones(),
                  first=request.query.get("first") == "1")  # fmt: skip


def _field_of(exc: ApiError, form: dict[str, str]) -> str:
    field = str(exc.detail.get("field") or "form")
    if field in ("schedule", "period", "cron"):
        return "cron" if form.get("kind") == "cron" else "period"
    return field if field in FORM_FIELDS else "form"


@routes.get("/monitors/new", name="ui.monitor_new")
@page("write")
async def monitor_new(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    return _form_page(request, viewer, None, _values(None), {})


@routes.post("/monitors/new", name="ui.monitor_create")
@page("write")
async def monitor_create(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
    try:
        created = await call_api(request, viewer.caller, "POST", "/monitors",
                                 body=_form_body(form, editing=False))  # fmt: skip
    except ApiError as exc:
        errors = {_field_of(exc, form): error_text(exc)}
        return _form_page(request, viewer, None, form, errors, status=400)
    raise redirect(f"/monitors/{created['uuid']}", f"Monitor “{created['name']}” created.")


async def _own_monitor(request: web.Request, viewer: Viewer) -> Monitor | None:
    uuid = request.match_info["uuid"].lower()
    m = await request.app[appkeys.DB].read(lambda c: monitors.by_uuid(c, uuid))
    return m if m is not None and m.org_id == viewer.org.id else None


@routes.get("/monitors/{uuid}/edit", name="ui.monitor_edit")
@page("write")
async def monitor_edit(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    m = await _own_monitor(request, viewer)
    if m is None:
        return not_found(request, viewer, "monitor")
    return _form_page(request, viewer, m, _values(m), {})


@routes.post("/monitors/{uuid}/edit", name="ui.monitor_update")
@page("write")
async def monitor_update(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    m = await _own_monitor(request, viewer)
    if m is None:
        return not_found(request, viewer, "monitor")
    form = {k: v for k, v in (await request.post()).items() if isinstance(v, str)}
    try:
        await call_api(request, viewer.caller, "PATCH", "/monitors/{uuid}",
                       params={"uuid": m.uuid}, body=_form_body(form, editing=True))  # fmt: skip
    except ApiError as exc:
        errors = {_field_of(exc, form): error_text(exc)}
        return _form_page(request, viewer, m, form, errors, status=400)
    raise redirect(f"/monitors/{m.uuid}", "Changes saved.")


# -- detail and actions -------------------------------------------------------------------------


@routes.get("/monitors/{uuid}", name="ui.monitor")
@page("read")
async def monitor_detail(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    m = await _own_monitor(request, viewer)
    if m is None:
        return not_found(request, viewer, "monitor")

    def read(conn: sqlite3.Connection) -> dict[str, Any]:
        recent_runs = runs.recent(conn, m.id, 60)
        found = [
            incidents.get(conn, r[0])
            for r in conn.execute(
                "SELECT id FROM incidents WHERE monitor_id = ? ORDER BY id DESC LIMIT 10", (m.id,)
            )
        ]
        return {
            "pings": pings.recent(conn, m.id, 20),
            "runs": recent_runs[:20],
            "chart": duration_chart(recent_runs),
            "metric_charts": [
                (name, metric_chart(name, points))
                for name, points in ping_metrics.series(conn, m.id, 100).items()
            ],
            "incidents": [i for i in found if i is not None],
            "flips": incidents.flips(conn, m.id, 10),
        }

    data = await request.app[appkeys.DB].read(read)
    base = request.app[appkeys.SETTINGS].public_url
    url = f"{base}/ping/{m.uuid}"
    slug_url = f"{base}/ping/{viewer.org.ping_key}/{m.slug}"
    template = "ui/_monitor_live.html" if request.query.get("partial") else "ui/monitor.html"
    return render(request, template, viewer, m=m, shown_status=display_status(m), url=url,
                  slug_url=slug_url,
                  snippets=snippets(m, url) + client_snippets(
                      m, base, viewer.org.ping_key, dsn(base, viewer.org)),
                  words=schedules.describe(_schedule(m)), **data)  # fmt: skip


def _schedule(m: Monitor) -> schedules.Schedule:
    return schedules.schedule_from_row(m.schedule_kind, m.period, m.cron, m.tz)


def _action(action: str) -> Any:
    async def handler(request: web.Request, viewer: Viewer) -> web.StreamResponse:
        m = await _own_monitor(request, viewer)
        if m is None:
            return not_found(request, viewer, "monitor")
        await call_api(request, viewer.caller, "POST", f"/monitors/{{uuid}}/{action}",
                       params={"uuid": m.uuid})  # fmt: skip
        done = "paused: no alerts until you resume it" if action == "pause" else "resumed"
        raise redirect(f"/monitors/{m.uuid}", f"“{m.name}” {done}.")

    handler.__name__ = f"monitor_{action}"
    return handler


routes.post("/monitors/{uuid}/pause", name="ui.monitor_pause")(page("write")(_action("pause")))
routes.post("/monitors/{uuid}/resume", name="ui.monitor_resume")(page("write")(_action("resume")))


@routes.post("/monitors/{uuid}/delete", name="ui.monitor_delete")
@page("write")
async def monitor_delete(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    m = await _own_monitor(request, viewer)
    if m is None:
        return not_found(request, viewer, "monitor")
    await call_api(request, viewer.caller, "DELETE", "/monitors/{uuid}", params={"uuid": m.uuid})
    raise redirect("/monitors", f"“{m.name}” and its history were deleted.")


# -- schedule preview ---------------------------------------------------------------------------


@routes.get("/ui/schedule", name="ui.schedule_preview")
@page("read")
async def schedule_preview(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """`{ok, words, next: [...]}` or `{ok: false, field, error}` for the form's schedule field."""
    q = request.query
    kind = q.get("kind", "period")
    field = "cron" if kind == "cron" else "period"
    tz = q.get("tz", "UTC").strip() or "UTC"
    try:
        if kind == "cron":
            schedule = schedules.cron_schedule(q.get("cron", "")[:200], tz)
        else:
            schedule = schedules.period_schedule(schedules.parse_duration(q.get("period", "")[:50]))
    except schedules.ScheduleError as exc:
        return web.json_response({"ok": False, "field": field, "error": str(exc)})
    now = request.app[appkeys.CLOCK].now()
    show_tz = tz if kind == "cron" else viewer.user.tz or "UTC"
    fmt = Fmt(now, show_tz)
    upcoming = schedules.upcoming(schedule, now, 5)
    return web.json_response({
        "ok": True,
        "words": schedules.describe(schedule),
        "tz": fmt.zone.key,
        "next": [f"{fmt.at(t)} ({fmt.ago(t)})" for t in upcoming],
    })  # fmt: skip
