"""The only place that reads wall time or sleeps; everything else is handed a Clock."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Protocol

UTC = dt.UTC


class Clock(Protocol):
    """Wall time and sleeping, injected so that tests can move time by hand."""

    def now(self) -> dt.datetime:
        """The current time as an aware UTC datetime."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back, for measuring intervals."""
        ...

    async def sleep_until(self, when: dt.datetime) -> None:
        """Return once `now()` has reached `when` (at once if it already has)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait for `seconds` of this clock's time."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> dt.datetime:
        return dt.datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep_until(self, when: dt.datetime) -> None:
        # Sleep in bounded steps so that a wall-clock jump is noticed within a minute.
        while True:
            remaining = (when - self.now()).total_seconds()
            if remaining <= 0:
                return
            await asyncio.sleep(min(remaining, 60.0))

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0))


class FakeClock:
    """A clock for tests and benchmarks: time stands still until `advance()` or `set()` moves it.

    Sleepers are woken when time passes their deadline; `advance()` then waits until the loop has
    run everything that became ready (including work handed to other threads and back), so a test
    can assert right after it.
    """

    def __init__(self, start: dt.datetime | None = None) -> None:
        self._now = start or dt.datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
        if self._now.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self._mono = 1000.0
        self._sleepers: list[tuple[dt.datetime, asyncio.Future[None]]] = []

    def now(self) -> dt.datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    async def sleep_until(self, when: dt.datetime) -> None:
        if when <= self._now:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((when, fut))
        try:
            await fut
        finally:
            self._sleepers = [(w, f) for (w, f) in self._sleepers if f is not fut]

    async def sleep(self, seconds: float) -> None:
        await self.sleep_until(self._now + dt.timedelta(seconds=seconds))

    @property
    def sleepers(self) -> int:
        """How many tasks are parked on this clock."""
        return sum(1 for _, f in self._sleepers if not f.done())

    async def advance(self, seconds: float = 0.0, *, settle: float = 2.0) -> None:
        """Move time forward, wake due sleepers and let the woken work settle."""
        await self.set(self._now + dt.timedelta(seconds=seconds), settle=settle)

    async def set(self, when: dt.datetime, *, settle: float = 2.0) -> None:
        """Jump to `when`, wake due sleepers and let the woken work settle."""
        if when.tzinfo is None:
            raise ValueError("FakeClock.set needs an aware datetime")
        self._mono += max((when - self._now).total_seconds(), 0.0)
        self._now = when
        woken = [f for (w, f) in self._sleepers if w <= when and not f.done()]
        for fut in woken:
            fut.set_result(None)
        await self.settle(settle)

    async def settle(self, limit: float = 2.0) -> None:
        """Yield to the loop until its ready work is done (bounded by `limit` real seconds).

        Work that hops to a thread (the SQLite writer) is not visible as ready loop work, so this
        also waits for a short quiet period of real time before it returns.
        """
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + limit
        quiet = 0
        while time.monotonic() < deadline and quiet < 3:
            ready = len(getattr(loop, "_ready", ()))
            await asyncio.sleep(0.005 if ready == 0 else 0)
            quiet = quiet + 1 if ready == 0 else 0
