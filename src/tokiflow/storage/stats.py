"""Runtime statistics per monitor (Welford sums, recent output sizes) and the reads analytics needs.

The `monitor_stats` row is read and written only when a run finishes (or a monitor that sends
output pings), never for a plain ping. Everything else here reads history on demand, from
indexed ranges of the runs, flips, pings and incidents tables.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass

from tokiflow.storage.timefmt import from_db, opt_from_db, to_db


@dataclass(frozen=True)
class RunStats:
    """Welford running count/mean/M2 of successful run durations, and the output size history."""

    monitor_id: int
    runs: int = 0
    mean: float = 0.0
    m2: float = 0.0
    min_duration: float | None = None
    max_duration: float | None = None
    outputs: int = 0
    recent_sizes: tuple[int, ...] = ()
    anomaly_incident: int | None = None
    output_incident: int | None = None
    updated_at: dt.datetime | None = None


_COLUMNS = (
    "monitor_id, runs, mean, m2, min_duration, max_duration, outputs, recent_sizes, "
    "anomaly_incident, output_incident, updated_at"
)


def _sizes(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x)


def get(conn: sqlite3.Connection, monitor_id: int) -> RunStats:
    """The monitor's statistics (all zero when it has none yet)."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM monitor_stats WHERE monitor_id = ?", (monitor_id,)
    ).fetchone()
    if row is None:
        return RunStats(monitor_id)
    return RunStats(
        row[0], row[1], row[2], row[3], row[4], row[5], row[6], _sizes(row[7]), row[8], row[9],
        opt_from_db(row[10]),
    )  # fmt: skip


def put(conn: sqlite3.Connection, s: RunStats) -> None:
    """Insert or replace the monitor's statistics row."""
    conn.execute(
        f"INSERT INTO monitor_stats({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT(monitor_id) DO UPDATE SET runs = excluded.runs, mean = excluded.mean, "
        "m2 = excluded.m2, min_duration = excluded.min_duration, "
        "max_duration = excluded.max_duration, outputs = excluded.outputs, "
        "recent_sizes = excluded.recent_sizes, anomaly_incident = excluded.anomaly_incident, "
        "output_incident = excluded.output_incident, updated_at = excluded.updated_at",
        (
            s.monitor_id, s.runs, s.mean, s.m2, s.min_duration, s.max_duration, s.outputs,
            ",".join(str(x) for x in s.recent_sizes), s.anomaly_incident, s.output_incident,
            None if s.updated_at is None else to_db(s.updated_at),
        ),
    )  # fmt: skip


def recent_durations(
    conn: sqlite3.Connection, monitor_id: int, limit: int, leave_out: int | None = None
) -> list[float]:
    """Durations of the monitor's most recent successful runs, newest first (a backwards range
    on the runs(monitor_id, id) index); `leave_out` is a run not to count (the one being judged)."""
    if leave_out is None:
        rows = conn.execute(
            "SELECT duration FROM runs WHERE monitor_id = ? AND status = 'success' "
            "AND duration IS NOT NULL ORDER BY id DESC LIMIT ?",
            (monitor_id, limit),
        )
    else:
        rows = conn.execute(
            "SELECT duration FROM runs WHERE monitor_id = ? AND id != ? AND status = 'success' "
            "AND duration IS NOT NULL ORDER BY id DESC LIMIT ?",
            (monitor_id, leave_out, limit),
        )
    return [float(r[0]) for r in rows]


# -- reads for the analytics reports -------------------------------------------------------------


@dataclass(frozen=True)
class FlipRow:
    monitor_id: int
    at: dt.datetime
    old_status: str
    new_status: str


@dataclass(frozen=True)
class RunRow:
    monitor_id: int
    status: str
    finished_at: dt.datetime
    duration: float | None


@dataclass(frozen=True)
class DayCount:
    """Pings of one kind on one UTC day."""

    monitor_id: int
    day: dt.date
    kind: str
    count: int


def flips_since(
    conn: sqlite3.Connection, monitor_ids: list[int], since: dt.datetime
) -> tuple[list[FlipRow], dict[int, str]]:
    """The flips of these monitors from `since` on (oldest first), and each monitor's status just
    before `since` where a flip tells it."""
    found: list[FlipRow] = []
    before: dict[int, str] = {}
    start = to_db(since)
    for mid in monitor_ids:
        last = conn.execute(
            "SELECT new_status FROM flips WHERE monitor_id = ? AND at < ? ORDER BY id DESC LIMIT 1",
            (mid, start),
        ).fetchone()
        if last is not None:
            before[mid] = last[0]
        rows = conn.execute(
            "SELECT at, old_status, new_status FROM flips WHERE monitor_id = ? AND at >= ? "
            "ORDER BY id",
            (mid, start),
        ).fetchall()
        found.extend(FlipRow(mid, from_db(r[0]), r[1], r[2]) for r in rows)
    found.sort(key=lambda f: f.at)
    return found, before


def finished_runs_since(
    conn: sqlite3.Connection, monitor_ids: list[int], since: dt.datetime
) -> list[RunRow]:
    """Runs of these monitors that finished from `since` on."""
    out: list[RunRow] = []
    start = to_db(since)
    for mid in monitor_ids:
        rows = conn.execute(
            "SELECT status, finished_at, duration FROM runs WHERE monitor_id = ? "
            "AND status != 'running' AND finished_at >= ? ORDER BY id",
            (mid, start),
        )
        out.extend(RunRow(mid, r[0], from_db(r[1]), r[2]) for r in rows)
    return out


def ping_days_since(
    conn: sqlite3.Connection, monitor_ids: list[int], since: dt.datetime
) -> list[DayCount]:
    """Success and fail pings per monitor and UTC day, from `since` on (as far as pings are kept)."""
    out: list[DayCount] = []
    start = to_db(since)
    for mid in monitor_ids:
        rows = conn.execute(
            "SELECT substr(created_at, 1, 10), kind, count(*) FROM pings WHERE monitor_id = ? "
            "AND created_at >= ? AND kind IN ('success', 'fail') GROUP BY 1, 2",
            (mid, start),
        )
        out.extend(DayCount(mid, dt.date.fromisoformat(r[0]), r[1], r[2]) for r in rows)
    return out


def ping_counts_since(
    conn: sqlite3.Connection, monitor_id: int, since: dt.datetime
) -> dict[str, int]:
    """Pings per kind from `since` on (as far as pings are kept)."""
    rows = conn.execute(
        "SELECT kind, count(*) FROM pings WHERE monitor_id = ? AND created_at >= ? GROUP BY kind",
        (monitor_id, to_db(since)),
    )
    return {r[0]: r[1] for r in rows}


def fail_times_since(
    conn: sqlite3.Connection, monitor_ids: list[int], since: dt.datetime
) -> list[tuple[int, dt.datetime]]:
    """(monitor, time) of every fail ping from `since` on, for the failure heatmap."""
    out: list[tuple[int, dt.datetime]] = []
    start = to_db(since)
    for mid in monitor_ids:
        rows = conn.execute(
            "SELECT created_at FROM pings WHERE monitor_id = ? AND created_at >= ? "
            "AND kind = 'fail'",
            (mid, start),
        )
        out.extend((mid, from_db(r[0])) for r in rows)
    return out
