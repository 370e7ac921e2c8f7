"""Operations: the licence in force, /metrics for Prometheus, and the self-heartbeat task.

- The installed licence is loaded at start and re-read when its file changes (so `tokiflow
  license install` needs no restart); `current_licence(app)` and `licence_status(app)` are what
  handlers and the UI call.
- `GET /metrics` answers in the Prometheus text format. Pings are counted in memory (each
  answered 2xx by a ping front door, i.e. a handler in a `tokiflow.web.ping*` module) on top of
  `sum(n_pings)` read once at start, so a scrape never counts the ping table. Figures read from
  the database are cached for CACHE_SECONDS so that a busy scraper costs little.
- With `self_ping_url` set, Tokiflow GETs that URL every minute, so that an outside monitor
  notices when this one is down. Failures are logged as warnings and never stop the server.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import os
import sqlite3
import urllib.parse
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tokiflow import __version__, licensing
from tokiflow.clock import Clock
from tokiflow.storage import figures
from tokiflow.storage.figures import LATENCY_WINDOW, DbFigures, read_figures
from tokiflow.storage.figures import STATUSES as STATUSES
from tokiflow.storage.timefmt import from_db
from tokiflow.web import appkeys

log = logging.getLogger(__name__)

SELF_PING_EVERY = 60.0
SELF_PING_TIMEOUT = 10.0
CACHE_SECONDS = 5.0
PING_MODULE_PREFIX = "tokiflow.web.ping"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class LicenceHolder:
    """The installed licence, re-read whenever its file changes (a stat per call)."""

    def __init__(self, data_dir: Path, keys: Mapping[str, Ed25519PublicKey]) -> None:
        self._path = licensing.licence_path(data_dir)
        self._data_dir = data_dir
        self._keys = keys
        self._seen: tuple[float, int] | None = None
        self._licence: licensing.Licence | None = None
        self.error: str | None = None

    def current(self) -> licensing.Licence | None:
        """The valid installed licence, or None (FREE) if there is none or it does not verify."""
        try:
            st = os.stat(self._path)
            seen: tuple[float, int] | None = (st.st_mtime, st.st_size)
        except FileNotFoundError:
            seen = None
        except OSError as exc:
            log.warning("cannot read the licence file %s: %s", self._path, exc.strerror)
            return self._licence
        if seen != self._seen:
            self._seen = seen
            self._load()
        return self._licence

    def _load(self) -> None:
        try:
            self._licence = licensing.load_installed(self._data_dir, self._keys)
            self.error = None
        except licensing.LicenceError as exc:
            self._licence = None
            self.error = str(exc)
            log.warning("the installed licence is not valid (%s); the FREE plan applies", exc)
            return
        if self._licence is not None:
            log.info(
                "licence %s: %s plan for %s",
                self._licence.id,
                self._licence.plan,
                self._licence.licensee,
            )


@dataclasses.dataclass
class Counters:
    """In-memory counters since start; `pings_at_start` is `sum(n_pings)` read at start."""

    pings_at_start: int = 0
    pings: int = 0
    self_pings_ok: int = 0
    self_pings_failed: int = 0
    self_ping_last_ok: float | None = None
    started_at: float = 0.0
    ping_handlers: frozenset[Any] = frozenset()


@dataclasses.dataclass
class _Cached:
    at: float
    lines: list[str]


LICENCE = web.AppKey("licence", LicenceHolder)
COUNTERS = web.AppKey("operations_counters", Counters)
METRICS_CACHE = web.AppKey("metrics_cache", dict)
# Trusted licence-signing keys; tests put a throwaway key here before the app starts.
LICENCE_KEYS: web.AppKey[Mapping[str, Ed25519PublicKey]] = web.AppKey("licence_keys")


def current_licence(app: web.Application) -> licensing.Licence | None:
    """The licence in force's document (None: FREE); pass it to licensing.check_* functions."""
    return app[LICENCE].current()


def licence_status(app: web.Application) -> licensing.Status:
    """The licence situation now, with the banner the UI shows (None when nothing to say)."""
    return licensing.status(current_licence(app), app[appkeys.CLOCK].now())


def plan_limits(app: web.Application) -> licensing.Limits:
    """The limits in force now: what every path that adds a monitor or a user passes on."""
    return licence_status(app).limits


def add_routes(app: web.Application) -> None:
    """Register /metrics and the in-memory ping counter."""
    app[COUNTERS] = Counters()
    app[METRICS_CACHE] = {}
    app.router.add_get("/metrics", metrics)
    app.on_response_prepare.append(_count_ping)


async def _count_ping(request: web.Request, response: web.StreamResponse) -> None:
    if response.status < 300 and request.match_info.handler in request.app[COUNTERS].ping_handlers:
        request.app[COUNTERS].pings += 1


def _ping_handlers(app: web.Application) -> frozenset[Any]:
    found = set()
    for route in app.router.routes():
        module = getattr(route.handler, "__module__", "") or ""
        if module.startswith(PING_MODULE_PREFIX):
            found.add(route.handler)
    return frozenset(found)


async def ctx(app: web.Application) -> AsyncIterator[None]:
    """Load the licence, read the ping total, start the self-ping task (cleanup_ctx)."""
    settings = app[appkeys.SETTINGS]
    clock = app[appkeys.CLOCK]
    keys = app.get(LICENCE_KEYS) or licensing.trusted_keys()
    holder = LicenceHolder(settings.data_dir, keys)
    await asyncio.to_thread(holder.current)
    app[LICENCE] = holder
    counters = app[COUNTERS]
    counters.ping_handlers = _ping_handlers(app)
    counters.started_at = clock.now().timestamp()
    counters.pings_at_start = await app[appkeys.DB].read(_ping_total)
    task: asyncio.Task[None] | None = None
    if settings.self_ping_url:
        task = asyncio.create_task(
            self_ping_loop(settings.self_ping_url, clock, counters), name="self-ping"
        )
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass


_ping_total = figures.ping_total


# -- self-heartbeat -----------------------------------------------------------------------------


async def self_ping_loop(
    url: str, clock: Clock, counters: Counters, *, every: float = SELF_PING_EVERY
) -> None:
    """GET `url` now and then every `every` seconds until cancelled; failures only warn."""
    timeout = aiohttp.ClientTimeout(total=SELF_PING_TIMEOUT)
    headers = {"User-Agent": f"tokiflow/{__version__} self-ping"}
    async with aiohttp.ClientSession(timeout=timeout, headers=headers) as session:
        while True:
            await self_ping(session, url, clock, counters)
            await clock.sleep(every)


async def self_ping(
    session: aiohttp.ClientSession, url: str, clock: Clock, counters: Counters
) -> bool:
    """One self-ping; True if the URL answered 2xx."""
    try:
        async with session.get(url) as resp:
            await resp.read()
            ok = 200 <= resp.status < 300
            reason = f"answered {resp.status}"
    except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
        ok, reason = False, str(exc) or type(exc).__name__
    if ok:
        counters.self_pings_ok += 1
        counters.self_ping_last_ok = clock.now().timestamp()
    else:
        counters.self_pings_failed += 1
        log.warning("self-ping to %s failed: %s", _redact(url), reason)
    return ok


def _redact(url: str) -> str:
    """The URL without its path (which usually holds the check's secret uuid)."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}/..." if parts.hostname else "(invalid URL)"


# -- /metrics -----------------------------------------------------------------------------------


class _Out:
    """Prometheus text-format lines, one HELP/TYPE header per metric name."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def metric(self, name: str, kind: str, help_text: str, samples: list[tuple[str, Any]]) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            self.lines.append(f"{name}{labels} {_num(value)}")


def _num(value: Any) -> str:
    if value is None:
        return "NaN"
    if isinstance(value, float):
        return repr(round(value, 6))
    return str(int(value))


def _labels(**labels: str) -> str:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _quantile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    index = min(int(q * len(sorted_values)), len(sorted_values) - 1)
    return sorted_values[index]


async def metrics(request: web.Request) -> web.Response:
    """Prometheus metrics: pings, monitors, incidents, outbox, deliveries, scheduler, licence."""
    app = request.app
    clock = app[appkeys.CLOCK]
    cache: dict[str, _Cached] = app[METRICS_CACHE]
    cached = cache.get("db")
    if cached is None or clock.monotonic() - cached.at > CACHE_SECONDS:
        try:
            figures = await app[appkeys.DB].read(read_figures)
        except sqlite3.Error as exc:
            log.warning("metrics: database read failed: %s", exc)
            return web.Response(status=503, text=f"database unavailable: {exc}\n")
        cached = _Cached(clock.monotonic(), _db_lines(figures, clock))
        cache["db"] = cached
    out = _Out()
    _process_lines(out, app)
    text = "\n".join(out.lines + cached.lines) + "\n"
    return web.Response(body=text.encode(), headers={"Content-Type": CONTENT_TYPE})


def _process_lines(out: _Out, app: web.Application) -> None:
    clock = app[appkeys.CLOCK]
    counters = app[COUNTERS]
    out.metric("tokiflow_build_info", "gauge", "Tokiflow version.",
               [(_labels(version=__version__), 1)])  # fmt: skip
    out.metric("tokiflow_start_time_seconds", "gauge", "When this server started (Unix time).",
               [("", float(counters.started_at))])  # fmt: skip
    out.metric("tokiflow_pings_received_total", "counter",
               "Pings stored since the database was created.",
               [("", counters.pings_at_start + counters.pings)])  # fmt: skip
    out.metric("tokiflow_pings_received_since_start_total", "counter",
               "Pings stored since this server started.", [("", counters.pings)])  # fmt: skip
    scheduler = app[appkeys.SCHEDULER]
    lag = scheduler_lag(scheduler.next_deadline(), clock.now())
    out.metric("tokiflow_scheduler_monitors", "gauge", "Monitors with a deadline to watch.",
               [("", len(scheduler))])  # fmt: skip
    out.metric("tokiflow_scheduler_lag_seconds", "gauge",
               "How far the earliest deadline is in the past (0 when the scheduler keeps up).",
               [("", float(lag))])  # fmt: skip
    stats = app[appkeys.DB].writer.stats
    out.metric("tokiflow_writer_batches_total", "counter", "Write batches committed.",
               [("", stats.batches)])  # fmt: skip
    out.metric("tokiflow_writer_writes_total", "counter", "Writes handed to the writer.",
               [("", stats.writes)])  # fmt: skip
    out.metric("tokiflow_writer_failed_batches_total", "counter",
               "Write batches that failed and were rolled back.",
               [("", stats.failed_batches)])  # fmt: skip
    _licence_lines(out, app)
    if app[appkeys.SETTINGS].self_ping_url:
        out.metric("tokiflow_self_pings_total", "counter", "Self-pings sent, by outcome.",
                   [(_labels(result="ok"), counters.self_pings_ok),
                    (_labels(result="failed"), counters.self_pings_failed)])  # fmt: skip
        out.metric("tokiflow_self_ping_last_success_seconds", "gauge",
                   "When a self-ping last succeeded (Unix time).",
                   [("", counters.self_ping_last_ok)])  # fmt: skip


def scheduler_lag(next_deadline: dt.datetime | None, now: dt.datetime) -> float:
    """Seconds the earliest deadline is overdue: 0 while the scheduler keeps up."""
    if next_deadline is None:
        return 0.0
    return max((now - next_deadline).total_seconds(), 0.0)


def _licence_lines(out: _Out, app: web.Application) -> None:
    st = licence_status(app)
    out.metric("tokiflow_licence_info", "gauge",
               "The plan in force and the licence state (none, valid, grace, expired).",
               [(_labels(plan=st.limits.plan, state=st.state), 1)])  # fmt: skip
    ends = st.licence.ends_at() if st.licence else None
    if ends is not None:
        out.metric("tokiflow_licence_expiry_seconds", "gauge",
                   "When the licence stops being valid (Unix time; grace follows).",
                   [("", float(ends.timestamp()))])  # fmt: skip
    if st.limits.monitors is not None:
        out.metric("tokiflow_licence_monitors_limit", "gauge",
                   "Monitors the plan in force allows.", [("", st.limits.monitors)])  # fmt: skip


def _db_lines(f: DbFigures, clock: Clock) -> list[str]:
    out = _Out()
    out.metric("tokiflow_monitors", "gauge", "Monitors by status.",
               [(_labels(status=s), n) for s, n in sorted(f.by_status.items())])  # fmt: skip
    out.metric("tokiflow_monitors_running", "gauge", "Monitors with a run in progress.",
               [("", f.running)])  # fmt: skip
    kinds = ("FAIL", "MISSED", "LATE", "TIMEOUT", "ANOMALY", "OUTPUT")
    counts = {(k, s): 0 for k in kinds for s in ("open", "acknowledged")}
    counts.update({(k, s): n for k, s, n in f.incidents})
    out.metric("tokiflow_incidents_open", "gauge",
               "Unresolved incidents by kind and state (open or acknowledged).",
               [(_labels(kind=k, state=s), n) for (k, s), n in sorted(counts.items())])  # fmt: skip
    age = 0.0
    if f.outbox_oldest is not None:
        age = max((clock.now() - from_db(f.outbox_oldest)).total_seconds(), 0.0)
    out.metric("tokiflow_outbox_depth", "gauge", "Notifications waiting to be sent.",
               [("", f.outbox_depth)])  # fmt: skip
    out.metric("tokiflow_outbox_oldest_age_seconds", "gauge",
               "Age of the oldest notification waiting to be sent (0 when none).",
               [("", float(age))])  # fmt: skip
    out.metric("tokiflow_delivery_attempts_total", "counter",
               "Notification delivery attempts recorded.", [("", f.attempts_total)])  # fmt: skip
    out.metric("tokiflow_delivery_failures_recent", "gauge",
               f"Failed attempts among the last {LATENCY_WINDOW} delivery attempts.",
               [("", f.failures_recent)])  # fmt: skip
    out.metric("tokiflow_delivery_latency_seconds", "gauge",
               f"Latency of successful deliveries over the last {LATENCY_WINDOW} attempts.",
               [(_labels(quantile=str(q)), _secs(_quantile(f.latencies_ms, q)))
                for q in (0.5, 0.95, 0.99)])  # fmt: skip
    return out.lines


def _secs(ms: float | None) -> float | None:
    return None if ms is None else ms / 1000.0
