"""Numbers a client reports with a ping (Cronitor's `metric=count:N`, ...), kept per ping."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Mapping

from tokiflow.storage.timefmt import from_db


def insert(conn: sqlite3.Connection, monitor_id: int, n: int, values: Mapping[str, float]) -> None:
    conn.executemany(
        "INSERT OR REPLACE INTO ping_metrics(monitor_id, n, name, value) VALUES (?, ?, ?, ?)",
        [(monitor_id, n, name, float(value)) for name, value in values.items()],
    )


def prune(conn: sqlite3.Connection, monitor_id: int, up_to_n: int) -> None:
    """Delete the metrics of pings numbered up to `up_to_n` (pruned with their pings)."""
    conn.execute("DELETE FROM ping_metrics WHERE monitor_id = ? AND n <= ?", (monitor_id, up_to_n))


def series(
    conn: sqlite3.Connection, monitor_id: int, limit: int = 100
) -> dict[str, list[tuple[dt.datetime, float]]]:
    """Each metric's recent values, oldest first, with the time of the ping that carried it."""
    rows = conn.execute(
        "SELECT m.name, p.created_at, m.value FROM ping_metrics m JOIN pings p "
        "ON p.monitor_id = m.monitor_id AND p.n = m.n WHERE m.monitor_id = ? "
        "AND m.n > (SELECT coalesce(max(n), 0) FROM pings WHERE monitor_id = ?) - ? "
        "ORDER BY m.name, m.n",
        (monitor_id, monitor_id, limit),
    )
    out: dict[str, list[tuple[dt.datetime, float]]] = {}
    for name, at, value in rows:
        out.setdefault(name, []).append((from_db(at), value))
    return out
