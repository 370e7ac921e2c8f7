"""Monitors: the list (filters, search, sort) with bulk pause, resume, delete and tagging; create
and edit with a self-explaining schedule field and the alert channels to use; the detail page
(ping URLs, snippets, uptime bar, pings, runs, duration chart, incidents), pause and resume,
delete; and the JSON schedule preview the form calls as the user types."""

from __future__ import annotations

import logging
import re
import sqlite3
import zoneinfo
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from multidict import MultiDictProxy

from tokiflow.engine import audit, monitor_ops, schedules, views
from tokiflow.engine.monitors import MonitorError
from tokiflow.engine.views import display_status
from tokiflow.storage import channels, incidents, monitor_lists, monitors, outputs, pings, runs
from tokiflow.storage import metrics as ping_metrics
from tokiflow.storage.channels import ChannelRow
from tokiflow.storage.monitors import Monitor
from tokiflow.storage.writer import WriteFailed, WriterClosed
from tokiflow.web import appkeys
from tokiflow.web.api.framework import ApiError
from tokiflow.web.ping_sentry import dsn
from tokiflow.web.ui import queries, uptime
from tokiflow.web.ui.charts import duration_chart, metric_chart
from tokiflow.web.ui.context import (
    Fmt,
    Viewer,
    call_api,
    error_page,
    error_text,
    not_found,
    own_monitor,
    page,
    redirect,
    render,
)
from tokiflow.web.ui.snippets import client_snippets, snippets

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

PAGE_SIZE = 50
SORTS = ("attention", "name", "last_ping", "next_due")
FORM_FIELDS = ("name", "slug", "kind", "period", "cron", "tz", "grace", "max_runtime", "tags",
               "description", "channels")  # fmt: skip


# The organisation's channels and the ids ticked in the form.
ChannelChoice = tuple[list[ChannelRow], set[int]]


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

    def read(
        conn: sqlite3.Connection,
    ) -> tuple[monitor_lists.MonitorPage, list[str], dict[str, int]]:
        found = monitor_lists.page(
            conn, org_id, status=status, tag=tag, q=text, sort=sort,
            offset=(pageno - 1) * PAGE_SIZE, limit=PAGE_SIZE,
        )  # fmt: skip
        return found, monitor_lists.tags(conn, org_id), queries.status_counts(conn, org_id)

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
        "back": link(page=pageno if pageno > 1 else None),
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
               errors: dict[str, str], choice: ChannelChoice,
               status: int = 200) -> web.Response:  # fmt: skip
    return render(request, "ui/monitor_form.html", viewer, http_status=status, monitor=m,
                  values=values, errors=errors, zones=_zones(), channels=choice[0],
                  chosen=choice[1], first=request.query.get("first") == "1")  # fmt: skip


async def _channel_choice(request: web.Request, viewer: Viewer, m: Monitor | None) -> ChannelChoice:
    """The org's channels, with those that alert `m` ticked (for a new monitor: the default
    channels, which every new monitor gets)."""
    org_id = viewer.org.id

    def read(conn: sqlite3.Connection) -> ChannelChoice:
        rows = channels.list_for_org(conn, org_id)
        if m is None:
            return rows, {r.id for r in rows if r.is_default}
        return rows, {r.id for r in channels.for_monitor(conn, m.id)}

    found: ChannelChoice = await request.app[appkeys.DB].read(read)
    return found


def _ticked(post: MultiDictProxy[Any]) -> set[int] | None:
    """The channel ids ticked in a posted form; None when the form showed no channel list."""
    if post.get("channels_shown") != "1":
        return None
    # Any number (unknown ones are refused by `_check_channels`); "²" is a digit but no int.
    return {int(v) for v in post.getall("channel", [])
            if isinstance(v, str) and v.isascii() and v.isdigit()}  # fmt: skip


async def _check_channels(request: web.Request, viewer: Viewer, wanted: set[int] | None) -> None:
    """Refuse (before anything is saved) a ticked channel the organisation does not have."""
    if not wanted:
        return
    org_id = viewer.org.id
    rows = await request.app[appkeys.DB].read(lambda c: channels.list_for_org(c, org_id))
    unknown = sorted(wanted - {r.id for r in rows})
    if unknown:
        raise ApiError(400, f"no channel #{unknown[0]} in this organisation", field="channels")


async def _save_channels(
    request: web.Request, viewer: Viewer, uuid: str, wanted: set[int] | None
) -> None:
    """Bind the monitor to the ticked channels, through the API's rules (and audit) when they
    differ from its current ones. Raises ApiError."""
    if wanted is None:
        return
    m = await request.app[appkeys.DB].read(lambda c: monitors.by_uuid(c, uuid))
    if m is None:
        return
    current = await request.app[appkeys.DB].read(lambda c: channels.for_monitor(c, m.id))
    if {r.id for r in current} != wanted:
        await call_api(request, viewer.caller, "PUT", "/monitors/{uuid}/channels",
                       params={"uuid": uuid}, body={"channels": sorted(wanted)})  # fmt: skip


def _field_of(exc: ApiError, form: dict[str, str]) -> str:
    field = str(exc.detail.get("field") or "form")
    if field in ("schedule", "period", "cron"):
        return "cron" if form.get("kind") == "cron" else "period"
    return field if field in FORM_FIELDS else "form"


@routes.get("/monitors/new", name="ui.monitor_new")
@page("write")
async def monitor_new(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    choice = await _channel_choice(request, viewer, None)
    return _form_page(request, viewer, None, _values(None), {}, choice)


@routes.post("/monitors/new", name="ui.monitor_create")
@page("write")
async def monitor_create(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    post = await request.post()
    form = {k: v for k, v in post.items() if isinstance(v, str)}
    wanted = _ticked(post)
    try:
        await _check_channels(request, viewer, wanted)
        created = await call_api(request, viewer.caller, "POST", "/monitors",
                                 body=_form_body(form, editing=False))  # fmt: skip
    except ApiError as exc:
        errors = {_field_of(exc, form): error_text(exc)}
        rows, chosen = await _channel_choice(request, viewer, None)
        choice = (rows, chosen if wanted is None else wanted)
        return _form_page(request, viewer, None, form, errors, choice, status=400)
    done = f"Monitor “{created['name']}” created."
    try:
        await _save_channels(request, viewer, created["uuid"], wanted)
    except ApiError as exc:
        done += f" Its alert channels were not changed: {error_text(exc)}"
    raise redirect(f"/monitors/{created['uuid']}", done)


@routes.get("/monitors/{uuid}/edit", name="ui.monitor_edit")
@page("write")
async def monitor_edit(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    m = await own_monitor(request, viewer)
    if m is None:
        return not_found(request, viewer, "monitor")
    choice = await _channel_choice(request, viewer, m)
    return _form_page(request, viewer, m, _values(m), {}, choice)


@routes.post("/monitors/{uuid}/edit", name="ui.monitor_update")
@page("write")
async def monitor_update(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    m = await own_monitor(request, viewer)
    if m is None:
        return not_found(request, viewer, "monitor")
    post = await request.post()
    form = {k: v for k, v in post.items() if isinstance(v, str)}
    wanted = _ticked(post)
    try:
        await _check_channels(request, viewer, wanted)
        await call_api(request, viewer.caller, "PATCH", "/monitors/{uuid}",
                       params={"uuid": m.uuid}, body=_form_body(form, editing=True))  # fmt: skip
        await _save_channels(request, viewer, m.uuid, wanted)
    except ApiError as exc:
        errors = {_field_of(exc, form): error_text(exc)}
        rows, chosen = await _channel_choice(request, viewer, m)
        choice = (rows, chosen if wanted is None else wanted)
        return _form_page(request, viewer, m, form, errors, choice, status=400)
    raise redirect(f"/monitors/{m.uuid}", "Changes saved.")


# -- detail and actions -------------------------------------------------------------------------


@routes.get("/monitors/{uuid}", name="ui.monitor")
@page("read")
async def monitor_detail(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    m = await own_monitor(request, viewer)
    if m is None:
        return not_found(request, viewer, "monitor")

    now = request.app[appkeys.CLOCK].now()
    tz = viewer.user.tz or "UTC"

    def read(conn: sqlite3.Connection) -> dict[str, Any]:
        recent_runs = runs.recent(conn, m.id, 60)
        shown_runs = recent_runs[:20]
        up = uptime.read_uptime(conn, m, now, tz)
        return {
            "pings": pings.recent(conn, m.id, 20),
            "runs": shown_runs,
            "with_output": {r.id for r in shown_runs if _has_output(conn, m, r)},
            "uptime": up,
            "uptime_bar": uptime.bar(up),
            "uptime_legend": uptime.legend(),
            "show_percent": uptime.show_percent,
            "chart": duration_chart(recent_runs),
            "metric_charts": [
                (name, metric_chart(name, points))
                for name, points in ping_metrics.series(conn, m.id, 100).items()
            ],
            "incidents": incidents.newest_of_monitor(conn, m.id, 10),
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


def _has_output(conn: sqlite3.Connection, m: Monitor, r: runs.Run) -> bool:
    return any(n is not None and outputs.get(conn, m.id, n) is not None
               for n in (r.end_ping, r.start_ping))  # fmt: skip


def _schedule(m: Monitor) -> schedules.Schedule:
    return schedules.schedule_from_row(m.schedule_kind, m.period, m.cron, m.tz)


def _action(action: str) -> Any:
    async def handler(request: web.Request, viewer: Viewer) -> web.StreamResponse:
        m = await own_monitor(request, viewer)
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
    m = await own_monitor(request, viewer)
    if m is None:
        return not_found(request, viewer, "monitor")
    await call_api(request, viewer.caller, "DELETE", "/monitors/{uuid}", params={"uuid": m.uuid})
    raise redirect("/monitors", f"“{m.name}” and its history were deleted.")


# -- bulk actions on the list --------------------------------------------------------------------

BULK_ACTIONS = {"pause": "Paused", "resume": "Resumed", "delete": "Deleted",
                "tag_add": "Tagged", "tag_remove": "Untagged"}  # fmt: skip
MAX_BULK = 500
MAX_TAGS = 50  # as the API's schema
TAG_RE = re.compile(r"\S{1,100}")


def _back_to_list(post: MultiDictProxy[Any]) -> str:
    """Where to go after a bulk action: the list the user came from (a path on this site)."""
    back = post.get("next")
    if isinstance(back, str) and back.startswith("/monitors") and "//" not in back:
        return back
    return "/monitors"


def _selected(post: MultiDictProxy[Any]) -> list[str]:
    """The uuids ticked, plus the whole page's when "select all on this page" was ticked."""
    values = list(post.getall("uuid", []))
    if post.get("all_on_page") == "1":
        values += post.getall("page_uuid", [])
    return list(
        dict.fromkeys(v.strip().lower() for v in values if isinstance(v, str) and v.strip())
    )


def _retag(m: Monitor, action: str, tag: str) -> list[str] | None:
    """The monitor's tags after adding or removing `tag`; None when nothing would change."""
    tags = m.tags.split()
    if action == "tag_add":
        return None if tag in tags or len(tags) >= MAX_TAGS else [*tags, tag]
    return [t for t in tags if t != tag] if tag in tags else None


@routes.post("/monitors/bulk", name="ui.monitors_bulk")
@page("write")
async def monitors_bulk(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """Pause, resume, delete (after a confirmation step), or add or remove a tag on the ticked
    monitors, in one transaction through the same engine functions and audit entries as one at
    a time. Monitors of other organisations are left out, never touched."""
    post = await request.post()
    back = _back_to_list(post)
    action = post.get("action")
    if not isinstance(action, str) or action not in BULK_ACTIONS:
        return error_page(request, viewer, 400, "Choose what to do with the selected monitors: "
                          "pause, resume, delete, add a tag or remove a tag.")  # fmt: skip
    wanted = _selected(post)
    if not wanted:
        raise redirect(back, "Select at least one monitor first.")
    if len(wanted) > MAX_BULK:
        return error_page(request, viewer, 400, f"At most {MAX_BULK} monitors at once.")
    tag = str(post.get("tag") or "").strip()
    if action.startswith("tag_") and not TAG_RE.fullmatch(tag):
        raise redirect(back, "Type the tag to add or remove: one word, at most 100 characters.")
    org_id = viewer.org.id
    found = await request.app[appkeys.DB].read(lambda c: monitor_lists.by_uuids(c, org_id, wanted))
    if not found:
        return not_found(request, viewer, "monitor")
    if action == "delete" and post.get("confirm") != "1":
        return render(request, "ui/monitors_confirm.html", viewer, monitors=found, back=back,
                      missing=len(wanted) - len(found))  # fmt: skip
    try:
        changed, unchanged = await _bulk_write(request, viewer, action, tag, found)
    except (WriteFailed, WriterClosed) as exc:
        log.error("UI bulk write failed: %s", exc)
        return error_page(request, viewer, 503, "Storage is unavailable; nothing was changed. "
                          "Try again in a moment.")  # fmt: skip
    what = f"{BULK_ACTIONS[action]} {changed} {'monitor' if changed == 1 else 'monitors'}"
    if action.startswith("tag_"):
        what += f" ({'added' if action == 'tag_add' else 'removed'} tag “{tag}”)"
    notes = [what + "."]
    if unchanged:
        notes.append(f"{unchanged} already {'was' if unchanged == 1 else 'were'} that way.")
    if len(wanted) > len(found):
        notes.append(f"{len(wanted) - len(found)} not found.")
    raise redirect(back, " ".join(notes))


async def _bulk_write(
    request: web.Request, viewer: Viewer, action: str, tag: str, found: list[Monitor]
) -> tuple[int, int]:
    """Apply the action in one writer transaction; (changed, unchanged) counts. The scheduler
    follows every changed monitor's deadline once it is committed."""
    app = request.app
    now, started = app[appkeys.CLOCK].now(), app[appkeys.SCHEDULER].started_at
    caller, org_id = viewer.caller, viewer.org.id

    def log_change(
        conn: sqlite3.Connection, name: str, m: Monitor, before: Any, after: Any
    ) -> None:
        audit.record(conn, org_id=org_id, actor=caller.actor, action=name, target_kind="monitor",
                     target_id=m.uuid, before=before, after=after, now=now)  # fmt: skip

    def write(conn: sqlite3.Connection) -> tuple[list[tuple[int, Any]], int]:
        deadlines: list[tuple[int, Any]] = []
        unchanged = 0
        for listed in found:
            m = monitors.get(conn, listed.id)
            if m is None or m.org_id != org_id:  # deleted meanwhile
                continue
            if action == "delete":
                monitor_ops.delete(conn, m)
                log_change(conn, "monitor.delete", m, views.monitor_view(m, None, ""), None)
                deadlines.append((m.id, None))
            elif action in ("pause", "resume"):
                if (m.status == "paused") == (action == "pause"):
                    unchanged += 1
                    continue
                op = monitor_ops.pause if action == "pause" else monitor_ops.resume
                new = op(conn, m, now, started)
                log_change(conn, f"monitor.{action}", m, {"status": m.status},
                           {"status": new.status})  # fmt: skip
                deadlines.append((m.id, new.next_check_at))
            else:
                tags = _retag(m, action, tag)
                if tags is None:
                    unchanged += 1
                    continue
                try:
                    new = monitor_ops.update(conn, m, {"tags": tags}, now, started)
                except MonitorError:  # a definition that no longer validates: leave it
                    unchanged += 1
                    continue
                log_change(conn, "monitor.update", m, views.monitor_view(m, None, ""),
                           views.monitor_view(new, None, ""))  # fmt: skip
                deadlines.append((m.id, new.next_check_at))
        return deadlines, unchanged

    scheduler = app[appkeys.SCHEDULER]

    def after(result: tuple[list[tuple[int, Any]], int]) -> None:
        for monitor_id, deadline in result[0]:
            scheduler.set_deadline(monitor_id, deadline)

    deadlines, unchanged = await app[appkeys.DB].write(write, after_commit=after)
    return len(deadlines), unchanged


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
