"""The Healthchecks-compatible management API under /hc/api/v1/, /hc/api/v2/ and /hc/api/v3/:
the same handlers for the three versions, with the per-version differences Healthchecks has
(v1 reports running checks as "started"; v1 and v2 derive the slug from a new name).

Keys are Tokiflow's organisation API keys (`X-Api-Key`, or `api_key` in a POST's JSON body);
a read-only key gets the reduced check view (no uuid or URLs, a `unique_key` instead) and may
not call the writing endpoints. Errors are `{"error": "..."}`, with Healthchecks' messages.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sqlite3
import uuid as uuidlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tokiflow.engine import audit, auth, monitor_ops, views
from tokiflow.engine.audit import Actor
from tokiflow.engine.monitors import (
    MonitorError,
    MonitorLimitError,
    MonitorSpec,
    build_spec,
    insert_monitor,
    slugify,
)
from tokiflow.storage import accounts, channels, figures, incidents, monitors, orgs, outputs, pings
from tokiflow.storage.monitors import Monitor
from tokiflow.storage.orgs import Org
from tokiflow.storage.writer import WriteFailed, WriterClosed
from tokiflow.web import appkeys, hc_api_shapes, operations
from tokiflow.web.hc_api_spec import (
    CheckSpec,
    HcError,
    explicit_slug,
    find_unique,
    free_slug,
    monitor_fields,
    parse_spec,
    resolve_channels,
)

log = logging.getLogger(__name__)

MAX_BODY = 256 * 1024
PING_LIST_LIMIT = 1000
FLIP_LIST_LIMIT = 100_000
MAX_TIMESTAMP = 10_000_000_000  # year 2286, the bound Healthchecks puts on start/end
UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
UNIQUE_KEY_RE = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class HcCaller:
    org: Org
    actor: Actor
    read_only: bool


@dataclass(frozen=True)
class HcRequest:
    """What a handler gets: the request, the API version, the caller and the JSON body."""

    request: web.Request
    v: int
    caller: HcCaller
    body: dict[str, Any]

    @property
    def app(self) -> web.Application:
        return self.request.app

    @property
    def base_url(self) -> str:
        return self.app[appkeys.SETTINGS].public_url

    def now(self) -> dt.datetime:
        return self.app[appkeys.CLOCK].now()

    def check(self, m: Monitor, channel_ids: list[int] | None = None) -> dict[str, Any]:
        return hc_api_shapes.check(
            m, v=self.v, read_only=self.caller.read_only, base_url=self.base_url,
            channel_ids=channel_ids or [],
        )  # fmt: skip


Handler = Callable[[HcRequest], Awaitable[web.StreamResponse]]
# access: "read" (any key), "write" (read-write keys only)
Methods = dict[str, tuple[Handler, str]]


def add_routes(app: web.Application) -> None:
    """Register every route of the three API versions."""
    for v in hc_api_shapes.VERSIONS:
        prefix = f"{hc_api_shapes.PREFIX}{v}"
        table: list[tuple[str, Methods]] = [
            ("/checks/", {"GET": (list_checks, "read"), "POST": (create_check, "write")}),
            (
                "/checks/{code}",
                {
                    "GET": (get_check, "read"),
                    "POST": (update_check, "write"),
                    "DELETE": (delete_check, "write"),
                },
            ),
            ("/checks/{code}/pause", {"POST": (pause_check, "write")}),
            ("/checks/{code}/resume", {"POST": (resume_check, "write")}),
            ("/checks/{code}/pings/", {"GET": (list_pings, "write")}),
            ("/checks/{code}/pings/{n}/body", {"GET": (ping_body, "write")}),
            ("/checks/{code}/flips/", {"GET": (list_flips, "read")}),
            ("/channels/", {"GET": (list_channels, "write")}),
            ("/badges/", {"GET": (list_badges, "read")}),
        ]
        for path, methods in table:
            app.router.add_route("*", prefix + path, _endpoint(v, methods))
        app.router.add_route("*", prefix + "/status/", status)


def _cors(resp: web.StreamResponse, methods: Methods) -> web.StreamResponse:
    resp.headers["Access-Control-Allow-Origin"] = "*"
    resp.headers["Access-Control-Allow-Headers"] = "X-Api-Key"
    resp.headers["Access-Control-Allow-Methods"] = ", ".join([*methods, "OPTIONS"])
    resp.headers["Access-Control-Max-Age"] = "600"
    return resp


def _error(exc: HcError) -> web.Response:
    return web.json_response({"error": exc.message}, status=exc.status)


def _endpoint(v: int, methods: Methods) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        if request.method == "OPTIONS":
            return _cors(web.Response(status=204), methods)
        if request.method not in methods:
            return _cors(web.Response(status=405), methods)
        handler, access = methods[request.method]
        try:
            body = await _json_body(request) if request.method == "POST" else {}
            caller = await _authenticate(request, body)
            if access == "write" and caller.read_only:
                raise HcError(403, "this API key is read-only")
            resp = await handler(HcRequest(request, v, caller, body))
        except HcError as exc:
            resp = _error(exc)
        except (WriteFailed, WriterClosed) as exc:
            log.error("Healthchecks API write failed: %s", exc)
            resp = _error(HcError(503, "storage unavailable, try again"))
        return _cors(resp, methods)

    return handle


async def _json_body(request: web.Request) -> dict[str, Any]:
    raw = await request.content.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise HcError(413, "request body is too large")
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise HcError(400, "could not parse request body") from None
    if not isinstance(data, dict):
        raise HcError(400, "json validation error: value is not an object")
    return data


async def _authenticate(request: web.Request, body: dict[str, Any]) -> HcCaller:
    """The organisation of the presented API key: `X-Api-Key`, else `api_key` in the body."""
    key = request.headers.get("X-Api-Key")
    if key is None and "api_key" in body:
        key = str(body["api_key"])
    if not key:
        raise HcError(401, "missing api key")
    db, now = request.app[appkeys.DB], request.app[appkeys.CLOCK].now()
    try:
        row = await db.read(lambda c: auth.check_api_key(c, key, now))
    except auth.AuthError:
        raise HcError(401, "wrong api key") from None
    org = await db.read(lambda c: orgs.get(c, row.org_id))
    if org is None:
        raise HcError(401, "wrong api key")
    await db.write(lambda c: accounts.touch_key(c, row.id, now))
    ip, ua = request.remote or "", request.headers.get("User-Agent", "")
    actor = Actor("key", row.id, f"API key {row.prefix}… ({row.name})", ip, ua)
    return HcCaller(org, actor, row.read_only)


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status)


async def status(request: web.Request) -> web.StreamResponse:
    """Database connectivity, for outside uptime monitors: 200 "OK" (no key needed)."""
    if request.method not in ("GET", "HEAD"):
        return web.Response(status=405)
    try:
        await request.app[appkeys.DB].read(figures.database_answers)
    except Exception as exc:  # any storage failure means "down"
        log.warning("Healthchecks API status check failed: %s", exc)
        return web.Response(status=500, text="database unavailable")
    return web.Response(text="OK")


# -- finding checks -----------------------------------------------------------------------------


async def _by_code(r: HcRequest, *, unique_key_ok: bool = False) -> Monitor:
    """The check in the path (uuid, or a read-only key's unique_key where allowed); 404 when it
    does not exist or belongs to another organisation."""
    code = r.request.match_info["code"]
    org_id = r.caller.org.id
    if UUID_RE.match(code):
        m = await r.app[appkeys.DB].read(lambda c: monitors.by_uuid(c, code.lower()))
        if m is None or m.org_id != org_id:
            raise _not_found()
        return m
    if unique_key_ok and UNIQUE_KEY_RE.match(code):
        rows = await r.app[appkeys.DB].read(lambda c: monitors.list_for_org(c, org_id))
        for m in rows:
            if hc_api_shapes.unique_key(m.uuid) == code:
                return m
    raise _not_found()


def _refuse_unique_key(r: HcRequest) -> None:
    """A unique_key addresses a check for GET only: other methods get 405, as in Healthchecks."""
    if UNIQUE_KEY_RE.match(r.request.match_info["code"]):
        raise HcError(405, "method not allowed")


def _not_found() -> HcError:
    return HcError(404, "not found")


def _channel_ids(conn: sqlite3.Connection, monitor_id: int) -> list[int]:
    return [c.id for c in channels.for_monitor(conn, monitor_id)]


async def _view(r: HcRequest, m: Monitor) -> dict[str, Any]:
    if r.caller.read_only:
        return r.check(m)
    ids = await r.app[appkeys.DB].read(lambda c: _channel_ids(c, m.id))
    return r.check(m, ids)


# -- checks ---------------------------------------------------------------------------------------


async def list_checks(r: HcRequest) -> web.StreamResponse:
    """Every check of the organisation, filtered by `tag` (repeatable: all must match) and
    `slug`."""
    tags = set(r.request.query.getall("tag", []))
    slug = r.request.query.get("slug")
    org_id, read_only = r.caller.org.id, r.caller.read_only

    def read(conn: sqlite3.Connection) -> list[tuple[Monitor, list[int]]]:
        found = [
            m for m in monitors.list_for_org(conn, org_id)
            if tags <= set(m.tags.split()) and (not slug or m.slug == slug)
        ]  # fmt: skip
        return [(m, [] if read_only else _channel_ids(conn, m.id)) for m in found]

    rows = await r.app[appkeys.DB].read(read)
    return _json({"checks": [r.check(m, ids) for m, ids in rows]})


async def get_check(r: HcRequest) -> web.StreamResponse:
    return _json(await _view(r, await _by_code(r, unique_key_ok=True)))


async def _write(r: HcRequest, fn: Callable[[sqlite3.Connection], Any]) -> Any:
    """Run a change in the writer; the scheduler follows the monitor's new deadline."""
    scheduler = r.app[appkeys.SCHEDULER]

    def after(result: Any) -> None:
        m = result[0] if isinstance(result, tuple) else result
        if isinstance(m, Monitor):
            scheduler.set_deadline(m.id, m.next_check_at)

    try:
        return await r.app[appkeys.DB].write(fn, after_commit=after)
    except MonitorLimitError as exc:
        raise HcError(403, exc.message) from None
    except MonitorError as exc:
        raise HcError(400, f"json validation error: {exc.field} {exc.message}") from None


def _audit(
    r: HcRequest, conn: sqlite3.Connection, action: str, m: Monitor, before: Any, after: Any
) -> None:
    audit.record(
        conn, org_id=r.caller.org.id, actor=r.caller.actor, action=action, target_kind="monitor",
        target_id=m.uuid, before=before, after=after, now=r.now(),
    )  # fmt: skip


def _record(m: Monitor, channel_ids: list[int] | None = None) -> dict[str, Any]:
    data = views.monitor_view(m, None, "")
    if channel_ids is not None:
        data["channels"] = channel_ids
    return data


def _apply(r: HcRequest, conn: sqlite3.Connection, m: Monitor, spec: CheckSpec) -> Monitor:
    """Healthchecks' update: only the fields given change; v1 and v2 derive the slug from a new
    name. Empty names and slugs are ignored (Tokiflow needs both)."""
    changes = monitor_fields(spec)
    org_id = r.caller.org.id
    if spec.name is not None and spec.name.strip() and spec.name != m.name:
        changes["name"] = spec.name
        if r.v < 3:
            changes["slug"] = free_slug(conn, org_id, slugify(spec.name), m)
    if spec.slug:
        changes["slug"] = explicit_slug(conn, org_id, spec.slug, m)
    if "tz" in changes and "cron" not in changes and m.schedule_kind != "cron":
        del changes["tz"]  # a time zone only matters to a cron schedule
    if not changes:
        return m
    now, started = r.now(), r.app[appkeys.SCHEDULER].started_at
    return monitor_ops.update(conn, m, changes, now, started)


def _set_channels(conn: sqlite3.Connection, org_id: int, m: Monitor, spec: CheckSpec) -> list[int]:
    if spec.channels is not None:
        channels.set_monitor_channels(conn, m.id, resolve_channels(conn, org_id, spec.channels))
    return _channel_ids(conn, m.id)


async def create_check(r: HcRequest) -> web.StreamResponse:
    """Create a check (201), or with `unique`, update and return the matching one (200)."""
    spec = parse_spec(r.body)
    org_id = r.caller.org.id
    new_uuid = str(uuidlib.uuid4())
    limits = operations.plan_limits(r.app)

    def write(conn: sqlite3.Connection) -> tuple[Monitor, bool, list[int]]:
        existing = find_unique(conn, org_id, spec)
        if existing is not None:
            before = _record(existing, _channel_ids(conn, existing.id))
            m = _apply(r, conn, existing, spec)
            ids = _set_channels(conn, org_id, m, spec)
            _audit(r, conn, "monitor.update", m, before, _record(m, ids))
            return m, False, ids
        m = insert_monitor(conn, _new_spec(r, conn, spec, new_uuid), r.now(), limits=limits)
        ids = _set_channels(conn, org_id, m, spec)
        _audit(r, conn, "monitor.create", m, None, _record(m, ids))
        return m, True, ids

    m, created, ids = await _write(r, write)
    return _json(r.check(m, ids), status=201 if created else 200)


def _new_spec(
    r: HcRequest, conn: sqlite3.Connection, spec: CheckSpec, new_uuid: str
) -> MonitorSpec:
    org_id = r.caller.org.id
    # Tokiflow needs a name and a slug: an unnamed check is named after its uuid, and a check
    # with no slug gets one from its name (Healthchecks v3 would leave it empty).
    name = spec.name if spec.name and spec.name.strip() else new_uuid
    if spec.slug:
        slug = explicit_slug(conn, org_id, spec.slug, None)
    else:
        slug = free_slug(conn, org_id, slugify(name), None)
    return build_spec(org_id=org_id, name=name, slug=slug, uuid=new_uuid, **monitor_fields(spec))


async def update_check(r: HcRequest) -> web.StreamResponse:
    _refuse_unique_key(r)
    m = await _by_code(r)
    spec = parse_spec(r.body)
    org_id = r.caller.org.id

    def write(conn: sqlite3.Connection) -> tuple[Monitor, list[int]]:
        current = monitors.get(conn, m.id)
        if current is None:
            raise _not_found()
        before = _record(current, _channel_ids(conn, current.id))
        new = _apply(r, conn, current, spec)
        ids = _set_channels(conn, org_id, new, spec)
        _audit(r, conn, "monitor.update", new, before, _record(new, ids))
        return new, ids

    new, ids = await _write(r, write)
    return _json(r.check(new, ids))


async def delete_check(r: HcRequest) -> web.StreamResponse:
    """Delete a check and its history; answers with the check as it was."""
    _refuse_unique_key(r)
    m = await _by_code(r)

    def write(conn: sqlite3.Connection) -> tuple[Monitor, list[int]]:
        current = monitors.get(conn, m.id)
        if current is None:
            raise _not_found()
        ids = _channel_ids(conn, current.id)
        monitor_ops.delete(conn, current)
        _audit(r, conn, "monitor.delete", current, _record(current, ids), None)
        return current, ids

    gone, ids = await r.app[appkeys.DB].write(write)
    r.app[appkeys.SCHEDULER].set_deadline(gone.id, None)
    return _json(r.check(gone, ids))


def _state_change(action: str) -> Handler:
    async def handler(r: HcRequest) -> web.StreamResponse:
        m = await _by_code(r)
        now, started = r.now(), r.app[appkeys.SCHEDULER].started_at

        def write(conn: sqlite3.Connection) -> Monitor:
            current = monitors.get(conn, m.id)
            if current is None:
                raise _not_found()
            if action == "pause":
                new = monitor_ops.pause(conn, current, now, started)
            elif current.status != "paused":
                raise HcError(409, "check is not paused")
            else:
                new = monitor_ops.resume(conn, current, now, started)
            _audit(r, conn, f"monitor.{action}", new, {"status": current.status},
                   {"status": new.status})  # fmt: skip
            return new

        return _json(await _view(r, await _write(r, write)))

    handler.__name__ = f"{action}_check"
    return handler


pause_check = _state_change("pause")
resume_check = _state_change("resume")


# -- pings and flips --------------------------------------------------------------------------


async def list_pings(r: HcRequest) -> web.StreamResponse:
    """The check's pings, newest first (at most PING_LIST_LIMIT)."""
    m = await _by_code(r)
    rows = await r.app[appkeys.DB].read(lambda c: pings.recent(c, m.id, PING_LIST_LIMIT))
    shown = [hc_api_shapes.ping(p, v=r.v, base_url=r.base_url, uuid=m.uuid) for p in rows]
    return _json({"pings": shown})


async def ping_body(r: HcRequest) -> web.StreamResponse:
    """The stored body of one ping, verbatim as text/plain; 404 when there is none."""
    m = await _by_code(r)
    n_text = r.request.match_info["n"]
    if not n_text.isdigit() or not n_text.isascii():
        raise _not_found()
    n = int(n_text)
    store = r.app[appkeys.OUTPUTS]

    def read(conn: sqlite3.Connection) -> bytes | None:
        ping = pings.get(conn, m.id, n)
        return None if ping is None else outputs.ping_body(conn, store, m, ping)

    try:
        body = await r.app[appkeys.DB].read(read)
    except outputs.OutputError:
        body = None  # damaged or tampered with: never served
    if not body:
        raise _not_found()
    return web.Response(body=body, content_type="text/plain")


def _timestamp(r: HcRequest, name: str) -> int | None:
    raw = r.request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise HcError(400, f"invalid {name}: must be an integer") from None
    if not 0 <= value <= MAX_TIMESTAMP:
        raise HcError(400, f"invalid {name}: out of bounds")
    return value


async def list_flips(r: HcRequest) -> web.StreamResponse:
    """Status changes, newest first, optionally within `seconds`, after `start`, before `end`."""
    m = await _by_code(r, unique_key_ok=True)
    start, end, seconds = _timestamp(r, "start"), _timestamp(r, "end"), _timestamp(r, "seconds")
    if seconds is not None and seconds > 31_536_000:
        raise HcError(400, "invalid seconds: out of bounds")
    rows = await r.app[appkeys.DB].read(lambda c: incidents.flips(c, m.id, FLIP_LIST_LIMIT))
    if start is not None:
        rows = [f for f in rows if f.at >= dt.datetime.fromtimestamp(start, dt.UTC)]
    if end is not None:
        rows = [f for f in rows if f.at < dt.datetime.fromtimestamp(end, dt.UTC)]
    if seconds is not None:
        since = r.now() - dt.timedelta(seconds=seconds)
        rows = [f for f in rows if f.at >= since]
    return _json({"flips": hc_api_shapes.flips(rows)})


# -- channels, badges -----------------------------------------------------------------------------


async def list_channels(r: HcRequest) -> web.StreamResponse:
    org_id = r.caller.org.id
    rows = await r.app[appkeys.DB].read(lambda c: channels.list_for_org(c, org_id))
    return _json({"channels": [hc_api_shapes.channel(c) for c in rows]})


async def list_badges(r: HcRequest) -> web.StreamResponse:
    """Badge URLs for every tag and for "*" (all checks). Serving the badges is not built yet."""
    org = r.caller.org
    rows = await r.app[appkeys.DB].read(lambda c: monitors.list_for_org(c, org.id))
    tags = {t for m in rows for t in m.tags.split()}
    return _json({"badges": hc_api_shapes.badges(org, tags, r.base_url)})
