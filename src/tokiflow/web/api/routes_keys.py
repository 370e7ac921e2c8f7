"""/api/v1 API keys of the caller's organisation: list, create (the key is shown once), revoke."""

from __future__ import annotations

import datetime as dt
import sqlite3
from typing import Any

from tokiflow.engine import audit, auth
from tokiflow.engine.views import iso
from tokiflow.storage import accounts
from tokiflow.storage.accounts import ApiKey
from tokiflow.web import appkeys
from tokiflow.web.api.framework import ApiError, ApiRequest, not_found
from tokiflow.web.api.native import API
from tokiflow.web.api.schema import BOOL, INT, STR, TIME, obj

KEY = obj(
    extra=True, id=INT, name=STR, prefix=STR, kind={"type": "string", "enum": ["read-write", "read-only"]},
    status={"type": "string", "enum": ["active", "revoked", "expired"]}, created_at=TIME,
    created_by=STR, last_used_at=TIME, expires_at=TIME, revoked_at=TIME,
)  # fmt: skip


def key_view(k: ApiKey, now: dt.datetime) -> dict[str, Any]:
    """A key as listed: never the key itself, only its first characters."""
    if k.revoked_at is not None:
        status = "revoked"
    elif k.expires_at is not None and k.expires_at <= now:
        status = "expired"
    else:
        status = "active"
    return {
        "id": k.id, "name": k.name, "prefix": k.prefix,
        "kind": "read-only" if k.read_only else "read-write", "status": status,
        "created_at": iso(k.created_at), "created_by": k.created_by,
        "last_used_at": iso(k.last_used_at), "expires_at": iso(k.expires_at),
        "revoked_at": iso(k.revoked_at),
    }  # fmt: skip


def _expiry(raw: str | None, now: dt.datetime) -> dt.datetime | None:
    if raw is None:
        return None
    try:
        when = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
        if when.tzinfo is None:
            raise ValueError
    except ValueError:
        raise ApiError(400, "body.expires_at: must be an RFC 3339 time with a zone",
                       field="expires_at") from None  # fmt: skip
    if when <= now:
        raise ApiError(400, "body.expires_at: must be in the future", field="expires_at")
    return when.astimezone(dt.UTC)


@API.route("GET", "/keys", summary="API keys: prefix, name, kind, last use, expiry (never the key)",
           scope="admin", tag="keys", response=obj(keys={"type": "array", "items": KEY}))  # fmt: skip
async def list_keys(req: ApiRequest) -> Any:
    org_id, now = req.caller.org.id, req.app[appkeys.CLOCK].now()
    rows = await req.app[appkeys.DB].read(lambda c: accounts.keys_of(c, org_id))
    return {"keys": [key_view(k, now) for k in rows]}


@API.route(
    "POST", "/keys", summary="Create an API key; the reply is the only time the key is shown",
    scope="admin", tag="keys",
    body=obj(("name",), name={"type": "string", "minLength": 1, "maxLength": 100},
             read_only=BOOL, expires_at={"type": ["string", "null"], "maxLength": 40}),
    response={**KEY, "properties": {**KEY["properties"], "key": STR}}, status=201,
)  # fmt: skip
async def create_key(req: ApiRequest) -> Any:
    now, caller = req.app[appkeys.CLOCK].now(), req.caller
    expires = _expiry(req.body.get("expires_at"), now)
    name = req.body["name"]
    if not name.strip():
        raise ApiError(400, "body.name: must not be blank", field="name")

    def write(conn: sqlite3.Connection) -> auth.NewKey:
        new = auth.create_api_key(
            conn, org_id=caller.org.id, name=name, read_only=bool(req.body.get("read_only")),
            now=now, expires_at=expires, created_by=caller.actor.label,
        )  # fmt: skip
        audit.record(conn, org_id=caller.org.id, actor=caller.actor, action="apikey.create",
                     target_kind="apikey", target_id=new.row.id, after=key_view(new.row, now),
                     now=now)  # fmt: skip
        return new

    new = await req.app[appkeys.DB].write(write)
    return {**key_view(new.row, now), "key": new.key}


@API.route("DELETE", "/keys/{id}", summary="Revoke an API key (it stops working at once)",
           scope="admin", tag="keys", status=204)  # fmt: skip
async def revoke_key(req: ApiRequest) -> Any:
    await _revoke(req, req.path_int("id", "API key"))
    return None


@API.route(
    "DELETE", "/keys/current",
    summary="Revoke the API key this request is made with (what `tokiflow logout` does)",
    scope="member", tag="keys", status=204,
)  # fmt: skip
async def revoke_current_key(req: ApiRequest) -> Any:
    if req.caller.key_id is None:
        raise ApiError(400, "this request is not made with an API key: sign out instead")
    await _revoke(req, req.caller.key_id)
    return None


async def _revoke(req: ApiRequest, key_id: int) -> None:
    """Revoke one of the caller's organisation's keys (404 for any other), audited."""
    org_id = req.caller.org.id
    now, actor = req.app[appkeys.CLOCK].now(), req.caller.actor

    def write(conn: sqlite3.Connection) -> None:
        key = accounts.get_key(conn, key_id)
        if key is None or key.org_id != org_id:
            raise not_found("API key")
        if accounts.revoke_key(conn, key.id, now):
            after = accounts.get_key(conn, key.id)
            audit.record(conn, org_id=org_id, actor=actor, action="apikey.revoke",
                         target_kind="apikey", target_id=key.id, before=key_view(key, now),
                         after=key_view(after or key, now), now=now)  # fmt: skip

    await req.app[appkeys.DB].write(write)
