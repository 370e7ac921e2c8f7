"""The dashboard: counts by state, monitors that need attention first, open incidents."""

from __future__ import annotations

import sqlite3
from typing import Any

from aiohttp import web

from tokiflow.engine.views import display_status
from tokiflow.storage import incidents, monitor_lists, monitors
from tokiflow.web import appkeys
from tokiflow.web.ui import pages_onboarding, queries
from tokiflow.web.ui.context import Viewer, page, render

routes = web.RouteTableDef()

ATTENTION_ROWS = 25
INCIDENT_ROWS = 10


async def dashboard_data(request: web.Request, viewer: Viewer) -> dict[str, Any]:
    org_id = viewer.org.id

    def read(conn: sqlite3.Connection) -> dict[str, Any]:
        counts = queries.status_counts(conn, org_id)
        rows = monitor_lists.attention_first(conn, org_id, ATTENTION_ROWS)
        open_incidents = [
            (inc, monitors.get(conn, inc.monitor_id))
            for inc in incidents.unresolved(conn, org_id, INCIDENT_ROWS)
        ]
        return {
            "counts": counts,
            "total": sum(counts.values()),
            "monitors": [(m, display_status(m)) for m in rows],
            "incidents": open_incidents,
            "open_count": incidents.unresolved_count(conn, org_id),
        }

    data: dict[str, Any] = await request.app[appkeys.DB].read(read)
    return data


@routes.get("/", name="ui.dashboard")
@page("read")
async def dashboard(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    await pages_onboarding.welcome_redirect(request, viewer)
    data = await dashboard_data(request, viewer)
    template = "ui/_dashboard_live.html" if request.query.get("partial") else "ui/dashboard.html"
    return render(request, template, viewer, **data)
