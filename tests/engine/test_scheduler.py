"""The scheduler and the deadline half of the state machine, driven by a fake clock and tick(now)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tokiflow.clock import FakeClock
from tokiflow.engine.monitors import build_spec, create_monitor
from tokiflow.engine.pings import PingEvent, ingest
from tokiflow.engine.scheduler import Scheduler
from tokiflow.licensing import UNLIMITED
from tokiflow.storage import incidents, monitors, orgs, runs
from tokiflow.storage.database import Database
from tokiflow.storage.monitors import Monitor

H = 3600


class Engine:
    def __init__(self, db: Database, clock: FakeClock, scheduler: Scheduler) -> None:
        self.db, self.clock, self.scheduler = db, clock, scheduler

    async def monitor(self, **kw: Any) -> Monitor:
        now = self.clock.now()
        org = await self.db.write(lambda c: orgs.ensure_default(c, now))
        kw.setdefault("name", "job")
        spec = build_spec(org_id=org.id, **kw)
        return await self.db.write(lambda c: create_monitor(c, spec, now, limits=UNLIMITED))

    async def ping(self, m: Monitor, kind: str = "success", **kw: Any) -> None:
        ev = PingEvent(kind=kind, received_at=self.clock.now(), uuid=m.uuid, **kw)
        await ingest(self.db, self.scheduler, ev, pings_kept=1000, limits=UNLIMITED)

    async def get(self, m: Monitor) -> Monitor:
        fresh = await self.db.read(lambda c: monitors.get(c, m.id))
        assert fresh is not None
        return fresh

    async def incidents(self, m: Monitor) -> list[incidents.Incident]:
        return await self.db.read(lambda c: incidents.current(c, m.id))

    async def at(self, when: dt.datetime) -> list[Any]:
        await self.clock.set(when)
        return await self.scheduler.tick(when)

    async def after(self, seconds: float) -> list[Any]:
        return await self.at(self.clock.now() + dt.timedelta(seconds=seconds))


async def _engine(path: Path, clock: FakeClock) -> tuple[Database, Scheduler]:
    db = Database(path)
    await db.open()
    scheduler = Scheduler(db, clock, started_at=clock.now())
    scheduler.load(await db.read(lambda c: list(monitors.deadlines(c))))
    return db, scheduler


@pytest.fixture
async def engine(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Engine]:
    db, scheduler = await _engine(tmp_path / "data" / "tokiflow.db", clock)
    yield Engine(db, clock, scheduler)
    await db.close()


async def test_a_new_monitor_has_no_deadline_until_its_first_ping(engine: Engine) -> None:
    m = await engine.monitor(period="1h", grace="5m")
    assert (await engine.get(m)).status == "new"
    assert engine.scheduler.deadline(m.id) is None
    assert await engine.after(10 * H) == []
    assert (await engine.get(m)).status == "new"


async def test_a_missed_ping_goes_late_then_down_with_a_missed_incident(engine: Engine) -> None:
    m = await engine.monitor(period="1h", grace="5m")
    start = engine.clock.now()
    await engine.ping(m)
    assert engine.scheduler.deadline(m.id) == start + dt.timedelta(hours=1)
    assert await engine.after(H - 1) == []
    assert (await engine.get(m)).status == "up"
    [late] = await engine.after(1)
    assert (late.old_status, late.new_status, late.incident_kind) == ("up", "late", None)
    assert engine.scheduler.deadline(m.id) == start + dt.timedelta(hours=1, minutes=5)
    assert await engine.after(299) == []
    [down] = await engine.after(1)
    assert (down.new_status, down.incident_kind) == ("down", "MISSED")
    [inc] = await engine.incidents(m)
    assert inc.kind == "MISSED" and inc.state == "open"
    assert "expected a ping by 2026-03-02 13:00 UTC (every 1h, grace 5m)" in inc.reason
    assert engine.scheduler.deadline(m.id) is None


async def test_a_ping_in_grace_brings_the_monitor_back_up_without_an_incident(
    engine: Engine,
) -> None:
    m = await engine.monitor(period="1h", grace="5m")
    await engine.ping(m)
    await engine.after(H + 60)
    assert (await engine.get(m)).status == "late"
    await engine.ping(m)
    assert (await engine.get(m)).status == "up"
    assert await engine.incidents(m) == []
    assert engine.scheduler.deadline(m.id) == engine.clock.now() + dt.timedelta(hours=1)


async def test_late_incidents_are_opened_only_when_the_monitor_asks_and_give_way_to_missed(
    engine: Engine,
) -> None:
    m = await engine.monitor(period="1h", grace="10m", late_incidents=True)
    await engine.ping(m)
    [late] = await engine.after(H)
    assert late.incident_kind == "LATE"
    [down] = await engine.after(600)
    assert down.incident_kind == "MISSED"
    assert [i.kind for i in await engine.incidents(m)] == ["MISSED"]


async def test_recovery_resolves_the_open_incident(engine: Engine) -> None:
    m = await engine.monitor(period="1h", grace="5m")
    await engine.ping(m)
    await engine.after(H)
    await engine.after(300)
    [inc] = await engine.incidents(m)
    await engine.ping(m)
    assert await engine.incidents(m) == []
    resolved = await engine.db.read(lambda c: incidents.get(c, inc.id))
    assert resolved is not None and resolved.state == "resolved"
    assert resolved.resolved_by == "recovered"


async def test_manual_resume_keeps_incidents_open_after_recovery(engine: Engine) -> None:
    m = await engine.monitor(period="1h", grace="5m", manual_resume=True)
    await engine.ping(m, "fail")
    await engine.ping(m)
    assert (await engine.get(m)).status == "up"
    assert [i.kind for i in await engine.incidents(m)] == ["FAIL"]


@pytest.mark.parametrize(
    ("cron", "tz", "ping_at", "due"),
    [
        ("0 3 * * *", "UTC", "2026-03-02T12:00", "2026-03-03T03:00"),
        ("*/15 * * * *", "UTC", "2026-03-02T12:07", "2026-03-02T12:15"),
        # 09:00 in New York is 14:00 UTC before the DST change on 2026-03-08 and 13:00 after.
        ("0 9 * * *", "America/New_York", "2026-03-07T15:00", "2026-03-08T13:00"),
        # 01:30 does not exist in London on 2026-03-29: the job is due when the gap ends (02:00 BST).
        ("30 1 * * *", "Europe/London", "2026-03-28T02:00", "2026-03-29T01:00"),
        ("30 1 * * *", "Europe/London", "2026-03-29T02:00", "2026-03-30T00:30"),
    ],
)
async def test_cron_deadlines_follow_the_monitor_time_zone(
    engine: Engine, cron: str, tz: str, ping_at: str, due: str
) -> None:
    await engine.clock.set(dt.datetime.fromisoformat(ping_at).replace(tzinfo=dt.UTC))
    m = await engine.monitor(cron=cron, tz=tz, grace="5m")
    await engine.ping(m)
    want = dt.datetime.fromisoformat(due).replace(tzinfo=dt.UTC)
    assert (await engine.get(m)).due_at == want
    assert engine.scheduler.deadline(m.id) == want


async def test_a_run_past_its_max_runtime_times_out(engine: Engine) -> None:
    m = await engine.monitor(period="1d", grace="1h", max_runtime="30m")
    rid = "8d4a7f0c-7c5e-4b8e-9d37-1f0b8f7f6a11"
    await engine.ping(m, "start", rid=rid)
    assert (await engine.get(m)).open_runs == 1
    assert await engine.after(1799) == []
    [tr] = await engine.after(1)
    assert (tr.new_status, tr.incident_kind) == ("down", "TIMEOUT")
    [run] = await engine.db.read(lambda c: runs.recent(c, m.id))
    assert run.status == "timeout" and "max runtime 30m" in run.reason
    assert (await engine.get(m)).open_runs == 0


async def test_a_run_that_finishes_in_time_clears_the_timeout(engine: Engine) -> None:
    m = await engine.monitor(period="1d", grace="1h", max_runtime="30m")
    await engine.ping(m, "start")
    await engine.after(600)
    await engine.ping(m)
    got = await engine.get(m)
    assert (got.open_runs, got.running_since, got.last_duration) == (0, None, 600.0)
    assert engine.scheduler.deadline(m.id) == engine.clock.now() + dt.timedelta(days=1)
    assert await engine.after(3600) == []


async def test_deadlines_that_fell_while_the_server_was_down_get_a_fresh_grace(
    tmp_path: Path, clock: FakeClock
) -> None:
    path = tmp_path / "data" / "tokiflow.db"
    db, scheduler = await _engine(path, clock)
    first = Engine(db, clock, scheduler)
    m = await first.monitor(period="1h", grace="10m")
    await first.ping(m)
    await db.close()
    # The server is off for three hours: the deadline and the grace both pass meanwhile.
    await clock.advance(3 * H)
    db, scheduler = await _engine(path, clock)
    second = Engine(db, clock, scheduler)
    [late] = await second.after(0)
    assert late.new_status == "late"
    assert scheduler.deadline(m.id) == clock.now() + dt.timedelta(minutes=10)
    assert await second.after(599) == []
    await second.ping(m)
    assert (await second.get(m)).status == "up"
    assert await second.incidents(m) == []
    await db.close()


async def test_a_restart_that_outlasts_the_fresh_grace_still_alerts(
    tmp_path: Path, clock: FakeClock
) -> None:
    path = tmp_path / "data" / "tokiflow.db"
    db, scheduler = await _engine(path, clock)
    m = await Engine(db, clock, scheduler).monitor(period="1h", grace="10m")
    await Engine(db, clock, scheduler).ping(m)
    await db.close()
    await clock.advance(2 * H)
    db, scheduler = await _engine(path, clock)
    e = Engine(db, clock, scheduler)
    await e.after(0)
    [down] = await e.after(600)
    assert down.incident_kind == "MISSED"
    await db.close()


async def test_a_later_ping_moves_the_deadline_and_the_stale_one_is_ignored(
    engine: Engine,
) -> None:
    m = await engine.monitor(period="1h", grace="5m")
    await engine.ping(m)
    await engine.clock.advance(1800)
    await engine.ping(m)
    assert await engine.after(1800) == []  # the first ping's deadline has passed: stale
    assert (await engine.get(m)).status == "up"
    [late] = await engine.after(1800)
    assert late.new_status == "late"


async def test_each_deadline_is_acted_on_once(engine: Engine) -> None:
    ms = [await engine.monitor(name=f"job {i}", period="1h", grace="5m") for i in range(50)]
    for m in ms:
        await engine.ping(m)
    transitions = await engine.after(H)
    assert len(transitions) == 50
    assert await engine.scheduler.tick(engine.clock.now()) == []
    flips = await engine.db.read(lambda c: c.execute("SELECT count(*) FROM flips").fetchone()[0])
    assert flips == 50 + 50  # new -> up, up -> late


async def test_the_real_loop_wakes_up_for_a_deadline_and_for_a_ping(
    engine: Engine,
) -> None:
    task = asyncio.create_task(engine.scheduler.run())
    try:
        m = await engine.monitor(period="1h", grace="5m")
        await asyncio.wait_for(engine.scheduler.parked.wait(), 5)
        await engine.ping(m)  # moves the earliest deadline: the loop wakes and re-parks
        await engine.clock.advance(H)
        await asyncio.wait_for(engine.scheduler.parked.wait(), 5)
        assert (await engine.get(m)).status == "late"
        await engine.clock.advance(300)
        await asyncio.wait_for(engine.scheduler.parked.wait(), 5)
        assert (await engine.get(m)).status == "down"
        assert [i.kind for i in await engine.incidents(m)] == ["MISSED"]
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def _bare_scheduler(tmp_path: Path, clock: FakeClock) -> Scheduler:
    # The heap half of the scheduler needs no open database.
    return Scheduler(Database(tmp_path / "unused.db"), clock, started_at=clock.now())


def test_moving_deadlines_later_keeps_about_one_heap_entry_per_monitor(
    tmp_path: Path, clock: FakeClock
) -> None:
    s = _bare_scheduler(tmp_path, clock)
    t0 = clock.now()
    for i in range(100):
        s.set_deadline(i, t0 + dt.timedelta(minutes=i + 1))
    for step in range(2, 50):  # every monitor pinged again and again: deadlines move later
        for i in range(100):
            s.set_deadline(i, t0 + dt.timedelta(minutes=i + step))
    assert len(s._heap) == 100
    assert s.next_deadline() == t0 + dt.timedelta(minutes=49)
    assert s.pop_due(t0 + dt.timedelta(minutes=50)) == [0, 1]
    assert len(s) == 98


@pytest.mark.parametrize(
    ("moves", "expected_order"),
    [
        ([(1, 10), (2, 20), (3, 30)], [1, 2, 3]),
        ([(1, 10), (2, 20), (1, 30)], [2, 1]),  # 1 moved later
        ([(1, 30), (2, 20), (1, 10)], [1, 2]),  # 1 moved earlier
        ([(1, 10), (2, 20), (1, None)], [2]),  # 1 removed
        ([(1, 10), (1, None), (1, 25), (2, 20)], [2, 1]),  # removed, then back
    ],
)
def test_due_monitors_come_out_in_deadline_order_whatever_the_moves(
    tmp_path: Path, clock: FakeClock, moves: list[tuple[int, int | None]], expected_order: list[int]
) -> None:
    s = _bare_scheduler(tmp_path, clock)
    t0 = clock.now()
    for monitor_id, minutes in moves:
        s.set_deadline(monitor_id, None if minutes is None else t0 + dt.timedelta(minutes=minutes))
    order = []
    for minute in range(0, 40):
        order.extend(s.pop_due(t0 + dt.timedelta(minutes=minute)))
    assert order == expected_order
    assert s.next_deadline() is None and len(s) == 0


async def test_runs_too_old_to_pair_are_closed_when_a_new_run_starts(engine: Engine) -> None:
    m = await engine.monitor(period="1d", grace="1h")
    await engine.ping(m, "start")
    await engine.clock.advance(73 * H)
    await engine.ping(m, "start")
    got = await engine.get(m)
    assert (got.open_runs, got.running_since) == (1, engine.clock.now())
    old, new = sorted(await engine.db.read(lambda c: runs.recent(c, m.id)), key=lambda r: r.id)
    assert old.status == "timeout" and "72 hours" in old.reason
    assert new.status == "running"
