"""Live updates for the UI over server-sent events (`GET /ui/events`).

Each open page holds one stream. Once a second (through the clock) the stream asks SQLite for
the organisation's monitors whose row changed since the last look, and for a signature of the
unresolved incidents: two small indexed/bounded queries, whatever the number of viewers' pages.
Streams are capped in number, end after an hour (the browser reconnects by itself), stop when the
session ends, and are closed when the server shuts down.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from typing import Any

from aiohttp import web

from tokiflow.engine.views import iso
from tokiflow.storage.timefmt import from_db, to_db
from tokiflow.web import appkeys
from tokiflow.web.ui import queries
from tokiflow.web.ui.context import Viewer, current_viewer, page
from tokiflow.web.ui.security import add_headers

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

POLL_SECONDS = 1.0
KEEPALIVE_EVERY = 15  # polls between comment lines that keep proxies from closing the stream
RECHECK_SESSION_EVERY = 60  # polls between checks that the session is still valid
MAX_POLLS = 3600  # about an hour; the browser's EventSource reconnects on its own
MAX_STREAMS = 200
CHANGES_PER_POLL = 200


class Streams:
    """The open event streams of one app, so that shutdown can end them at once."""

    def __init__(self, limit: int = MAX_STREAMS) -> None:
        self.limit = limit
        self.tasks: set[asyncio.Task[Any]] = set()

    def close_all(self) -> None:
        for task in list(self.tasks):
            task.cancel()


STREAMS = web.AppKey("ui_streams", Streams)


async def on_shutdown(app: web.Application) -> None:
    app[STREAMS].close_all()


def _event(name: str, data: Any) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _change_view(c: queries.Change) -> dict[str, Any]:
    status = "running" if c.open_runs and c.status != "paused" else c.status
    return {
        "uuid": c.uuid,
        "name": c.name,
        "status": status,
        "last_ping": iso(from_db(c.last_ping_at)) if c.last_ping_at else None,
    }


@routes.get("/ui/events", name="ui.events")
@page("read")
async def events(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    streams = request.app[STREAMS]
    if len(streams.tasks) >= streams.limit:
        return web.Response(
            status=503, text="too many live pages open", headers={"Retry-After": "30"}
        )
    task = asyncio.current_task()
    assert task is not None
    streams.tasks.add(task)
    try:
        return await _stream(request, viewer)
    except ConnectionResetError:  # the page went away
        return web.Response(status=204)
    finally:
        streams.tasks.discard(task)


async def _stream(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    app = request.app
    db, clock, org_id = app[appkeys.DB], app[appkeys.CLOCK], viewer.org.id
    resp = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",  # nginx: pass events through at once
        }
    )
    add_headers(request, resp)
    await resp.prepare(request)
    since = to_db(clock.now())

    def look(conn: sqlite3.Connection) -> tuple[list[queries.Change], tuple[int, int, int]]:
        return (
            queries.changes_since(conn, org_id, since, CHANGES_PER_POLL),
            queries.incident_signature(conn, org_id),
        )

    _, signature = await db.read(look)
    await resp.write(b"retry: 3000\n" + _event("hello", {"org": viewer.org.slug}))
    for poll in range(1, MAX_POLLS + 1):
        await clock.sleep(POLL_SECONDS)
        changes, now_signature = await db.read(look)
        if changes:
            since = changes[-1].updated_at
            await resp.write(_event("monitors", [_change_view(c) for c in changes]))
        if now_signature != signature:
            signature = now_signature
            open_n, acked, _ = signature
            await resp.write(_event("incidents", {"open": open_n, "acknowledged": acked}))
        elif not changes and poll % KEEPALIVE_EVERY == 0:
            await resp.write(b": keep-alive\n\n")
        if poll % RECHECK_SESSION_EVERY == 0 and await current_viewer(request) is None:
            break
    return resp
