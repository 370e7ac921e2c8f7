"""The database as one resource: migrated at open, then one writer and a pool of readers."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from tokiflow.storage.db import prepare_data_dir
from tokiflow.storage.migrations import migrate
from tokiflow.storage.readers import Readers
from tokiflow.storage.writer import Writer

log = logging.getLogger(__name__)

T = TypeVar("T")


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

    async def close(self) -> None:
        await self.writer.close()
        await self.readers.close()
