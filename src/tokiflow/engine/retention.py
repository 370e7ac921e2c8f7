"""Retention: old runs (taken out of the analytics rollups as they go), resolved incidents,
flips and sent personal emails are deleted in small batches, off the ping path; captured output
by age and by total size per organisation, and output files nothing refers to."""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from tokiflow.clock import Clock
from tokiflow.storage import incidents, outputs, rollups, runs, user_notifications
from tokiflow.storage.database import Database

log = logging.getLogger(__name__)

BATCH = 500
INTERVAL = dt.timedelta(hours=1)
SWEEP_DIRS = 100


@dataclass(frozen=True)
class OutputPolicy:
    """Where captured output lives and how much of it is kept (`output_retention`,
    `output_max_total`)."""

    root: Path
    max_age_seconds: int
    max_total: int


async def prune_once(db: Database, now: dt.datetime, retention_seconds: int) -> int:
    """Delete everything older than the retention period, one small transaction at a time."""
    cutoff = now - dt.timedelta(seconds=retention_seconds)
    total = 0
    while True:
        deleted = await db.write(
            lambda conn: (
                rollups.prune_runs(conn, cutoff, BATCH)  # the runs the rollups count
                + runs.prune_finished(conn, cutoff, BATCH)
                + incidents.prune_resolved(conn, cutoff, BATCH)
                + user_notifications.prune_sent(conn, cutoff, BATCH)
            )
        )
        total += deleted
        if deleted == 0:
            break
    if total:
        log.info("retention: deleted %d old rows (before %s)", total, cutoff.isoformat())
    return total


def _unlink(root: Path, keys: list[tuple[int, int]]) -> None:
    for monitor_id, n in keys:
        try:
            (root / str(monitor_id) / f"{n}{outputs.SUFFIX}").unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("cannot delete output file %s/%s: %s", monitor_id, n, exc.strerror)


async def prune_outputs(db: Database, now: dt.datetime, policy: OutputPolicy) -> int:
    """Delete captured output older than the retention period, then the oldest output of each
    organisation over its total, then files no record refers to; returns how many files went.

    Records are deleted in the writer and their files only after that commit, so a file can
    outlive its record (the sweep removes it later) but a record never outlives its file.
    """
    cutoff = now - dt.timedelta(seconds=policy.max_age_seconds)
    total = 0

    def unlink(keys: list[tuple[int, int]]) -> None:
        _unlink(policy.root, keys)

    while keys := await db.write(
        lambda conn: outputs.take_older_than(conn, cutoff, BATCH), after_commit=unlink
    ):
        total += len(keys)
    for org_id, excess in await db.read(lambda c: outputs.excess_by_org(c, policy.max_total)):
        while excess > 0:
            taken, freed = await db.write(
                functools.partial(outputs.take_oldest, org_id=org_id, excess=excess, limit=BATCH),
                after_commit=lambda result: unlink(result[0]),
            )
            if not taken:
                break
            total += len(taken)
            excess -= freed
    total += await sweep_orphans(db, policy.root)
    if total:
        log.info("output retention: deleted %d files", total)
    return total


def _sweep(conn: sqlite3.Connection, root: Path, monitor_ids: list[int]) -> int:
    # Runs in the writer, between two pings: a file of a ping that is being written right now
    # either has its record in this same transaction already, or does not exist yet.
    removed = 0
    for monitor_id in monitor_ids:
        folder = root / str(monitor_id)
        known = outputs.known_numbers(conn, monitor_id)
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            continue
        for name in names:
            stem, _, suffix = name.partition(".")
            if stem.isdigit() and f".{suffix}" == outputs.SUFFIX and int(stem) in known:
                continue
            try:
                os.unlink(folder / name)
                removed += 1
            except OSError:
                pass
        if not known:
            try:
                folder.rmdir()
            except OSError:
                pass
    return removed


async def sweep_orphans(db: Database, root: Path) -> int:
    """Remove output files without a record: left by a batch that was rolled back, by a deleted
    monitor, or by a crash between a record's deletion and its file's."""
    try:
        ids = sorted(int(e.name) for e in os.scandir(root) if e.is_dir() and e.name.isdigit())
    except FileNotFoundError:
        return 0
    removed = 0
    for i in range(0, len(ids), SWEEP_DIRS):
        chunk = ids[i : i + SWEEP_DIRS]
        removed += await db.write(functools.partial(_sweep, root=root, monitor_ids=chunk))
    return removed


async def run(
    db: Database, clock: Clock, retention_seconds: int, output_policy: OutputPolicy | None = None
) -> None:
    """Prune at start and then every hour, until cancelled."""
    while True:
        try:
            await prune_once(db, clock.now(), retention_seconds)
            if output_policy is not None:
                await prune_outputs(db, clock.now(), output_policy)
        except Exception as exc:  # a failed prune is retried at the next interval
            log.warning("retention pass failed: %s", exc)
        await clock.sleep(INTERVAL.total_seconds())
