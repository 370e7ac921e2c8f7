"""Rollups for the organisation's analytics (migration m0007).

`monitor_hours` holds, per monitor and UTC hour (the first 13 characters of a stored time): the
success pings per quarter of the hour (`s00`, `s15`, `s30`, `s45`: a local day or hour of any
time zone in use begins on a quarter hour), the successful runs with a duration per bucket of
`EDGES` (`b0`... the last one longer), and the range of ping numbers and run ids they came from,
so that the pings or runs of one hour can be read back exactly (at the edge of a period that
starts inside an hour). Triggers keep the same sums per monitor and UTC day (`monitor_days`)
and per organisation and UTC hour (`org_hours`), which the report reads where it can.

The writer keeps them in the same transaction as each success ping, and takes out what pruning
deletes: pings beyond `pings_kept` (`forget_pings`, before `pings.prune`) and runs past the
retention (`prune_runs`). Fail pings and timed-out runs are few: they are not rolled up but read
by their partial indexes (`pings_fail`, `runs_timeout`).
"""

from __future__ import annotations

import datetime as dt
import sqlite3

from tokiflow.storage.migrations import M0007_EDGES, backfill_monitor_hours
from tokiflow.storage.timefmt import to_db

EDGES: tuple[float, ...] = M0007_EDGES
HOUR = 13  # characters of a stored timestamp up to the hour
QUARTERS = ("s00", "s15", "s30", "s45")
BUCKET_COLUMNS = tuple(f"b{i}" for i in range(len(EDGES) + 1))
_NOT_EMPTY = " OR ".join(f"{c} != 0" for c in (*QUARTERS, *BUCKET_COLUMNS))


def bucket_of(duration: float) -> int:
    """The index of the duration's bucket (up to EDGES[i], above the one before)."""
    return next((i for i, edge in enumerate(EDGES) if duration <= edge), len(EDGES))


def _quarter(text: str) -> str:
    return QUARTERS[int(text[14:16]) // 15]


def add_ping(
    conn: sqlite3.Connection, org_id: int, monitor_id: int, n: int, at: dt.datetime,
    run: tuple[int, float] | None,
) -> None:  # fmt: skip
    """Count success ping number `n` in its hour, and `run` (id, duration), the run it finished
    if that run succeeded with a duration."""
    text = to_db(at)
    q = _quarter(text)
    if run is None:
        conn.execute(
            f"INSERT INTO monitor_hours(monitor_id, hour, org_id, {q}, first_n, last_n) "
            "VALUES (?, ?, ?, 1, ?, ?) ON CONFLICT(monitor_id, hour) DO UPDATE SET "
            f"{q} = {q} + 1, first_n = coalesce(min(first_n, ?), ?), "
            "last_n = coalesce(max(last_n, ?), ?)",
            (monitor_id, text[:HOUR], org_id, n, n, n, n, n, n),
        )
        return
    run_id, duration = run
    bucket = BUCKET_COLUMNS[bucket_of(duration)]
    conn.execute(
        f"INSERT INTO monitor_hours(monitor_id, hour, org_id, {q}, first_n, last_n, {bucket}, "
        "first_run, last_run) VALUES (?, ?, ?, 1, ?, ?, 1, ?, ?) ON CONFLICT(monitor_id, hour) DO UPDATE SET "
        f"{q} = {q} + 1, first_n = coalesce(min(first_n, ?), ?), "
        f"last_n = coalesce(max(last_n, ?), ?), {bucket} = {bucket} + 1, "
        "first_run = coalesce(min(first_run, ?), ?), last_run = coalesce(max(last_run, ?), ?)",
        (monitor_id, text[:HOUR], org_id, n, n, run_id, run_id, n, n, n, n, *(run_id,) * 4),
    )


def _drop_empty(conn: sqlite3.Connection, monitor_id: int, hours: list[str]) -> None:
    conn.executemany(
        f"DELETE FROM monitor_hours WHERE monitor_id = ? AND hour = ? AND NOT ({_NOT_EMPTY})",
        [(monitor_id, h) for h in hours],
    )


def forget_pings(conn: sqlite3.Connection, monitor_id: int, upto_n: int) -> None:
    """Take the monitor's success pings numbered up to `upto_n` out of the rollups (call it just
    before they are deleted)."""
    rows = conn.execute(
        "SELECT substr(created_at, 1, 13), sum(substr(created_at, 15, 2) < '15'), "
        "sum(substr(created_at, 15, 2) >= '15' AND substr(created_at, 15, 2) < '30'), "
        "sum(substr(created_at, 15, 2) >= '30' AND substr(created_at, 15, 2) < '45'), "
        "sum(substr(created_at, 15, 2) >= '45') FROM pings "
        "WHERE monitor_id = ? AND n <= ? AND kind = 'success' GROUP BY 1",
        (monitor_id, upto_n),
    ).fetchall()
    conn.executemany(
        "UPDATE monitor_hours SET s00 = s00 - ?, s15 = s15 - ?, s30 = s30 - ?, s45 = s45 - ? "
        "WHERE monitor_id = ? AND hour = ?",
        [(*r[1:], monitor_id, r[0]) for r in rows],
    )
    _drop_empty(conn, monitor_id, [r[0] for r in rows])


def prune_runs(conn: sqlite3.Connection, before: dt.datetime, limit: int) -> int:
    """Delete up to `limit` successful runs with a duration that finished before `before`,
    taking them out of the rollups; returns how many."""
    cases = " ".join(f"WHEN duration <= {e} THEN {i}" for i, e in enumerate(EDGES))
    rows = conn.execute(
        f"SELECT id, monitor_id, substr(finished_at, 1, 13), CASE {cases} ELSE {len(EDGES)} END "
        "FROM runs WHERE status = 'success' AND duration IS NOT NULL AND finished_at < ? "
        "LIMIT ?",
        (to_db(before), limit),
    ).fetchall()
    for _, mid, hour, bucket in rows:
        column = BUCKET_COLUMNS[bucket]
        conn.execute(
            f"UPDATE monitor_hours SET {column} = {column} - 1 WHERE monitor_id = ? AND hour = ?",
            (mid, hour),
        )
        _drop_empty(conn, mid, [hour])
    conn.executemany("DELETE FROM runs WHERE id = ?", [(r[0],) for r in rows])
    return len(rows)


def rebuild(conn: sqlite3.Connection) -> None:
    """Recompute every rollup from the pings and runs kept (as the migration did)."""
    backfill_monitor_hours(conn)


# -- reads for the organisation report ------------------------------------------------------------
#
# A period starts inside an hour ("now minus N days"): whole UTC days after it come from
# `monitor_days`, the rest of its first day from `monitor_hours`, and its first hour from the pings
# and runs themselves (found by the ranges the hour's row keeps).


def _parts(since: dt.datetime) -> tuple[str, str, str, str]:
    """The stored text of `since`, its hour, its day, and the end of its hour."""
    text = to_db(since)
    hour = text[:HOUR]
    start = dt.datetime.fromisoformat(hour + ":00:00+00:00")
    return text, hour, text[:10], to_db(start + dt.timedelta(hours=1))


def successes_by_monitor(
    conn: sqlite3.Connection, org_id: int, since: dt.datetime
) -> dict[int, int]:
    """Success pings from `since` on per monitor of the organisation (only monitors with any)."""
    text, hour, day, hour_end = _parts(since)
    out: dict[int, int] = {}
    for sql, args in (
        ("SELECT m.id, sum(d.successes) FROM monitors m JOIN monitor_days d "
         "ON d.monitor_id = m.id WHERE m.org_id = ? AND d.day > ? GROUP BY m.slug, m.id",
         (org_id, day)),
        ("SELECT m.id, sum(h.s00 + h.s15 + h.s30 + h.s45) FROM monitors m JOIN monitor_hours h "
         "ON h.monitor_id = m.id AND h.hour > ? AND h.hour < ? WHERE m.org_id = ? "
         "GROUP BY m.slug, m.id",
         (hour, day + "U", org_id)),
        ("SELECT m.id, count(*) FROM monitors m "
         "JOIN monitor_hours h ON h.monitor_id = m.id AND h.hour = ? "
         "JOIN pings p ON p.monitor_id = m.id AND p.n BETWEEN h.first_n AND h.last_n "
         "WHERE m.org_id = ? AND p.kind = 'success' AND p.created_at >= ? "
         "AND p.created_at < ? GROUP BY m.id",
         (hour, org_id, text, hour_end)),
    ):  # fmt: skip
        for mid, count in conn.execute(sql, args):
            if count:
                out[mid] = out.get(mid, 0) + count
    return out


def successes_by_quarter(
    conn: sqlite3.Connection, org_id: int, since: dt.datetime
) -> list[tuple[str, int, int, int, int]]:
    """(UTC hour, success pings in each quarter of it) of the organisation's monitors, for the
    hours from the one `since` falls in."""
    rows = conn.execute(
        "SELECT hour, s00, s15, s30, s45 FROM org_hours WHERE org_id = ? AND hour >= ?",
        (org_id, to_db(since)[:HOUR]),
    )
    return rows.fetchall()


def duration_counts(conn: sqlite3.Connection, org_id: int, since: dt.datetime) -> list[int]:
    """Successful runs of the organisation's monitors from `since` on per duration bucket (as
    `stats.duration_counts`): whole hours from `org_hours`, the first from its runs."""
    text, hour, _, hour_end = _parts(since)
    row = conn.execute(
        f"SELECT {', '.join(f'sum({c})' for c in BUCKET_COLUMNS)} FROM org_hours "
        "WHERE org_id = ? AND hour > ?",
        (org_id, hour),
    ).fetchone()
    counts = [int(c or 0) for c in row]
    cases = " ".join(f"WHEN r.duration <= {e} THEN {i}" for i, e in enumerate(EDGES))
    edge = conn.execute(
        f"SELECT CASE {cases} ELSE {len(EDGES)} END, count(*) FROM monitors m "
        "JOIN monitor_hours h ON h.monitor_id = m.id AND h.hour = ? "
        "JOIN runs r ON r.monitor_id = m.id AND r.id BETWEEN h.first_run AND h.last_run "
        "WHERE m.org_id = ? AND r.status = 'success' AND r.duration IS NOT NULL "
        "AND r.finished_at >= ? AND r.finished_at < ? GROUP BY 1",
        (hour, org_id, text, hour_end),
    )
    for bucket, count in edge:
        counts[bucket] += count
    return counts


def zones(conn: sqlite3.Connection, org_id: int) -> set[str]:
    """The time zones the organisation's monitors are in."""
    rows = conn.execute("SELECT DISTINCT tz FROM monitors WHERE org_id = ?", (org_id,))
    return {r[0] for r in rows}


def fails_by_monitor(conn: sqlite3.Connection, org_id: int, since: dt.datetime) -> dict[int, int]:
    """Fail pings from `since` on per monitor of the organisation, by the partial index of fail
    pings (they are few)."""
    rows = conn.execute(
        "SELECT p.monitor_id, count(*) FROM pings p INDEXED BY pings_fail "
        "JOIN monitors m ON m.id = p.monitor_id "
        "WHERE p.kind = 'fail' AND p.created_at >= ? AND m.org_id = ? GROUP BY 1",
        (to_db(since), org_id),
    )
    return dict(rows.fetchall())


def fail_groups(
    conn: sqlite3.Connection, org_id: int, since: dt.datetime, later: dt.datetime, width: int
) -> list[tuple[str, str, int, int]]:
    """(time zone of the monitors, UTC time, fail pings from `since` on, those from `later` on)
    of the organisation's monitors per stretch of time of `width` characters of a stored time
    (as `stats.fail_counts`), by the partial index of fail pings."""
    rows = conn.execute(
        "SELECT m.tz, substr(p.created_at, 1, ?), count(*), sum(p.created_at >= ?) "
        "FROM pings p INDEXED BY pings_fail JOIN monitors m ON m.id = p.monitor_id "
        "WHERE p.kind = 'fail' AND p.created_at >= ? AND m.org_id = ? GROUP BY 1, 2",
        (width, to_db(later), to_db(since), org_id),
    )
    return rows.fetchall()


def timeouts(
    conn: sqlite3.Connection, org_id: int, since: dt.datetime
) -> list[tuple[int, str, str, str]]:
    """(monitor id, status, finished_at as stored, the monitor's time zone) of the
    organisation's runs that timed out from `since` on, by the partial index of timed-out runs."""
    rows = conn.execute(
        "SELECT r.monitor_id, r.status, r.finished_at, m.tz FROM runs r INDEXED BY runs_timeout "
        "JOIN monitors m ON m.id = r.monitor_id "
        "WHERE r.status = 'timeout' AND r.finished_at >= ? AND m.org_id = ?",
        (to_db(since), org_id),
    )
    return rows.fetchall()
