"""Runtime statistics against a reference computation, and the analytics reports: health score,
uptime, MTBF/MTTR, failure trend, duration histogram, failure heatmap and ranking."""

from __future__ import annotations

import datetime as dt
import random
import statistics
from pathlib import Path

import pytest

from tokiflow.clock import FakeClock
from tokiflow.engine import analytics, anomaly
from tokiflow.engine.analytics import Interval
from tokiflow.engine.monitors import build_spec, create_monitor
from tokiflow.engine.pings import PingEvent, ingest
from tokiflow.engine.scheduler import Scheduler
from tokiflow.licensing import UNLIMITED
from tokiflow.storage import monitors, orgs, stats
from tokiflow.storage.database import Database
from tokiflow.storage.monitors import Monitor
from tokiflow.storage.stats import DayCount, FlipRow, RunRow

T0 = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)  # a Monday
H = 3600


async def _open(path: Path, clock: FakeClock) -> tuple[Database, Scheduler]:
    db = Database(path)
    await db.open()
    return db, Scheduler(db, clock, started_at=clock.now())


async def _monitor(db: Database, now: dt.datetime, name: str = "job") -> Monitor:
    org = await db.write(lambda c: orgs.ensure_default(c, now))
    spec = build_spec(org_id=org.id, name=name, period="1h", grace="5m")
    return await db.write(lambda c: create_monitor(c, spec, now, limits=UNLIMITED))


async def _ping(db: Database, sch: Scheduler, clock: FakeClock, m: Monitor, kind: str) -> None:
    ev = PingEvent(kind=kind, received_at=clock.now(), uuid=m.uuid)
    await ingest(db, sch, ev, pings_kept=1000, stats_window=40, limits=UNLIMITED)


async def test_running_statistics_match_a_reference_computation_across_a_restart(
    tmp_path: Path, clock: FakeClock
) -> None:
    path = tmp_path / "data" / "tokiflow.db"
    rng = random.Random(20260302)
    # Durations in whole microseconds, as the clock measures them; a wide spread of scales.
    series = [rng.randrange(1, 10**9) / 10**6 for _ in range(70)]
    series += [rng.lognormvariate(3, 1.5) // 1e-6 / 10**6 for _ in range(50)]
    db, sch = await _open(path, clock)
    m = await _monitor(db, clock.now())
    for i, seconds in enumerate(series):
        if i == 60:  # the server restarts between two runs
            await db.close()
            db, sch = await _open(path, clock)
        await _ping(db, sch, clock, m, "start")
        await clock.advance(seconds, settle=0)
        await _ping(db, sch, clock, m, "success")
        await clock.advance(10, settle=0)
    s = await db.read(lambda c: stats.get(c, m.id))
    fresh = await db.read(lambda c: monitors.get(c, m.id))
    assert fresh is not None
    report = await db.read(lambda c: analytics.monitor_report(c, fresh, clock.now(), window=40))
    await db.close()
    assert s.runs == len(series)
    assert s.mean == pytest.approx(statistics.fmean(series), rel=1e-12)
    assert anomaly.stdev(s) == pytest.approx(statistics.stdev(series), rel=1e-9)
    assert (s.min_duration, s.max_duration) == (min(series), max(series))
    d = report.durations
    recent = series[-40:]
    cuts = statistics.quantiles(recent, n=100, method="inclusive")
    assert d.window == 40
    assert d.p50 == pytest.approx(statistics.median(recent), rel=1e-12)
    assert (d.p95, d.p99) == (pytest.approx(cuts[94], rel=1e-12), pytest.approx(cuts[98]))
    assert d.mean == s.mean and d.runs == len(series)


@pytest.mark.parametrize(
    ("failures", "missed", "late", "on_time", "score"),
    [
        (0, 0, 0, 0, 100),
        (1, 0, 0, 0, 95),
        (0, 1, 0, 0, 90),
        (0, 0, 1, 0, 97),
        (2, 1, 1, 3, 100 - 10 - 10 - 3 + 6),
        (0, 12, 0, 5, 0),  # clamped at 0
        (5, 0, 0, 100, 100),  # clamped at 100
    ],
)
def test_the_health_score_adds_up_events_and_stays_between_0_and_100(
    failures: int, missed: int, late: int, on_time: int, score: int
) -> None:
    got = analytics.health_score(failures=failures, missed=missed, late=late, on_time=on_time)
    assert got == score


def _flip(minutes: int, old: str, new: str) -> FlipRow:
    return FlipRow(1, T0 + dt.timedelta(minutes=minutes), old, new)


def test_uptime_mtbf_and_mttr_come_from_the_time_spent_in_each_status() -> None:
    flips = [
        _flip(60, "up", "late"),
        _flip(65, "late", "down"),
        _flip(125, "down", "up"),
        _flip(300, "up", "paused"),
        _flip(360, "paused", "up"),
        _flip(400, "up", "down"),
    ]
    spans = analytics.intervals(flips, "up", "down", T0, T0 + dt.timedelta(minutes=460))
    assert [(s.status, s.seconds / 60) for s in spans] == [
        ("up", 60), ("late", 5), ("down", 60), ("up", 175), ("paused", 60), ("up", 40),
        ("down", 60),
    ]  # fmt: skip
    # Paused time counts neither way: 280 minutes up or late, 120 down.
    assert analytics.uptime_percent(spans) == pytest.approx(100 * 280 / 400)
    r = analytics.reliability(spans)
    assert (r.outages, r.recovered) == (2, 1)
    assert r.mtbf_seconds == 280 * 60 / 2
    assert r.mttr_seconds == 60 * 60  # the outage still going on has no repair time yet


def test_an_outage_that_began_before_the_window_is_not_a_new_one_inside_it() -> None:
    spans = analytics.intervals(
        [_flip(30, "down", "up")], "down", "up", T0, T0 + dt.timedelta(hours=2)
    )
    clipped = analytics.clip(spans, T0 + dt.timedelta(minutes=10))
    assert [(s.status, s.entered_from, s.seconds) for s in clipped] == [
        ("down", None, 1200), ("up", "down", 5400),
    ]  # fmt: skip
    assert analytics.reliability(clipped).outages == 0


def test_missed_runs_count_every_due_time_of_an_outage(clock: FakeClock) -> None:
    m = _fake_monitor(period=3600)
    down = Interval("down", T0, T0 + dt.timedelta(hours=3, minutes=30), "late")
    after_fail = Interval("down", T0, T0 + dt.timedelta(hours=5), "up")
    assert analytics.missed_runs([down, after_fail], m) == 1 + 3


def _fake_monitor(period: int = 3600, tz: str = "UTC") -> Monitor:
    base = {name: None for name in monitors._NAMES}
    base.update(schedule_kind="period", period=period, tz=tz, cron=None)
    return Monitor(**base)  # type: ignore[arg-type]


def test_the_failure_trend_is_a_daily_rate_with_a_least_squares_slope() -> None:
    day = T0.date()
    counts = [
        DayCount(1, day, "success", 9), DayCount(1, day, "fail", 1),
        DayCount(1, day + dt.timedelta(days=2), "success", 6),
        DayCount(1, day + dt.timedelta(days=2), "fail", 2),
    ]  # fmt: skip
    timeouts = [RunRow(1, "timeout", T0 + dt.timedelta(days=2, hours=3), None)]
    rates = analytics.daily_failure_rates(counts, timeouts, day, 3)
    assert [(r.successes, r.failures, r.rate) for r in rates] == [
        (9, 1, 0.1), (0, 0, None), (6, 3, pytest.approx(1 / 3)),
    ]  # fmt: skip
    assert analytics.trend_slope(rates) == pytest.approx((1 / 3 - 0.1) / 2)
    assert analytics.trend_slope(rates[:2]) is None


def test_durations_fall_into_1_2_5_buckets_and_failures_into_a_weekday_hour_grid() -> None:
    assert [(b.le, b.count) for b in analytics.histogram([3, 4, 4.9, 12, 31, 59.9, 100000])] == [
        (5, 3), (10, 0), (30, 1), (60, 2), (120, 0), (300, 0), (600, 0), (1800, 0), (3600, 0),
        (7200, 0), (21600, 0), (86400, 0), (None, 1),
    ]  # fmt: skip
    assert analytics.histogram([]) == []
    # 02:30 UTC on a Tuesday is 21:30 on Monday in New York.
    fail = dt.datetime(2026, 3, 3, 2, 30, tzinfo=dt.UTC)
    assert analytics.heatmap([fail])[1][2] == 1
    grid = analytics.heatmap([fail, fail], "America/New_York")
    assert grid[0][21] == 2 and sum(map(sum, grid)) == 2


async def test_a_monitor_report_adds_up_a_day_of_pings_deadlines_and_failures(
    tmp_path: Path, clock: FakeClock
) -> None:
    db, sch = await _open(tmp_path / "data" / "tokiflow.db", clock)
    m = await _monitor(db, clock.now())
    steady = await _monitor(db, clock.now(), "steady")

    pings = [(h * 60, "success", steady) for h in range(9)] + [
        (0, "success", m), (60, "success", m), (120, "success", m),
        (335, "success", m),  # down since 03:05 for missing 03:00; 04:05 and 05:05 missed too
        (397, "success", m),  # two minutes late (due 06:35)
        (420, "fail", m),
        (450, "success", m),
    ]  # fmt: skip
    for minute in sorted({p[0] for p in pings} | {180, 185, 395, 480}):
        when = T0 + dt.timedelta(minutes=minute)
        await clock.set(when, settle=0)
        for _, kind, target in (p for p in pings if p[0] == minute):
            await _ping(db, sch, clock, target, kind)
        await sch.tick(when)
    now = clock.now()
    fresh = await db.read(lambda c: monitors.get(c, m.id))
    assert fresh is not None
    report = await db.read(lambda c: analytics.monitor_report(c, fresh, now, days=7))
    org = await db.read(lambda c: analytics.org_report(c, m.org_id, "default", now, days=30))
    await db.close()
    h = report.health
    assert (h.failures, h.missed, h.late, h.on_time) == (1, 3, 1, 5)
    assert h.score == 100 - 5 - 30 - 3 + 10
    assert report.uptime_percent == pytest.approx(100 * 5 / 8)
    r = report.reliability
    assert (r.outages, r.recovered, r.mtbf_seconds, r.mttr_seconds) == (2, 2, 2.5 * H, 1.5 * H)
    assert [(d.successes, d.failures) for d in report.failure_trend][-1] == (6, 1)
    assert len(report.failure_trend) == 7
    assert report.failure_heatmap[0][19] == 1  # Monday 19:00 UTC
    assert [x.name for x in org.most_reliable] == ["steady", "job"]
    assert [x.name for x in org.least_reliable] == ["job", "steady"]
    assert org.health == (72 + 100) / 2
    assert org.uptime_percent == pytest.approx(100 * (5 + 8) / 16)
    assert org.reliability.mttr_seconds == 1.5 * H
    assert org.failure_trend[-1].successes == 6 + 9
    json = analytics.as_json(org)
    assert json["since"] == "2026-01-31T20:00:00Z" and json["failure_trend"][-1]["day"] == (
        "2026-03-02"
    )


def test_a_database_from_before_analytics_upgrades_with_default_thresholds(
    tmp_path: Path,
) -> None:
    from sqlite_utils.migrations import Migrations

    from tokiflow.storage import migrations
    from tokiflow.storage.db import connect

    path = tmp_path / "old.db"
    previous = Migrations(migrations.MIGRATION_SET)
    for step in migrations.migrations._migrations[:2]:  # m0001_initial, m0002_alerts
        previous()(step.fn)
    migrations.migrate(path, previous)
    conn = connect(path)
    conn.execute(
        "INSERT INTO orgs(id, slug, name, ping_key, created_at) VALUES "
        "(1, 'default', 'Default', 'k' , '2026-03-02T12:00:00.000000Z')"
    )
    conn.execute(
        "INSERT INTO monitors(id, uuid, org_id, name, slug, schedule_kind, period, grace, "
        "created_at, updated_at) VALUES (1, 'u', 1, 'old', 'old', 'period', 3600, 60, "
        "'2026-03-02T12:00:00.000000Z', '2026-03-02T12:00:00.000000Z')"
    )
    conn.close()
    assert migrations.migrate(path)[0] == "m0003_analytics"
    conn = connect(path)
    m = monitors.get(conn, 1)
    assert m is not None
    assert (m.anomaly_alerts, m.anomaly_factor, m.anomaly_z, m.output_drop) == (
        True, 1.5, 3.0, 0.3,
    )  # fmt: skip
    assert (m.output_limit, m.output_tracked) == (None, False)
    assert stats.get(conn, 1) == stats.RunStats(1)
    conn.close()
