"""Organisation analytics over a realistic history: 10,000 monitors, each with `--pings-per-monitor`
pings (start and finish pairs: half as many runs, 5 % of them failed) spread over the last
`--days` days, written into a real SQLite file with executemany, then the rollups built as
migration m0007 builds them. Times `org_report` (7, 30 and 90 days, in UTC and a half-hour zone).

Run: `.venv/bin/python bench/analytics_org.py [--monitors 10000] [--pings-per-monitor 100]`.
With `--baseline-src DIR` (a copy of `src/` from before the rollups) the same database is also
timed by that code, in a subprocess, for a before/after comparison. `bench/ui_render.py
--pings-per-monitor 100` seeds the same history (`seed_history`) and times the /analytics page.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid as uuidlib
from pathlib import Path

ZONES = (None, "Asia/Kolkata")


def _text(when: dt.datetime) -> str:
    return when.isoformat(timespec="microseconds")[:26] + "Z"


def clone_monitors(conn: sqlite3.Connection, template_id: int, count: int) -> list[int]:
    """`count` copies of a monitor (new uuid, slug and name), by plain INSERTs."""
    cols = [r[1] for r in conn.execute("PRAGMA table_info(monitors)") if r[1] != "id"]
    changed = {"uuid", "slug", "name"}
    select = ", ".join("?" if c in changed else c for c in cols)
    sql = f"INSERT INTO monitors({', '.join(cols)}) SELECT {select} FROM monitors WHERE id = ?"
    order = [c for c in cols if c in changed]
    values = {"uuid": "", "slug": "", "name": ""}
    rows = []
    for i in range(count):
        values.update(uuid=str(uuidlib.uuid4()), slug=f"bench-{i}", name=f"Bench {i}")
        rows.append((*(values[c] for c in order), template_id))
    conn.executemany(sql, rows)
    return [r[0] for r in conn.execute("SELECT id FROM monitors WHERE slug LIKE 'bench-%'")]


def seed_history(
    path: Path, monitor_ids: list[int], pings_per_monitor: int, days: int, now: dt.datetime
) -> int:
    """Write start/finish ping pairs and their runs for each monitor over the last `days` days,
    a tenth of the monitors down since a flip; then build the rollups (if the schema has them).
    Returns the number of pings written."""
    rng = random.Random(1)
    conn = sqlite3.connect(path, timeout=60)
    conn.execute("PRAGMA synchronous = OFF")
    span = days * 86400
    pairs = pings_per_monitor // 2
    pings: list[tuple] = []
    runs: list[tuple] = []
    flips: list[tuple] = []
    run_id = (conn.execute("SELECT max(id) FROM runs").fetchone()[0] or 0) + 1
    for mid in monitor_ids:
        starts = sorted(rng.uniform(0, span - 7200) for _ in range(pairs))
        for k, offset in enumerate(starts):
            started = now - dt.timedelta(seconds=span - offset)
            duration = rng.lognormvariate(3.0, 1.2)
            finished = started + dt.timedelta(seconds=duration)
            failed = rng.random() < 0.05
            n = 2 * k + 1
            kind = "fail" if failed else "success"
            pings.append((mid, n, _text(started), "start", None))
            pings.append((mid, n + 1, _text(finished), kind, duration))
            runs.append((run_id, mid, "fail" if failed else "success", _text(started),
                         _text(finished), duration, n, n + 1))  # fmt: skip
            run_id += 1
        if mid % 10 == 0:
            flips.append((mid, _text(now - dt.timedelta(hours=5)), "up", "down", "bench"))
        if len(pings) > 200_000:
            _flush(conn, pings, runs)
    _flush(conn, pings, runs)
    conn.executemany(
        "INSERT INTO flips(monitor_id, at, old_status, new_status, reason) VALUES (?, ?, ?, ?, ?)",
        flips,
    )
    conn.executemany(
        "UPDATE monitors SET status = ?, n_pings = ? WHERE id = ?",
        [("down" if mid % 10 == 0 else "up", 2 * pairs, mid) for mid in monitor_ids],
    )
    conn.commit()
    has = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'monitor_hours'").fetchone()
    if has:
        from tokiflow.storage.migrations import backfill_monitor_hours

        started_at = time.perf_counter()
        backfill_monitor_hours(conn)
        conn.commit()
        print(f"rollups built in {time.perf_counter() - started_at:.1f} s (migration backfill)")
    conn.close()
    return len(monitor_ids) * 2 * pairs


def _flush(conn: sqlite3.Connection, pings: list[tuple], runs: list[tuple]) -> None:
    conn.executemany(
        "INSERT INTO pings(monitor_id, n, created_at, kind, duration) VALUES (?, ?, ?, ?, ?)", pings
    )
    conn.executemany(
        "INSERT INTO runs(id, monitor_id, status, started_at, finished_at, duration, start_ping, "
        "end_ping) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        runs,
    )
    pings.clear()
    runs.clear()


def time_reports(path: Path, now: dt.datetime, rounds: int) -> None:
    """Print org_report's time per period and zone (median of `rounds`), with this code."""
    from tokiflow.engine import analytics
    from tokiflow.storage.db import connect

    conn = connect(path, readonly=True)
    org_id = conn.execute("SELECT min(id) FROM orgs").fetchone()[0]
    for days in (7, 30, 90):
        for tz in ZONES:
            times = []
            for _ in range(rounds):
                started = time.perf_counter()
                analytics.org_report(conn, org_id, "bench", now, days=days, tz=tz)
                times.append((time.perf_counter() - started) * 1000)
            print(
                f"  org_report days={days:<3} tz={tz or 'UTC':13} {statistics.median(times):8.1f} ms"
            )
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--monitors", type=int, default=10_000)
    parser.add_argument("--pings-per-monitor", type=int, default=100)
    parser.add_argument("--days", type=int, default=7, help="the history's length")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline-src", type=Path, help="a src/ from before, timed too")
    parser.add_argument("--time-only", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--now", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.time_only:
        time_reports(args.time_only, dt.datetime.fromisoformat(args.now), args.rounds)
        return
    from tokiflow.engine.monitors import build_spec, create_monitor
    from tokiflow.licensing import UNLIMITED
    from tokiflow.storage import migrations, orgs

    path = Path(tempfile.mkdtemp(prefix="tf-analytics-bench-")) / "tokiflow.db"
    migrations.migrate(path)
    now = dt.datetime(2026, 3, 2, 12, 17, 23, tzinfo=dt.UTC)  # inside an hour: the edges count
    conn = sqlite3.connect(path)
    org = orgs.ensure_default(conn, now - dt.timedelta(days=100))
    spec = build_spec(org_id=org.id, name="template", slug="template", period="1h")
    first = create_monitor(conn, spec, now - dt.timedelta(days=100), limits=UNLIMITED)
    ids = [first.id, *clone_monitors(conn, first.id, args.monitors - 1)]
    conn.commit()
    conn.close()
    started = time.perf_counter()
    n = seed_history(path, ids, args.pings_per_monitor, args.days, now)
    print(f"{len(ids)} monitors, {n} pings, {n // 2} runs over {args.days} days "
          f"(seeded in {time.perf_counter() - started:.1f} s)")  # fmt: skip
    runs = [("after (this tree)", None)]
    if args.baseline_src:
        runs.insert(0, ("before (--baseline-src)", args.baseline_src))
    for label, src in runs:
        print(label)
        env = dict(os.environ)
        if src is not None:
            env["PYTHONPATH"] = str(src)
        subprocess.run(
            [sys.executable, __file__, "--time-only", str(path), "--now", now.isoformat(),
             "--rounds", str(args.rounds)],
            env=env, check=True,
        )  # fmt: skip


if __name__ == "__main__":
    main()
