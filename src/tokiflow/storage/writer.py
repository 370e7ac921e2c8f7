"""The single writer: every write runs on one SQLite connection in one thread, batched by group commit.

Callers hand over a function `fn(conn) -> result`; the writer thread takes whatever is queued when
it comes free (no fixed linger), runs each function inside its own savepoint of one
`BEGIN IMMEDIATE ... COMMIT` transaction, and only after the commit hands every caller its result.
So a caller that got an answer knows its write is on disk, and one failing write does not take
the others in its batch down with it.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tokiflow.storage.db import connect

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_BATCH = 2000


class WriteFailed(RuntimeError):
    """The batch holding this write could not be committed (disk full, I/O error, ...)."""


class WriterClosed(RuntimeError):
    """The writer is shutting down and takes no more work."""


@dataclass
class _Job:
    fn: Callable[[sqlite3.Connection], Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    after_commit: Callable[[Any], None] | None = None


@dataclass
class WriterStats:
    """Counters for benchmarks and the health check."""

    batches: int = 0
    writes: int = 0
    failed_batches: int = 0
    largest_batch: int = 0
    batch_sizes: list[int] = field(default_factory=list)


_STOP = object()


class Writer:
    """Group-commit writer on a dedicated thread with its own connection."""

    def __init__(self, path: Path, *, max_batch: int = MAX_BATCH) -> None:
        self._path = path
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._closing = False
        self.stats = WriterStats()

    def start(self) -> None:
        conn = connect(self._path)
        # Checkpoints run on their own connection (Database.checkpoint), off the write path:
        # an automatic one inside a commit stalls every caller of that batch.
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        self._thread = threading.Thread(
            target=self._loop, args=(conn,), name="tokiflow-writer", daemon=True
        )
        self._thread.start()

    async def run(
        self,
        fn: Callable[[sqlite3.Connection], T],
        *,
        after_commit: Callable[[T], None] | None = None,
    ) -> T:
        """Run `fn` in the next batch and return its result once that batch is committed.

        `fn` must change nothing but the database through `conn`: if another write of its batch
        fails, the batch is rolled back and `fn` runs a second time.
        `after_commit(result)` runs on the writer thread right after the commit, in commit order,
        and only if the write committed: the place to update in-memory state that must follow
        the database exactly (the scheduler's deadlines).
        """
        if self._closing or self._thread is None:
            raise WriterClosed("the writer is not running")
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Job(fn, fut, loop, after_commit))
        return await fut

    async def close(self) -> None:
        """Finish everything queued, commit it, and close the connection."""
        if self._thread is None:
            return
        self._closing = True
        self._queue.put(_STOP)
        await asyncio.get_running_loop().run_in_executor(None, self._thread.join)
        self._thread = None

    # -- the writer thread -------------------------------------------------------------------

    def _loop(self, conn: sqlite3.Connection) -> None:
        try:
            stopping = False
            while not stopping:
                first = self._queue.get()
                if first is _STOP:
                    break
                batch: list[_Job] = [first]
                while len(batch) < self._max_batch:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is _STOP:
                        stopping = True
                        break
                    batch.append(item)
                self._commit(conn, batch)
        finally:
            conn.close()

    def _commit(self, conn: sqlite3.Connection, batch: list[_Job]) -> None:
        try:
            outcomes = self._run_batch(conn, batch, isolated=False)
        except _JobRaised:
            # Some job raised: run the batch again with each job in its own savepoint, so that
            # only the failing ones are undone. Jobs touch nothing but the connection, so a
            # second run is safe.
            try:
                outcomes = self._run_batch(conn, batch, isolated=True)
            except sqlite3.Error as exc:
                outcomes = self._failed(conn, batch, exc)
        except sqlite3.Error as exc:
            outcomes = self._failed(conn, batch, exc)
        for job, (ok, value) in zip(batch, outcomes, strict=True):
            if ok and job.after_commit is not None:
                try:
                    job.after_commit(value)
                except Exception:
                    log.exception("after-commit hook failed")
        self.stats.batches += 1
        self.stats.writes += len(batch)
        self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Job, tuple[bool, Any]]]] = {}
        for job, outcome in zip(batch, outcomes, strict=True):
            by_loop.setdefault(job.loop, []).append((job, outcome))
        for loop, items in by_loop.items():
            try:
                loop.call_soon_threadsafe(_deliver, items)
            except RuntimeError:  # the caller's loop is gone; nobody is waiting
                pass

    def _run_batch(
        self, conn: sqlite3.Connection, batch: list[_Job], *, isolated: bool
    ) -> list[tuple[bool, Any]]:
        outcomes: list[tuple[bool, Any]] = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            for job in batch:
                if not isolated:
                    try:
                        outcomes.append((True, job.fn(conn)))
                    except Exception as exc:
                        raise _JobRaised from exc
                    continue
                conn.execute("SAVEPOINT w")
                try:
                    result = job.fn(conn)
                except Exception as exc:  # handed to the caller, not swallowed
                    conn.execute("ROLLBACK TO w")
                    conn.execute("RELEASE w")
                    outcomes.append((False, exc))
                else:
                    conn.execute("RELEASE w")
                    outcomes.append((True, result))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return outcomes

    def _failed(
        self, conn: sqlite3.Connection, batch: list[_Job], exc: sqlite3.Error
    ) -> list[tuple[bool, Any]]:
        log.error("write batch of %d failed and was rolled back: %s", len(batch), exc)
        self.stats.failed_batches += 1
        failure = WriteFailed(f"database write failed: {exc}")
        return [(False, failure)] * len(batch)


class _JobRaised(Exception):
    """A job of an optimistic batch raised; the batch is rolled back and run job by job."""


def _deliver(items: list[tuple[_Job, tuple[bool, Any]]]) -> None:
    for job, (ok, value) in items:
        if job.future.done():
            continue
        if ok:
            job.future.set_result(value)
        else:
            job.future.set_exception(value)
