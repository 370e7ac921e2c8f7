"""/api/v1 organisation settings: the organisation itself (more routes join this module)."""

from __future__ import annotations

from typing import Any

from tokiflow.web.api.framework import ApiRequest
from tokiflow.web.api.native import API
from tokiflow.web.api.schema import STR, obj

ORG = obj(extra=True, slug=STR, name=STR, ping_key=STR)


@API.route("GET", "/org", summary="The caller's organisation, with its ping key", scope="read",
           tag="organisation", response=ORG)  # fmt: skip
async def get_org(req: ApiRequest) -> Any:
    org = req.caller.org
    return {"slug": org.slug, "name": org.name, "ping_key": org.ping_key}
