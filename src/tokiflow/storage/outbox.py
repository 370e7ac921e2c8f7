"""The claim / retry / dead bookkeeping shared by the two outboxes: channel alerts
(`notifications`, one queue per channel) and personal emails (`user_notifications`, one queue
per user). Rows move pending -> sending -> sent | pending (retry) | dead, each move guarded by
the state it expects."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from tokiflow.storage.timefmt import opt_from_db, to_db

# Each outbox table and the column that names its queue: within one queue, the rows of one
# incident go out in order.
_QUEUE_COLUMN = {"notifications": "channel_id", "user_notifications": "user_id"}


class _Row(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def next_attempt_at(self) -> dt.datetime: ...


R = TypeVar("R", bound=_Row)


@dataclass(frozen=True)
class Outbox(Generic[R]):
    """One outbox table: `columns` are selected and `row` makes one of them a dataclass."""

    table: str
    columns: str
    row: Callable[[tuple], R]

    def __post_init__(self) -> None:
        if self.table not in _QUEUE_COLUMN:
            raise ValueError(f"not an outbox table: {self.table}")

    def claim_due(self, conn: sqlite3.Connection, now: dt.datetime, limit: int) -> list[R]:
        """Mark up to `limit` due pending rows as sending and return them (oldest first).

        A row waits while an earlier row of the same incident and queue is still unsent, so a
        channel (or user) always hears "open" before "resolved" (PagerDuty would keep an
        incident open forever otherwise), even when the first one needed retries.
        """
        table, queue = self.table, _QUEUE_COLUMN[self.table]
        rows = conn.execute(
            f"UPDATE {table} SET state = 'sending', attempts = attempts + 1 WHERE id IN ("
            f"SELECT n.id FROM {table} n WHERE n.state = 'pending' AND n.next_attempt_at <= ? "
            f"AND NOT EXISTS (SELECT 1 FROM {table} p WHERE p.incident_id = n.incident_id "
            f"AND p.{queue} = n.{queue} AND p.id < n.id AND p.state IN ('pending', 'sending')) "
            f"ORDER BY n.next_attempt_at, n.id LIMIT ?) RETURNING {self.columns}",
            (to_db(now), limit),
        ).fetchall()
        return sorted((self.row(r) for r in rows), key=lambda n: (n.next_attempt_at, n.id))

    def release_claims(self, conn: sqlite3.Connection) -> int:
        """At start-up: rows left `sending` by a stopped process go back to pending."""
        return conn.execute(
            f"UPDATE {self.table} SET state = 'pending' WHERE state = 'sending'"
        ).rowcount

    def mark_sent(self, conn: sqlite3.Connection, row_id: int, at: dt.datetime) -> bool:
        cur = conn.execute(
            f"UPDATE {self.table} SET state = 'sent', sent_at = ?, last_error = NULL "
            "WHERE id = ? AND state = 'sending'",
            (to_db(at), row_id),
        )
        return cur.rowcount == 1

    def mark_retry(
        self, conn: sqlite3.Connection, row_id: int, error: str, next_at: dt.datetime
    ) -> bool:
        cur = conn.execute(
            f"UPDATE {self.table} SET state = 'pending', last_error = ?, next_attempt_at = ? "
            "WHERE id = ? AND state = 'sending'",
            (error, to_db(next_at), row_id),
        )
        return cur.rowcount == 1

    def mark_dead(self, conn: sqlite3.Connection, row_id: int, error: str) -> bool:
        cur = conn.execute(
            f"UPDATE {self.table} SET state = 'dead', last_error = ? "
            "WHERE id = ? AND state = 'sending'",
            (error, row_id),
        )
        return cur.rowcount == 1

    def next_due(self, conn: sqlite3.Connection) -> dt.datetime | None:
        """When the earliest pending row is due (None when nothing is pending)."""
        row = conn.execute(
            f"SELECT min(next_attempt_at) FROM {self.table} WHERE state = 'pending'"
        ).fetchone()
        return opt_from_db(row[0])
