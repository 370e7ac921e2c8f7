"""Analytics per monitor and per organisation over 7, 30 or 90 days: health score, uptime, MTBF,
MTTR, failure-rate trend, run duration distribution, failure heatmap and reliability ranking.

The maths is pure functions over rows (flips, runs, ping counts); `monitor_report` and
`org_report` (its bulk reading is in `analytics_org`) read those rows from storage and take `now`
from the caller's clock; `thresholds` says what the anomaly rules would apply to the next run.
Every result is a frozen dataclass of JSON-ready values (`as_json` turns it into dicts and lists).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from tokiflow.engine.anomaly import MIN_HISTORY, OUTPUT_RUNS, percentile, stdev
from tokiflow.engine.schedules import Schedule, ScheduleError, next_due, schedule_from_row
from tokiflow.storage import stats
from tokiflow.storage.monitors import Monitor
from tokiflow.storage.stats import DayCount, FlipRow, RunRow, Scope

if TYPE_CHECKING:
    from tokiflow.engine.analytics_org import OrgReport

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
    return _percent(up, down)


def _percent(up: float, down: float) -> float | None:
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


def _tally(spans: Sequence[Interval]) -> tuple[float, float, int, int, float]:
    """(up seconds, down seconds, outages begun, outages ended, their total length): what
    `reliability` and `uptime_percent` make of the spans, in one pass and no objects (the
    organisation report does this for every monitor that flipped)."""
    up = down = repair = 0.0
    outages = recovered = 0
    last = len(spans) - 1
    for i, s in enumerate(spans):
        seconds = (s.end - s.start).total_seconds()
        if s.status in UP_STATES:
            up += seconds
        elif s.status == "down":
            down += seconds
            if s.entered_from is not None:
                outages += 1
                if i < last:
                    recovered += 1
                    repair += seconds
    return up, down, outages, recovered, repair


def missed_runs(spans: Sequence[Interval], m: Monitor) -> int:
    """Runs that never pinged: every outage that began as a missed deadline (late -> down)
    counts one, plus each further due time of the schedule while it lasted."""
    return _missed(spans, lambda: schedule_from_row(m.schedule_kind, m.period, m.cron, m.tz))


def _missed(spans: Sequence[Interval], schedule_of: Callable[[], Schedule]) -> int:
    """`missed_runs`, reading the schedule only for an outage that began as a missed deadline."""
    total = 0
    schedule = None
    for s in spans:
        if s.status != "down" or s.entered_from != "late":
            continue
        total += 1
        schedule = schedule or schedule_of()
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
    counts: Iterable[DayCount],
    timeouts: Iterable[RunRow],
    first: dt.date,
    days: int,
    zone: dt.tzinfo = dt.UTC,
) -> list[DayRate]:
    """Failure rate per day (in `zone`, UTC by default): fail pings and timed-out runs over all
    finishes. `counts` are already per day of that zone."""
    ok = {first + dt.timedelta(days=i): 0 for i in range(days)}
    bad = dict.fromkeys(ok, 0)
    for c in counts:
        if c.day in ok:
            (ok if c.kind == "success" else bad)[c.day] += c.count
    for r in timeouts:
        day = r.finished_at.astimezone(zone).date()
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
    return buckets_of(counts)


def buckets_of(counts: Sequence[int]) -> list[Bucket]:
    """Counts per bucket of BUCKETS (and one more for longer) as Buckets, the empty ones at both
    ends left out."""
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
#
# Both reports read the same rows the same way (storage.stats' bulk reads over a scope: one
# monitor, or every monitor of an organisation), so an organisation of 10,000 monitors costs a
# handful of queries and a tight loop over the monitors, not a report per monitor.

HOUR_TEXT, MINUTE_TEXT = 13, 16  # characters of a stored timestamp up to the hour, the minute


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
    clipped: Sequence[Interval], schedule_of: Callable[[], Schedule], successes: int, fails: int,
    timeouts: Iterable[RunRow], since: dt.datetime,
) -> Health:  # fmt: skip
    """The health score from the spans since `since` (clipped there), the success and fail pings
    and the timed-out runs."""
    failures = fails + sum(1 for r in timeouts if r.finished_at >= since)
    late = sum(1 for s in clipped if s.entered_from == "late" and s.status == "up")
    missed = _missed(clipped, schedule_of)
    on_time = max(successes - late, 0)
    return Health(
        health_score(failures=failures, missed=missed, late=late, on_time=on_time),
        failures, missed, late, on_time,
    )  # fmt: skip


def _score(
    clipped: Sequence[Interval], schedule_of: Callable[[], Schedule], successes: int, fails: int,
    timeouts: Iterable[RunRow], since: dt.datetime,
) -> int:  # fmt: skip
    """`_health(...).score` without the Health."""
    failures = fails + sum(1 for r in timeouts if r.finished_at >= since)
    late = missed = 0
    for s in clipped:
        if s.entered_from == "late":
            late += s.status == "up"
            missed += s.status == "down"
    if missed:
        missed = _missed(clipped, schedule_of)
    on_time = max(successes - late, 0)
    return health_score(failures=failures, missed=missed, late=late, on_time=on_time)


@dataclass(frozen=True)
class _Days:
    """The calendar days a trend covers: `days` days up to today, in `zone`."""

    zone: ZoneInfo | None  # None: UTC days, and the heatmap in each monitor's own zone
    first: dt.date
    today: dt.date
    start: dt.datetime  # the first day's midnight, in UTC

    @property
    def day_zone(self) -> dt.tzinfo:
        return self.zone or dt.UTC


def _days(now: dt.datetime, days: int, tz: str | None) -> _Days:
    zone = None if tz is None else ZoneInfo(tz)
    today = now.astimezone(zone or dt.UTC).date()
    first = today - dt.timedelta(days=days - 1)
    start = dt.datetime.combine(first, dt.time(), zone or dt.UTC).astimezone(dt.UTC)
    return _Days(zone, first, today, start)


def bucket_width(zones: Iterable[str], start: dt.datetime, end: dt.datetime) -> int:
    """How much of a stored UTC timestamp to group pings by so that each group falls in one local
    hour of every zone: the hour, when all the zones are whole hours off UTC from `start` to
    `end` (looked at once a day), else the minute."""
    for name in set(zones):
        zone = ZoneInfo(name)
        when = start
        while True:
            offset = when.astimezone(zone).utcoffset()
            if offset is None or offset.total_seconds() % 3600:
                return MINUTE_TEXT
            if when >= end:
                break
            when = min(when + dt.timedelta(days=1), end)
    return HOUR_TEXT


def _trend_and_heatmap(
    conn: sqlite3.Connection, scope: Scope, zones: dict[int, str], timeouts: Sequence[RunRow],
    now: dt.datetime, days: int, span: _Days,
) -> tuple[list[DayRate], list[list[int]]]:  # fmt: skip
    """The daily failure rates and the weekday x hour failure grid of the monitors in scope
    (`zones`: each monitor's own time zone)."""
    report_since = _since(now, days)
    start = min(report_since, span.start)
    heat_zones = set(zones.values()) if span.zone is None else {span.zone.key}
    width = bucket_width(heat_zones | {str(span.day_zone)}, start, now)
    per_day: dict[tuple[dt.date, str], int] = {}
    for text, kind, count in stats.ping_counts(conn, scope, start, width):
        when = dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
        day = when.astimezone(span.day_zone).date()
        if span.first <= day <= span.today:
            per_day[day, kind] = per_day.get((day, kind), 0) + count
    grid = [[0] * 24 for _ in range(7)]
    for zone, text, count in stats.fail_counts(conn, scope, report_since, width):
        when = dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
        local = when.astimezone(span.zone or ZoneInfo(zone))
        grid[local.weekday()][local.hour] += count
    for r in timeouts:
        if r.status == "timeout" and r.finished_at >= report_since:
            local = r.finished_at.astimezone(span.zone or ZoneInfo(zones.get(r.monitor_id, "UTC")))
            grid[local.weekday()][local.hour] += 1
    counts = [DayCount(0, day, kind, n) for (day, kind), n in per_day.items()]
    rates = daily_failure_rates(counts, timeouts, span.first, days, span.day_zone)
    return rates, grid


def monitor_report(
    conn: sqlite3.Connection, m: Monitor, now: dt.datetime, *, days: int = 7, window: int = 100,
    tz: str | None = None,
) -> MonitorReport:  # fmt: skip
    """Everything the analytics page shows for one monitor over the last `days` days. Days are
    UTC days and the heatmap is in the monitor's time zone, unless `tz` names a zone for both."""
    period_days = max(days, HEALTH_DAYS)
    since = _since(now, period_days)
    start = max(since, m.created_at)
    flips, before = stats.flips_since(conn, [m.id], start)
    spans = intervals(flips, before.get(m.id), m.status, start, now)
    span = _days(now, days, tz)
    finished = stats.finished_runs_since(conn, [m.id], min(since, span.start))
    report_since = _since(now, days)
    window_spans = clip(spans, report_since)
    scope = stats.monitor_scope(m.id)
    timeouts = [r for r in finished if r.status == "timeout"]
    rates, grid = _trend_and_heatmap(conn, scope, {m.id: m.tz}, timeouts, now, days, span)
    health_since = _since(now, HEALTH_DAYS)
    ok, bad = stats.finishes_by_monitor(conn, scope, health_since).get(m.id, (0, 0))
    schedule_of = partial(schedule_from_row, m.schedule_kind, m.period, m.cron, m.tz)
    run_stats = stats.get(conn, m.id)
    recent = stats.recent_durations(conn, m.id, window)
    return MonitorReport(
        uuid=m.uuid,
        name=m.name,
        status=m.status,
        days=days,
        since=report_since,
        until=now,
        health=_health(clip(spans, health_since), schedule_of, ok, bad, timeouts, health_since),
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
        failure_heatmap=grid,
        output_sizes=list(run_stats.recent_sizes),
    )


# -- anomaly thresholds ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Thresholds:
    """The anomaly rules as they stand for a monitor's next run (seconds and bytes)."""

    alerts: bool
    factor: float
    z: float
    runs: int  # successful runs with a duration so far
    needed: int  # runs of history before the rules apply
    median: float | None  # of the recent runs (the window)
    mean: float | None
    stdev: float | None
    median_limit: float | None  # factor x the median
    sigma_limit: float | None  # mean + z standard deviations
    limit: float | None  # a run longer than this (both limits) opens an ANOMALY incident
    output_drop: float
    output_average: float | None  # of the last OUTPUT_RUNS outputs, once they are tracked
    output_limit: float | None  # an output smaller than this opens an OUTPUT incident


def thresholds(conn: sqlite3.Connection, m: Monitor, *, window: int = 100) -> Thresholds:
    """The limits the anomaly rules would apply to the monitor's next run (None before the
    monitor has the history they need)."""
    s = stats.get(conn, m.id)
    recent = stats.recent_durations(conn, m.id, max(window, 1))
    ready = s.runs >= MIN_HISTORY
    center = percentile(sorted(recent), 50) if recent else (s.mean if s.runs else None)
    sd = stdev(s) if s.runs else None
    median_limit = m.anomaly_factor * center if ready and center is not None else None
    sigma_limit = s.mean + m.anomaly_z * (sd or 0.0) if ready else None
    limit = None
    if median_limit is not None and sigma_limit is not None:
        limit = max(median_limit, sigma_limit)
    sizes = s.recent_sizes
    output_ready = s.outputs >= MIN_HISTORY and len(sizes) >= OUTPUT_RUNS and m.output_drop > 0
    average = sum(sizes) / len(sizes) if output_ready else None
    return Thresholds(
        alerts=m.anomaly_alerts,
        factor=m.anomaly_factor,
        z=m.anomaly_z,
        runs=s.runs,
        needed=MIN_HISTORY,
        median=center,
        mean=s.mean if s.runs else None,
        stdev=sd,
        median_limit=median_limit,
        sigma_limit=sigma_limit,
        limit=limit,
        output_drop=m.output_drop,
        output_average=average,
        output_limit=m.output_drop * average if average else None,
    )


def org_report(
    conn: sqlite3.Connection, org_id: int, org_slug: str, now: dt.datetime, *, days: int = 7,
    tz: str | None = None,
) -> OrgReport:  # fmt: skip
    """The organisation's totals over the last `days` days, and its best and worst monitors (see
    `analytics_org`, which reads in bulk with this module's functions)."""
    from tokiflow.engine import analytics_org  # it imports this module: here, not at the top

    return analytics_org.org_report(conn, org_id, org_slug, now, days=days, tz=tz)
