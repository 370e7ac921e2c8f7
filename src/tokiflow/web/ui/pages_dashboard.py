"""The dashboard: counts by state, monitors that need attention first, open incidents."""

from __future__ import annotations

import sqlite3
from typing import Any

from aiohttp import web

from tokiflow.engine.views import display_status
from tokiflow.storage import incidents, monitors
from tokiflow.web import appkeys
from tokiflow.web.ui import queries
from tokiflow.web.ui.context import Viewer, page, render

routes = web.RouteTableDef()

ATTENTION_ROWS = 25
INCIDENT_ROWS = 10


async def dashboard_data(request: web.Request, viewer: Viewer) -> dict[str, Any]:
    org_id = viewer.org.id

    def read(conn: sqlite3.Connection) -> dict[str, Any]:
        counts = queries.status_counts(conn, org_id)
        rows = queries.attention_first(conn, org_id, ATTENTION_ROWS)
        open_incidents = []
        for inc in conn.execute(
            "SELECT id FROM incidents WHERE org_id = ? AND state != 'resolved' "
            "ORDER BY id DESC LIMIT ?",
            (org_id, INCIDENT_ROWS),
        ):
            found = incidents.get(conn, inc[0])
            if found is not None:
                open_incidents.append((found, monitors.get(conn, found.monitor_id)))
        return {
            "counts": counts,
            "total": sum(counts.values()),
            "monitors": [(m, display_status(m)) for m in rows],
            "incidents": open_incidents,
            "open_count": queries.open_incident_count(conn, org_id),
        }

    data: dict[str, Any] = await request.app[appkeys.DB].read(read)
    return data


@routes.get("/", name="ui.dashboard")
@page("read")
async def dashboard(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    data = await dashboard_data(request, viewer)
    template = "ui/_dashboard_live.html" if request.query.get("partial") else "ui/dashboard.html"
    return render(request, template, viewer, **data)
