"""Runtime statistics per monitor (Welford sums, recent output sizes) and the reads analytics needs.

The `monitor_stats` row is read and written only when a run finishes (or a monitor that sends
output pings), never for a plain ping. Everything else here reads history on demand, from
indexed ranges of the runs, flips, pings and incidents tables.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

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


# -- bulk reads: one query per kind of row for all the monitors in a scope ------------------------
#
# An organisation's report reads its monitors' rows with one query per table (a join on the
# monitors of the organisation, each monitor's rows by its index), never one query per monitor,
# and lets SQLite do the counting: a page over 10,000 monitors costs a handful of queries.


@dataclass(frozen=True)
class Scope:
    """Which monitors a bulk read covers: one monitor, or every monitor of an organisation."""

    where: str
    arg: int


def monitor_scope(monitor_id: int) -> Scope:
    return Scope("m.id = ?", monitor_id)


def org_scope(org_id: int) -> Scope:
    return Scope("m.org_id = ?", org_id)


class Brief(NamedTuple):
    """The columns of a monitor its reports need (a tuple: a report may need thousands)."""

    id: int
    uuid: str
    name: str
    status: str
    created_at: dt.datetime
    schedule_kind: str
    period: int | None
    cron: str | None
    tz: str


def monitor_states(conn: sqlite3.Connection, org_id: int) -> list[tuple[int, str, str, str]]:
    """(id, name, status, created_at as stored) of every monitor of the organisation: plain
    tuples and unparsed text, since there may be 10,000 of them and most need no more."""
    rows = conn.execute(
        "SELECT id, name, status, created_at FROM monitors WHERE org_id = ?", (org_id,)
    )
    return rows.fetchall()


def _ids(ids: Iterable[int]) -> str:
    """Monitor ids as one JSON parameter, for `IN (SELECT value FROM json_each(?))`."""
    return json.dumps(sorted(ids))


def briefs(conn: sqlite3.Connection, ids: Iterable[int]) -> dict[int, Brief]:
    """These monitors' report columns, by id."""
    rows = conn.execute(
        "SELECT id, uuid, name, status, created_at, schedule_kind, period, cron, tz "
        "FROM monitors WHERE id IN (SELECT value FROM json_each(?))",
        (_ids(ids),),
    )
    return {r[0]: Brief(r[0], r[1], r[2], r[3], from_db(r[4]), *r[5:]) for r in rows}


def flips_in(conn: sqlite3.Connection, scope: Scope, since: dt.datetime) -> list[FlipRow]:
    """The flips from `since` on of the monitors in scope, by monitor, then in the order written."""
    rows = conn.execute(
        "SELECT f.monitor_id, f.at, f.old_status, f.new_status FROM monitors m "
        f"JOIN flips f ON f.monitor_id = m.id WHERE {scope.where} AND f.at >= ? "
        "ORDER BY f.monitor_id, f.id",
        (scope.arg, to_db(since)),
    )
    return [FlipRow(r[0], from_db(r[1]), r[2], r[3]) for r in rows]


def statuses_before(
    conn: sqlite3.Connection, ids: Iterable[int], since: dt.datetime
) -> dict[int, str]:
    """The status these monitors had just before `since`, where a flip tells it."""
    rows = conn.execute(
        "SELECT m.value, (SELECT f.new_status FROM flips f WHERE f.monitor_id = m.value "
        "AND f.at < ? ORDER BY f.id DESC LIMIT 1) FROM json_each(?) m",
        (to_db(since), _ids(ids)),
    )
    return {r[0]: r[1] for r in rows if r[1] is not None}


def finishes_by_monitor(
    conn: sqlite3.Connection, scope: Scope, since: dt.datetime
) -> dict[int, tuple[int, int]]:
    """(success pings, fail pings) from `since` on per monitor in scope (only monitors with any)."""
    # Grouped in the order the monitors_org_slug index hands the monitors over, so that SQLite
    # counts as it goes instead of sorting every ping first (3x faster with many pings).
    rows = conn.execute(
        "SELECT m.id, sum(p.kind = 'success'), sum(p.kind = 'fail') FROM monitors m "
        f"JOIN pings p ON p.monitor_id = m.id WHERE {scope.where} AND p.created_at >= ? "
        "AND p.kind IN ('success', 'fail') GROUP BY m.slug, m.id",
        (scope.arg, to_db(since)),
    )
    return {r[0]: (r[1], r[2]) for r in rows}


def ping_counts(
    conn: sqlite3.Connection, scope: Scope, since: dt.datetime, width: int
) -> list[tuple[str, str, int]]:
    """(UTC time, kind, count) of the success and fail pings from `since` on, per stretch of time
    that is the first `width` characters of a stored timestamp (10 a day, 13 an hour, 16 a
    minute)."""
    rows = conn.execute(
        "SELECT substr(p.created_at, 1, ?), p.kind, count(*) FROM monitors m "
        f"JOIN pings p ON p.monitor_id = m.id WHERE {scope.where} AND p.created_at >= ? "
        "AND p.kind IN ('success', 'fail') GROUP BY 1, 2",
        (width, scope.arg, to_db(since)),
    )
    return rows.fetchall()


def fail_counts(
    conn: sqlite3.Connection, scope: Scope, since: dt.datetime, width: int
) -> list[tuple[str, str, int]]:
    """(time zone of the monitors, UTC time, count) of the fail pings from `since` on, per
    stretch of time as in `ping_counts`."""
    rows = conn.execute(
        "SELECT m.tz, substr(p.created_at, 1, ?), count(*) FROM monitors m "
        f"JOIN pings p ON p.monitor_id = m.id WHERE {scope.where} AND p.created_at >= ? "
        "AND p.kind = 'fail' GROUP BY 1, 2",
        (width, scope.arg, to_db(since)),
    )
    return rows.fetchall()


def runs_ending(
    conn: sqlite3.Connection, scope: Scope, since: dt.datetime, status: str
) -> list[RunRow]:
    """The runs of the monitors in scope that finished with `status` from `since` on."""
    rows = conn.execute(
        "SELECT r.monitor_id, r.status, r.finished_at, r.duration FROM monitors m "
        f"JOIN runs r ON r.monitor_id = m.id WHERE {scope.where} AND r.status = ? "
        "AND r.finished_at >= ?",
        (scope.arg, status, to_db(since)),
    )
    return [RunRow(r[0], r[1], from_db(r[2]), r[3]) for r in rows]


def duration_counts(
    conn: sqlite3.Connection, scope: Scope, since: dt.datetime, edges: tuple[float, ...]
) -> list[int]:
    """Successful runs from `since` on per duration bucket: bucket i holds durations up to
    edges[i] (above the one before), the last one everything longer."""
    cases = " ".join(f"WHEN r.duration <= ? THEN {i}" for i in range(len(edges)))
    rows = conn.execute(
        f"SELECT CASE {cases} ELSE {len(edges)} END, count(*) FROM monitors m "
        f"JOIN runs r ON r.monitor_id = m.id WHERE {scope.where} AND r.status = 'success' "
        "AND r.duration IS NOT NULL AND r.finished_at >= ? GROUP BY 1",
        (*edges, scope.arg, to_db(since)),
    )
    counts = [0] * (len(edges) + 1)
    for bucket, count in rows:
        counts[bucket] = count
    return counts


@dataclass(frozen=True)
class OutputUsage:
    """Captured output of one organisation."""

    files: int
    stored: int  # bytes on disk
    size: int  # bytes the jobs sent
    oldest: dt.datetime | None


def output_usage(conn: sqlite3.Connection, org_id: int) -> OutputUsage:
    """Files and bytes of the organisation's captured output (its range of the outputs_org index)."""
    r = conn.execute(
        "SELECT count(*), sum(stored), sum(size), min(created_at) FROM outputs WHERE org_id = ?",
        (org_id,),
    ).fetchone()
    return OutputUsage(r[0], r[1] or 0, r[2] or 0, opt_from_db(r[3]))
