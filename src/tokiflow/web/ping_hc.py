"""The Healthchecks-compatible ping front door: /ping/<uuid>[/start|/fail|/log|/<0-255>] and
/ping/<ping-key>/<slug>[...], answering byte-for-byte as Healthchecks does."""

from __future__ import annotations

import logging
import math
import re
import sqlite3
import uuid as uuidlib

from aiohttp import web

from tokiflow.engine.pings import PingEvent, ingest
from tokiflow.storage.outputs import OutputError
from tokiflow.storage.writer import WriteFailed, WriterClosed
from tokiflow.web import appkeys, operations, ping_cronitor

log = logging.getLogger(__name__)

UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
PING_KEY_RE = re.compile(r"^[A-Za-z0-9_-]{22}$")
SLUG_RE = re.compile(r"^[a-z0-9_-]+$")
ACTIONS = {"start": "start", "fail": "fail", "log": "log"}
USER_AGENT_LIMIT = 200

_REPLIES = {
    "ok": (200, "OK"),
    "created": (201, "Created"),
    "not_found": (404, "not found"),
    "ambiguous": (409, "ambiguous slug"),
    "limit": (403, "monitor limit reached: the plan in force allows no more monitors"),
}


def reply(request: web.Request, status: int, text: str) -> web.Response:
    resp = web.Response(status=status, text=text)
    resp.headers["Access-Control-Allow-Origin"] = "*"
    resp.headers["Cache-Control"] = "max-age=0, no-cache, no-store, must-revalidate, private"
    resp.headers["Ping-Body-Limit"] = str(request.app[appkeys.SETTINGS].ping_body_limit)
    return resp


class BadPing(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


def parse_path(tail: str) -> tuple[str | None, str | None, str | None, str, int | None]:
    """(uuid, ping_key, slug, kind, exit status) from the part after /ping/."""
    parts = tail.split("/")
    if parts and parts[-1] == "":
        parts.pop()  # one trailing slash is allowed
    if not parts or len(parts) > 3 or any(p == "" for p in parts):
        raise BadPing(404, "not found")
    if UUID_RE.match(parts[0]):
        ident: tuple[str | None, str | None, str | None] = (parts[0].lower(), None, None)
        rest = parts[1:]
    elif len(parts) >= 2 and PING_KEY_RE.match(parts[0]) and SLUG_RE.match(parts[1]):
        ident = (None, parts[0], parts[1])
        rest = parts[2:]
    else:
        raise BadPing(404, "not found")
    if len(rest) > 1:
        raise BadPing(404, "not found")
    kind, exit_status = "success", None
    if rest:
        action = rest[0]
        if action in ACTIONS:
            kind = ACTIONS[action]
        elif action.isdigit() and action.isascii():
            exit_status = int(action)
            if exit_status > 255:
                raise BadPing(400, "invalid url format")
            kind = "success" if exit_status == 0 else "fail"
        else:
            raise BadPing(404, "not found")
    return ident[0], ident[1], ident[2], kind, exit_status


def client_address(request: web.Request) -> tuple[str, str]:
    """(remote address, scheme), believing X-Forwarded-* only from a trusted proxy."""
    remote = request.remote or ""
    scheme = request.scheme
    if remote and remote in request.app[appkeys.SETTINGS].trusted_proxies:
        forwarded = request.headers.get("X-Forwarded-For", "")
        first = forwarded.split(",")[0].strip()
        if first:
            remote = first
        proto = request.headers.get("X-Forwarded-Proto", "").strip().lower()
        if proto in ("http", "https"):
            scheme = proto
    return remote, scheme


async def read_body(request: web.Request, limit: int) -> tuple[bytes, int]:
    """Up to `limit` bytes of the body (the rest is never read), and the declared size."""
    if not request.can_read_body or limit <= 0:
        return b"", request.content_length or 0
    chunks: list[bytes] = []
    got = 0
    while got < limit:
        chunk = await request.content.read(limit - got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    body = b"".join(chunks)
    return body, max(request.content_length or 0, len(body))


async def ping(request: web.Request) -> web.Response:
    # /ping/<key>/<monitor>?state=... is the Cronitor CLI's form of a telemetry ping.
    target = ping_cronitor.cronitor_target(request)
    if target is not None:
        return await ping_cronitor.handle(request, *target)
    app = request.app
    settings = app[appkeys.SETTINGS]
    remote, scheme = client_address(request)
    wait = app[appkeys.PING_LIMITER].check(remote)
    if wait > 0:
        resp = reply(request, 429, "rate limited")
        resp.headers["Retry-After"] = str(max(1, math.ceil(wait)))
        return resp
    try:
        uuid, ping_key, slug, kind, exit_status = parse_path(request.match_info["tail"])
        rid = request.query.get("rid")
        if rid is not None:
            try:
                rid = str(uuidlib.UUID(rid))
            except ValueError:
                raise BadPing(400, "invalid uuid format") from None
    except BadPing as bad:
        return reply(request, bad.status, bad.text)
    body, size = await read_body(request, settings.ping_body_limit)
    ev = PingEvent(
        kind=kind,
        received_at=app[appkeys.CLOCK].now(),
        uuid=uuid,
        ping_key=ping_key,
        slug=slug,
        create=slug is not None and request.query.get("create") == "1",
        exit_status=exit_status,
        rid=rid,
        method=request.method,
        scheme=scheme,
        remote_addr=remote,
        user_agent=request.headers.get("User-Agent", "")[:USER_AGENT_LIMIT],
        body=body,
        body_size=size,
    )
    try:
        outcome = await ingest(
            app[appkeys.DB], app[appkeys.SCHEDULER], ev, pings_kept=settings.pings_kept,
            stats_window=settings.stats_window, outputs=app[appkeys.OUTPUTS],
            limits=operations.plan_limits(app),
        )  # fmt: skip
    except (WriteFailed, WriterClosed, sqlite3.Error, OutputError) as exc:
        log.error("ping not stored: %s", exc)
        resp = reply(request, 503, "storage unavailable, try again")
        resp.headers["Retry-After"] = "5"
        return resp
    if outcome.alerts_queued:
        app[appkeys.DISPATCHER].poke()
    status, text = _REPLIES[outcome.result]
    return reply(request, status, text)


def add_routes(app: web.Application) -> None:
    app.router.add_route("*", "/ping/{tail:.*}", ping)
