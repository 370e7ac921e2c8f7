"""Analytics per monitor and per organisation over 7, 30 or 90 days: health score, uptime, MTBF,
MTTR, failure-rate trend, run duration distribution, failure heatmap and reliability ranking.

The maths is pure functions over rows (flips, runs, ping counts); `monitor_report` and
`org_report` read those rows from storage and take `now` from the caller's clock. Every result is
a frozen dataclass of JSON-ready values (`as_json` turns it into dicts and lists).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from tokiflow.engine.anomaly import percentile, stdev
from tokiflow.engine.schedules import ScheduleError, next_due, schedule_from_row
from tokiflow.storage import monitors as monitor_store
from tokiflow.storage import stats
from tokiflow.storage.monitors import Monitor
from tokiflow.storage.stats import DayCount, FlipRow, RunRow

PERIODS = (7, 30, 90)
HEALTH_DAYS = 7
HEALTH_START = 100
HEALTH_FAILURE = -5
HEALTH_MISSED = -10
HEALTH_LATE = -3
HEALTH_ON_TIME = 2
UP_STATES = ("up", "late")  # late is still inside the grace time: the job is not down yet
MAX_MISSED_PER_OUTAGE = 1000
# Upper bounds of the duration histogram buckets, in seconds (1-2-5 steps); the last is open.
BUCKETS = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400)
RANKED = 5


def as_json(value: Any) -> Any:
    """A report as plain dicts and lists (dataclasses, dates and datetimes converted)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: as_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): as_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [as_json(v) for v in value]
    if isinstance(value, dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


# -- pure functions -----------------------------------------------------------------------------


def health_score(*, failures: int, missed: int, late: int, on_time: int) -> int:
    """100, -5 per failure, -10 per missed run, -3 per late run, +2 per on-time success,
    clamped to 0-100."""
    score = (
        HEALTH_START
        + HEALTH_FAILURE * failures
        + HEALTH_MISSED * missed
        + HEALTH_LATE * late
        + HEALTH_ON_TIME * on_time
    )
    return max(0, min(100, score))


@dataclass(frozen=True)
class Interval:
    """A stretch of time a monitor spent in one status."""

    status: str
    start: dt.datetime
    end: dt.datetime
    entered_from: str | None  # the status before it (None: it started before the window)

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


def intervals(
    flips: Sequence[FlipRow], before: str | None, current: str, start: dt.datetime, end: dt.datetime
) -> list[Interval]:
    """The statuses a monitor went through between start and end, from its flips (oldest first)
    and its status just before `start` (None: no flip tells; the first flip's old status, or the
    current status, is used)."""
    status = before or (flips[0].old_status if flips else current)
    cursor, came_from = start, None
    out: list[Interval] = []
    for f in flips:
        if f.at < start or f.at > end:
            continue
        if f.at > cursor:
            out.append(Interval(status, cursor, f.at, came_from))
        status, cursor, came_from = f.new_status, f.at, f.old_status
    if end > cursor:
        out.append(Interval(status, cursor, end, came_from))
    return out


def uptime_percent(spans: Iterable[Interval]) -> float | None:
    """Time up (or late, in grace) over time up or down, in percent; None without either
    (a monitor that was new or paused the whole time)."""
    up = down = 0.0
    for s in spans:
        if s.status in UP_STATES:
            up += s.seconds
        elif s.status == "down":
            down += s.seconds
    if up + down == 0:
        return None
    if down == 0:
        return 100.0  # exactly, not 99.99999999999999 from summed float spans
    return round(100.0 * up / (up + down), 6)


@dataclass(frozen=True)
class Reliability:
    """Failures (entries into down), mean time between them and mean time to recover."""

    outages: int
    recovered: int
    mtbf_seconds: float | None
    mttr_seconds: float | None
    up_seconds: float
    down_seconds: float


def reliability(spans: Sequence[Interval]) -> Reliability:
    """MTBF = time up / outages started in the window; MTTR = mean length of the outages that
    started and ended in it (an outage still going on has no repair time yet)."""
    up = sum(s.seconds for s in spans if s.status in UP_STATES)
    down = sum(s.seconds for s in spans if s.status == "down")
    started = [i for i, s in enumerate(spans) if s.status == "down" and s.entered_from is not None]
    repaired = [spans[i].seconds for i in started if i + 1 < len(spans)]
    return Reliability(
        outages=len(started),
        recovered=len(repaired),
        mtbf_seconds=up / len(started) if started else None,
        mttr_seconds=sum(repaired) / len(repaired) if repaired else None,
        up_seconds=up,
        down_seconds=down,
    )


def missed_runs(spans: Sequence[Interval], m: Monitor) -> int:
    """Runs that never pinged: every outage that began as a missed deadline (late -> down)
    counts one, plus each further due time of the schedule while it lasted."""
    schedule = schedule_from_row(m.schedule_kind, m.period, m.cron, m.tz)
    total = 0
    for s in spans:
        if s.status != "down" or s.entered_from != "late":
            continue
        total += 1
        when = s.start
        for _ in range(MAX_MISSED_PER_OUTAGE):
            try:
                when = next_due(schedule, when)
            except ScheduleError:
                break
            if when >= s.end:
                break
            total += 1
    return total


@dataclass(frozen=True)
class DayRate:
    day: dt.date
    successes: int
    failures: int
    rate: float | None  # failures / (successes + failures); None on a day without finishes


def daily_failure_rates(
    counts: Iterable[DayCount], timeouts: Iterable[RunRow], first: dt.date, days: int
) -> list[DayRate]:
    """Failure rate per UTC day: fail pings and timed-out runs over all finishes."""
    ok = {first + dt.timedelta(days=i): 0 for i in range(days)}
    bad = dict.fromkeys(ok, 0)
    for c in counts:
        if c.day in ok:
            (ok if c.kind == "success" else bad)[c.day] += c.count
    for r in timeouts:
        day = r.finished_at.date()
        if r.status == "timeout" and day in bad:
            bad[day] += 1
    return [
        DayRate(d, ok[d], bad[d], bad[d] / (ok[d] + bad[d]) if ok[d] + bad[d] else None) for d in ok
    ]


def trend_slope(rates: Sequence[DayRate]) -> float | None:
    """Least-squares slope of the daily failure rate, in rate per day (positive: worsening);
    None with fewer than two days that had finishes."""
    points = [(i, r.rate) for i, r in enumerate(rates) if r.rate is not None]
    if len(points) < 2:
        return None
    mx = sum(x for x, _ in points) / len(points)
    my = sum(y for _, y in points) / len(points)
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / sxx


@dataclass(frozen=True)
class Bucket:
    le: float | None  # upper bound in seconds (None: everything longer)
    count: int


def histogram(durations: Iterable[float]) -> list[Bucket]:
    """Run durations in 1-2-5 second buckets (empty buckets at both ends left out)."""
    counts = [0] * (len(BUCKETS) + 1)
    for d in durations:
        i = next((i for i, edge in enumerate(BUCKETS) if d <= edge), len(BUCKETS))
        counts[i] += 1
    used = [i for i, c in enumerate(counts) if c]
    if not used:
        return []
    bounds: list[float | None] = [*BUCKETS, None]
    return [Bucket(bounds[i], counts[i]) for i in range(used[0], used[-1] + 1)]


def heatmap(times: Iterable[dt.datetime], tz: str = "UTC") -> list[list[int]]:
    """Failures by weekday (rows, Monday first) and hour of day (24 columns), in `tz`."""
    zone = ZoneInfo(tz)
    grid = [[0] * 24 for _ in range(7)]
    for t in times:
        local = t.astimezone(zone)
        grid[local.weekday()][local.hour] += 1
    return grid


@dataclass(frozen=True)
class Durations:
    """Successful run durations: Welford totals over all runs, exact percentiles over the recent
    window."""

    runs: int
    mean: float | None
    stdev: float | None
    min: float | None
    max: float | None
    window: int
    p50: float | None
    p95: float | None
    p99: float | None


def durations(s: stats.RunStats, recent: Sequence[float]) -> Durations:
    ordered = sorted(recent)

    def pct(q: float) -> float | None:
        return percentile(ordered, q) if ordered else None

    return Durations(
        runs=s.runs,
        mean=s.mean if s.runs else None,
        stdev=stdev(s) if s.runs > 1 else None,
        min=s.min_duration,
        max=s.max_duration,
        window=len(ordered),
        p50=pct(50),
        p95=pct(95),
        p99=pct(99),
    )


# -- reports --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Health:
    score: int
    failures: int
    missed: int
    late: int
    on_time: int


@dataclass(frozen=True)
class MonitorReport:
    uuid: str
    name: str
    status: str
    days: int
    since: dt.datetime
    until: dt.datetime
    health: Health
    uptime_percent: float | None
    reliability: Reliability
    failure_trend: list[DayRate]
    failure_trend_slope: float | None
    durations: Durations
    duration_histogram: list[Bucket]
    failure_heatmap: list[list[int]]
    output_sizes: list[int]


def _since(now: dt.datetime, days: int) -> dt.datetime:
    return now - dt.timedelta(days=days)


def clip(spans: Iterable[Interval], since: dt.datetime) -> list[Interval]:
    """The spans from `since` on; one that began earlier is cut and does not count as entered
    (an outage that began before the window is not a new outage inside it)."""
    return [
        s if s.start >= since else dataclasses.replace(s, start=since, entered_from=None)
        for s in spans
        if s.end > since
    ]


def _health(
    conn: sqlite3.Connection, m: Monitor, spans: Sequence[Interval], runs: Iterable[RunRow],
    since: dt.datetime,
) -> Health:  # fmt: skip
    clipped = clip(spans, since)
    counts = stats.ping_counts_since(conn, m.id, since)
    failures = counts.get("fail", 0)
    failures += sum(1 for r in runs if r.status == "timeout" and r.finished_at >= since)
    late = sum(1 for s in clipped if s.entered_from == "late" and s.status == "up")
    missed = missed_runs(clipped, m)
    on_time = max(counts.get("success", 0) - late, 0)
    return Health(
        health_score(failures=failures, missed=missed, late=late, on_time=on_time),
        failures, missed, late, on_time,
    )  # fmt: skip


def monitor_report(
    conn: sqlite3.Connection, m: Monitor, now: dt.datetime, *, days: int = 7, window: int = 100
) -> MonitorReport:
    """Everything the analytics page shows for one monitor over the last `days` days."""
    period_days = max(days, HEALTH_DAYS)
    since = _since(now, period_days)
    start = max(since, m.created_at)
    flips, before = stats.flips_since(conn, [m.id], start)
    spans = intervals(flips, before.get(m.id), m.status, start, now)
    counts = stats.ping_days_since(conn, [m.id], since)
    finished = stats.finished_runs_since(conn, [m.id], since)
    report_since = _since(now, days)
    window_spans = clip(spans, report_since)
    rates = daily_failure_rates(counts, finished, (now - dt.timedelta(days=days - 1)).date(), days)
    fails = [t for _, t in stats.fail_times_since(conn, [m.id], report_since)]
    fails += [
        r.finished_at for r in finished if r.status == "timeout" and r.finished_at >= report_since
    ]
    run_stats = stats.get(conn, m.id)
    recent = stats.recent_durations(conn, m.id, window)
    return MonitorReport(
        uuid=m.uuid,
        name=m.name,
        status=m.status,
        days=days,
        since=report_since,
        until=now,
        health=_health(conn, m, spans, finished, _since(now, HEALTH_DAYS)),
        uptime_percent=uptime_percent(window_spans),
        reliability=reliability(window_spans),
        failure_trend=rates,
        failure_trend_slope=trend_slope(rates),
        durations=durations(run_stats, recent),
        duration_histogram=histogram(
            r.duration
            for r in finished
            if r.status == "success" and r.duration is not None and r.finished_at >= report_since
        ),
        failure_heatmap=heatmap(fails, m.tz),
        output_sizes=list(run_stats.recent_sizes),
    )


@dataclass(frozen=True)
class Ranked:
    uuid: str
    name: str
    health: int
    uptime_percent: float | None
    outages: int


@dataclass(frozen=True)
class OrgReport:
    org: str
    days: int
    since: dt.datetime
    until: dt.datetime
    monitors: int
    health: float | None  # the average of the monitors' scores
    uptime_percent: float | None  # time-weighted over every monitor
    reliability: Reliability
    failure_trend: list[DayRate]
    failure_trend_slope: float | None
    failure_heatmap: list[list[int]]
    most_reliable: list[Ranked]
    least_reliable: list[Ranked]


def org_report(
    conn: sqlite3.Connection, org_id: int, org_slug: str, now: dt.datetime, *, days: int = 7
) -> OrgReport:
    """The organisation's totals over the last `days` days, and its best and worst monitors."""
    reports = [
        monitor_report(conn, m, now, days=days, window=1)
        for m in monitor_store.list_for_org(conn, org_id)
    ]
    up = sum(r.reliability.up_seconds for r in reports)
    down = sum(r.reliability.down_seconds for r in reports)
    outages = sum(r.reliability.outages for r in reports)
    repairs = [
        (r.reliability.mttr_seconds, r.reliability.recovered)
        for r in reports
        if r.reliability.mttr_seconds is not None
    ]
    repaired = sum(n for _, n in repairs)
    trend = [
        DayRate(day.day, s, f, f / (s + f) if s + f else None)
        for day, s, f in (
            (
                day,
                sum(r.failure_trend[i].successes for r in reports),
                sum(r.failure_trend[i].failures for r in reports),
            )
            for i, day in enumerate(reports[0].failure_trend if reports else [])
        )
    ]
    grid = [[sum(r.failure_heatmap[d][h] for r in reports) for h in range(24)] for d in range(7)]
    ranked = sorted(
        (
            Ranked(r.uuid, r.name, r.health.score, r.uptime_percent, r.reliability.outages)
            for r in reports
        ),
        key=lambda x: (x.health, x.uptime_percent or 0.0, -x.outages, x.name),
    )
    return OrgReport(
        org=org_slug,
        days=days,
        since=_since(now, days),
        until=now,
        monitors=len(reports),
        health=sum(r.health.score for r in reports) / len(reports) if reports else None,
        uptime_percent=100.0 * up / (up + down) if up + down else None,
        reliability=Reliability(
            outages=outages,
            recovered=repaired,
            mtbf_seconds=up / outages if outages else None,
            mttr_seconds=sum(t * n for t, n in repairs) / repaired if repaired else None,
            up_seconds=up,
            down_seconds=down,
        ),
        failure_trend=trend,
        failure_trend_slope=trend_slope(trend),
        failure_heatmap=grid,
        most_reliable=list(reversed(ranked[-RANKED:])),
        least_reliable=ranked[:RANKED],
    )
