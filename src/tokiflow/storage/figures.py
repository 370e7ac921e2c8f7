"""Figures for /metrics: monitors by status, open incidents, the alert outbox and delivery
latency, read in one transaction so that they agree with each other."""

from __future__ import annotations

import dataclasses
import sqlite3

STATUSES = ("new", "up", "late", "down", "paused")
LATENCY_WINDOW = 1000  # delivery attempts the latency and failure figures look at


@dataclasses.dataclass(frozen=True)
class DbFigures:
    """What /metrics reads from the database."""

    by_status: dict[str, int]
    running: int
    incidents: list[tuple[str, str, int]]
    outbox_depth: int
    outbox_oldest: str | None
    latencies_ms: list[float]
    attempts_total: int
    failures_recent: int


def ping_total(conn: sqlite3.Connection) -> int:
    """Every ping ever received (the monitors' counters, not a count of the ping table)."""
    return int(conn.execute("SELECT coalesce(sum(n_pings), 0) FROM monitors").fetchone()[0])


def read_figures(conn: sqlite3.Connection) -> DbFigures:
    """Every figure /metrics takes from the database, in one read transaction."""
    conn.execute("BEGIN")
    try:
        by_status: dict[str, int] = dict.fromkeys(STATUSES, 0)
        running = 0
        for status, n, n_running in conn.execute(
            "SELECT status, count(*), sum(open_runs > 0) FROM monitors GROUP BY status"
        ):
            by_status[status] = int(n)
            running += int(n_running or 0)
        incidents = [
            (str(kind), str(state), int(n))
            for kind, state, n in conn.execute(
                "SELECT kind, state, count(*) FROM incidents WHERE state != 'resolved' "
                "GROUP BY kind, state"
            )
        ]
        depth, oldest = conn.execute(
            "SELECT count(*), min(created_at) FROM notifications "
            "WHERE state IN ('pending', 'sending')"
        ).fetchone()
        rows = conn.execute(
            "SELECT latency_ms, ok FROM delivery_attempts ORDER BY id DESC LIMIT ?",
            (LATENCY_WINDOW,),
        ).fetchall()
        (attempts,) = conn.execute("SELECT coalesce(max(id), 0) FROM delivery_attempts").fetchone()
    finally:
        conn.execute("COMMIT")
    return DbFigures(
        by_status=by_status,
        running=running,
        incidents=incidents,
        outbox_depth=int(depth),
        outbox_oldest=oldest,
        latencies_ms=sorted(float(r[0]) for r in rows if r[1]),
        attempts_total=int(attempts),
        failures_recent=sum(1 for r in rows if not r[1]),
    )


def database_answers(conn: sqlite3.Connection) -> bool:
    """A trivial query: whether the database can be read at all (status checks)."""
    return conn.execute("SELECT 1").fetchone() is not None
