"""The Cronitor telemetry front door: `/p/<key>/<monitor>` (and `/ping/<key>/<monitor>` when a
`state` parameter is present, dispatched here by the Healthchecks front door), any method.

`<key>` is an organisation API key (`tfk_...`) or the organisation's ping key; a monitor key not
seen before creates the monitor (slug = the key), as Cronitor does, unless the key is read-only.
Parameters: `state=run|complete|fail|ok|tick` (none: a heartbeat), `series` (pairs a run with its
end; any text, mapped to a stable run id), `message` or `msg` (the body), `metric=name:value`
(repeatable), `duration`, `status_code`, `env`, `host`, `stamp`.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from multidict import MultiDict, MultiMapping

from tokiflow.engine import auth
from tokiflow.importers import slug_for_key
from tokiflow.storage import accounts, orgs
from tokiflow.web import appkeys
from tokiflow.web.ping_compat import (
    StorageUnavailable,
    client_body,
    deliver,
    make_event,
    rate_limited,
    run_id,
)

PROTOCOL = "cronitor"
STATES = {"run": "start", "complete": "success", "fail": "fail", "ok": "success", "tick": "success"}
MESSAGE_LIMIT = 2000  # characters, as Cronitor keeps
TOUCH_KEY_EVERY = dt.timedelta(minutes=1)
_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_REPLIES = {
    "ok": (200, "ok"),
    "created": (200, "ok"),
    "not_found": (404, "not found"),
    "ambiguous": (409, "ambiguous slug"),
    "limit": (403, "monitor limit reached: the plan in force allows no more monitors"),
}


class BadTelemetry(Exception):
    def __init__(self, text: str, status: int = 400) -> None:
        super().__init__(text)
        self.text = text
        self.status = status


@dataclass(frozen=True)
class Telemetry:
    """One telemetry event's parameters, checked."""

    kind: str
    rid: str | None = None
    exit_status: int | None = None
    message: str | None = None
    duration: float | None = None
    extras: dict[str, Any] = field(default_factory=dict)


def reply(request: web.Request, status: int, text: str) -> web.Response:
    resp = web.Response(status=status, text=text)
    resp.headers["Access-Control-Allow-Origin"] = "*"
    resp.headers["Cache-Control"] = "max-age=0, no-cache, no-store, must-revalidate, private"
    return resp


def _number(name: str, value: str | None, *, integer: bool = False) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(int(value)) if integer else float(value)
    except ValueError:
        raise BadTelemetry(f"invalid {name} '{value[:50]}': not a number") from None
    if not math.isfinite(number) or (not integer and number < 0):
        raise BadTelemetry(f"invalid {name} '{value[:50]}'")
    return number


def _metrics(values: list[str]) -> dict[str, float | int]:
    metrics: dict[str, float | int] = {}
    for raw in values:
        name, _, number = raw.rpartition(":")
        value = _number("metric", number) if name else None
        if not name or value is None:
            raise BadTelemetry(f"invalid metric '{raw[:50]}': use name:number, e.g. count:42")
        metrics[name[:50]] = int(value) if value.is_integer() else value
    return metrics


def parse(params: MultiMapping[str]) -> Telemetry:
    """Telemetry from the query (and form) parameters; BadTelemetry names what is wrong."""
    state = (params.get("state") or "tick").lower()
    if state not in STATES:
        raise BadTelemetry(f"invalid state '{state[:20]}': use run, complete, fail, ok or tick")
    kind = STATES[state]
    metrics = _metrics(list(params.getall("metric", [])))
    duration = _number("duration", params.get("duration"))
    if duration is None and "duration" in metrics:
        duration = float(metrics["duration"])
    code = _number("status_code", params.get("status_code"), integer=True)
    status_code = None if code is None else int(code)
    exit_status = None
    if status_code is not None:
        if kind == "fail" and 1 <= status_code <= 255:
            exit_status = status_code
        elif kind == "success" and status_code == 0:
            exit_status = 0
    message = params.get("message") or params.get("msg") or None
    extras = {
        "metrics": metrics,
        "duration": duration,
        "status_code": status_code,
        "env": params.get("env"),
        "host": params.get("host") or params.get("hostname"),
        "stamp": _number("stamp", params.get("stamp")),
    }
    return Telemetry(
        kind=kind, rid=run_id(params.get("series")), exit_status=exit_status,
        message=message[:MESSAGE_LIMIT] if message else None, duration=duration, extras=extras,
    )  # fmt: skip


def cronitor_target(request: web.Request) -> tuple[str, str] | None:
    """(key, monitor) when a `/ping/{tail}` request is Cronitor telemetry: a `state` parameter
    and exactly two path parts, the first not a uuid (Healthchecks URLs never carry `state`)."""
    if "state" not in request.query:
        return None
    parts = request.match_info.get("tail", "").rstrip("/").split("/")
    if len(parts) != 2 or not all(parts) or _UUID_RE.match(parts[0]):
        return None
    return parts[0], parts[1]


async def _params(request: web.Request) -> MultiMapping[str]:
    if request.method == "POST" and request.content_type == "application/x-www-form-urlencoded":
        merged: MultiDict[str] = MultiDict(request.query)
        form = await request.post()
        merged.extend((k, v) for k, v in form.items() if isinstance(v, str))
        return merged
    return request.query


async def _ping_key(request: web.Request, key: str) -> tuple[str, bool] | None:
    """(the organisation's ping key, may create monitors) for an API key or a ping key."""
    if not key.startswith("tfk_"):
        return key, True  # a ping key: the engine finds (or does not find) its organisation
    db, now = request.app[appkeys.DB], request.app[appkeys.CLOCK].now()

    def find(conn: Any) -> tuple[accounts.ApiKey, orgs.Org | None]:
        row = auth.check_api_key(conn, key, now)
        return row, orgs.get(conn, row.org_id)

    try:
        row, org = await db.read(find)
    except auth.AuthError:
        return None
    if org is None:
        return None
    if row.last_used_at is None or now - row.last_used_at >= TOUCH_KEY_EVERY:
        await db.write(lambda conn: accounts.touch_key(conn, row.id, now))
    return org.ping_key, not row.read_only


async def handle(request: web.Request, key: str, monitor_key: str) -> web.Response:
    """Take one Cronitor telemetry event for `monitor_key` under `key`."""
    wait = rate_limited(request)
    if wait:
        resp = reply(request, 429, "rate limited")
        resp.headers["Retry-After"] = str(wait)
        return resp
    try:
        telemetry = parse(await _params(request))
        slug = slug_for_key(monitor_key)
        if not any(c.isalnum() for c in monitor_key):
            raise BadTelemetry(f"invalid monitor key '{monitor_key[:50]}'")
    except BadTelemetry as bad:
        return reply(request, bad.status, bad.text)
    target = await _ping_key(request, key)
    if target is None:
        return reply(request, 401, "invalid API key")
    limit = request.app[appkeys.SETTINGS].ping_body_limit
    body, size = client_body(telemetry.message, telemetry.extras, limit)
    ev = make_event(
        request, PROTOCOL, kind=telemetry.kind, ping_key=target[0], slug=slug, create=target[1],
        exit_status=telemetry.exit_status, rid=telemetry.rid, body=body, body_size=size,
        duration=telemetry.duration, metrics=telemetry.extras["metrics"],
    )  # fmt: skip
    try:
        outcome = await deliver(request, ev)
    except StorageUnavailable:
        resp = reply(request, 503, "storage unavailable, try again")
        resp.headers["Retry-After"] = "5"
        return resp
    return reply(request, *_REPLIES[outcome.result])


async def telemetry_ping(request: web.Request) -> web.Response:
    return await handle(request, request.match_info["key"], request.match_info["monitor"])


def add_routes(app: web.Application) -> None:
    app.router.add_route("*", "/p/{key}/{monitor}", telemetry_ping)
