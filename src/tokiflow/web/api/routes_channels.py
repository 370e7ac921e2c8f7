"""/api/v1 alert channels of the caller's organisation, their delivery log, test alerts, and
which channels alert each monitor. Secrets in channel configs are masked in every reply."""

from __future__ import annotations

import asyncio
import logging
import secrets
import sqlite3
from typing import Any

from tokiflow.channels.base import ChannelConfigError, ChannelError, SendContext
from tokiflow.channels.registry import CHANNELS
from tokiflow.engine import audit, channel_setup
from tokiflow.engine.dispatcher import make_channel, open_config, seal_config
from tokiflow.engine.views import iso
from tokiflow.storage import channels, monitors, notifications
from tokiflow.storage.channels import ChannelRow
from tokiflow.storage.crypto import CryptoError
from tokiflow.storage.monitors import Monitor
from tokiflow.storage.notifications import Notification
from tokiflow.web import appkeys, operations
from tokiflow.web.api.framework import ApiError, ApiRequest, Param, not_found
from tokiflow.web.api.native import API
from tokiflow.web.api.schema import BOOL, INT, NUM, STR, TIME, nullable, obj

log = logging.getLogger(__name__)

MASK = "***"
CHANNEL = obj(
    extra=True, id=INT, kind=STR, name=STR, default=BOOL, config={"type": "object"},
    last_error=nullable(STR), last_error_at=TIME, created_at=TIME,
)  # fmt: skip
DELIVERY = obj(
    extra=True, id=INT, channel_id=INT, incident_id=nullable(INT), event=STR, state=STR,
    attempts=INT, created_at=TIME, sent_at=TIME, next_attempt_at=TIME, last_error=nullable(STR),
    history={"type": "array", "items": obj(extra=True, at=TIME, ok=BOOL, status=STR, error=STR,
                                            latency_ms=NUM)},
)  # fmt: skip
KIND = {"type": "string", "enum": sorted(CHANNELS)}
NAME = {"type": "string", "minLength": 1, "maxLength": 200}
LIMIT = Param("limit", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}, "how many")


def _view(req: ApiRequest, row: ChannelRow) -> dict[str, Any]:
    v = channel_setup.view(row, req.app[appkeys.SEALER])
    return {
        "id": v.id, "kind": v.kind, "name": v.name, "default": v.is_default, "config": v.config,
        "last_error": v.last_error, "last_error_at": iso(v.last_error_at),
        "created_at": iso(v.created_at),
    }  # fmt: skip


def _audit(req: ApiRequest, conn: sqlite3.Connection, action: str, target_kind: str,
           target: Any, before: Any, after: Any) -> None:  # fmt: skip
    audit.record(conn, org_id=req.caller.org.id, actor=req.caller.actor, action=action,
                 target_kind=target_kind, target_id=target, before=before, after=after,
                 now=req.app[appkeys.CLOCK].now())  # fmt: skip


def _config_error(exc: ChannelConfigError) -> ApiError:
    where = exc.field if exc.field in ("kind", "name", "config") else f"config.{exc.field}"
    return ApiError(400, f"body.{where}: {exc.message}", field=where)


async def _channel(req: ApiRequest) -> ChannelRow:
    """The channel named in the path, if it belongs to the caller's organisation (else 404)."""
    channel_id = req.path_int("id", "channel")
    row = await req.app[appkeys.DB].read(lambda c: channels.get(c, channel_id))
    if row is None or row.org_id != req.caller.org.id:
        raise not_found("channel")
    return row


@API.route("GET", "/channels", summary="Alert channels (secrets masked) with their last error",
           scope="read", tag="channels",
           response=obj(channels={"type": "array", "items": CHANNEL}))  # fmt: skip
async def list_channels(req: ApiRequest) -> Any:
    org_id = req.caller.org.id
    rows = await req.app[appkeys.DB].read(lambda c: channels.list_for_org(c, org_id))
    return {"channels": [_view(req, r) for r in rows]}


@API.route(
    "POST", "/channels",
    summary="Add an alert channel (config checked by its kind; a default one alerts every monitor)",
    scope="write", tag="channels",
    body=obj(("kind", "name", "config"), kind=KIND, name=NAME, config={"type": "object"},
             default=BOOL),
    response=CHANNEL, status=201,
)  # fmt: skip
async def create_channel(req: ApiRequest) -> Any:
    body, org_id = req.body, req.caller.org.id
    sealer, now = req.app[appkeys.SEALER], req.app[appkeys.CLOCK].now()
    limits = operations.plan_limits(req.app)
    try:
        channel_setup.validate(body["kind"], body["name"], body["config"])
        channel_setup.check_plan(body["kind"], limits)
    except channel_setup.ChannelPlanError as exc:
        raise ApiError(403, exc.message, field="kind") from None
    except ChannelConfigError as exc:
        raise _config_error(exc) from None

    def write(conn: sqlite3.Connection) -> ChannelRow:
        row = channel_setup.create(
            conn, sealer, org_id=org_id, kind=body["kind"], name=body["name"],
            config=body["config"], is_default=body.get("default", True), now=now, limits=limits,
        )  # fmt: skip
        _audit(req, conn, "channel.create", "channel", row.id, None, _view(req, row))
        return row

    return _view(req, await req.app[appkeys.DB].write(write))


@API.route("GET", "/channels/{id}", summary="Get an alert channel (secrets masked)", scope="read",
           tag="channels", response=CHANNEL)  # fmt: skip
async def get_channel(req: ApiRequest) -> Any:
    return _view(req, await _channel(req))


def _merged_config(req: ApiRequest, row: ChannelRow, given: dict[str, Any]) -> dict[str, Any]:
    """The new config, where a secret sent back masked ("***") keeps its stored value."""
    cls = CHANNELS.get(row.kind)
    try:
        stored = open_config(req.app[appkeys.SEALER], row)
    except CryptoError:
        stored = {}
    merged = dict(given)
    for name in cls.secret_fields if cls else ():
        if merged.get(name) == MASK and name in stored:
            merged[name] = stored[name]
    return merged


@API.route(
    "PATCH", "/channels/{id}",
    summary="Change a channel's name, config or default flag (masked secrets sent back are kept)",
    scope="write", tag="channels",
    body=obj(name=NAME, config={"type": "object"}, default=BOOL), response=CHANNEL,
)  # fmt: skip
async def update_channel(req: ApiRequest) -> Any:
    row = await _channel(req)
    body, sealer = req.body, req.app[appkeys.SEALER]
    name = body.get("name", row.name)
    config = None
    if "config" in body:
        try:
            config = channel_setup.validate(
                row.kind, name, _merged_config(req, row, body["config"])
            )
        except ChannelConfigError as exc:
            raise _config_error(exc) from None
    elif not name.strip():
        raise ApiError(400, "body.name: must be 1 to 200 characters", field="name")

    def write(conn: sqlite3.Connection) -> ChannelRow:
        current = channels.get(conn, row.id)
        if current is None:
            raise not_found("channel")
        sealed = current.config if config is None else seal_config(sealer, row.org_id, config)
        default = body.get("default", current.is_default)
        channels.update(conn, row.id, name=name.strip(), config=sealed, is_default=default)
        if default and not current.is_default:
            # Turned into a default channel: it now alerts every monitor, as a new one would.
            channels.link_every_monitor(conn, row.id, row.org_id)
        new = channels.get(conn, row.id)
        assert new is not None
        _audit(req, conn, "channel.update", "channel", row.id, _view(req, current), _view(req, new))
        return new

    return _view(req, await req.app[appkeys.DB].write(write))


@API.route("DELETE", "/channels/{id}", summary="Delete an alert channel and its delivery log",
           scope="write", tag="channels", status=204)  # fmt: skip
async def delete_channel(req: ApiRequest) -> Any:
    row = await _channel(req)

    def write(conn: sqlite3.Connection) -> None:
        if channels.delete(conn, row.id):
            _audit(req, conn, "channel.delete", "channel", row.id, _view(req, row), None)

    await req.app[appkeys.DB].write(write)
    return None


@API.route(
    "POST", "/channels/{id}/test",
    summary="Send a test alert through the channel now and record it as a delivery",
    scope="write", tag="channels",
    response=obj(extra=True, ok=BOOL, status=STR, error=nullable(STR), latency_ms=NUM,
                 delivery_id=INT),
)  # fmt: skip
async def test_channel(req: ApiRequest) -> Any:
    row = await _channel(req)
    app = req.app
    settings, clock = app[appkeys.SETTINGS], app[appkeys.CLOCK]
    ctx = SendContext(settings=settings, http=app[appkeys.DISPATCHER].http, clock=clock)
    started = clock.monotonic()
    ok, status, error = True, "", ""
    try:
        channel = make_channel(row, app[appkeys.SEALER], ctx)
        status = await asyncio.wait_for(channel.test(), timeout=settings.outbound_timeout * 3)
    except ChannelError as exc:
        ok, error, status = False, str(exc), exc.status
    except TimeoutError:
        ok, error = False, "timed out"
    except Exception as exc:  # a bug in a channel: record it like the dispatcher does
        log.exception("test alert to channel %s failed unexpectedly", row.id)
        ok, error = False, f"internal error: {type(exc).__name__}"
    latency = (clock.monotonic() - started) * 1000
    now = clock.now()

    def write(conn: sqlite3.Connection) -> int:
        notification_id = notifications.enqueue(
            conn, org_id=row.org_id, channel_id=row.id, incident_id=None, event="test",
            idempotency_key=f"test-{row.id}-{secrets.token_hex(8)}", message="{}", now=now,
        )  # fmt: skip
        assert notification_id is not None
        notifications.finish_test(conn, notification_id, ok=ok, error=error, at=now)
        notifications.record_attempt(conn, notification_id, at=now, ok=ok, status=status,
                                     error=error, latency_ms=latency)  # fmt: skip
        channels.set_error(conn, row.id, None if ok else error, None if ok else now)
        _audit(req, conn, "channel.test", "channel", row.id, None,
               {"ok": ok, "status": status, "error": error or None})  # fmt: skip
        return notification_id

    delivery_id = await app[appkeys.DB].write(write)
    return {"ok": ok, "status": status, "error": error or None, "latency_ms": round(latency, 1),
            "delivery_id": delivery_id}  # fmt: skip


# -- deliveries --------------------------------------------------------------------------------


def _delivery_view(conn: sqlite3.Connection, n: Notification) -> dict[str, Any]:
    return {
        "id": n.id, "channel_id": n.channel_id, "incident_id": n.incident_id, "event": n.event,
        "state": n.state, "attempts": n.attempts, "created_at": iso(n.created_at),
        "sent_at": iso(n.sent_at),
        "next_attempt_at": iso(n.next_attempt_at) if n.state == "pending" else None,
        "last_error": n.last_error,
        "history": [{"at": iso(a.at), "ok": a.ok, "status": a.status, "error": a.error,
                     "latency_ms": round(a.latency_ms, 1)}
                    for a in notifications.attempts(conn, n.id)],
    }  # fmt: skip


async def _deliveries(req: ApiRequest, channel_id: int | None) -> dict[str, Any]:
    org_id, limit = req.caller.org.id, req.query["limit"]

    def read(conn: sqlite3.Connection) -> list[dict[str, Any]]:
        rows = notifications.list_recent(conn, org_id=org_id, channel_id=channel_id, limit=limit)
        return [_delivery_view(conn, n) for n in rows]

    return {"deliveries": await req.app[appkeys.DB].read(read)}


DELIVERIES = obj(deliveries={"type": "array", "items": DELIVERY})


@API.route("GET", "/channels/{id}/deliveries",
           summary="A channel's recent deliveries with every attempt, newest first", scope="read",
           tag="channels", query=(LIMIT,), response=DELIVERIES)  # fmt: skip
async def channel_deliveries(req: ApiRequest) -> Any:
    row = await _channel(req)
    return await _deliveries(req, row.id)


@API.route("GET", "/deliveries",
           summary="Recent alert deliveries of all channels with every attempt, newest first",
           scope="read", tag="channels", query=(LIMIT,), response=DELIVERIES)  # fmt: skip
async def list_deliveries(req: ApiRequest) -> Any:
    return await _deliveries(req, None)


# -- monitor channels --------------------------------------------------------------------------


async def _monitor(req: ApiRequest) -> Monitor:
    uuid = req.path["uuid"].lower()
    m = await req.app[appkeys.DB].read(lambda c: monitors.by_uuid(c, uuid))
    if m is None or m.org_id != req.caller.org.id:
        raise not_found("monitor")
    return m


MONITOR_CHANNELS = obj(channels={"type": "array", "items": CHANNEL})


@API.route("GET", "/monitors/{uuid}/channels", summary="The channels that alert a monitor",
           scope="read", tag="channels", response=MONITOR_CHANNELS)  # fmt: skip
async def get_monitor_channels(req: ApiRequest) -> Any:
    m = await _monitor(req)
    rows = await req.app[appkeys.DB].read(lambda c: channels.for_monitor(c, m.id))
    return {"channels": [_view(req, r) for r in rows]}


@API.route(
    "PUT", "/monitors/{uuid}/channels", summary="Set which channels alert a monitor",
    scope="write", tag="channels",
    body=obj(("channels",), channels={"type": "array", "items": INT, "maxItems": 500}),
    response=MONITOR_CHANNELS,
)  # fmt: skip
async def set_monitor_channels(req: ApiRequest) -> Any:
    m = await _monitor(req)
    wanted = list(dict.fromkeys(req.body["channels"]))

    def write(conn: sqlite3.Connection) -> list[ChannelRow]:
        own = {r.id for r in channels.list_for_org(conn, m.org_id)}
        unknown = [cid for cid in wanted if cid not in own]
        if unknown:
            raise ApiError(400, f"body.channels: no channel #{unknown[0]} in this organisation",
                           field="channels")  # fmt: skip
        before = [r.id for r in channels.for_monitor(conn, m.id)]
        channels.set_monitor_channels(conn, m.id, wanted)
        after = channels.for_monitor(conn, m.id)
        _audit(req, conn, "monitor.channels", "monitor", m.uuid, {"channels": before},
               {"channels": [r.id for r in after]})  # fmt: skip
        return after

    rows = await req.app[appkeys.DB].write(write)
    return {"channels": [_view(req, r) for r in rows]}
