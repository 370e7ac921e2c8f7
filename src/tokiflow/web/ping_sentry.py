"""The Sentry Crons front door: `POST /api/<project>/envelope/` carrying `check_in` items (as
sentry-sdk and sentry-cli send them, gzip or plain), and the HTTP check-in form
`/api/<project>/cron/<monitor-slug>/<key>/?status=in_progress|ok|error`.

An organisation's DSN is `<scheme>://<ping key>@<host>/<org id>` (`tokiflow orgs dsn`): the
project is the organisation's number and the public key its ping key. Statuses map to start,
success and fail; `check_in_id` pairs a run's start and end; a `monitor_config` creates the
monitor `monitor_slug` or changes what differs (schedule, time zone, margin as grace, max
runtime, failure threshold as failure tolerance).
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from tokiflow.engine import audit, views
from tokiflow.engine.monitors import MonitorError, MonitorLimitError
from tokiflow.importers import Upserted, slug_for_key, upsert
from tokiflow.storage import orgs
from tokiflow.storage.orgs import Org
from tokiflow.web import appkeys, operations
from tokiflow.web.ping_compat import (
    StorageUnavailable,
    client_body,
    deliver,
    make_event,
    rate_limited,
    run_id,
    storage_error,
)

log = logging.getLogger(__name__)

PROTOCOL = "sentry"
STATUSES = {"in_progress": "start", "ok": "success", "error": "fail"}
SLUG_LENGTH = 50  # Sentry cuts monitor slugs to this many characters
MAX_ITEMS = 100
INTERVAL_UNITS = {
    "minute": 60, "hour": 3600, "day": 86400, "week": 604800, "month": 30 * 86400,
    "year": 365 * 86400,
}  # fmt: skip
# What a monitor created by a check-in gets when its config leaves these out (Sentry's defaults).
CREATE_DEFAULTS = {"grace": 60, "max_runtime": 30 * 60}


AUDIT_ACTIONS = {"created": "monitor.create", "updated": "monitor.update"}


class BadCheckIn(ValueError):
    """A check-in that cannot be taken; str() says why."""


def dsn(public_url: str, org: Org) -> str:
    """The Sentry DSN that points an SDK at this server for `org`."""
    parts = urlsplit(public_url)
    return f"{parts.scheme}://{org.ping_key}@{parts.netloc}{parts.path.rstrip('/')}/{org.id}"


def parse_envelope(data: bytes) -> tuple[dict[str, Any], list[tuple[dict[str, Any], bytes]]]:
    """(envelope headers, [(item headers, payload)]) from Sentry's envelope format: a JSON
    header line, then per item a JSON header line and a payload of `length` bytes (or up to the
    end of the line when the header has no length)."""
    pos = 0

    def line() -> bytes:
        nonlocal pos
        end = data.find(b"\n", pos)
        end = len(data) if end < 0 else end
        chunk, pos = data[pos:end], end + 1
        return chunk

    def header(raw: bytes, what: str) -> dict[str, Any]:
        try:
            value = json.loads(raw)
        except ValueError:
            raise BadCheckIn(f"invalid envelope: the {what} is not JSON") from None
        if not isinstance(value, dict):
            raise BadCheckIn(f"invalid envelope: the {what} is not an object")
        return value

    headers = header(line(), "envelope header")
    items: list[tuple[dict[str, Any], bytes]] = []
    while pos < len(data):
        raw = line()
        if not raw.strip():
            continue
        item = header(raw, "item header")
        length = item.get("length")
        if length is None:
            payload = line()
        elif isinstance(length, int) and 0 <= length <= len(data) - pos:
            payload = data[pos : pos + length]
            pos += length
            if data[pos : pos + 1] == b"\n":
                pos += 1
        else:
            raise BadCheckIn("invalid envelope: an item's length does not fit the body")
        items.append((item, payload))
        if len(items) > MAX_ITEMS:
            raise BadCheckIn(f"invalid envelope: more than {MAX_ITEMS} items")
    return headers, items


def presented_key(request: web.Request, envelope_headers: dict[str, Any] | None = None) -> str:
    """The public key from X-Sentry-Auth (or `Authorization: Sentry ...`), `?sentry_key=`, or
    the envelope header's DSN; "" if none."""
    for name in ("X-Sentry-Auth", "Authorization"):
        value = request.headers.get(name, "")
        if value[:7].lower() == "sentry ":
            for part in value[7:].split(","):
                k, _, v = part.strip().partition("=")
                if k.strip() == "sentry_key" and v.strip():
                    return v.strip()
    if request.query.get("sentry_key"):
        return request.query["sentry_key"]
    dsn_text = (envelope_headers or {}).get("dsn")
    if isinstance(dsn_text, str):
        return urlsplit(dsn_text).username or ""
    return ""


def config_args(config: Any) -> dict[str, Any]:
    """build_spec arguments from a `monitor_config` (only the fields it gives)."""
    if not isinstance(config, dict):
        raise MonitorError("monitor_config", "must be an object")
    args: dict[str, Any] = {}
    schedule = config.get("schedule")
    if schedule is not None:
        args.update(_schedule_args(schedule))
    if config.get("timezone"):
        args["tz"] = str(config["timezone"])
    for name, target in (("checkin_margin", "grace"), ("max_runtime", "max_runtime")):
        minutes = config.get(name)
        if minutes is not None:
            if not isinstance(minutes, int | float) or isinstance(minutes, bool) or minutes < 0:
                raise MonitorError(name, "must be a number of minutes")
            args[target] = max(round(minutes * 60), 1)
    threshold = config.get("failure_issue_threshold")
    if threshold is not None:
        if not isinstance(threshold, int) or isinstance(threshold, bool) or threshold < 1:
            raise MonitorError("failure_issue_threshold", "must be a whole number from 1")
        args["failure_tolerance"] = min(threshold - 1, 100)
    return args


def _schedule_args(schedule: Any) -> dict[str, Any]:
    kind = schedule.get("type") if isinstance(schedule, dict) else None
    if kind == "crontab" and isinstance(schedule.get("value"), str):
        return {"cron": schedule["value"]}
    if kind == "interval":
        value, unit = schedule.get("value"), schedule.get("unit")
        if isinstance(value, int | float) and value > 0 and unit in INTERVAL_UNITS:
            return {"period": round(value * INTERVAL_UNITS[unit])}
        raise MonitorError(
            "schedule", "an interval needs a positive value and a unit (minute to year)"
        )
    raise MonitorError("schedule", "use {type: crontab, value} or {type: interval, value, unit}")


@dataclass(frozen=True)
class CheckIn:
    name: str  # the monitor slug as sent
    slug: str  # Tokiflow's slug for it
    kind: str
    rid: str | None
    duration: float | None
    config: Any
    extras: dict[str, Any] = field(default_factory=dict)


def parse_check_in(payload: dict[str, Any]) -> CheckIn:
    """A check-in item's payload, checked; BadCheckIn says what is wrong."""
    name = payload.get("monitor_slug")
    if not isinstance(name, str) or not name.strip() or not any(c.isalnum() for c in name):
        raise BadCheckIn("monitor_slug is missing or empty")
    name = name.strip()[:SLUG_LENGTH]
    status = payload.get("status")
    if status not in STATUSES:
        raise BadCheckIn(f"status must be in_progress, ok or error, not {status!r:.30}")
    duration = payload.get("duration")
    if duration is not None and (
        not isinstance(duration, int | float) or not math.isfinite(duration) or duration < 0
    ):
        raise BadCheckIn("duration must be a number of seconds")
    check_in_id = payload.get("check_in_id")
    extras = {"environment": payload.get("environment"), "release": payload.get("release"),
              "duration": duration}  # fmt: skip
    return CheckIn(
        name=name, slug=slug_for_key(name), kind=STATUSES[status],
        rid=run_id(check_in_id if isinstance(check_in_id, str) else None),
        duration=None if duration is None else float(duration),
        config=payload.get("monitor_config"), extras=extras,
    )  # fmt: skip


async def authorised_org(request: web.Request, project: str, key: str) -> Org | web.Response:
    """The organisation a project number and public key name, or the error to answer."""
    if not key:
        return web.json_response({"detail": "missing authorization information"}, status=401)
    org = await request.app[appkeys.DB].read(lambda conn: orgs.by_ping_key(conn, key))
    if org is None or str(org.id) != project:
        return web.json_response({"detail": "invalid DSN: unknown key or project"}, status=403)
    return org


async def _upsert(request: web.Request, org: Org, ci: CheckIn) -> Upserted:
    app = request.app
    now, scheduler = app[appkeys.CLOCK].now(), app[appkeys.SCHEDULER]
    args = config_args(ci.config)
    defaults = {**CREATE_DEFAULTS, "name": ci.name}
    limits = operations.plan_limits(app)

    ip, ua = request.remote or "", request.headers.get("User-Agent", "")[:200]
    actor = audit.Actor("system", None, "Sentry check-in with a monitor_config", ip, ua)

    def write(conn: sqlite3.Connection) -> Upserted:
        done = upsert(
            conn, org.id, ci.slug, args, now, scheduler.started_at, defaults=defaults,
            limits=limits,
        )  # fmt: skip
        if done.action != "unchanged":
            before = None if done.before is None else views.monitor_view(done.before, None, "")
            audit.record(
                conn, org_id=org.id, actor=actor, action=AUDIT_ACTIONS[done.action],
                target_kind="monitor", target_id=done.monitor.uuid, before=before,
                after=views.monitor_view(done.monitor, None, ""), now=now,
            )  # fmt: skip
        return done

    def after(done: Upserted) -> None:
        scheduler.set_deadline(done.monitor.id, done.monitor.next_check_at)

    return await app[appkeys.DB].write(write, after_commit=after)


async def record(request: web.Request, org: Org, ci: CheckIn) -> str:
    """Store one check-in (upserting its monitor first when it carries a config); the
    engine's result: ok, created, not_found or ambiguous. MonitorError for a bad config."""
    target: dict[str, Any] = {"ping_key": org.ping_key, "slug": ci.slug}
    if ci.config is not None:
        done = await _upsert(request, org, ci)
        target = {"uuid": done.monitor.uuid}
    limit = request.app[appkeys.SETTINGS].ping_body_limit
    body, size = client_body(None, ci.extras, limit)
    ev = make_event(
        request, PROTOCOL, kind=ci.kind, rid=ci.rid, body=body, body_size=size,
        duration=ci.duration, **target,
    )  # fmt: skip
    return (await deliver(request, ev)).result


def _too_many(wait: int) -> web.Response:
    resp = web.json_response({"detail": "too many requests"}, status=429)
    resp.headers["Retry-After"] = str(wait)
    return resp


async def envelope(request: web.Request) -> web.Response:
    """An envelope: every check_in item is taken; other items (events, client reports) are
    accepted and dropped, so that an SDK with a full DSN does not log errors."""
    wait = rate_limited(request)
    if wait:
        return _too_many(wait)
    try:
        headers, items = parse_envelope(await request.read())
    except BadCheckIn as exc:
        return web.json_response({"detail": str(exc)}, status=400)
    except web.RequestPayloadError:
        detail = "the body cannot be decoded (Content-Encoding: gzip, deflate, br or none)"
        return web.json_response({"detail": detail}, status=400)
    org = await authorised_org(
        request, request.match_info["project"], presented_key(request, headers)
    )
    if isinstance(org, web.Response):
        return org
    for item_headers, payload in items:
        if item_headers.get("type") != "check_in":
            continue
        try:
            doc = json.loads(payload)
            ci = parse_check_in(doc if isinstance(doc, dict) else {})
            result = await record(request, org, ci)
        except (ValueError, MonitorError) as exc:  # BadCheckIn and bad JSON are ValueErrors
            log.warning("sentry check-in dropped: %s", exc)
            continue
        except StorageUnavailable:
            return storage_error({"detail": "storage unavailable, try again"}, as_json=True)
        if result == "not_found":
            log.info("sentry check-in for unknown monitor '%s' dropped", ci.name)
    event_id = headers.get("event_id")
    return web.json_response({"id": event_id} if isinstance(event_id, str) else {})


async def _form_payload(request: web.Request) -> dict[str, Any]:
    if request.content_type == "application/json":
        try:
            doc = await request.json()
        except ValueError:
            raise BadCheckIn("the body is not JSON") from None
        if not isinstance(doc, dict):
            raise BadCheckIn("the body must be a JSON object")
        return doc
    q = request.query
    duration: float | str | None = q.get("duration")
    try:
        duration = None if duration in (None, "") else float(duration)
    except ValueError:
        raise BadCheckIn("duration must be a number of seconds") from None
    return {
        "status": q.get("status"), "check_in_id": q.get("check_in_id"),
        "environment": q.get("environment"), "duration": duration,
    }  # fmt: skip


async def cron_check_in(request: web.Request) -> web.Response:
    """The HTTP check-in form; 202 with no body, as Sentry answers."""
    wait = rate_limited(request)
    if wait:
        return _too_many(wait)
    key = request.match_info.get("key") or presented_key(request)
    org = await authorised_org(request, request.match_info["project"], key)
    if isinstance(org, web.Response):
        return org
    try:
        payload = await _form_payload(request)
        ci = parse_check_in({**payload, "monitor_slug": request.match_info["slug"]})
        result = await record(request, org, ci)
    except MonitorLimitError as exc:
        return web.json_response({"detail": exc.message}, status=403)
    except (BadCheckIn, MonitorError) as exc:
        return web.json_response({"detail": str(exc)}, status=400)
    except StorageUnavailable:
        return storage_error({"detail": "storage unavailable, try again"}, as_json=True)
    if result == "not_found":
        detail = f"no monitor '{ci.name}': create it, or send a monitor_config to create it"
        return web.json_response({"detail": detail}, status=404)
    if result == "ambiguous":
        return web.json_response({"detail": f"more than one monitor '{ci.slug}'"}, status=409)
    return web.Response(status=202)


def add_routes(app: web.Application) -> None:
    project = "/api/{project:\\d+}"
    for path in ("/envelope/", "/envelope"):
        app.router.add_post(project + path, envelope)
    for path in ("/cron/{slug}/{key}/", "/cron/{slug}/{key}", "/cron/{slug}/", "/cron/{slug}"):
        app.router.add_route("GET", project + path, cron_check_in)
        app.router.add_route("POST", project + path, cron_check_in)
