"""The database as one resource: migrated at open, then one writer and a pool of readers."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from tokiflow.clock import Clock
from tokiflow.storage.db import connect, prepare_data_dir
from tokiflow.storage.migrations import migrate
from tokiflow.storage.readers import Readers
from tokiflow.storage.writer import Writer

log = logging.getLogger(__name__)

T = TypeVar("T")
CHECKPOINT_INTERVAL = 1.0


class Database:
    """Migrations, the single writer and the readers of one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.writer = Writer(path)
        self.readers = Readers(path)
        self.applied: list[str] = []

    async def open(self) -> None:
        """Create the data folder if needed, migrate (after a backup copy), start the writer."""
        await asyncio.to_thread(prepare_data_dir, self.path.parent)
        self.applied = await asyncio.to_thread(migrate, self.path)
        self.writer.start()

    async def write(
        self,
        fn: Callable[[sqlite3.Connection], T],
        *,
        after_commit: Callable[[T], None] | None = None,
    ) -> T:
        """Run `fn` in the writer's next batch; returns after that batch is committed."""
        return await self.writer.run(fn, after_commit=after_commit)

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` on a read-only connection."""
        return await self.readers.run(fn)

    def checkpoint(self) -> tuple[int, int]:
        """Copy WAL pages into the database file without blocking the writer (PASSIVE); once
        a pass has copied everything, the writer's next transaction starts the WAL from the
        beginning again. Returns (WAL pages, pages copied). Blocking: call it in a thread."""
        conn = connect(self.path)
        try:
            _, wal_pages, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        finally:
            conn.close()
        return wal_pages, copied

    async def run_checkpoints(self, clock: Clock, every: float = CHECKPOINT_INTERVAL) -> None:
        """Checkpoint the WAL every `every` seconds until cancelled."""
        while True:
            await clock.sleep(every)
            try:
                await asyncio.to_thread(self.checkpoint)
            except sqlite3.Error as exc:
                log.warning("WAL checkpoint failed: %s", exc)

    async def close(self) -> None:
        await self.writer.close()
        await self.readers.close()
        # A last full checkpoint leaves a compact database file behind.
        try:
            await asyncio.to_thread(self.checkpoint)
        except sqlite3.Error as exc:
            log.warning("final WAL checkpoint failed: %s", exc)
