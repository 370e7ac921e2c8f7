"""/api/v1 monitors, pings, runs, flips, incidents and tags of the caller's organisation."""

from __future__ import annotations

import sqlite3
from typing import Any

from aiohttp import web

from tokiflow.engine import audit, monitor_ops, views
from tokiflow.engine import incidents as incident_actions
from tokiflow.engine.monitors import MonitorError, MonitorLimitError, build_spec, create_monitor
from tokiflow.storage import incidents, monitors, outputs, pings, runs
from tokiflow.storage.monitors import Monitor
from tokiflow.web import appkeys, operations
from tokiflow.web.api.framework import ApiError, ApiRequest, Param, not_found
from tokiflow.web.api.native import API
from tokiflow.web.api.schema import BOOL, INT, NUM, STR, TIME, fields_obj, nullable, obj

DURATION = {"type": ["integer", "string"], "description": "seconds, or 90s, 5m, 1h, 2d"}
OPT_DURATION = {"type": ["integer", "string", "null"], "description": "seconds, or 90s, 5m, 1h"}
MONITOR_FIELDS: dict[str, dict[str, Any]] = {
    "name": {"type": "string", "minLength": 1, "maxLength": 200},
    "slug": {"type": "string", "maxLength": 100},
    "description": {"type": "string", "maxLength": 10000},
    "tags": {"type": "array", "items": {"type": "string", "maxLength": 100}, "maxItems": 50},
    "period": {"type": ["integer", "string", "null"], "description": "seconds or 1h, 15m ..."},
    "cron": {"type": ["string", "null"], "maxLength": 200},
    "tz": {"type": "string", "maxLength": 64},
    "grace": DURATION,
    "max_runtime": OPT_DURATION,
    "min_runtime": OPT_DURATION,
    "methods": {"type": "string", "enum": ["any", "post"]},
    "manual_resume": BOOL,
    "failure_tolerance": {"type": "integer", "minimum": 0, "maximum": 100},
    "late_alerts": BOOL,
    "renotify_every": OPT_DURATION,
    "notify_resolve": BOOL,
}
MONITOR = obj(
    extra=True,
    uuid=STR, name=STR, slug=STR, status=STR, state=STR, schedule={"type": ["integer", "string"]},
    tz=STR, grace=INT, tags={"type": "array", "items": STR}, last_ping=TIME,
    next_due=TIME, ping_count=INT, open_runs=INT, ping_url=STR,
)  # fmt: skip
INCIDENT = obj(
    extra=True, id=INT, kind=STR, state=STR, reason=STR, monitor=nullable(STR), opened_at=TIME
)
PING = obj(extra=True, n=INT, at=TIME, kind=STR, exit_status=nullable(INT), body_size=INT)
RUN = obj(extra=True, id=INT, status=STR, duration=nullable(NUM), started_at=TIME)
LIMIT = Param(
    "limit", {"type": "integer", "minimum": 1, "maximum": 500, "default": 100}, "page size"
)


def _spec_args(body: dict[str, Any]) -> dict[str, Any]:
    args = dict(body)
    if "late_alerts" in args:
        args["late_incidents"] = args.pop("late_alerts")
    return args


async def _monitor(req: ApiRequest) -> Monitor:
    """The monitor named in the path, if it belongs to the caller's organisation (else 404)."""
    uuid = req.path["uuid"].lower()
    m = await req.app[appkeys.DB].read(lambda c: monitors.by_uuid(c, uuid))
    if m is None or m.org_id != req.caller.org.id:
        raise not_found("monitor")
    return m


def _view(req: ApiRequest, m: Monitor) -> dict[str, Any]:
    return views.monitor_view(m, req.caller.org, req.app[appkeys.SETTINGS].public_url)


async def _write_monitor(req: ApiRequest, fn: Any) -> Monitor:
    """Run a monitor change in the writer; the scheduler follows its new deadline."""
    scheduler = req.app[appkeys.SCHEDULER]

    def after(m: Monitor | None) -> None:
        if m is not None:
            scheduler.set_deadline(m.id, m.next_check_at)

    try:
        result: Monitor = await req.app[appkeys.DB].write(fn, after_commit=after)
    except MonitorLimitError as exc:
        raise ApiError(403, exc.message, field=exc.field) from None
    except MonitorError as exc:
        raise ApiError(400, str(exc), field=exc.field) from None
    return result


def _audit(
    req: ApiRequest, conn: sqlite3.Connection, action: str, m: Monitor, before: Any, after: Any
) -> None:
    audit.record(
        conn, org_id=req.caller.org.id, actor=req.caller.actor, action=action,
        target_kind="monitor", target_id=m.uuid, before=before, after=after,
        now=req.app[appkeys.CLOCK].now(),
    )  # fmt: skip


@API.route(
    "GET", "/monitors", summary="List monitors (filter by status, tag or text; paginated)",
    scope="read", tag="monitors",
    query=(
        Param("status", {"type": "string", "enum": ["new", "up", "late", "down", "paused", "running"]}),
        Param("tag", {"type": "string"}),
        Param("q", {"type": "string", "maxLength": 200}, "text in name, slug or description"),
        LIMIT,
        Param("offset", {"type": "integer", "minimum": 0, "default": 0}),
    ),
    response=obj(monitors={"type": "array", "items": MONITOR}, total=INT, next_offset=nullable(INT)),
)  # fmt: skip
async def list_monitors(req: ApiRequest) -> Any:
    org_id = req.caller.org.id
    rows = await req.app[appkeys.DB].read(lambda c: monitors.list_for_org(c, org_id))
    q = (req.query["q"] or "").lower()
    status, tag = req.query["status"], req.query["tag"]
    found = [
        m for m in rows
        if (status is None or views.display_status(m) == status or m.status == status)
        and (tag is None or tag in m.tags.split())
        and (not q or q in m.name.lower() or q in m.slug or q in m.description.lower())
    ]  # fmt: skip
    offset, limit = req.query["offset"], req.query["limit"]
    page = found[offset : offset + limit]
    more = offset + limit < len(found)
    return {
        "monitors": [_view(req, m) for m in page],
        "total": len(found),
        "next_offset": offset + limit if more else None,
    }


@API.route(
    "POST", "/monitors", summary="Create a monitor", scope="write", tag="monitors",
    body=fields_obj(MONITOR_FIELDS, ("name",)), response=MONITOR, status=201,
)  # fmt: skip
async def create(req: ApiRequest) -> Any:
    now = req.app[appkeys.CLOCK].now()
    try:
        spec = build_spec(org_id=req.caller.org.id, **_spec_args(req.body))
    except MonitorError as exc:
        raise ApiError(400, str(exc), field=exc.field) from None
    limits = operations.plan_limits(req.app)

    def write(conn: sqlite3.Connection) -> Monitor:
        m = create_monitor(conn, spec, now, limits=limits)
        _audit(req, conn, "monitor.create", m, None, views.monitor_view(m, None, ""))
        return m

    return _view(req, await _write_monitor(req, write))


@API.route("GET", "/monitors/{uuid}", summary="Get a monitor", scope="read", tag="monitors",
           response=MONITOR)  # fmt: skip
async def get_monitor(req: ApiRequest) -> Any:
    return _view(req, await _monitor(req))


@API.route(
    "PATCH", "/monitors/{uuid}", summary="Change a monitor (only the fields given)",
    scope="write", tag="monitors", body=fields_obj(MONITOR_FIELDS), response=MONITOR,
)  # fmt: skip
async def update(req: ApiRequest) -> Any:
    m = await _monitor(req)
    now, started = req.app[appkeys.CLOCK].now(), req.app[appkeys.SCHEDULER].started_at

    def write(conn: sqlite3.Connection) -> Monitor:
        current = monitors.get(conn, m.id)
        if current is None:
            raise ApiError(404, "monitor not found")
        new = monitor_ops.update(conn, current, _spec_args(req.body), now, started)
        _audit(req, conn, "monitor.update", new, views.monitor_view(current, None, ""),
               views.monitor_view(new, None, ""))  # fmt: skip
        return new

    return _view(req, await _write_monitor(req, write))


@API.route("DELETE", "/monitors/{uuid}", summary="Delete a monitor and its history",
           scope="write", tag="monitors", status=204)  # fmt: skip
async def delete(req: ApiRequest) -> Any:
    m = await _monitor(req)

    def write(conn: sqlite3.Connection) -> None:
        monitor_ops.delete(conn, m)
        _audit(req, conn, "monitor.delete", m, views.monitor_view(m, None, ""), None)

    await req.app[appkeys.DB].write(write)
    req.app[appkeys.SCHEDULER].set_deadline(m.id, None)
    return None


def _state_change(action: str) -> Any:
    async def handler(req: ApiRequest) -> Any:
        m = await _monitor(req)
        now, started = req.app[appkeys.CLOCK].now(), req.app[appkeys.SCHEDULER].started_at
        op = monitor_ops.pause if action == "pause" else monitor_ops.resume

        def write(conn: sqlite3.Connection) -> Monitor:
            current = monitors.get(conn, m.id) or m
            new = op(conn, current, now, started)
            _audit(
                req,
                conn,
                f"monitor.{action}",
                new,
                {"status": current.status},
                {"status": new.status},
            )
            return new

        return _view(req, await _write_monitor(req, write))

    handler.__name__ = f"{action}_monitor"
    return handler


API.route("POST", "/monitors/{uuid}/pause", summary="Pause a monitor (no alerts until resumed)",
          scope="write", tag="monitors", response=MONITOR)(_state_change("pause"))  # fmt: skip
API.route("POST", "/monitors/{uuid}/resume", summary="Resume a paused monitor",
          scope="write", tag="monitors", response=MONITOR)(_state_change("resume"))  # fmt: skip


@API.route(
    "GET", "/monitors/{uuid}/pings", summary="Recent pings of a monitor, newest first",
    scope="read", tag="pings", query=(LIMIT,),
    response=obj(pings={"type": "array", "items": PING}),
)  # fmt: skip
async def list_pings(req: ApiRequest) -> Any:
    m = await _monitor(req)
    rows = await req.app[appkeys.DB].read(lambda c: pings.recent(c, m.id, req.query["limit"]))
    return {"pings": [views.ping_view(p) for p in rows]}


@API.route(
    "GET", "/monitors/{uuid}/pings/{n}/body", summary="The stored body of one ping",
    scope="read", tag="pings", content_type="text/plain",
)  # fmt: skip
async def ping_body(req: ApiRequest) -> Any:
    m = await _monitor(req)
    n = req.path_int("n", "ping")
    store = req.app[appkeys.OUTPUTS]

    def read(conn: sqlite3.Connection) -> bytes | None:
        ping = pings.get(conn, m.id, n)
        return None if ping is None else outputs.ping_body(conn, store, m, ping) or b""

    try:
        body = await req.app[appkeys.DB].read(read)
    except outputs.OutputError as exc:
        raise ApiError(409, f"the stored output cannot be read: {exc}") from None
    if body is None:
        raise not_found("ping")
    return web.Response(body=body, content_type="text/plain", charset="utf-8")


@API.route(
    "GET", "/monitors/{uuid}/runs", summary="Recent runs with durations, newest first",
    scope="read", tag="runs", query=(LIMIT,), response=obj(runs={"type": "array", "items": RUN}),
)  # fmt: skip
async def list_runs(req: ApiRequest) -> Any:
    m = await _monitor(req)
    rows = await req.app[appkeys.DB].read(lambda c: runs.recent(c, m.id, req.query["limit"]))
    return {"runs": [views.run_view(r) for r in rows]}


@API.route(
    "GET", "/monitors/{uuid}/flips", summary="Status changes of a monitor, newest first",
    scope="read", tag="monitors", query=(LIMIT,),
    response=obj(flips={"type": "array", "items": obj(extra=True, at=TIME, reason=STR)}),
)  # fmt: skip
async def list_flips(req: ApiRequest) -> Any:
    m = await _monitor(req)
    rows = await req.app[appkeys.DB].read(lambda c: incidents.flips(c, m.id, req.query["limit"]))
    return {"flips": [views.flip_view(f) for f in rows]}


# -- incidents ----------------------------------------------------------------------------------


@API.route(
    "GET", "/incidents", summary="Incidents, newest first (filter by state, kind, monitor, time)",
    scope="read", tag="incidents",
    query=(
        Param("state", {"type": "string", "enum": ["open", "acknowledged", "resolved"]}),
        Param("kind", {"type": "string", "enum": ["FAIL", "MISSED", "LATE", "TIMEOUT", "ANOMALY", "OUTPUT"]}),
        Param("monitor", {"type": "string", "maxLength": 36}, "monitor uuid"),
        Param("since", {"type": "string", "maxLength": 40}, "opened at or after (RFC 3339)"),
        Param("until", {"type": "string", "maxLength": 40}, "opened before (RFC 3339)"),
        LIMIT,
    ),
    response=obj(incidents={"type": "array", "items": INCIDENT}),
)  # fmt: skip
async def list_incidents(req: ApiRequest) -> Any:
    import datetime as dt

    times: dict[str, dt.datetime | None] = {}
    for name in ("since", "until"):
        times[name] = None
        if req.query[name]:
            try:
                when = dt.datetime.fromisoformat(req.query[name].replace("Z", "+00:00"))
                if when.tzinfo is None:
                    raise ValueError
            except ValueError:
                raise ApiError(
                    400, f"query.{name}: must be an RFC 3339 time with a zone", field=name
                ) from None
            times[name] = when
    monitor = req.query["monitor"].lower() if req.query["monitor"] else None

    def query(conn: sqlite3.Connection) -> list[Any]:
        found = incidents.search(
            conn, req.caller.org.id, state=req.query["state"], kind=req.query["kind"],
            monitor_uuid=monitor, since=times["since"], until=times["until"],
            limit=req.query["limit"],
        )  # fmt: skip
        return [views.incident_view(inc, monitors.get(conn, inc.monitor_id)) for inc in found]

    return {"incidents": await req.app[appkeys.DB].read(query)}


async def _incident(req: ApiRequest) -> incidents.Incident:
    incident_id = req.path_int("id", "incident")
    inc = await req.app[appkeys.DB].read(lambda c: incidents.get(c, incident_id))
    if inc is None or inc.org_id != req.caller.org.id:
        raise not_found("incident")
    return inc


async def _incident_view(req: ApiRequest, incident_id: int) -> dict[str, Any]:
    def read(conn: sqlite3.Connection) -> dict[str, Any]:
        inc = incidents.get(conn, incident_id)
        assert inc is not None
        view = views.incident_view(inc, monitors.get(conn, inc.monitor_id))
        view["comments"] = [
            {"id": c.id, "author": c.author, "body": c.body, "at": views.iso(c.at)}
            for c in incidents.comments(conn, incident_id)
        ]
        return view

    return await req.app[appkeys.DB].read(read)


@API.route("GET", "/incidents/{id}", summary="Get an incident with its comments", scope="read",
           tag="incidents", response=INCIDENT)  # fmt: skip
async def get_incident(req: ApiRequest) -> Any:
    inc = await _incident(req)
    return await _incident_view(req, inc.id)


def _incident_action(action: str) -> Any:
    async def handler(req: ApiRequest) -> Any:
        inc = await _incident(req)
        now = req.app[appkeys.CLOCK].now()

        def write(conn: sqlite3.Connection) -> None:
            try:
                if action == "ack":
                    incident_actions.acknowledge(conn, inc.id, now)
                else:
                    incident_actions.resolve(conn, inc.id, now, req.caller.actor.label)
            except incident_actions.IncidentError as exc:
                raise ApiError(409, str(exc)) from None
            after = {"state": "acknowledged" if action == "ack" else "resolved"}
            audit.record(conn, org_id=inc.org_id, actor=req.caller.actor, action=f"incident.{action}",
                         target_kind="incident", target_id=inc.id, before={"state": inc.state},
                         after=after, now=now)  # fmt: skip

        await req.app[appkeys.DB].write(write)
        req.app[appkeys.DISPATCHER].poke()
        return await _incident_view(req, inc.id)

    handler.__name__ = f"{action}_incident"
    return handler


API.route("POST", "/incidents/{id}/ack", summary="Acknowledge an open incident (stops re-notifying)",
          scope="write", tag="incidents", response=INCIDENT)(_incident_action("ack"))  # fmt: skip
API.route("POST", "/incidents/{id}/resolve", summary="Resolve an incident by hand", scope="write",
          tag="incidents", response=INCIDENT)(_incident_action("resolve"))  # fmt: skip


@API.route(
    "POST", "/incidents/{id}/comments", summary="Add a comment to an incident's timeline",
    scope="write", tag="incidents",
    body=obj(("body",), body={"type": "string", "minLength": 1, "maxLength": 10000}),
    response=INCIDENT, status=201,
)  # fmt: skip
async def comment(req: ApiRequest) -> Any:
    inc = await _incident(req)
    now = req.app[appkeys.CLOCK].now()

    def write(conn: sqlite3.Connection) -> None:
        incidents.add_comment(conn, inc.id, req.caller.actor.label, req.body["body"], now)
        audit.record(conn, org_id=inc.org_id, actor=req.caller.actor, action="incident.comment",
                     target_kind="incident", target_id=inc.id, after={"body": req.body["body"]},
                     now=now)  # fmt: skip

    await req.app[appkeys.DB].write(write)
    return await _incident_view(req, inc.id)


@API.route(
    "GET", "/tags", summary="Tags in use with how many monitors carry each", scope="read",
    tag="monitors",
    response=obj(tags={"type": "array", "items": obj(tag=STR, monitors=INT)}),
)  # fmt: skip
async def list_tags(req: ApiRequest) -> Any:
    org_id = req.caller.org.id
    rows = await req.app[appkeys.DB].read(lambda c: monitors.list_for_org(c, org_id))
    counts: dict[str, int] = {}
    for m in rows:
        for t in m.tags.split():
            counts[t] = counts.get(t, 0) + 1
    return {"tags": [{"tag": t, "monitors": n} for t, n in sorted(counts.items())]}
