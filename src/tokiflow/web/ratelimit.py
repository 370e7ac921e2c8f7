"""A per-client token bucket for the ping front doors (memory bounded, clock injected)."""

from __future__ import annotations

from collections import OrderedDict

from tokiflow.clock import Clock

MAX_CLIENTS = 100_000


class RateLimiter:
    """`rate` requests per second on average, `burst` at once, per key; rate 0 means no limit."""

    def __init__(self, clock: Clock, *, rate: float, burst: int) -> None:
        self._clock = clock
        self._rate = rate
        self._burst = float(max(burst, 1))
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def check(self, key: str) -> float:
        """0.0 if the request may go ahead (and is counted), else seconds until it may."""
        if self._rate <= 0:
            return 0.0
        now = self._clock.monotonic()
        tokens, last = self._buckets.pop(key, (self._burst, now))
        tokens = min(self._burst, tokens + (now - last) * self._rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            wait = 0.0
        else:
            self._buckets[key] = (tokens, now)
            wait = (1.0 - tokens) / self._rate
        if len(self._buckets) > MAX_CLIENTS:
            self._buckets.popitem(last=False)
        return wait
