"""/api/v1 runtime analytics (per monitor and per organisation) and captured run output."""

from __future__ import annotations

import sqlite3
from typing import Any

from aiohttp import web

from tokiflow.engine import analytics, views
from tokiflow.storage import metrics as ping_metrics
from tokiflow.storage import monitors, outputs, pings, runs
from tokiflow.web import appkeys
from tokiflow.web.api.framework import ApiError, ApiRequest, Param, not_found
from tokiflow.web.api.native import API
from tokiflow.web.api.routes_monitors import _monitor
from tokiflow.web.api.schema import INT, STR, nullable, obj

DAYS = Param("days", {"type": "integer", "enum": list(analytics.PERIODS), "default": 7},
             "the period: 7, 30 or 90 days")  # fmt: skip
REPORT = obj(extra=True)


@API.route(
    "GET", "/monitors/{uuid}/stats",
    summary="A monitor's health score, uptime, MTBF/MTTR, durations (percentiles, histogram), "
    "failure trend and weekday x hour failure heatmap",
    scope="read", tag="analytics", query=(DAYS,), response=REPORT,
)  # fmt: skip
async def monitor_stats(req: ApiRequest) -> Any:
    m = await _monitor(req)
    now, window = req.app[appkeys.CLOCK].now(), max(req.app[appkeys.SETTINGS].stats_window, 1)
    report = await req.app[appkeys.DB].read(
        lambda c: analytics.monitor_report(c, m, now, days=req.query["days"], window=window)
    )
    return analytics.as_json(report)


@API.route(
    "GET", "/analytics",
    summary="The organisation's totals and its most and least reliable monitors",
    scope="read", tag="analytics", query=(DAYS,), response=REPORT,
)  # fmt: skip
async def org_analytics(req: ApiRequest) -> Any:
    org, now = req.caller.org, req.app[appkeys.CLOCK].now()
    report = await req.app[appkeys.DB].read(
        lambda c: analytics.org_report(c, org.id, org.slug, now, days=req.query["days"])
    )
    return analytics.as_json(report)


OUTPUT = obj(
    run_id=INT, monitor_uuid=STR, ping=INT, size=INT, kept=INT, redactions=INT,
    text=STR, download_url=STR, captured=nullable(STR),
)  # fmt: skip


async def _run_output(req: ApiRequest) -> tuple[dict[str, Any], bytes]:
    run_id = req.path_int("id", "run")
    org_id = req.caller.org.id
    store = req.app[appkeys.OUTPUTS]

    def read(conn: sqlite3.Connection) -> tuple[dict[str, Any], bytes] | None:
        run = runs.get(conn, run_id)
        m = None if run is None else monitors.get(conn, run.monitor_id)
        if run is None or m is None or m.org_id != org_id or run.end_ping is None:
            return None
        ping = pings.get(conn, m.id, run.end_ping)
        ref = outputs.get(conn, m.id, run.end_ping)
        if ping is None:
            return None
        body = outputs.ping_body(conn, store, m, ping) or b""
        info = {
            "run_id": run.id, "monitor_uuid": m.uuid, "ping": run.end_ping,
            "size": ref.size if ref else ping.body_size, "kept": len(body),
            "redactions": ref.redactions if ref else 0,
            "captured": None if ref is None else ref.created_at.isoformat().replace("+00:00", "Z"),
        }  # fmt: skip
        return info, body

    try:
        found = await req.app[appkeys.DB].read(read)
    except outputs.OutputError as exc:
        raise ApiError(409, f"the stored output cannot be read: {exc}") from None
    if found is None:
        raise not_found("run output")
    return found


@API.route(
    "GET", "/runs/{id}/output",
    summary="A finished run's captured output (redacted), with its size and redaction count",
    scope="read", tag="runs", response=OUTPUT,
)  # fmt: skip
async def run_output(req: ApiRequest) -> Any:
    info, body = await _run_output(req)
    return {**info, "text": body.decode("utf-8", errors="replace"),
            "download_url": f"/api/v1/runs/{info['run_id']}/output/download"}  # fmt: skip


@API.route(
    "GET", "/runs/{id}/output/download", summary="A finished run's captured output as a file",
    scope="read", tag="runs", content_type="text/plain",
)  # fmt: skip
async def download_output(req: ApiRequest) -> Any:
    info, body = await _run_output(req)
    resp = web.Response(body=body, content_type="text/plain", charset="utf-8")
    resp.headers["Content-Disposition"] = f'attachment; filename="run-{info["run_id"]}-output.txt"'
    resp.headers["X-Tokiflow-Redactions"] = str(info["redactions"])
    return resp


@API.route(
    "GET", "/monitors/{uuid}/metrics",
    summary="Numbers the monitor's clients reported with pings (e.g. Cronitor metric=count:N), "
    "oldest first per metric",
    scope="read", tag="analytics",
    query=(Param("limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
                 "how many recent pings to look at"),),  # fmt: skip
    response=obj(metrics={"type": "object", "additionalProperties": {
        "type": "array", "items": obj(at=STR, value={"type": "number"})}}),
)  # fmt: skip
async def monitor_metrics(req: ApiRequest) -> Any:
    m = await _monitor(req)
    found = await req.app[appkeys.DB].read(
        lambda c: ping_metrics.series(c, m.id, req.query["limit"])
    )
    return {
        "metrics": {
            name: [{"at": views.iso(at), "value": value} for at, value in points]
            for name, points in found.items()
        }
    }
