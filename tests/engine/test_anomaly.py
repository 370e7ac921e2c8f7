"""Anomaly rules on finished runs: slow runs (ANOMALY) and shrunken output (OUTPUT), driven through
real pings on a real database with a fake clock."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tokiflow import licensing
from tokiflow.clock import FakeClock
from tokiflow.engine import anomaly
from tokiflow.engine.monitors import build_spec, create_monitor
from tokiflow.engine.pings import PingEvent, PingOutcome, ingest
from tokiflow.engine.scheduler import Scheduler
from tokiflow.licensing import UNLIMITED
from tokiflow.storage import incidents, monitors, orgs, stats
from tokiflow.storage.database import Database
from tokiflow.storage.incidents import Incident
from tokiflow.storage.monitors import Monitor
from tokiflow.storage.stats import RunStats


class Jobs:
    """Runs jobs: a start ping, time passing on the fake clock, a finish ping."""

    def __init__(self, db: Database, clock: FakeClock, scheduler: Scheduler) -> None:
        self.db, self.clock, self.scheduler = db, clock, scheduler
        self.limits = UNLIMITED  # the plan in force

    async def monitor(self, **kw: Any) -> Monitor:
        now = self.clock.now()
        org = await self.db.write(lambda c: orgs.ensure_default(c, now))
        spec = build_spec(org_id=org.id, name=kw.pop("name", "job"), period="1h", **kw)
        return await self.db.write(lambda c: create_monitor(c, spec, now, limits=UNLIMITED))

    async def set(self, m: Monitor, **fields: Any) -> None:
        await self.db.write(lambda c: monitors.update(c, m.id, m.status, fields) or None)

    async def ping(self, m: Monitor, kind: str = "success", body: bytes = b"") -> PingOutcome:
        ev = PingEvent(kind=kind, received_at=self.clock.now(), uuid=m.uuid, body=body,
                       body_size=len(body))  # fmt: skip
        return await ingest(
            self.db, self.scheduler, ev, pings_kept=1000, stats_window=100, limits=self.limits
        )

    async def run(self, m: Monitor, seconds: float, *, body: bytes = b"") -> PingOutcome:
        await self.ping(m, "start")
        await self.clock.advance(seconds, settle=0)
        outcome = await self.ping(m, "success", body)
        await self.clock.advance(3000, settle=0)  # the next run starts within the hour
        return outcome

    async def incidents(self, m: Monitor, kind: str | None = None) -> list[Incident]:
        every = await self.db.read(lambda c: incidents.list_recent(c, limit=1000))
        return [i for i in every if i.monitor_id == m.id and kind in (None, i.kind)][::-1]

    async def stats(self, m: Monitor) -> RunStats:
        return await self.db.read(lambda c: stats.get(c, m.id))

    async def status(self, m: Monitor) -> str:
        fresh = await self.db.read(lambda c: monitors.get(c, m.id))
        assert fresh is not None
        return fresh.status


@pytest.fixture
async def jobs(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Jobs]:
    db = Database(tmp_path / "data" / "tokiflow.db")
    await db.open()
    yield Jobs(db, clock, Scheduler(db, clock, started_at=clock.now()))
    await db.close()


def _normal(rng: random.Random, n: int, mean: float = 10.0, sd: float = 1.2) -> list[float]:
    return [round(max(rng.gauss(mean, sd), 0.5), 3) for _ in range(n)]


async def test_thirty_normal_runs_then_a_slow_one_open_exactly_one_anomaly_explained_in_words(
    jobs: Jobs,
) -> None:
    m = await jobs.monitor()
    rng = random.Random(8)
    for seconds in _normal(rng, 30):
        outcome = await jobs.run(m, seconds)
        assert outcome.transition is not None and outcome.transition.incident_kind is None
    before = await jobs.stats(m)
    outcome = await jobs.run(m, 41)
    assert outcome.transition is not None and outcome.transition.incident_kind == "ANOMALY"
    [inc] = await jobs.incidents(m)
    assert (inc.kind, inc.state, inc.run_id) == ("ANOMALY", "open", 31)
    usual = f"{before.mean:.3g} s +/- {anomaly.stdev(before):.3g} s over 30 runs"
    assert inc.reason.startswith(f"took 41 s; usual {usual} (median ")
    assert "x the median (limit 1.5x)" in inc.reason and "sigma above the mean" in inc.reason
    assert await jobs.status(m) == "up"


async def test_the_free_plan_keeps_statistics_but_raises_no_anomaly(jobs: Jobs) -> None:
    jobs.limits = licensing.FREE  # anomaly detection is a PRO feature
    m = await jobs.monitor()
    for seconds in _normal(random.Random(8), 30):
        await jobs.run(m, seconds)
    outcome = await jobs.run(m, 41)
    assert outcome.transition is not None and outcome.transition.incident_kind is None
    assert await jobs.incidents(m) == []
    assert (await jobs.stats(m)).runs == 31
    jobs.limits = licensing.PLAN_LIMITS["PRO"]  # a PRO licence installed: judged again
    outcome = await jobs.run(m, 41)
    assert outcome.transition is not None and outcome.transition.incident_kind == "ANOMALY"


async def test_no_anomaly_is_raised_before_ten_runs_of_history(jobs: Jobs) -> None:
    m = await jobs.monitor()
    for seconds in (10, 10.5, 9.5, 10, 10.2, 9.8, 10, 10.1, 9.9):
        await jobs.run(m, seconds)
    await jobs.run(m, 500)  # the 10th run: only 9 runs of history before it
    assert await jobs.incidents(m) == []
    await jobs.run(m, 10)
    await jobs.run(m, 500)  # now 11 runs of history: the same run is an anomaly
    assert [i.kind for i in await jobs.incidents(m)] == ["ANOMALY"]


async def test_an_anomaly_resolves_when_a_later_run_is_normal_and_slow_runs_share_one_incident(
    jobs: Jobs,
) -> None:
    m = await jobs.monitor()
    for seconds in _normal(random.Random(1), 20):
        await jobs.run(m, seconds)
    await jobs.run(m, 60)
    await jobs.run(m, 70)  # still slow: the open incident covers it
    # The slow runs widened the spread: 40 s is under the limit now, but not normal either.
    await jobs.run(m, 40)
    [inc] = await jobs.incidents(m)
    assert inc.state == "open"
    await jobs.run(m, 10)
    [inc] = await jobs.incidents(m)
    assert (inc.state, inc.resolved_by) == ("resolved", "recovered")
    await jobs.run(m, 80)  # slow again later: a new incident
    assert [(i.kind, i.state) for i in await jobs.incidents(m)] == [
        ("ANOMALY", "resolved"),
        ("ANOMALY", "open"),
    ]


async def test_a_steadily_growing_duration_does_not_alert_on_every_run(jobs: Jobs) -> None:
    m = await jobs.monitor()
    rng = random.Random(3)
    for seconds in _normal(rng, 30, sd=0.3):
        await jobs.run(m, seconds)
    # The job's data grows: each run takes 3 % longer than the one before, for 60 runs
    # (10 s to 59 s), with the usual noise.
    alerted = 0
    for i in range(60):
        outcome = await jobs.run(m, round(10 * 1.03**i + rng.gauss(0, 0.3), 3))
        assert outcome.transition is not None
        alerted += outcome.transition.incident_kind == "ANOMALY"
    # One incident says the job got slow; it stays open while the job keeps growing.
    assert alerted == 1
    assert [i.state for i in await jobs.incidents(m, "ANOMALY")] == ["open"]


async def test_a_very_steady_job_that_runs_a_little_slower_is_not_an_anomaly(jobs: Jobs) -> None:
    m = await jobs.monitor()
    for i in range(30):
        await jobs.run(m, 10 + (i % 3) * 0.01)
    # Hundreds of standard deviations above the mean, but only 20 % slower than the median.
    await jobs.run(m, 12)
    assert await jobs.incidents(m) == []


async def test_a_noisy_job_with_a_swing_within_its_spread_is_not_an_anomaly(jobs: Jobs) -> None:
    m = await jobs.monitor()
    rng = random.Random(5)
    for _ in range(40):
        await jobs.run(m, round(rng.uniform(2, 60), 3))
    await jobs.run(m, 62)  # twice the median, but under two standard deviations above the mean
    assert await jobs.incidents(m) == []


async def test_thresholds_are_per_monitor_and_alerts_can_be_turned_off(jobs: Jobs) -> None:
    strict = await jobs.monitor(name="strict")
    lenient = await jobs.monitor(name="lenient")
    silent = await jobs.monitor(name="silent")
    await jobs.set(lenient, anomaly_factor=5.0)
    await jobs.set(silent, anomaly_alerts=False)
    for m in (strict, lenient, silent):
        for seconds in _normal(random.Random(2), 15):
            await jobs.run(m, seconds)
        await jobs.run(m, 35)  # 3.5x the median
    assert [i.kind for i in await jobs.incidents(strict)] == ["ANOMALY"]
    assert await jobs.incidents(lenient) == []
    assert await jobs.incidents(silent) == []
    assert (await jobs.stats(silent)).runs == 16  # statistics are kept all the same


async def test_failed_runs_never_count_as_durations_nor_as_anomalies(jobs: Jobs) -> None:
    m = await jobs.monitor()
    for seconds in _normal(random.Random(4), 12):
        await jobs.run(m, seconds)
    await jobs.ping(m, "start")
    await jobs.clock.advance(500, settle=0)
    await jobs.ping(m, "fail")
    assert [i.kind for i in await jobs.incidents(m)] == ["FAIL"]
    assert (await jobs.stats(m)).runs == 12


async def test_output_far_smaller_than_the_last_seven_opens_an_output_incident(
    jobs: Jobs,
) -> None:
    m = await jobs.monitor()
    for i in range(12):
        await jobs.ping(m, "success", b"x" * (4000 + 10 * i))
        await jobs.clock.advance(3600, settle=0)
    outcome = await jobs.ping(m, "success", b"x" * 1000)
    assert outcome.transition is not None and outcome.transition.incident_kind == "OUTPUT"
    [inc] = await jobs.incidents(m)
    assert inc.kind == "OUTPUT"
    assert inc.reason == (
        "output was 1000 B; the last 7 runs averaged 4 KB (alert below 30% of that)"
    )
    await jobs.clock.advance(3600, settle=0)
    await jobs.ping(m, "success", b"x" * 4100)
    [inc] = await jobs.incidents(m)
    assert inc.state == "resolved"


async def test_a_monitor_that_sends_output_and_then_sends_none_gets_an_output_incident(
    jobs: Jobs,
) -> None:
    m = await jobs.monitor()
    for _ in range(10):
        await jobs.ping(m, "success", b"backed up 1200 files\n" * 20)
        await jobs.clock.advance(3600, settle=0)
    await jobs.ping(m, "success")  # no body at all
    [inc] = await jobs.incidents(m)
    assert inc.kind == "OUTPUT" and inc.reason.startswith("output was 0 B;")
    assert (await jobs.stats(m)).recent_sizes[-1] == 0


async def test_plain_pings_of_a_monitor_without_output_or_runs_keep_no_statistics(
    jobs: Jobs,
) -> None:
    m = await jobs.monitor()
    for _ in range(20):
        await jobs.ping(m)
        await jobs.clock.advance(3600, settle=0)
    row = await jobs.db.read(
        lambda c: c.execute("SELECT count(*) FROM monitor_stats WHERE monitor_id = ?", (m.id,))
    )
    assert row.fetchone()[0] == 0
    assert await jobs.incidents(m) == []


@pytest.mark.parametrize(
    ("d", "anomalous"),
    [(14.9, False), (16, True), (15.5, False)],
)
def test_both_the_median_and_the_z_score_must_say_slow(d: float, anomalous: bool) -> None:
    # 20 runs: mean 10, sample sd ~1.03; median 10.
    values = [9.0, 11.0] * 10
    s = RunStats(1)
    for v in values:
        s = anomaly.welford_add(s, v)
    finding = anomaly.duration_finding(d, s, 10.0, factor=1.5, z=5.5)
    assert finding is not None and finding.anomalous is anomalous


def test_seconds_and_sizes_are_put_in_words() -> None:
    assert [anomaly.seconds_words(x) for x in (41, 10.04, 1.234, 0.25, 0.004, 754)] == [
        "41 s", "10 s", "1.23 s", "0.25 s", "4 ms", "12m 34s",
    ]  # fmt: skip
    assert [anomaly.size_words(x) for x in (120, 4100, 35_000, 3_300_000)] == [
        "120 B", "4 KB", "34 KB", "3.1 MB",
    ]  # fmt: skip


def test_a_run_right_at_the_threshold_is_not_an_anomaly() -> None:
    s = RunStats(1)
    for v in [10.0] * 12:
        s = anomaly.welford_add(s, v)
    assert s.m2 == 0
    # No spread at all: slower than every previous run and past the factor is enough.
    at = anomaly.duration_finding(15.0, s, 10.0, factor=1.5, z=3)
    past = anomaly.duration_finding(15.01, s, 10.0, factor=1.5, z=3)
    assert at is not None and not at.anomalous
    assert past is not None and past.anomalous
    assert "longer than the mean of runs that never varied" in past.reason
