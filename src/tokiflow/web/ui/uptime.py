"""The uptime bar of the monitor page: one small SVG cell per day (last 90 days), coloured by the
share of the day the monitor was up, with the percentage in each cell's title.

Uptime follows the analytics rules (`engine.analytics`): time up or late (still in grace) over
time up, late or down; a day the monitor did not exist, or spent new or paused, has no figure.
Days are the viewer's calendar days. The statuses come from the monitor's flips, cut at the day
boundaries in one pass (no query per day)."""

from __future__ import annotations

import bisect
import datetime as dt
import sqlite3
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape

from tokiflow.engine import analytics
from tokiflow.storage import stats
from tokiflow.storage.monitors import Monitor

DAYS = 90
CELL = 8  # width of a day cell
GAP = 2
HEIGHT = 28
# Colour classes, best first (thresholds in percent). The fills are in app.css: Okabe-Ito
# colours that differ in lightness too, so they stay apart with colour-vision deficiencies.
LEVELS = ((100.0, "u-full", "100%"), (99.0, "u-high", "99% or more"),
          (95.0, "u-mid", "95% or more"), (0.0, "u-low", "under 95%"))  # fmt: skip
NO_DATA = ("u-none", "no data")


@dataclass(frozen=True)
class Day:
    day: dt.date
    up_seconds: float
    down_seconds: float

    @property
    def percent(self) -> float | None:
        total = self.up_seconds + self.down_seconds
        if total <= 0:
            return None
        if self.down_seconds == 0:
            return 100.0
        return 100.0 * self.up_seconds / total


@dataclass(frozen=True)
class Uptime:
    days: list[Day]
    percent: float | None  # over the whole period
    tz: str


def _day_starts(first: dt.date, count: int, zone: ZoneInfo) -> list[dt.datetime]:
    """Midnight of each day from `first` (and of the day after the last), in UTC."""
    return [
        dt.datetime.combine(first + dt.timedelta(days=i), dt.time(), zone).astimezone(dt.UTC)
        for i in range(count + 1)
    ]


def split_by_day(
    spans: list[analytics.Interval], starts: list[dt.datetime]
) -> list[tuple[float, float]]:
    """(up, down) seconds per day for spans cut at the day boundaries `starts` (one more than
    the days). Pure: spans and boundaries are both in time order."""
    totals = [[0.0, 0.0] for _ in range(len(starts) - 1)]
    for span in spans:
        if span.status in analytics.UP_STATES:
            slot = 0
        elif span.status == "down":
            slot = 1
        else:
            continue
        j = max(bisect.bisect_right(starts, span.start) - 1, 0)
        while j < len(totals) and starts[j] < span.end:
            lo = max(span.start, starts[j])
            hi = min(span.end, starts[j + 1])
            if hi > lo:
                totals[j][slot] += (hi - lo).total_seconds()
            j += 1
    return [(up, down) for up, down in totals]


def read_uptime(
    conn: sqlite3.Connection, m: Monitor, now: dt.datetime, tz: str, days: int = DAYS
) -> Uptime:
    """The monitor's uptime per day over the last `days` days (today included, up to now)."""
    try:
        zone = ZoneInfo(tz or "UTC")
    except Exception:  # an unknown zone stored long ago: UTC rather than fail
        zone = ZoneInfo("UTC")
    today = now.astimezone(zone).date()
    first = today - dt.timedelta(days=days - 1)
    starts = _day_starts(first, days, zone)
    start = max(starts[0], m.created_at)
    flips, before = stats.flips_since(conn, [m.id], start)
    spans = analytics.intervals(flips, before.get(m.id), m.status, start, now)
    totals = split_by_day(spans, starts)
    out = [Day(first + dt.timedelta(days=i), up, down) for i, (up, down) in enumerate(totals)]
    return Uptime(out, analytics.uptime_percent(spans), zone.key)


def level(percent: float | None) -> tuple[str, str]:
    """The colour class and legend words for a day's uptime."""
    if percent is None:
        return NO_DATA
    for threshold, css, words in LEVELS:
        if percent >= threshold:
            return css, words
    return LEVELS[-1][1], LEVELS[-1][2]


def show_percent(percent: float | None) -> str:
    if percent is None:
        return "no data"
    if percent >= 100.0:
        return "100%"
    # Never round a day with downtime up to 100%.
    return f"{min(percent, 99.99):.2f}%".replace(".00%", "%")


def bar(uptime: Uptime) -> Markup:
    """The SVG bar, oldest day on the left; each cell's <title> gives the day and its uptime."""
    n = len(uptime.days)
    width = n * (CELL + GAP) - GAP
    bad = sum(1 for d in uptime.days if d.percent is not None and d.percent < 100.0)
    label = (
        f"Uptime per day over the last {n} days: {show_percent(uptime.percent)} overall, "
        f"{bad} {'day' if bad == 1 else 'days'} with downtime"
    )
    parts = [
        f'<svg class="uptime" viewBox="0 0 {width} {HEIGHT}" width="{width}" height="{HEIGHT}" '
        f'role="img" aria-label="{escape(label)}" preserveAspectRatio="none">'
    ]
    for i, d in enumerate(uptime.days):
        css, _ = level(d.percent)
        title = f"{d.day.isoformat()}: {show_percent(d.percent)}"
        if d.percent is not None and d.down_seconds:
            title += f" up ({_minutes(d.down_seconds)} down)"
        elif d.percent is not None:
            title += " up"
        parts.append(
            f'<rect class="{css}" x="{i * (CELL + GAP)}" y="0" width="{CELL}" height="{HEIGHT}" '
            f'rx="2" data-day="{d.day.isoformat()}"><title>{escape(title)}</title></rect>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _minutes(seconds: float) -> str:
    if seconds < 60:
        return f"{int(seconds)} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    return f"{seconds / 3600:.1f} h"


def legend() -> list[tuple[str, str]]:
    """(colour class, words) for the legend under the bar."""
    return [(css, words) for _, css, words in LEVELS] + [NO_DATA]
