"""The scheduler: every monitor's next deadline in an in-memory heap, and the loop that acts on them.

The heap is rebuilt from SQLite at start and kept in step with it by the writer (deadlines are
set right after each commit, in commit order). The loop sleeps until the earliest deadline or
until a ping moves one earlier: no polling and no table scans, and work per event grows with
log(monitors). `tick(now)` does the work of one wake-up and is what most tests call.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import heapq
import logging
import math
import threading
from collections.abc import Callable, Iterable

from tokiflow.clock import Clock
from tokiflow.engine import states
from tokiflow.storage.database import Database
from tokiflow.storage.monitors import Monitor

log = logging.getLogger(__name__)

RETRY_AFTER_FAILED_WRITE = 5.0


def _ts(when: dt.datetime) -> float:
    return when.timestamp()


def _dt(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC)


class Scheduler:
    """Deadlines of every monitor, and the loop that applies them when they pass."""

    def __init__(self, db: Database, clock: Clock, *, started_at: dt.datetime) -> None:
        self._db = db
        self._clock = clock
        self.started_at = started_at
        self._lock = threading.Lock()
        self._heap: list[tuple[float, int]] = []
        self._due: dict[int, float] = {}
        self._sleeping_until = -math.inf
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self.parked = asyncio.Event()
        self.evaluations = 0
        # Called (on the loop) after a tick that changed something: the dispatcher's poke.
        self.on_change: Callable[[], None] | None = None

    def __len__(self) -> int:
        return len(self._due)

    # -- deadlines (any thread) ---------------------------------------------------------------

    def load(self, rows: Iterable[tuple[int, dt.datetime]]) -> None:
        """Replace every deadline with the rows read from the database at start."""
        with self._lock:
            self._due = {monitor_id: _ts(when) for monitor_id, when in rows}
            self._heap = [(ts, monitor_id) for monitor_id, ts in self._due.items()]
            heapq.heapify(self._heap)

    def set_deadline(self, monitor_id: int, when: dt.datetime | None) -> None:
        """Record a monitor's next check (None: nothing to watch); wakes the loop if sooner.

        A deadline that moves later (what nearly every ping does) pushes nothing: the earlier
        heap entry stays and is re-queued at the new time when it comes up. So the heap holds
        about one entry per monitor and never needs a rebuild on the ping path.
        """
        wake = False
        with self._lock:
            if when is None:
                self._due.pop(monitor_id, None)
                return
            ts = _ts(when)
            old = self._due.get(monitor_id)
            if old == ts:
                return
            self._due[monitor_id] = ts
            if old is None or ts < old:
                heapq.heappush(self._heap, (ts, monitor_id))
                wake = ts < self._sleeping_until
        if wake and self._loop is not None and self._wake is not None:
            try:
                self._loop.call_soon_threadsafe(self._wake.set)
            except RuntimeError:  # the loop has closed during shutdown
                pass

    def deadline(self, monitor_id: int) -> dt.datetime | None:
        ts = self._due.get(monitor_id)
        return None if ts is None else _dt(ts)

    def _settle_top(self) -> float | None:
        """Bring the heap's top in line with `_due` and return its time (lock held)."""
        heap = self._heap
        while heap:
            ts, monitor_id = heap[0]
            current = self._due.get(monitor_id)
            if current == ts:
                return ts
            if current is not None and current > ts:
                heapq.heapreplace(heap, (current, monitor_id))  # moved later: re-queue
            else:
                heapq.heappop(heap)  # removed, or superseded by an earlier entry
        return None

    def next_deadline(self) -> dt.datetime | None:
        """The earliest deadline."""
        with self._lock:
            ts = self._settle_top()
        return None if ts is None else _dt(ts)

    def pop_due(self, now: dt.datetime) -> list[int]:
        """Take every monitor whose deadline is at or before `now`."""
        limit = _ts(now)
        taken: list[int] = []
        with self._lock:
            while (ts := self._settle_top()) is not None and ts <= limit:
                _, monitor_id = heapq.heappop(self._heap)
                del self._due[monitor_id]
                taken.append(monitor_id)
        return taken

    # -- work ---------------------------------------------------------------------------------

    async def tick(self, now: dt.datetime) -> list[states.Transition]:
        """Apply every deadline that has passed by `now`; returns the transitions made."""
        due = self.pop_due(now)
        if not due:
            return []
        results = await asyncio.gather(
            *(self._evaluate(monitor_id, now) for monitor_id in due), return_exceptions=True
        )
        done: list[states.Transition] = []
        for monitor_id, result in zip(due, results, strict=True):
            if isinstance(result, BaseException):
                log.error("checking monitor %s failed: %s; retrying", monitor_id, result)
                retry = now + dt.timedelta(seconds=RETRY_AFTER_FAILED_WRITE)
                self.set_deadline(monitor_id, retry)
            else:
                done.extend(result)
        if done and self.on_change is not None:
            self.on_change()
        return done

    async def _evaluate(self, monitor_id: int, now: dt.datetime) -> list[states.Transition]:
        self.evaluations += 1

        def after(result: tuple[Monitor | None, list[states.Transition]]) -> None:
            m = result[0]
            self.set_deadline(monitor_id, m.next_check_at if m else None)

        _, transitions = await self._db.write(
            lambda conn: states.evaluate(conn, monitor_id, now, self.started_at),
            after_commit=after,
        )
        for tr in transitions:
            log.info(
                "monitor %s (%s): %s -> %s%s",
                tr.monitor.name, tr.monitor.uuid, tr.old_status, tr.new_status,
                f", incident {tr.incident_kind} #{tr.incident_id}" if tr.incident_id else "",
            )  # fmt: skip
        return transitions

    async def run(self) -> None:
        """Sleep until the earliest deadline or a wake-up, tick, repeat; until cancelled."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        while True:
            await self.tick(self._clock.now())
            with self._lock:
                self._wake.clear()
            nxt = self.next_deadline()
            with self._lock:
                self._sleeping_until = math.inf if nxt is None else _ts(nxt)
            if nxt is not None and nxt <= self._clock.now():
                continue
            await self._sleep(nxt)

    async def _sleep(self, until: dt.datetime | None) -> None:
        assert self._wake is not None
        waiters: set[asyncio.Future[object]] = {asyncio.ensure_future(self._wake.wait())}
        if until is not None:
            waiters.add(asyncio.ensure_future(self._clock.sleep_until(until)))
        self.parked.set()
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.parked.clear()
            with self._lock:
                self._sleeping_until = -math.inf
            for waiter in waiters:
                waiter.cancel()
