"""What the compatibility front doors (Cronitor, Sentry Crons, Uptime Kuma) share: building a
`PingEvent`, the ping rate limit, storing the ping (503 on a storage error) and the body that
keeps the client's extra fields."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import sqlite3
import uuid as uuidlib
from typing import Any

from aiohttp import web

from tokiflow.engine.pings import PingEvent, PingOutcome, ingest
from tokiflow.storage.outputs import OutputError
from tokiflow.storage.writer import WriteFailed, WriterClosed
from tokiflow.web import appkeys, operations

log = logging.getLogger(__name__)

# Fields a client may measure itself (a duration, metrics): handed on to the engine once
# PingEvent has them, and kept in the ping body meanwhile (see client_body).
_EVENT_FIELDS = frozenset(f.name for f in dataclasses.fields(PingEvent))
# Namespace of the run ids made from non-UUID run identifiers (Cronitor series and the like).
RUN_ID_NAMESPACE = uuidlib.UUID("451fda50-ebfd-47f5-8572-0979047e3174")
RETRY_AFTER_STORAGE = "5"
USER_AGENT_LIMIT = 200


class StorageUnavailable(Exception):
    """The ping could not be stored; the caller answers 503 in its protocol's words."""


def client_address(request: web.Request) -> tuple[str, str]:
    """(remote address, scheme), believing X-Forwarded-* only from a trusted proxy: the rule of
    the Healthchecks front door, restated because that module dispatches to ping_cronitor and
    so must not be imported from here."""
    remote = request.remote or ""
    scheme = request.scheme
    if remote and remote in request.app[appkeys.SETTINGS].trusted_proxies:
        first = request.headers.get("X-Forwarded-For", "").split(",")[0].strip()
        if first:
            remote = first
        proto = request.headers.get("X-Forwarded-Proto", "").strip().lower()
        if proto in ("http", "https"):
            scheme = proto
    return remote, scheme


def rate_limited(request: web.Request) -> int:
    """0 if the client may ping now (and is counted), else whole seconds to wait."""
    remote, _ = client_address(request)
    wait = request.app[appkeys.PING_LIMITER].check(remote)
    return max(1, math.ceil(wait)) if wait > 0 else 0


def run_id(value: str | None) -> str | None:
    """A run id from a client's identifier: a UUID as is (any spelling), anything else mapped
    to a stable UUID, so that the start and the end of one run carry the same id."""
    if value is None or value.strip() == "":
        return None
    try:
        parsed = uuidlib.UUID(value.strip())
    except ValueError:
        return str(uuidlib.uuid5(RUN_ID_NAMESPACE, value.strip()))
    return None if parsed.int == 0 else str(parsed)


def client_body(message: str | None, extras: dict[str, Any], limit: int) -> tuple[bytes, int]:
    """The ping body: the client's message as text, or, when the client sent more (metrics,
    environment, host, its own duration), one JSON object holding the message and those fields.
    Cut to `limit` bytes; returns (body, size before the cut)."""
    fields = {k: v for k, v in extras.items() if v not in (None, "", {}, [])}
    if fields:
        doc: dict[str, Any] = {"message": message} if message else {}
        doc.update(fields)
        raw = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    else:
        raw = (message or "").encode()
    return raw[: max(limit, 0)], len(raw)


def make_event(request: web.Request, protocol: str, **values: Any) -> PingEvent:
    """A PingEvent with the request's client details; fields the engine does not know yet
    (a client-measured `duration`, `metrics`) are dropped here and kept in the body instead."""
    remote, scheme = client_address(request)
    values.setdefault("received_at", request.app[appkeys.CLOCK].now())
    values.update(
        protocol=protocol,
        method=request.method,
        scheme=scheme,
        remote_addr=remote,
        user_agent=request.headers.get("User-Agent", "")[:USER_AGENT_LIMIT],
    )
    return PingEvent(**{k: v for k, v in values.items() if k in _EVENT_FIELDS})


async def deliver(request: web.Request, ev: PingEvent) -> PingOutcome:
    """Store the ping durably (returns once committed) and wake the dispatcher if it changed
    the monitor's state; StorageUnavailable when the database cannot take it."""
    app = request.app
    settings = app[appkeys.SETTINGS]
    try:
        outcome = await ingest(
            app[appkeys.DB], app[appkeys.SCHEDULER], ev, pings_kept=settings.pings_kept,
            stats_window=settings.stats_window, outputs=app[appkeys.OUTPUTS],
            limits=operations.plan_limits(app),
        )  # fmt: skip
    except (WriteFailed, WriterClosed, sqlite3.Error, OutputError) as exc:
        log.error("%s ping not stored: %s", ev.protocol, exc)
        raise StorageUnavailable(str(exc)) from None
    if outcome.alerts_queued:
        app[appkeys.DISPATCHER].poke()
    return outcome


def storage_error(body: Any, *, as_json: bool) -> web.Response:
    """503 with Retry-After, in JSON or plain text."""
    if as_json:
        resp = web.json_response(body, status=503)
    else:
        resp = web.Response(status=503, text=str(body))
    resp.headers["Retry-After"] = RETRY_AFTER_STORAGE
    return resp
