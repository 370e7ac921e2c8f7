"""The Uptime Kuma push front door: `/api/push/<token>?status=up|down&msg=&ping=`, any method,
answering `{"ok":true}` as Kuma does (`{"ok":false,"msg":...}` with 404 for an unknown token,
400 for a bad `ping`).

The token is a monitor's uuid without dashes, or, for a monitor imported from Kuma, its old push
token (the monitor's uuid is made from it: see tokiflow.importers.uptime_kuma). `status=up` (the
default) is a success, anything else a failure; `msg` is stored as the body and `ping` (the
client's figure in milliseconds, 0 to 24 hours, as Kuma accepts) with it.
"""

from __future__ import annotations

import math
import sqlite3

from aiohttp import web

from tokiflow.importers.uptime_kuma import candidate_uuids
from tokiflow.storage import monitors
from tokiflow.web import appkeys
from tokiflow.web.ping_compat import (
    StorageUnavailable,
    client_body,
    deliver,
    make_event,
    rate_limited,
    storage_error,
)

PROTOCOL = "kuma"
MAX_PING_MS = 86_400_000
NOT_FOUND = "Monitor not found or not active."


def _answer(ok: bool, status: int = 200, msg: str | None = None) -> web.Response:
    body: dict[str, object] = {"ok": ok}
    if msg is not None:
        body["msg"] = msg
    resp = web.json_response(body, status=status)
    resp.headers["Access-Control-Allow-Origin"] = "*"
    return resp


def parse_ping(value: str | None) -> float | None:
    """Kuma's `ping` (milliseconds) or None; ValueError with Kuma's reason when invalid."""
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"Invalid ping value: '{value[:50]}' is not a valid number") from None
    if math.isnan(number):
        raise ValueError(f"Invalid ping value: '{value[:50]}' is not a valid number")
    if number < 0:
        raise ValueError(f"Invalid ping value: {value[:50]}ms cannot be negative")
    if number > MAX_PING_MS:
        raise ValueError(f"Ping value {value[:50]}ms exceeds maximum allowed ({MAX_PING_MS}ms)")
    return number


async def push(request: web.Request) -> web.Response:
    wait = rate_limited(request)
    if wait:
        resp = _answer(False, 429, "Too many requests, try again later.")
        resp.headers["Retry-After"] = str(wait)
        return resp
    try:
        ping_ms = parse_ping(request.query.get("ping"))
    except ValueError as exc:
        return _answer(False, 400, str(exc))
    candidates = candidate_uuids(request.match_info["token"])

    def find(conn: sqlite3.Connection) -> str | None:
        for uuid in candidates:
            if monitors.by_uuid(conn, uuid) is not None:
                return uuid
        return None

    uuid = await request.app[appkeys.DB].read(find)
    if uuid is None:
        return _answer(False, 404, NOT_FOUND)
    status = request.query.get("status") or "up"
    limit = request.app[appkeys.SETTINGS].ping_body_limit
    body, size = client_body(request.query.get("msg") or None, {"ping_ms": ping_ms}, limit)
    ev = make_event(
        request, PROTOCOL, kind="success" if status == "up" else "fail", uuid=uuid, body=body,
        body_size=size, duration=None if ping_ms is None else ping_ms / 1000,
    )  # fmt: skip
    try:
        outcome = await deliver(request, ev)
    except StorageUnavailable:
        return storage_error({"ok": False, "msg": "storage unavailable, try again"}, as_json=True)
    if outcome.monitor is None:  # deleted since it was looked up
        return _answer(False, 404, NOT_FOUND)
    return _answer(True)


def add_routes(app: web.Application) -> None:
    app.router.add_route("*", "/api/push/{token}", push)
