"""Pruning: pings beyond the kept count, and runs and incidents older than the retention period."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tokiflow.clock import FakeClock
from tokiflow.engine import retention
from tokiflow.engine.monitors import build_spec, create_monitor
from tokiflow.engine.pings import PRUNE_EVERY, PingEvent, ingest
from tokiflow.engine.scheduler import Scheduler
from tokiflow.licensing import UNLIMITED
from tokiflow.storage import incidents, orgs, pings, rollups, runs
from tokiflow.storage.database import Database


async def _setup(tmp_path: Path, clock: FakeClock) -> tuple[Database, Scheduler, int, str]:
    db = Database(tmp_path / "d" / "tokiflow.db")
    await db.open()
    now = clock.now()
    org = await db.write(lambda c: orgs.ensure_default(c, now))
    spec = build_spec(org_id=org.id, name="job", period="1h")
    m = await db.write(lambda c: create_monitor(c, spec, now, limits=UNLIMITED))
    return db, Scheduler(db, clock, started_at=now), m.id, m.uuid


async def test_it_keeps_only_the_newest_pings_of_a_monitor(
    tmp_path: Path, clock: FakeClock
) -> None:
    db, scheduler, monitor_id, uuid = await _setup(tmp_path, clock)
    keep = 150
    total = 3 * PRUNE_EVERY + 7
    for i in range(total):
        ev = PingEvent(kind="log", received_at=clock.now(), uuid=uuid, body=f"{i}".encode())
        await ingest(db, scheduler, ev, pings_kept=keep, limits=UNLIMITED)
    count = await db.read(lambda c: pings.count(c, monitor_id))
    # Pruning runs every PRUNE_EVERY pings, so at most PRUNE_EVERY extra are kept in between.
    assert keep <= count < keep + PRUNE_EVERY
    newest = await db.read(lambda c: pings.recent(c, monitor_id, limit=1))
    assert newest[0].n == total and newest[0].body == f"{total - 1}".encode()
    oldest_kept = await db.read(
        lambda c: c.execute("SELECT min(n) FROM pings WHERE monitor_id = ?", (monitor_id,))
    )
    assert oldest_kept.fetchone()[0] == total - count + 1
    await db.close()


async def test_it_deletes_runs_and_resolved_incidents_past_retention_only(
    tmp_path: Path, clock: FakeClock
) -> None:
    db, scheduler, monitor_id, uuid = await _setup(tmp_path, clock)
    for kind in ("start", "fail", "start", "success"):
        ev = PingEvent(kind=kind, received_at=clock.now(), uuid=uuid)
        await ingest(db, scheduler, ev, pings_kept=1000, limits=UNLIMITED)
    [resolved] = await db.read(
        lambda c: c.execute("SELECT id FROM incidents WHERE state = 'resolved'").fetchall()
    )
    await clock.advance(10 * 86400)
    ev = PingEvent(kind="start", received_at=clock.now(), uuid=uuid)
    await ingest(db, scheduler, ev, pings_kept=1000, limits=UNLIMITED)
    await ingest(
        db,
        scheduler,
        PingEvent(kind="fail", received_at=clock.now(), uuid=uuid),
        pings_kept=1000,
        limits=UNLIMITED,
    )
    deleted = await retention.prune_once(db, clock.now(), retention_seconds=5 * 86400)
    assert deleted == 5  # two old runs, the old resolved incident and its two flips
    left = await db.read(lambda c: runs.recent(c, monitor_id))
    assert [r.status for r in left] == ["fail"]
    assert await db.read(lambda c: incidents.get(c, resolved[0])) is None
    assert [i.kind for i in await db.read(lambda c: incidents.current(c, monitor_id))] == ["FAIL"]
    await db.close()


async def test_open_runs_and_open_incidents_are_never_pruned(
    tmp_path: Path, clock: FakeClock
) -> None:
    db, scheduler, monitor_id, uuid = await _setup(tmp_path, clock)
    await ingest(
        db,
        scheduler,
        PingEvent(kind="fail", received_at=clock.now(), uuid=uuid),
        pings_kept=9,
        limits=UNLIMITED,
    )
    await ingest(
        db,
        scheduler,
        PingEvent(kind="start", received_at=clock.now(), uuid=uuid),
        pings_kept=9,
        limits=UNLIMITED,
    )
    later = clock.now() + dt.timedelta(days=400)
    assert await retention.prune_once(db, later, retention_seconds=86400) == 1  # the flip
    assert len(await db.read(lambda c: runs.open_runs(c, monitor_id))) == 1
    assert len(await db.read(lambda c: incidents.current(c, monitor_id))) == 1
    await db.close()


async def test_runs_past_retention_leave_the_rollups_even_beyond_one_batch(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # More old successful runs than one batch: none may be deleted without being taken out of
    # the analytics rollups (or the organisation report would count runs that are gone).
    monkeypatch.setattr(retention, "BATCH", 2)
    db, scheduler, monitor_id, uuid = await _setup(tmp_path, clock)
    for kind in ("start", "success") * 5:
        await clock.advance(60)
        ev = PingEvent(kind=kind, received_at=clock.now(), uuid=uuid)
        await ingest(db, scheduler, ev, pings_kept=1000, limits=UNLIMITED)
    buckets = " + ".join(rollups.BUCKET_COLUMNS)
    counted = f"SELECT coalesce(sum({buckets}), 0) FROM monitor_hours"
    assert (await db.read(lambda c: c.execute(counted).fetchone()))[0] == 5
    await clock.advance(10 * 86400)
    assert await retention.prune_once(db, clock.now(), 86400) >= 5
    assert await db.read(lambda c: runs.recent(c, monitor_id)) == []
    assert (await db.read(lambda c: c.execute(counted).fetchone()))[0] == 0
    await db.close()
