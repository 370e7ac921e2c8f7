"""/api/v1/auth/device: the device-code sign-in of `tokiflow login` (start, poll, approve)."""

from __future__ import annotations

import sqlite3
from typing import Any

from aiohttp import web

from tokiflow.engine import device_login
from tokiflow.engine.device_login import DeviceLoginError, DeviceLogins
from tokiflow.storage import device_codes
from tokiflow.storage.device_codes import DeviceCode
from tokiflow.web import appkeys
from tokiflow.web.api.framework import ApiError, ApiRequest
from tokiflow.web.api.native import API
from tokiflow.web.api.schema import BOOL, INT, STR, obj

DEVICE_LOGINS = web.AppKey("device_logins", DeviceLogins)
CLIENT_NAME = {"type": "string", "maxLength": 200, "description": "the client's host name"}
# How each refusal of the flow is answered; `detail.code` carries the RFC 8628 error name.
STATUS = {"slow_down": 429, "forbidden": 403, "busy": 429}


def setup(app: web.Application) -> None:
    """Give the app the in-memory polling state of device sign-ins (before it starts)."""
    if DEVICE_LOGINS not in app:
        app[DEVICE_LOGINS] = DeviceLogins(app[appkeys.CLOCK])


def refusal(exc: DeviceLoginError, **detail: Any) -> ApiError:
    return ApiError(STATUS.get(exc.code, 400), str(exc), code=exc.code, **detail)


def _rate_limit(req: ApiRequest, key: str) -> None:
    wait = req.app[appkeys.LOGIN_LIMITER].check(key)
    if wait > 0:
        raise ApiError(429, f"too many attempts: wait {int(wait) + 1} s", code="rate_limited")


@API.route(
    "POST", "/auth/device",
    summary="Start a command-line sign-in: a device code to poll with and a user code to approve",
    scope="public", tag="auth", body=obj(client_name=CLIENT_NAME),
    response=obj(device_code=STR, user_code=STR, verification_uri=STR,
                 verification_uri_complete=STR, expires_in=INT, interval=INT),
)  # fmt: skip
async def start_device_login(req: ApiRequest) -> Any:
    _rate_limit(req, f"device-start:{req.request.remote or ''}")
    now = req.app[appkeys.CLOCK].now()
    try:
        new = await req.app[appkeys.DB].write(lambda c: device_login.start(c, now))
    except DeviceLoginError as exc:
        raise refusal(exc) from None
    url = req.app[appkeys.SETTINGS].public_url + "/device"
    return {
        "device_code": new.device_code,
        "user_code": new.user_code,
        "verification_uri": url,
        "verification_uri_complete": f"{url}?code={new.user_code}",
        "expires_in": new.expires_in,
        "interval": new.interval,
    }


@API.route(
    "POST", "/auth/device/token",
    summary="Poll a command-line sign-in; once approved, the reply holds a new read-write API key "
    "(once)",
    scope="public", tag="auth",
    body=obj(("device_code",), device_code={"type": "string", "minLength": 1, "maxLength": 200},
             client_name=CLIENT_NAME,
             wait={"type": "integer", "minimum": 0, "maximum": 600,
                   "description": "seconds to wait for a decision before answering pending"}),
    response=obj(api_key=STR, key_prefix=STR, key_name=STR,
                 org=obj(extra=True, slug=STR, name=STR)),
)  # fmt: skip
async def poll_device_login(req: ApiRequest) -> Any:
    app = req.app
    db, clock, logins = app[appkeys.DB], app[appkeys.CLOCK], app[DEVICE_LOGINS]
    device_code = req.body["device_code"]
    code_hash = device_login.device_code_hash(device_code)

    async def state() -> DeviceCode | None:
        return await db.read(lambda c: device_codes.by_device_code(c, code_hash))

    row = await state()
    try:
        device_login.check_poll(row, clock.now())
    except DeviceLoginError as exc:
        raise refusal(exc) from None
    assert row is not None
    slower = logins.pace(code_hash)
    if slower is not None:
        raise ApiError(429, f"polling too fast: wait {slower} s between polls", code="slow_down",
                       interval=slower)  # fmt: skip
    waited = False
    if row.state(clock.now()) == "pending" and req.body.get("wait"):
        remaining = (row.expires_at - clock.now()).total_seconds()
        await logins.wait(row.id, min(req.body["wait"], device_login.MAX_WAIT, remaining))
        waited = True
        row = await state()
    ip, ua = req.request.remote or "", req.request.headers.get("User-Agent", "")
    now = clock.now()

    def write(conn: sqlite3.Connection) -> device_login.IssuedKey:
        return device_login.redeem(conn, device_code, client_name=req.body.get("client_name", ""),
                                   now=now, ip=ip, user_agent=ua)  # fmt: skip

    try:
        issued = await db.write(write)
    except DeviceLoginError as exc:
        raise refusal(exc, waited=waited, interval=logins.interval(code_hash)) from None
    return {
        "api_key": issued.key,
        "key_prefix": issued.key_row.prefix,
        "key_name": issued.key_row.name,
        "org": {"slug": issued.org.slug, "name": issued.org.name},
    }


@API.route(
    "POST", "/auth/device/approve",
    summary="Approve (or deny) a command-line sign-in by its user code, for the caller's "
    "organisation",
    scope="admin", tag="auth",
    body=obj(("user_code",), user_code={"type": "string", "minLength": 1, "maxLength": 40},
             approve=BOOL),
    response=obj(status={"type": "string", "enum": ["approved", "denied"]}, org=STR),
)  # fmt: skip
async def approve_device_login(req: ApiRequest) -> Any:
    caller = req.caller
    if caller.user is None:
        raise ApiError(403, "sign in as a user to approve a command-line sign-in")
    _rate_limit(req, f"device-approve:{caller.user.id}")
    approve = req.body.get("approve", True)
    now = req.app[appkeys.CLOCK].now()

    def write(conn: sqlite3.Connection) -> int:
        row = device_login.decide(conn, req.body["user_code"], approve=approve, org=caller.org,
                                  actor=caller.actor, now=now)  # fmt: skip
        return row.id

    try:
        code_id = await req.app[appkeys.DB].write(write)
    except DeviceLoginError as exc:
        raise refusal(exc, field="user_code") from None
    req.app[DEVICE_LOGINS].wake(code_id)
    return {"status": "approved" if approve else "denied", "org": caller.org.slug}
