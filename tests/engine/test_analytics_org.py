"""The organisation report reads each table once for all its monitors; these tests hold it to the
definition: the same figures as a report of each monitor, added up (health averaged, time
weighted, trends and heatmaps summed, ranked by health, uptime, fewer outages and name), over
random histories of pings, late and missed deadlines, failures and timeouts."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any

import pytest

from tokiflow.clock import FakeClock
from tokiflow.engine import analytics
from tokiflow.engine.monitors import build_spec, create_monitor
from tokiflow.engine.pings import PingEvent, ingest
from tokiflow.engine.scheduler import Scheduler
from tokiflow.licensing import UNLIMITED
from tokiflow.storage import monitors, orgs
from tokiflow.storage.database import Database

T0 = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)
SCHEDULES: list[dict[str, Any]] = [
    {"period": "1h", "grace": "10m"},
    {"period": "30m", "grace": "5m", "max_runtime": "10m"},
    {"cron": "0 */2 * * *", "tz": "America/New_York", "grace": "15m"},
    {"cron": "30 9 * * 1-5", "tz": "Asia/Kolkata", "grace": "1h"},
    {"period": "1d", "grace": "1h"},
    {"period": "2h", "grace": "20m", "max_runtime": "30m"},
]


def reference(conn: Any, org_id: int, now: dt.datetime, days: int, tz: str | None) -> dict:
    """The organisation's figures from one monitor_report per monitor (the definition)."""
    reports = [
        analytics.monitor_report(conn, m, now, days=days, window=1, tz=tz)
        for m in monitors.list_for_org(conn, org_id)
    ]
    up = sum(r.reliability.up_seconds for r in reports)
    down = sum(r.reliability.down_seconds for r in reports)
    repairs = [(r.reliability.mttr_seconds, r.reliability.recovered) for r in reports
               if r.reliability.mttr_seconds is not None]  # fmt: skip
    # Stable: ties keep the monitors' order (by name, then id), as the report defines.
    ranked = sorted(
        reports,
        key=lambda r: (r.health.score, r.uptime_percent or 0.0, -r.reliability.outages, r.name),
    )
    hist: dict[float | None, int] = {}
    for r in reports:
        for b in r.duration_histogram:
            hist[b.le] = hist.get(b.le, 0) + b.count
    trend = [
        [(d.successes, d.failures) for d in day]
        for day in zip(*(r.failure_trend for r in reports), strict=True)
    ]
    return {
        "monitors": len(reports),
        "health": sum(r.health.score for r in reports) / len(reports),
        "up": up,
        "down": down,
        "outages": sum(r.reliability.outages for r in reports),
        "recovered": sum(n for _, n in repairs),
        "repair": sum(t * n for t, n in repairs),
        "trend": [(sum(s for s, _ in day), sum(f for _, f in day)) for day in trend],
        "days": [d.day for d in reports[0].failure_trend],
        "grid": [
            [sum(r.failure_heatmap[d][h] for r in reports) for h in range(24)] for d in range(7)
        ],  # fmt: skip
        "least": [(r.uuid, r.health.score, r.reliability.outages) for r in ranked[:5]],
        "most": [(r.uuid, r.health.score, r.reliability.outages) for r in reversed(ranked[-5:])],
        "hist": {le: n for le, n in hist.items() if n},
    }


async def simulate(db: Database, clock: FakeClock, seed: int) -> int:
    """Monitors created over 40 days with random pings (runs, failures, silences that make them
    late, down and timed out), with the scheduler ticking along; returns the organisation id."""
    rng = random.Random(seed)
    sch = Scheduler(db, clock, started_at=clock.now())
    org = await db.write(lambda c: orgs.ensure_default(c, clock.now()))
    made = []
    for i in range(14):
        fields = SCHEDULES[i % len(SCHEDULES)]
        spec = build_spec(org_id=org.id, name=f"job {i % 11}", slug=f"job-{i}", **fields)
        made.append(await db.write(lambda c, s=spec: create_monitor(c, s, clock.now(),
                                                                     limits=UNLIMITED)))  # fmt: skip
        await clock.advance(rng.randrange(0, 3 * 86400), settle=0)
    quiet = set(rng.sample(range(len(made)), 4))  # never pinged: new the whole time
    # Monitors whose status stays put for weeks: up on a yearly schedule, down after one
    # failure, and one up the whole time that pings at every step.
    for name, fields, kind in (("yearly", {"cron": "0 0 1 1 *"}, "success"),
                               ("failed", {"period": "1h"}, "fail"),
                               ("steady", {"period": "1d", "grace": "1d"}, "success")):  # fmt: skip
        spec = build_spec(org_id=org.id, name=name, **fields)
        m = await db.write(lambda c, s=spec: create_monitor(c, s, clock.now(), limits=UNLIMITED))
        await ingest(db, sch, PingEvent(kind=kind, received_at=clock.now(), uuid=m.uuid),
                     pings_kept=1000, limits=UNLIMITED)  # fmt: skip
        if name == "steady":
            steady = m
    while clock.now() < T0:
        await clock.advance(rng.randrange(300, 4 * 3600), settle=0)
        ev = PingEvent(kind="success", received_at=clock.now(), uuid=steady.uuid)
        await ingest(db, sch, ev, pings_kept=1000, limits=UNLIMITED)
        for i, m in enumerate(made):
            if i in quiet or rng.random() < 0.5:
                continue
            kind = rng.choice(("start", "success", "success", "success", "fail", "start", "log"))
            status = rng.choice((None, None, 3)) if kind == "fail" else None
            ev = PingEvent(kind=kind, received_at=clock.now(), uuid=m.uuid, exit_status=status)
            await ingest(db, sch, ev, pings_kept=1000, stats_window=20, limits=UNLIMITED)
        await sch.tick(clock.now())
    return int(org.id)


@pytest.mark.parametrize("seed", [1, 2])
async def test_the_organisation_report_adds_up_its_monitors_reports(
    tmp_path: Path, seed: int
) -> None:
    clock = FakeClock(T0 - dt.timedelta(days=40))
    db = Database(tmp_path / "data" / "tokiflow.db")
    await db.open()
    try:
        org_id = await simulate(db, clock, seed)
        now = clock.now()
        timeouts = await db.read(
            lambda c: c.execute("SELECT count(*) FROM runs WHERE status = 'timeout'").fetchone()
        )
        assert timeouts[0] > 0  # the histories have every kind of event
        for days in analytics.PERIODS:
            for tz in (None, "Asia/Kolkata", "America/New_York"):
                ref = await db.read(lambda c, d=days, z=tz: reference(c, org_id, now, d, z))
                got = await db.read(
                    lambda c, d=days, z=tz: analytics.org_report(c, org_id, "x", now, days=d, tz=z)
                )
                where = (days, tz)
                r = got.reliability
                assert got.monitors == ref["monitors"] == 17, where
                assert got.health == ref["health"], where
                assert r.up_seconds == pytest.approx(ref["up"], rel=1e-12), where
                assert r.down_seconds == pytest.approx(ref["down"], rel=1e-12), where
                assert (r.outages, r.recovered) == (ref["outages"], ref["recovered"]), where
                assert r.outages > 0 and r.recovered > 0, where
                assert r.mttr_seconds == pytest.approx(ref["repair"] / ref["recovered"]), where
                assert got.uptime_percent == pytest.approx(
                    100 * ref["up"] / (ref["up"] + ref["down"])
                ), where
                assert [(d.successes, d.failures) for d in got.failure_trend] == ref["trend"]
                assert [d.day for d in got.failure_trend] == ref["days"], where
                assert got.failure_heatmap == ref["grid"], where
                assert sum(map(sum, got.failure_heatmap)) > 0, where
                assert [(x.uuid, x.health, x.outages) for x in got.least_reliable] == ref["least"]
                assert [(x.uuid, x.health, x.outages) for x in got.most_reliable] == ref["most"]
                assert {b.le: b.count for b in got.duration_histogram} == ref["hist"], where
    finally:
        await db.close()


async def test_a_heatmap_in_a_half_hour_zone_puts_each_failure_in_its_local_hour(
    tmp_path: Path,
) -> None:
    clock = FakeClock(T0)
    db = Database(tmp_path / "data" / "tokiflow.db")
    await db.open()
    try:
        sch = Scheduler(db, clock, started_at=clock.now())
        org = await db.write(lambda c: orgs.ensure_default(c, clock.now()))
        spec = build_spec(org_id=org.id, name="job", period="1d", grace="1d")
        m = await db.write(lambda c: create_monitor(c, spec, clock.now(), limits=UNLIMITED))
        # 12:20 and 12:40 UTC fall in one UTC hour but in two Kolkata hours (17:50, 18:10).
        for minutes in (20, 40):
            await clock.set(T0 + dt.timedelta(minutes=minutes), settle=0)
            ev = PingEvent(kind="fail", received_at=clock.now(), uuid=m.uuid)
            await ingest(db, sch, ev, pings_kept=100, limits=UNLIMITED)
        now = clock.now()
        got = await db.read(lambda c: analytics.org_report(c, org.id, "x", now, tz="Asia/Kolkata"))
        fresh = await db.read(lambda c: monitors.get(c, m.id))
        assert fresh is not None
        one = await db.read(lambda c: analytics.monitor_report(c, fresh, now, tz="Asia/Kolkata"))
    finally:
        await db.close()
    for grid in (got.failure_heatmap, one.failure_heatmap):
        assert (grid[0][17], grid[0][18]) == (1, 1) and sum(map(sum, grid)) == 2
