"""Retention: old runs, resolved incidents and flips are deleted in small batches, off the ping path."""

from __future__ import annotations

import datetime as dt
import logging

from tokiflow.clock import Clock
from tokiflow.storage import incidents, runs
from tokiflow.storage.database import Database

log = logging.getLogger(__name__)

BATCH = 500
INTERVAL = dt.timedelta(hours=1)


async def prune_once(db: Database, now: dt.datetime, retention_seconds: int) -> int:
    """Delete everything older than the retention period, one small transaction at a time."""
    cutoff = now - dt.timedelta(seconds=retention_seconds)
    total = 0
    while True:
        deleted = await db.write(
            lambda conn: (
                runs.prune_finished(conn, cutoff, BATCH)
                + incidents.prune_resolved(conn, cutoff, BATCH)
            )
        )
        total += deleted
        if deleted == 0:
            break
    if total:
        log.info("retention: deleted %d old rows (before %s)", total, cutoff.isoformat())
    return total


async def run(db: Database, clock: Clock, retention_seconds: int) -> None:
    """Prune at start and then every hour, until cancelled."""
    while True:
        try:
            await prune_once(db, clock.now(), retention_seconds)
        except Exception as exc:  # a failed prune is retried at the next interval
            log.warning("retention pass failed: %s", exc)
        await clock.sleep(INTERVAL.total_seconds())
