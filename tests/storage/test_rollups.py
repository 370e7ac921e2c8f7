"""The hourly rollups the writer keeps with each ping (`monitor_hours`) always equal the rollups
computed from scratch from the pings and runs kept: after a random history of runs, failures and
timeouts, after pings beyond `pings_kept` are pruned, and after retention deletes old runs; and
the organisation report read from them still equals its monitors' reports added up."""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
from pathlib import Path

from tokiflow.clock import FakeClock
from tokiflow.engine import analytics, retention
from tokiflow.engine.monitors import build_spec, create_monitor
from tokiflow.engine.pings import PingEvent, ingest
from tokiflow.engine.scheduler import Scheduler
from tokiflow.licensing import UNLIMITED
from tokiflow.storage import monitors, orgs, rollups
from tokiflow.storage.database import Database

T0 = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)
COUNTS = ", ".join((*rollups.QUARTERS, *rollups.BUCKET_COLUMNS))


DAYS = ", ".join(("successes", *rollups.BUCKET_COLUMNS))


def snapshot(conn: sqlite3.Connection) -> dict[tuple[str, int, str], tuple[int, ...]]:
    """The counts of every rollup row that counts something (per monitor and hour, per monitor
    and day, per organisation and hour)."""
    out = {}
    for table, key, columns in (("monitor_hours", "monitor_id, hour", COUNTS),
                                ("monitor_days", "monitor_id, day", DAYS),
                                ("org_hours", "org_id, hour", COUNTS)):  # fmt: skip
        for r in conn.execute(f"SELECT {key}, {columns} FROM {table}"):
            if any(r[2:]):
                out[table, r[0], r[1]] = tuple(r[2:])
    return out


def bounds_hold(conn: sqlite3.Connection) -> bool:
    """Every success ping and successful timed run lies in its hour row's number/id range."""
    pings = conn.execute(
        "SELECT count(*) FROM pings p LEFT JOIN monitor_hours h ON h.monitor_id = p.monitor_id "
        "AND h.hour = substr(p.created_at, 1, 13) WHERE p.kind = 'success' "
        "AND (h.hour IS NULL OR p.n NOT BETWEEN h.first_n AND h.last_n)"
    ).fetchone()[0]
    runs = conn.execute(
        "SELECT count(*) FROM runs r LEFT JOIN monitor_hours h ON h.monitor_id = r.monitor_id "
        "AND h.hour = substr(r.finished_at, 1, 13) WHERE r.status = 'success' "
        "AND r.duration IS NOT NULL AND (h.hour IS NULL OR r.id NOT BETWEEN h.first_run AND "
        "h.last_run)"
    ).fetchone()[0]
    return pings == 0 and runs == 0


def rebuilt(path: Path) -> dict[tuple[str, int, str], tuple[int, ...]]:
    """The rollups computed from scratch (on a connection of its own, rolled back after)."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("BEGIN")
        rollups.rebuild(conn)
        return snapshot(conn)
    finally:
        conn.rollback()
        conn.close()


async def test_the_rollups_equal_a_rebuild_after_pings_pruning_and_retention(
    tmp_path: Path,
) -> None:
    rng = random.Random(7)
    clock = FakeClock(T0 - dt.timedelta(days=20))
    path = tmp_path / "data" / "tokiflow.db"
    db = Database(path)
    await db.open()
    try:
        sch = Scheduler(db, clock, started_at=clock.now())
        org = await db.write(lambda c: orgs.ensure_default(c, clock.now()))
        made = []
        for i, fields in enumerate(
            ({"period": "1h", "grace": "10m"}, {"period": "30m", "max_runtime": "10m"},
             {"cron": "30 9 * * 1-5", "tz": "Asia/Kolkata", "grace": "1h"})
        ):  # fmt: skip
            spec = build_spec(org_id=org.id, name=f"job {i}", **fields)
            made.append(
                await db.write(
                    lambda c, s=spec: create_monitor(c, s, clock.now(), limits=UNLIMITED)
                )
            )
        while clock.now() < T0:
            await clock.advance(rng.randrange(60, 3 * 3600), settle=0)
            for m in made:
                kind = rng.choice(("start", "start", "success", "success", "fail", "log"))
                ev = PingEvent(kind=kind, received_at=clock.now(), uuid=m.uuid)
                # Few pings kept: every monitor has pings pruned (every 100th ping) many times.
                await ingest(db, sch, ev, pings_kept=40, limits=UNLIMITED)
            await sch.tick(clock.now())
        counts = await db.read(
            lambda c: c.execute(
                "SELECT sum(status = 'success'), sum(status = 'timeout'), min(n_pings) FROM runs, "
                "(SELECT min(n_pings) AS n_pings FROM monitors)"
            ).fetchone()
        )
        assert counts[0] > 20 and counts[1] > 0 and counts[2] > 100  # runs, timeouts, pruning
        kept = await db.read(snapshot)
        assert {k[0] for k in kept} == {"monitor_hours", "monitor_days", "org_hours"}
        assert kept == rebuilt(path)
        assert await db.read(bounds_hold)
        # Retention deletes the runs older than 10 days: their durations leave the rollups.
        deleted = await retention.prune_once(db, clock.now(), 10 * 86400)
        assert deleted > 0
        after = await db.read(snapshot)
        assert after != kept and after == rebuilt(path)
        assert await db.read(bounds_hold)
        # A deleted monitor's rows go, and its sums leave the organisation's.
        await db.write(lambda c: c.execute("DELETE FROM monitors WHERE id = ?", (made[0].id,)))
        assert await db.read(snapshot) == rebuilt(path)
        # The report from the pruned rollups still adds up its monitors' own reports.
        now = clock.now()
        for days in (7, 30):
            for tz in (None, "Asia/Kolkata"):
                got = await db.read(
                    lambda c, d=days, z=tz: analytics.org_report(c, org.id, "x", now, days=d, tz=z)
                )
                ones = await db.read(
                    lambda c, d=days, z=tz: [
                        analytics.monitor_report(c, m, now, days=d, window=1, tz=z)
                        for m in monitors.list_for_org(c, org.id)
                    ]
                )
                trend = [
                    (sum(d.successes for d in day), sum(d.failures for d in day))
                    for day in zip(*(r.failure_trend for r in ones), strict=True)
                ]
                assert [(d.successes, d.failures) for d in got.failure_trend] == trend
                hist: dict[float | None, int] = {}
                for r in ones:
                    for b in r.duration_histogram:
                        hist[b.le] = hist.get(b.le, 0) + b.count
                assert {b.le: b.count for b in got.duration_histogram if b.count} == {
                    k: v for k, v in hist.items() if v
                }
                assert got.health == sum(r.health.score for r in ones) / len(ones)
                grid = [[sum(r.failure_heatmap[d][h] for r in ones) for h in range(24)]
                        for d in range(7)]  # fmt: skip
                assert got.failure_heatmap == grid
    finally:
        await db.close()


def test_the_rollup_buckets_are_the_histogram_buckets() -> None:
    assert rollups.EDGES == analytics.BUCKETS
    assert [rollups.bucket_of(d) for d in (0.5, 1, 1.5, 86400, 86401)] == [0, 0, 1, 13, 14]


async def test_a_run_that_finished_too_fast_counts_its_ping_but_not_its_duration(
    tmp_path: Path,
) -> None:
    clock = FakeClock(T0)
    path = tmp_path / "data" / "tokiflow.db"
    db = Database(path)
    await db.open()
    try:
        sch = Scheduler(db, clock, started_at=clock.now())
        org = await db.write(lambda c: orgs.ensure_default(c, clock.now()))
        spec = build_spec(org_id=org.id, name="job", period="1h", min_runtime="1m")
        m = await db.write(lambda c: create_monitor(c, spec, clock.now(), limits=UNLIMITED))
        for kind, wait in (("start", 0), ("success", 5), ("start", 60), ("success", 120)):
            await clock.advance(wait, settle=0)
            ev = PingEvent(kind=kind, received_at=clock.now(), uuid=m.uuid)
            await ingest(db, sch, ev, pings_kept=1000, limits=UNLIMITED)
        kept = await db.read(snapshot)
        # Two success pings; one run too fast (failed), one of 120 s in the bucket up to 120 s.
        counts = kept["monitor_hours", m.id, "2026-03-02T12"]
        assert sum(counts[:4]) == 2
        assert counts[4:] == tuple(int(b == "b6") for b in rollups.BUCKET_COLUMNS)
        assert kept == rebuilt(path)
    finally:
        await db.close()
