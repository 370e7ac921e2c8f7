"""Analytics pages: the organisation's (`/analytics`) and one monitor's
(`/monitors/<uuid>/analytics`) health score, uptime, MTBF and MTTR, failure-rate trend, run
duration distribution and weekday x hour failure heatmap over 7, 30 or 90 days, drawn as inline
SVG on the server, each chart with a summary in words and a data table.

The figures are the engine's reports (`engine.analytics`, the same as the API's and the CLI's),
with days and heatmap hours in the viewer's time zone. The organisation's report reads each table
once for all its monitors, so the page stays fast with 10,000 of them.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from aiohttp import web

from tokiflow.engine import analytics, analytics_org
from tokiflow.engine.anomaly import seconds_words, size_words
from tokiflow.storage import monitors, stats
from tokiflow.web import appkeys, operations
from tokiflow.web.ui import charts
from tokiflow.web.ui.context import Fmt, Viewer, error_page, not_found, page, render

routes = web.RouteTableDef()

DAYS_ERROR = "The period must be 7, 30 or 90 days (?days=7, ?days=30 or ?days=90)."


def period(request: web.Request) -> int | None:
    """The `days` query parameter (7 by default); None when it is not 7, 30 or 90."""
    return {str(days): days for days in analytics.PERIODS}.get(request.query.get("days", "7"))


def percent(value: float | None) -> str:
    """An uptime for people; never rounded up to 100% when there was downtime."""
    if value is None:
        return "—"
    if value >= 100.0:
        return "100%"
    return f"{min(value, 99.99):.2f}%"


def secs(seconds: float | None) -> str:
    """A run duration or limit to three significant figures under a minute ("15.5 s")."""
    return "—" if seconds is None else seconds_words(seconds)


def span_words(seconds: float | None) -> str:
    """A mean time between failures or to repair, to the two largest units ("3d 4h", "12m 5s")."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.3g} s"
    parts: list[str] = []
    left = round(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, left = divmod(left, size)
        if count or parts:
            parts.append(f"{count}{unit}")
        if len(parts) == 2:
            break
    return " ".join(p for p in parts if not p.startswith("0")) or "0s"


def _tables(report: analytics.MonitorReport | analytics_org.OrgReport) -> dict[str, Any]:
    """The charts' data as rows, for the tables under them."""
    hist = report.duration_histogram
    return {
        "trend_rows": [
            (r.day, r.successes, r.failures, charts.percent_words(r.rate))
            for r in report.failure_trend
        ],
        "histogram_rows": [
            (words, b.count) for b, (_, words) in zip(hist, charts.bucket_labels(hist), strict=True)
        ],
        "trend_has_runs": any(r.rate is not None for r in report.failure_trend),
        "heat_total": sum(map(sum, report.failure_heatmap)),
        "heat_top": max(map(max, report.failure_heatmap)),
    }


def _charts(report: analytics.MonitorReport | analytics_org.OrgReport, zone: str) -> dict[str, Any]:
    tables = _tables(report)
    return {
        "trend_chart": charts.trend_chart(report.failure_trend, report.failure_trend_slope),
        "trend_words": None
        if report.failure_trend_slope is None
        else charts.slope_words(report.failure_trend_slope),
        "histogram_chart": charts.histogram_chart(report.duration_histogram),
        "heatmap_chart": charts.heatmap_chart(report.failure_heatmap, zone),
        "heat_legend": charts.heat_legend(tables["heat_top"]),
        "weekdays": charts.WEEKDAYS,
        **tables,
    }


def _common(request: web.Request, viewer: Viewer, days: int) -> dict[str, Any]:
    fmt = Fmt(request.app[appkeys.CLOCK].now(), viewer.user.tz)
    limits = operations.plan_limits(request.app)
    return {
        # The charts (trend, distributions, heatmap) are the plan feature "advanced analytics";
        # the figures and rankings are on every plan.
        "advanced": limits.allows("advanced_analytics"),
        "plan": limits.plan,
        "days": days,
        "periods": analytics.PERIODS,
        "zone": fmt.zone.key,
        "percent": percent,
        "span_words": span_words,
        "secs": secs,
        "size_words": size_words,
    }


@routes.get("/analytics", name="ui.analytics")
@page("read")
async def org_analytics(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    days = period(request)
    if days is None:
        return error_page(request, viewer, 400, DAYS_ERROR)
    common = _common(request, viewer, days)
    org = viewer.org
    now = request.app[appkeys.CLOCK].now()

    def read(conn: sqlite3.Connection) -> tuple[analytics_org.OrgReport, stats.OutputUsage]:
        report = analytics.org_report(conn, org.id, org.slug, now, days=days, tz=common["zone"])
        return report, stats.output_usage(conn, org.id)

    report, usage = await request.app[appkeys.DB].read(read)
    settings = request.app[appkeys.SETTINGS]
    return render(
        request, "ui/analytics.html", viewer, report=report, usage=usage,
        usage_limit=settings.output_max_total, usage_days=settings.output_retention // 86400,
        **common, **_charts(report, common["zone"]),
    )  # fmt: skip


@routes.get("/monitors/{uuid}/analytics", name="ui.monitor_analytics")
@page("read")
async def monitor_analytics(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    days = period(request)
    if days is None:
        return error_page(request, viewer, 400, DAYS_ERROR)
    common = _common(request, viewer, days)
    uuid, org_id = request.match_info["uuid"].lower(), viewer.org.id
    now = request.app[appkeys.CLOCK].now()
    window = max(request.app[appkeys.SETTINGS].stats_window, 1)

    def read(conn: sqlite3.Connection) -> dict[str, Any] | None:
        m = monitors.by_uuid(conn, uuid)
        if m is None or m.org_id != org_id:
            return None
        report = analytics.monitor_report(conn, m, now, days=days, window=window,
                                          tz=common["zone"])  # fmt: skip
        return {
            "m": m,
            "report": report,
            "limits": analytics.thresholds(conn, m, window=window),
            "runs": stats.finished_runs_since(conn, [m.id], report.since),
        }

    found = await request.app[appkeys.DB].read(read)
    if found is None:
        return not_found(request, viewer, "monitor")
    report: analytics.MonitorReport = found["report"]
    limits: analytics.Thresholds = found["limits"]
    fmt = Fmt(now, common["zone"])
    timeline = charts.duration_timeline(
        found["runs"], report.since, report.until, fmt.zone, limit=limits.limit,
        median=report.durations.p50,
    )  # fmt: skip
    return render(
        request, "ui/monitor_analytics.html", viewer, timeline=timeline, window=window,
        **found, **common, **_charts(report, common["zone"]),
    )  # fmt: skip
