"""Scheduler cost per deadline versus the number of monitors (DESIGN.md, data flow step 4).

    .venv/bin/python bench/scheduler.py [--sizes 10000,100000,1000000] [--quick]

For each N the parent builds a SQLite database of N 'up' monitors (period 1h, grace 5m, deadlines
spread uniformly over the next hour), then measures in a fresh child process (so RSS is clean):
start-up load (reading the deadlines + heapify; O(N) by nature), set_deadline per call,
next_deadline + pop_due per due monitor, one full tick of 1,000 due monitors (SQLite evaluation
and commit, up -> late), and RSS. Per-event costs should stay flat as N grows (log-N at most).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import json
import math
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from tokiflow.clock import FakeClock
from tokiflow.engine.scheduler import Scheduler
from tokiflow.storage import monitors, orgs
from tokiflow.storage.database import Database
from tokiflow.storage.db import connect
from tokiflow.storage.migrations import migrate
from tokiflow.storage.timefmt import from_db, to_db

START = dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.UTC)
HOUR = 3600.0
UPDATES = 100_000
POPS = 5_000
TICK = 1_000
COLUMNS = (
    "uuid, org_id, name, slug, schedule_kind, period, tz, grace, status, last_ping_at, "
    "last_success_at, due_at, next_check_at, n_pings, created_at, updated_at"
)


def build(path: Path, n: int) -> None:
    """N monitors of the default org, inserted in one transaction."""
    migrate(path)
    rng = random.Random(n)
    created = to_db(START - dt.timedelta(days=1))
    conn = connect(path)
    try:
        conn.execute("BEGIN IMMEDIATE")
        org_id = orgs.ensure_default(conn, START - dt.timedelta(days=1)).id

        def rows() -> Iterator[tuple[object, ...]]:
            for i in range(n):
                due = START + dt.timedelta(seconds=rng.random() * HOUR)
                pinged = to_db(due - dt.timedelta(hours=1))
                uid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
                yield (uid, org_id, f"job {i}", f"job-{i}", "period", 3600, "UTC", 300, "up",
                       pinged, pinged, to_db(due), to_db(due), 1, created, created)  # fmt: skip

        marks = ", ".join("?" * len(COLUMNS.split(",")))
        conn.executemany(f"INSERT INTO monitors({COLUMNS}) VALUES ({marks})", rows())
        conn.execute("COMMIT")
    finally:
        conn.close()


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def measure(path: Path, n: int) -> dict[str, float]:
    db = Database(path)
    await db.open()
    try:
        # The tick's `now`: just past the 1,000th earliest deadline. The scheduler starts then,
        # as after a restart, so that every due monitor goes up -> late; with started_at=START
        # the 10k run's window (6 min > 5 min grace) would send its earliest ones straight down.
        cutoff = await db.read(lambda conn: conn.execute(
            "SELECT next_check_at FROM monitors ORDER BY next_check_at LIMIT 1 OFFSET ?",
            (TICK - 1,)).fetchone()[0])  # fmt: skip
        now = from_db(cutoff) + dt.timedelta(microseconds=1)
        sched = Scheduler(db, FakeClock(now), started_at=now)
        gc.collect()
        base = rss_mb()
        t0 = time.perf_counter()
        rows = await db.read(lambda conn: list(monitors.deadlines(conn)))
        t1 = time.perf_counter()
        sched.load(rows)
        t2 = time.perf_counter()
        assert len(sched) == n
        del rows
        gc.collect()
        rss = rss_mb()

        # (d) one tick with 1,000 due monitors: evaluate up -> late in SQLite, commit, re-arm.
        t3 = time.perf_counter()
        done = await sched.tick(now)
        tick_s = time.perf_counter() - t3
        assert len(done) == TICK and all(tr.new_status == "late" for tr in done), len(done)
        assert sched.next_deadline() is not None and len(sched) == n

        # (c) the run loop's view: next_deadline, then pop_due up to it (one monitor each time).
        taken = 0
        t4 = time.perf_counter()
        for _ in range(POPS):
            nxt = sched.next_deadline()
            assert nxt is not None
            taken += len(sched.pop_due(nxt))
        pop_s = time.perf_counter() - t4

        # (b) set_deadline: random monitors moved to random times in the hour (a ping's work).
        rng = random.Random(1)
        ids = [rng.randint(1, n) for _ in range(UPDATES)]
        whens = [START + dt.timedelta(seconds=rng.random() * HOUR) for _ in range(UPDATES)]
        chunk = 1_000
        worst = 0.0
        t5 = time.perf_counter()
        for k in range(0, UPDATES, chunk):
            c0 = time.perf_counter()
            for i in range(k, k + chunk):
                sched.set_deadline(ids[i], whens[i])
            worst = max(worst, time.perf_counter() - c0)
        set_s = time.perf_counter() - t5
    finally:
        await db.close()
    return {
        "n": n, "read_s": t1 - t0, "heap_s": t2 - t1, "rss_base_mb": base, "rss_mb": rss,
        "tick_us": tick_s / TICK * 1e6, "pop_us": pop_s / taken * 1e6, "popped": taken,
        "set_us": set_s / UPDATES * 1e6, "set_worst_ms": worst * 1e3,
    }  # fmt: skip


def run_size(n: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="tokiflow-bench-") as tmp:
        path = Path(tmp) / "data" / "tokiflow.db"
        path.parent.mkdir()
        t0 = time.perf_counter()
        build(path, n)
        size = sum(p.stat().st_size for p in path.parent.iterdir()) / 2**20
        print(f"N={n:>9,}: built in {time.perf_counter() - t0:6.1f} s ({size:,.0f} MB on disk)",
              flush=True)  # fmt: skip
        out = subprocess.run(
            [sys.executable, __file__, "--measure", str(path), str(n)],
            check=True, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        return json.loads(out.stdout.strip().splitlines()[-1])


def report(results: list[dict[str, float]]) -> None:
    print()
    print("load s = read deadlines from SQLite + heapify: start-up cost, O(N) by nature.")
    print("set_deadline over 100k random updates (worst = slowest chunk of 1,000 calls);")
    print(f"pop = next_deadline + pop_due per due monitor ({POPS:,} loop iterations);")
    print(f"tick = one await tick(now) of {TICK:,} due monitors, incl. SQLite evaluate + commit.")
    print()
    head = (f"{'N':>9} | {'load s':>6} {'(read':>6} {'heap)':>6} | {'set µs/op':>9} "
            f"{'worst ms':>8} | {'pop µs/op':>9} | {'tick µs/mon':>11} | {'RSS MB':>7} "
            f"{'B/monitor':>9}")  # fmt: skip
    print(head)
    print("-" * len(head))
    for r in results:
        load = r["read_s"] + r["heap_s"]
        per = (r["rss_mb"] - r["rss_base_mb"]) * 2**20 / r["n"]
        print(f"{int(r['n']):>9,} | {load:6.2f} {r['read_s']:6.2f} {r['heap_s']:6.2f} | "
              f"{r['set_us']:9.2f} {r['set_worst_ms']:8.2f} | {r['pop_us']:9.2f} | "
              f"{r['tick_us']:11.1f} | {r['rss_mb']:7.1f} {per:9.0f}")  # fmt: skip
    lo, hi = results[0], results[-1]
    ratios = ", ".join(
        f"{name} x{hi[key] / lo[key]:.2f}"
        for name, key in (("set_deadline", "set_us"), ("pop", "pop_us"), ("tick", "tick_us"))
    )
    grow, logs = hi["n"] / lo["n"], math.log2(hi["n"]) / math.log2(lo["n"])
    print(f"\nper-op cost at N={int(hi['n']):,} vs N={int(lo['n']):,} (x{grow:,.0f} monitors): "
          f"{ratios}  (flat = near 1; log2 N alone would give x{logs:.2f})")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--quick", action="store_true", help="10k and 100k only")
    ap.add_argument("--measure", nargs=2, metavar=("DB", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(asyncio.run(measure(Path(args.measure[0]), int(args.measure[1])))))
        return
    sizes = [10_000, 100_000] if args.quick else [int(s) for s in args.sizes.split(",")]
    report([run_size(n) for n in sorted(sizes)])


if __name__ == "__main__":
    main()
