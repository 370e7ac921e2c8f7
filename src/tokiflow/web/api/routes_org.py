"""/api/v1 organisation settings: the organisation itself, its name and its ping key."""

from __future__ import annotations

import sqlite3
from typing import Any

from tokiflow.engine import audit
from tokiflow.storage import orgs
from tokiflow.storage.orgs import Org
from tokiflow.web import appkeys
from tokiflow.web.api.framework import ApiError, ApiRequest
from tokiflow.web.api.native import API
from tokiflow.web.api.schema import STR, obj

ORG = obj(extra=True, slug=STR, name=STR, ping_key=STR)


def _view(org: Org) -> dict[str, Any]:
    return {"slug": org.slug, "name": org.name, "ping_key": org.ping_key}


@API.route("GET", "/org", summary="The caller's organisation, with its ping key", scope="read",
           tag="organisation", response=ORG)  # fmt: skip
async def get_org(req: ApiRequest) -> Any:
    org_id = req.caller.org.id
    org = await req.app[appkeys.DB].read(lambda c: orgs.get(c, org_id))
    return _view(org or req.caller.org)


@API.route(
    "PATCH", "/org", summary="Rename the organisation", scope="admin", tag="organisation",
    body=obj(("name",), name={"type": "string", "minLength": 1, "maxLength": 200}), response=ORG,
)  # fmt: skip
async def update_org(req: ApiRequest) -> Any:
    name = req.body["name"].strip()
    if not name:
        raise ApiError(400, "body.name: must not be blank", field="name")
    caller, now = req.caller, req.app[appkeys.CLOCK].now()

    def write(conn: sqlite3.Connection) -> Org:
        before = orgs.get(conn, caller.org.id) or caller.org
        orgs.rename(conn, before.id, name)
        audit.record(conn, org_id=before.id, actor=caller.actor, action="org.update",
                     target_kind="org", target_id=before.slug, before={"name": before.name},
                     after={"name": name}, now=now)  # fmt: skip
        after = orgs.get(conn, before.id)
        assert after is not None
        return after

    return _view(await req.app[appkeys.DB].write(write))


@API.route(
    "POST", "/org/ping-key/rotate",
    summary="Give the organisation a new ping key (slug ping URLs with the old one stop working)",
    scope="admin", tag="organisation", response=ORG,
)  # fmt: skip
async def rotate_ping_key(req: ApiRequest) -> Any:
    caller, now = req.caller, req.app[appkeys.CLOCK].now()

    def write(conn: sqlite3.Connection) -> Org:
        before = orgs.get(conn, caller.org.id) or caller.org
        orgs.set_ping_key(conn, before.id, orgs.new_ping_key())
        after = orgs.get(conn, before.id)
        assert after is not None
        # Only the first characters: the full key lets anyone ping the organisation's monitors.
        audit.record(conn, org_id=before.id, actor=caller.actor, action="org.ping_key_rotate",
                     target_kind="org", target_id=before.slug,
                     before={"ping_key": before.ping_key[:4] + "…"},
                     after={"ping_key": after.ping_key[:4] + "…"}, now=now)  # fmt: skip
        return after

    return _view(await req.app[appkeys.DB].write(write))
