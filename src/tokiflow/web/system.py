"""System endpoints: /healthz for load balancers and container health checks, /version."""

from __future__ import annotations

import logging
import sqlite3

from aiohttp import web

from tokiflow import __version__
from tokiflow.storage import meta
from tokiflow.web import appkeys

log = logging.getLogger(__name__)

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """200 when the database answers a read and a write, 503 otherwise."""
    db = request.app[appkeys.DB]
    now = request.app[appkeys.CLOCK].now()
    try:
        await db.read(meta.read_all)
        await db.write(lambda conn: meta.put(conn, "healthz_at", now))
    except Exception as exc:  # any storage failure means "unhealthy", with the reason
        log.warning("health check failed: %s", exc)
        reason = str(exc) if isinstance(exc, sqlite3.Error | RuntimeError) else type(exc).__name__
        return web.json_response(
            {"status": "error", "version": __version__, "db": reason}, status=503
        )
    return web.json_response({"status": "ok", "version": __version__, "db": "ok"})


@routes.get("/version")
async def version(request: web.Request) -> web.Response:
    return web.json_response({"version": __version__})
