"""The subset of Cronitor's monitor API that its SDKs and CLI use, under `/api/monitors`:
`PUT` (a `{"monitors": [...]}` object, a bare list, or YAML at `/api/monitors.yaml`) creates or
updates monitors by key, `GET` lists or shows them, `DELETE` removes one, and
`GET /api/monitors/<key>/pause[/<hours>]` pauses (0 hours resumes).

Authentication is HTTP Basic with an organisation API key as the user name (Cronitor's way);
reads need any key, changes a read-write key. Every change is written to the audit log.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tokiflow import licensing
from tokiflow.engine import audit, auth, monitor_ops, views
from tokiflow.engine.monitors import MonitorError, MonitorLimitError, build_spec
from tokiflow.importers import Upserted, upsert
from tokiflow.importers import cronitor as defs
from tokiflow.storage import accounts, orgs
from tokiflow.storage import monitors as store
from tokiflow.storage.monitors import Monitor
from tokiflow.storage.orgs import Org
from tokiflow.web import appkeys, operations

YAML_TYPE = "application/yaml"
MAX_PAGE_SIZE = 1000


class CronitorError(Exception):
    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(str(detail))
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class Caller:
    org: Org
    actor: audit.Actor
    read_only: bool


def _basic_key(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    if header[:6].lower() == "basic ":
        try:
            user, _, password = base64.b64decode(header[6:].strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return ""
        return user or password
    return request.headers.get("X-Api-Key", "")


async def caller(request: web.Request, *, write: bool) -> Caller:
    key = _basic_key(request)
    if not key:
        raise CronitorError(401, "send an API key as the Basic auth user name")
    db, now = request.app[appkeys.DB], request.app[appkeys.CLOCK].now()

    def find(conn: sqlite3.Connection) -> tuple[accounts.ApiKey, Org | None]:
        row = auth.check_api_key(conn, key, now)
        return row, orgs.get(conn, row.org_id)

    try:
        row, org = await db.read(find)
    except auth.AuthError as exc:
        raise CronitorError(401, str(exc)) from None
    if org is None:
        raise CronitorError(401, "invalid API key")
    if write and row.read_only:
        raise CronitorError(403, "this API key is read-only")
    await db.write(lambda conn: accounts.touch_key(conn, row.id, now))
    ip, ua = request.remote or "", request.headers.get("User-Agent", "")
    actor = audit.Actor("key", row.id, f"API key {row.prefix}… ({row.name})", ip, ua)
    return Caller(org, actor, row.read_only)


def _handler(write: bool) -> Any:
    def wrap(fn: Any) -> Any:
        async def handler(request: web.Request) -> web.StreamResponse:
            try:
                who = await caller(request, write=write)
                return await fn(request, who)
            except CronitorError as exc:
                return web.json_response({"detail": exc.detail}, status=exc.status)

        handler.__name__ = fn.__name__
        return handler

    return wrap


def _yaml_response(doc: Any) -> web.Response:
    import yaml

    return web.Response(text=yaml.safe_dump(doc, sort_keys=False), content_type=YAML_TYPE)


async def _read_monitors(
    request: web.Request, as_yaml: bool
) -> tuple[list[dict[str, Any]], bool, bool]:
    """The monitors a PUT declares, whether it asked for a rollback (validate only), and
    whether it sent a bare list (answered with a bare list, as the Cronitor CLI expects)."""
    text = await request.text()
    try:
        if as_yaml:
            import yaml

            doc = yaml.safe_load(text)
        else:
            doc = json.loads(text)
    except Exception as exc:  # yaml.YAMLError or ValueError; the message is the reason
        raise CronitorError(400, f"the body cannot be read: {str(exc).splitlines()[0]}") from None
    rollback = isinstance(doc, dict) and bool(doc.pop("rollback", False))
    try:
        return defs.monitors_from(doc), rollback, isinstance(doc, list)
    except ValueError as exc:
        raise CronitorError(400, str(exc)) from None


def _validated(items: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any], bool | None]]:
    """(slug, build_spec arguments, paused) per monitor; 400 naming every invalid one."""
    found, errors = [], {}
    for data in items:
        try:
            args, _ = defs.spec_args(data)
            build_spec(org_id=0, **args)  # every value checked before anything is written
        except MonitorError as exc:
            errors[str(data.get("key") or "?")] = str(exc)
            continue
        paused = data.get("paused")
        found.append((args.pop("slug"), args, None if paused is None else bool(paused)))
    if errors:
        raise CronitorError(400, {"errors": errors})
    return found


def _apply(
    conn: sqlite3.Connection, who: Caller, slug: str, args: dict[str, Any], paused: bool | None,
    now: dt.datetime, started_at: dt.datetime, limits: licensing.Limits,
) -> Monitor:  # fmt: skip
    done: Upserted = upsert(conn, who.org.id, slug, args, now, started_at, limits=limits)
    m = done.monitor
    if paused is True:
        m = monitor_ops.pause(conn, m, now, started_at)
    elif paused is False:
        m = monitor_ops.resume(conn, m, now, started_at)
    if done.action != "unchanged" or m.status != done.monitor.status:
        before = None if done.before is None else views.monitor_view(done.before, None, "")
        audit.record(
            conn, org_id=who.org.id, actor=who.actor,
            action="monitor.create" if done.action == "created" else "monitor.update",
            target_kind="monitor", target_id=m.uuid, before=before,
            after=views.monitor_view(m, None, ""), now=now,
        )  # fmt: skip
    return m


async def _put(request: web.Request, who: Caller, as_yaml: bool) -> web.Response:
    items, rollback, bare_list = await _read_monitors(request, as_yaml)
    wanted = _validated(items)
    app = request.app
    now, scheduler = app[appkeys.CLOCK].now(), app[appkeys.SCHEDULER]
    limits = operations.plan_limits(app)

    def write(conn: sqlite3.Connection) -> list[Monitor]:
        started = scheduler.started_at
        done = [_apply(conn, who, s, a, p, now, started, limits) for s, a, p in wanted]
        if rollback:
            raise _RolledBack(done)
        return done

    def after(done: list[Monitor]) -> None:
        for m in done:
            scheduler.set_deadline(m.id, m.next_check_at)

    try:
        saved = await app[appkeys.DB].write(write, after_commit=after)
    except _RolledBack as rolled:
        saved = rolled.monitors
    except MonitorLimitError as exc:
        raise CronitorError(403, exc.message) from None
    except MonitorError as exc:
        raise CronitorError(400, {"errors": {exc.field: exc.message}}) from None
    shaped = [defs.to_cronitor(m) for m in saved]
    if as_yaml:
        return _yaml_response({"jobs": {d.pop("key"): d for d in shaped}})
    return web.json_response(shaped if bare_list else {"monitors": shaped})


class _RolledBack(Exception):
    """Raised inside the write to undo a validate-only PUT, carrying what it would have saved."""

    def __init__(self, monitors: list[Monitor]) -> None:
        super().__init__("rollback")
        self.monitors = monitors


@_handler(write=True)
async def put_monitors(request: web.Request, who: Caller) -> web.Response:
    return await _put(request, who, as_yaml=False)


@_handler(write=True)
async def put_monitors_yaml(request: web.Request, who: Caller) -> web.Response:
    return await _put(request, who, as_yaml=True)


async def _org_monitors(request: web.Request, who: Caller) -> list[Monitor]:
    org_id = who.org.id
    return await request.app[appkeys.DB].read(lambda conn: store.list_for_org(conn, org_id))


@_handler(write=False)
async def list_monitors(request: web.Request, who: Caller) -> web.Response:
    rows = await _org_monitors(request, who)
    try:
        page = max(int(request.query.get("page", "1")), 1)
        size = min(max(int(request.query.get("pageSize", "50")), 1), MAX_PAGE_SIZE)
    except ValueError:
        raise CronitorError(400, "page and pageSize must be whole numbers") from None
    shown = rows[(page - 1) * size : page * size]
    return web.json_response({
        "monitors": [defs.to_cronitor(m) for m in shown], "page": page, "page_size": size,
        "total_monitor_count": len(rows),
    })  # fmt: skip


@_handler(write=False)
async def export_yaml(request: web.Request, who: Caller) -> web.Response:
    shaped = [defs.to_cronitor(m) for m in await _org_monitors(request, who)]
    return _yaml_response({"jobs": {d.pop("key"): d for d in shaped}})


async def _monitor(request: web.Request, who: Caller) -> Monitor:
    slug, org_id = request.match_info["key"], who.org.id
    found = await request.app[appkeys.DB].read(lambda conn: store.by_slug(conn, org_id, slug))
    if not found:
        raise CronitorError(404, f"monitor '{slug}' not found")
    return found[0]


@_handler(write=False)
async def get_monitor(request: web.Request, who: Caller) -> web.Response:
    return web.json_response(defs.to_cronitor(await _monitor(request, who)))


@_handler(write=True)
async def delete_monitor(request: web.Request, who: Caller) -> web.Response:
    m = await _monitor(request, who)
    now = request.app[appkeys.CLOCK].now()

    def write(conn: sqlite3.Connection) -> None:
        monitor_ops.delete(conn, m)
        audit.record(
            conn, org_id=who.org.id, actor=who.actor, action="monitor.delete",
            target_kind="monitor", target_id=m.uuid, before=views.monitor_view(m, None, ""),
            now=now,
        )  # fmt: skip

    await request.app[appkeys.DB].write(write)
    request.app[appkeys.SCHEDULER].set_deadline(m.id, None)
    return web.Response(status=204)


@_handler(write=True)
async def pause_monitor(request: web.Request, who: Caller) -> web.Response:
    """Pause (any hours, or none: until resumed or pinged) or resume (0 hours). Tokiflow has no
    timed pause: a paused monitor resumes on its next ping, as documented."""
    m = await _monitor(request, who)
    hours = request.match_info.get("hours", "")
    try:
        resume = hours != "" and float(hours) == 0
    except ValueError:
        raise CronitorError(400, f"invalid number of hours '{hours[:20]}'") from None
    app = request.app
    now, scheduler = app[appkeys.CLOCK].now(), app[appkeys.SCHEDULER]
    op = monitor_ops.resume if resume else monitor_ops.pause

    def write(conn: sqlite3.Connection) -> Monitor:
        current = store.get(conn, m.id) or m
        new = op(conn, current, now, scheduler.started_at)
        audit.record(
            conn, org_id=who.org.id, actor=who.actor,
            action="monitor.resume" if resume else "monitor.pause", target_kind="monitor",
            target_id=m.uuid, before={"status": current.status}, after={"status": new.status},
            now=now,
        )  # fmt: skip
        return new

    def after(new: Monitor) -> None:
        scheduler.set_deadline(new.id, new.next_check_at)

    new = await app[appkeys.DB].write(write, after_commit=after)
    return web.json_response({"key": new.slug, "paused": new.status == "paused"})


def add_routes(app: web.Application) -> None:
    r = app.router
    r.add_route("PUT", "/api/monitors", put_monitors)
    r.add_route("GET", "/api/monitors", list_monitors)
    r.add_route("PUT", "/api/monitors.yaml", put_monitors_yaml)
    r.add_route("GET", "/api/monitors.yaml", export_yaml)
    r.add_route("GET", "/api/monitors/{key}", get_monitor)
    r.add_route("DELETE", "/api/monitors/{key}", delete_monitor)
    r.add_route("GET", "/api/monitors/{key}/pause", pause_monitor)
    r.add_route("GET", "/api/monitors/{key}/pause/{hours}", pause_monitor)
