"""The organisation's analytics report: the same figures as a `monitor_report` of each of its
monitors, added up (health averaged, uptime, MTBF and MTTR weighted by time and outages, trend,
heatmap and durations summed, the five most and least reliable monitors), without making one.

Each table is read once for all the monitors (storage.stats' bulk reads over the organisation),
pings and runs through their hourly rollups (storage.rollups: small rows per monitor and hour,
and the few fail pings and timeouts by their partial indexes), so that 10,000 monitors cost a
handful of queries over small rows: the monitors that had something happen in the
period (a flip, a finish or a timeout) are worked out one by one with the analytics functions,
the rest (the same status throughout, nothing finished) in one tight loop over plain tuples.
"""

from __future__ import annotations

import datetime as dt
import heapq
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from zoneinfo import ZoneInfo

from tokiflow.engine.analytics import (
    HEALTH_DAYS,
    HEALTH_START,
    RANKED,
    UP_STATES,
    Bucket,
    DayRate,
    Reliability,
    _Days,
    _days,
    _percent,
    _score,
    _since,
    _tally,
    bucket_width,
    buckets_of,
    clip,
    daily_failure_rates,
    health_score,
    intervals,
    trend_slope,
)
from tokiflow.engine.schedules import Schedule, schedule_from_row
from tokiflow.storage import rollups, stats
from tokiflow.storage.stats import DayCount, FlipRow, RunRow
from tokiflow.storage.timefmt import from_db, to_db


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
    duration_histogram: list[Bucket]


@dataclass
class _Totals:
    up: float = 0.0
    down: float = 0.0
    outages: int = 0
    recovered: int = 0
    repair_seconds: float = 0.0
    health: int = 0


def _flips_by_monitor(flips: Iterable[FlipRow]) -> dict[int, list[FlipRow]]:
    out: dict[int, list[FlipRow]] = {}
    for f in flips:
        out.setdefault(f.monitor_id, []).append(f)
    return out


# A ranking key: (health, uptime or 0, -outages, name, id); the least reliable sort first.
_Key = tuple[int, float, int, str, int]


@dataclass(frozen=True)
class _Period:
    now: dt.datetime
    since: dt.datetime  # the start of what is read: the period, at least the health days
    report_since: dt.datetime
    health_since: dt.datetime


# A monitor as the organisation report first reads it: (id, name, status, created_at as stored).
_Row = tuple[int, str, str, str]


def _eventful(
    row: _Row, flips: list[FlipRow], before: str | None, p: _Period, t: _Totals,
    finishes: tuple[int, int], timeouts: Sequence[RunRow], schedule_of: Callable[[], Schedule],
) -> tuple[_Key, float | None]:  # fmt: skip
    """Add up a monitor with flips in the period; its ranking key and uptime."""
    mid, name, status, created = row
    start = max(p.since, from_db(created))
    earlier = [f for f in flips if f.at < start]
    if earlier:
        before = earlier[-1].new_status
    inside = [f for f in flips if f.at >= start]
    if len(inside) > 1:
        inside.sort(key=lambda f: f.at)
    spans = intervals(inside, before, status, start, p.now)
    window = clip(spans, p.report_since)
    up, down, outages, recovered, repair = _tally(window)
    t.up += up
    t.down += down
    t.outages += outages
    t.recovered += recovered
    t.repair_seconds += repair
    recent = window if p.health_since == p.report_since else clip(spans, p.health_since)
    score = _score(recent, schedule_of, *finishes, timeouts, p.health_since)
    uptime = _percent(up, down)
    return (score, uptime or 0.0, -outages, name, mid), uptime


def _steady(
    row: _Row, p: _Period, t: _Totals, finishes: tuple[int, int], timeouts: Sequence[RunRow]
) -> tuple[_Key, float | None]:
    """Add up a monitor with no flip in the period but with finishes: one status throughout (a
    status changes only with a flip), so no outage began and nothing was late or missed."""
    mid, name, status, created = row
    seconds = max((p.now - max(from_db(created), p.report_since)).total_seconds(), 0.0)
    uptime = None
    if seconds and status in UP_STATES:
        t.up, uptime = t.up + seconds, 100.0
    elif seconds and status == "down":
        t.down, uptime = t.down + seconds, 0.0
    ok, bad = finishes
    failures = bad + sum(1 for r in timeouts if r.finished_at >= p.health_since)
    score = health_score(failures=failures, missed=0, late=0, on_time=ok)
    return (score, uptime or 0.0, 0, name, mid), uptime


def _quiet(
    rows: Iterable[_Row], busy: dict[int, _Row], p: _Period, t: _Totals
) -> tuple[list[_Key], dict[int, float | None], int]:
    """Add up the monitors with nothing in the period (no flip, finish or timeout): the most of
    them, as plain tuples in one tight loop. Each scores 100 and is up (100%), down (0%) or
    neither the whole time; only the first and last five of each kind by name can be ranked, so
    only they come back as keys, with their uptimes and the count of quiet monitors. The rows of
    the `busy` monitors are put in it, for the caller."""
    since_text = to_db(p.report_since)
    now = p.now
    whole = (now - p.report_since).total_seconds()
    up: list[tuple[str, int]] = []
    other: list[tuple[str, int]] = []
    down_ids: set[int] = set()
    up_seconds = down_seconds = 0.0
    parse = dt.datetime.fromisoformat  # as timefmt.from_db, without a call in between
    for row in rows:
        mid, name, status, created = row
        if mid in busy:
            busy[mid] = row
            continue
        seconds = whole if created <= since_text else (now - parse(created)).total_seconds()
        if seconds > 0 and status in UP_STATES:
            up_seconds += seconds
            up.append((name, mid))
            continue
        if seconds > 0 and status == "down":
            down_seconds += seconds
            down_ids.add(mid)
        other.append((name, mid))
    count = len(up) + len(other)
    t.up += up_seconds
    t.down += down_seconds
    t.health += HEALTH_START * count
    keys: list[_Key] = []
    uptimes: dict[int, float | None] = {}
    for names, uptime in ((up, 100.0), (other, 0.0)):
        names.sort()
        for name, mid in {*names[:RANKED], *names[-RANKED:]}:
            keys.append((HEALTH_START, uptime, 0, name, mid))
            uptimes[mid] = uptime if uptime or mid in down_ids else None
    return keys, uptimes, count


def _fits_quarters(zone: dt.tzinfo, start: dt.datetime, end: dt.datetime) -> bool:
    """Whether every local day of `zone` from `start` to `end` begins on a UTC quarter hour
    (looked at once a day, as `analytics.bucket_width`)."""
    when = start
    while True:
        offset = when.astimezone(zone).utcoffset()
        if offset is None or offset.total_seconds() % 900:
            return False
        if when >= end:
            return True
        when = min(when + dt.timedelta(days=1), end)


@dataclass(frozen=True)
class _Timeout:
    monitor_id: int
    status: str
    finished_at: dt.datetime
    tz: str


def _success_days(
    conn: sqlite3.Connection, org_id: int, zone: dt.tzinfo, start: dt.datetime, now: dt.datetime
) -> Iterable[tuple[dt.date, int]]:
    """(local day, success pings) from the hour `start` falls in, per quarter hour of the rollups
    (or per minute of the pings, for a zone off UTC by other than quarter hours)."""
    if _fits_quarters(zone, start, now):
        quarter = dt.timedelta(minutes=15)
        for hour, *quarters in rollups.successes_by_quarter(conn, org_id, start):
            when = dt.datetime.fromisoformat(hour + ":00:00+00:00")
            for i, n in enumerate(quarters):
                yield (when + i * quarter).astimezone(zone).date(), n
        return
    width = bucket_width({str(zone)}, start, now)
    for text, kind, n in stats.ping_counts(conn, stats.org_scope(org_id), start, width):
        if kind == "success":
            yield dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC).astimezone(zone).date(), n


def _trend_and_heatmap(
    conn: sqlite3.Connection, org_id: int, timeouts: Sequence[_Timeout], now: dt.datetime,
    days: int, span: _Days,
) -> tuple[list[DayRate], list[list[int]]]:  # fmt: skip
    """`analytics._trend_and_heatmap` for the organisation, from the rollups: success pings per
    quarter hour (a local day begins on one), fail pings and timeouts by their partial indexes."""
    report_since = _since(now, days)
    start = min(report_since, span.start)
    zone = span.day_zone
    per_day: dict[tuple[dt.date, str], int] = {}

    def count(day: dt.date, kind: str, n: int) -> None:
        if n and span.first <= day <= span.today:
            per_day[day, kind] = per_day.get((day, kind), 0) + n

    for day, n in _success_days(conn, org_id, zone, start, now):
        count(day, "success", n)
    heat_zones = rollups.zones(conn, org_id) if span.zone is None else {span.zone.key}
    width = bucket_width(heat_zones | {str(zone)}, start, now)
    grid = [[0] * 24 for _ in range(7)]
    for tz, text, n, recent in rollups.fail_groups(conn, org_id, start, report_since, width):
        when = dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)
        count(when.astimezone(zone).date(), "fail", n)
        if recent:
            local = when.astimezone(span.zone or ZoneInfo(tz))
            grid[local.weekday()][local.hour] += recent
    for r in timeouts:
        if r.status == "timeout" and r.finished_at >= report_since:
            local = r.finished_at.astimezone(span.zone or ZoneInfo(r.tz))
            grid[local.weekday()][local.hour] += 1
    counts = [DayCount(0, day, kind, n) for (day, kind), n in per_day.items()]
    runs = [RunRow(r.monitor_id, r.status, r.finished_at, None) for r in timeouts]
    return daily_failure_rates(counts, runs, span.first, days, zone), grid


def _finishes(
    conn: sqlite3.Connection, org_id: int, since: dt.datetime
) -> dict[int, tuple[int, int]]:
    """(success pings, fail pings) from `since` on per monitor (only monitors with any)."""
    ok = rollups.successes_by_monitor(conn, org_id, since)
    bad = rollups.fails_by_monitor(conn, org_id, since)
    return {mid: (ok.get(mid, 0), bad.get(mid, 0)) for mid in ok.keys() | bad.keys()}


def org_report(
    conn: sqlite3.Connection, org_id: int, org_slug: str, now: dt.datetime, *, days: int = 7,
    tz: str | None = None,
) -> OrgReport:  # fmt: skip
    """The organisation's totals over the last `days` days, and its best and worst monitors: the
    same figures as a `monitor_report` of each monitor, added up. Days are UTC days and each
    monitor's failures go into the heatmap in its own time zone, unless `tz` names a zone.
    Pings and runs are read from the hourly rollups (storage.rollups), not one by one."""
    p = _Period(now, _since(now, max(days, HEALTH_DAYS)), _since(now, days),
                _since(now, HEALTH_DAYS))  # fmt: skip
    span = _days(now, days, tz)
    scope = stats.org_scope(org_id)
    rows = stats.monitor_states(conn, org_id)
    flips = _flips_by_monitor(stats.flips_in(conn, scope, p.since))
    first = min(p.since, span.start)
    finishes = _finishes(conn, org_id, p.health_since)
    timeouts = [
        _Timeout(mid, status, from_db(at), zone)
        for mid, status, at, zone in rollups.timeouts(conn, org_id, first)
    ]
    timeouts_by: dict[int, list[RunRow]] = {}
    for r in timeouts:
        timeouts_by.setdefault(r.monitor_id, []).append(
            RunRow(r.monitor_id, r.status, r.finished_at, None)
        )
    gone: _Row = (0, "", "", "")
    busy = dict.fromkeys(flips.keys() | finishes.keys() | timeouts_by.keys(), gone)
    t = _Totals()
    keys, uptimes, _ = _quiet(rows, busy, p, t)
    before = stats.statuses_before(conn, flips, p.since)

    def schedule_of(mid: int) -> Schedule:  # only for an outage that began with a missed run
        b = stats.briefs(conn, [mid])[mid]
        return schedule_from_row(b.schedule_kind, b.period, b.cron, b.tz)

    for mid, row in busy.items():
        if row is gone:  # deleted between two reads
            continue
        args = (p, t, finishes.get(mid, (0, 0)), timeouts_by.get(mid, ()))
        if mid in flips:
            key, uptimes[mid] = _eventful(
                row, flips[mid], before.get(mid), *args, partial(schedule_of, mid)
            )
        else:
            key, uptimes[mid] = _steady(row, *args)
        t.health += key[0]
        keys.append(key)
    most, least = heapq.nlargest(RANKED, keys), heapq.nsmallest(RANKED, keys)
    named = stats.briefs(conn, {k[4] for k in most + least})

    def ranked(key: _Key) -> Ranked:
        return Ranked(named[key[4]].uuid, key[3], key[0], uptimes[key[4]], -key[2])

    trend, grid = _trend_and_heatmap(conn, org_id, timeouts, now, days, span)
    return OrgReport(
        org=org_slug,
        days=days,
        since=p.report_since,
        until=now,
        monitors=len(rows),
        health=t.health / len(rows) if rows else None,
        uptime_percent=100.0 * t.up / (t.up + t.down) if t.up + t.down else None,
        reliability=Reliability(
            outages=t.outages,
            recovered=t.recovered,
            mtbf_seconds=t.up / t.outages if t.outages else None,
            mttr_seconds=t.repair_seconds / t.recovered if t.recovered else None,
            up_seconds=t.up,
            down_seconds=t.down,
        ),
        failure_trend=trend,
        failure_trend_slope=trend_slope(trend),
        failure_heatmap=grid,
        most_reliable=[ranked(k) for k in most if k[4] in named],
        least_reliable=[ranked(k) for k in least if k[4] in named],
        duration_histogram=buckets_of(rollups.duration_counts(conn, org_id, p.report_since)),
    )
