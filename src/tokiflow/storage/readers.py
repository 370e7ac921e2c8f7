"""Read connections: queries run on a small pool of threads, each with its own read-only connection."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from tokiflow.storage.db import connect

T = TypeVar("T")


class Readers:
    """A pool of reader threads; `await readers.run(fn)` runs `fn(conn)` on one of them."""

    def __init__(self, path: Path, *, size: int = 2) -> None:
        self._path = path
        self._executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="tokiflow-read")
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self._path, readonly=True)
            self._local.conn = conn
            with self._lock:
                self._conns.append(conn)
        return conn

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(self._conn()))

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown, True)
        with self._lock:
            for conn in self._conns:
                conn.close()
            self._conns.clear()
