"""Tokiflow's job SDK: report a Python job's start, success or failure to its monitor.

Standard library only, so a job can copy this one file into its project. Use it as a context
manager, a decorator (plain and async functions), or call the methods yourself:

    from tokiflow.sdk import Monitor

    nightly = Monitor("https://tokiflow.example.com/ping/5f1e2d3c-...")

    @nightly
    def backup(): ...

    with nightly:            # start, then success, or fail with the traceback
        ...

Each run gets a fresh run id (`rid`), so the server pairs a start with its finish and measures
the duration; overlapping runs of one job stay apart. Pings never raise into the job: a server
that cannot be reached is logged as a warning (logger "tokiflow.sdk") and the job goes on.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import os
import traceback
import types
import urllib.error
import urllib.parse
import urllib.request
import uuid as uuidlib
from collections.abc import Callable
from typing import Any, TypeVar, cast

__all__ = ["Monitor", "Run"]

log = logging.getLogger("tokiflow.sdk")

OUTPUT_LIMIT = 10_000  # bytes of output sent with a ping (the server's default limit)
USER_AGENT = "tokiflow-sdk-python/1"

F = TypeVar("F", bound=Callable[..., Any])


class Monitor:
    """One monitor's ping URL, from `url`, or `uuid` and `server`, or the environment
    (TOKIFLOW_URL, or TOKIFLOW_UUID and TOKIFLOW_SERVER).

    Raises ValueError when none is given or what is given is not usable: a mistake to fix
    before the job runs, unlike a network error, which is only logged.
    """

    def __init__(
        self,
        url: str | None = None,
        uuid: str | None = None,
        server: str | None = None,
        timeout: float = 10,
    ) -> None:
        if url and uuid:
            raise ValueError("give a ping url or a uuid, not both")
        if not url and not uuid:
            url = os.environ.get("TOKIFLOW_URL") or None
            uuid = None if url else os.environ.get("TOKIFLOW_UUID") or None
        if uuid:
            try:
                uuid = str(uuidlib.UUID(uuid))
            except ValueError:
                raise ValueError(f"'{uuid}' is not a valid uuid") from None
            server = server or os.environ.get("TOKIFLOW_SERVER")
            if not server:
                raise ValueError("a uuid needs server= (or TOKIFLOW_SERVER), e.g. http://host:8000")
            url = f"{server.rstrip('/')}/ping/{uuid}"
        if not url:
            raise ValueError("give url= or uuid= and server= (or set TOKIFLOW_URL)")
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"'{url}' is not an http:// or https:// URL")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.rid: str | None = None
        self._body_limit = OUTPUT_LIMIT

    def __repr__(self) -> str:
        return f"Monitor({self.url!r})"

    # Pings. Each returns True when the server stored it, False otherwise (never raises).

    def start(self, rid: str | None = None) -> str:
        """Report a start; returns the run id that the finish should carry."""
        rid = rid or str(uuidlib.uuid4())
        self.rid = rid
        self._ping("start", rid, None)
        return rid

    def success(self, output: str | bytes | None = None, rid: str | None = None) -> bool:
        """Report success, with optional output (the tail is kept)."""
        return self._ping("", rid or self.rid, output)

    def fail(self, output: str | bytes | None = None, rid: str | None = None) -> bool:
        """Report failure, with optional output such as an error message."""
        return self._ping("fail", rid or self.rid, output)

    def log(self, text: str | bytes, rid: str | None = None) -> bool:
        """Send a message; the monitor's state does not change."""
        return self._ping("log", rid or self.rid, text)

    def exit_status(
        self, status: int, output: str | bytes | None = None, rid: str | None = None
    ) -> bool:
        """Report an exit status: 0 is success, 1-255 failure."""
        if not 0 <= int(status) <= 255:
            return self.fail(output if output is not None else f"exit status {status}", rid)
        return self._ping(str(int(status)), rid or self.rid, output)

    # Runs: context manager and decorator.

    def run(self) -> Run:
        """A run with its own run id, as a context manager (`with` or `async with`)."""
        return Run(self)

    def __enter__(self) -> Monitor:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.finish(exc, self.rid)

    async def __aenter__(self) -> Monitor:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.finish, exc, self.rid)

    def __call__(self, func: F) -> F:
        """Decorate a function (plain or async): each call is one run."""
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                async with self.run():
                    return await func(*args, **kwargs)

            return cast(F, run_async)

        @functools.wraps(func)
        def run_sync(*args: Any, **kwargs: Any) -> Any:
            with self.run():
                return func(*args, **kwargs)

        return cast(F, run_sync)

    def finish(self, exc: BaseException | None, rid: str | None) -> bool:
        """Report how a run ended: success, the exit status of SystemExit, or the traceback."""
        if exc is None:
            return self.success(rid=rid)
        if isinstance(exc, SystemExit):
            code = exc.code
            if code is None or isinstance(code, int):
                return self.exit_status(code or 0, rid=rid)
            return self.fail(str(code), rid=rid)
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        return self.fail(text, rid=rid)

    def _ping(self, action: str, rid: str | None, body: str | bytes | None) -> bool:
        url = self.url + (f"/{action}" if action else "")
        if rid:
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode({"rid": rid})
        data = body.encode("utf-8", "replace") if isinstance(body, str) else (body or b"")
        data = _tail(data, self._body_limit)
        request = urllib.request.Request(
            url,
            data=data,
            method="POST",
            headers={"User-Agent": USER_AGENT, "Content-Type": "text/plain; charset=utf-8"},
        )
        for attempt in (1, 2):
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                    self._note_limit(resp.headers.get("Ping-Body-Limit"))
                    return True
            except urllib.error.HTTPError as exc:
                with exc:
                    reply = exc.read(200).decode("utf-8", "replace").strip()
                log.warning("tokiflow: %s answered %s %s", _shown(url), exc.code, reply)
                return False
            except (ConnectionResetError, ConnectionAbortedError) as exc:
                if attempt == 2:  # a dropped keep-alive connection is worth one more try
                    log.warning("tokiflow: could not reach %s: %s", _shown(url), exc)
            except Exception as exc:  # never let monitoring break the job
                log.warning("tokiflow: could not reach %s: %s", _shown(url), _reason(exc))
                return False
        return False

    def _note_limit(self, header: str | None) -> None:
        try:
            if header is not None:
                self._body_limit = min(int(header), OUTPUT_LIMIT)
        except ValueError:
            pass


class Run:
    """One run of a monitored job, with its own run id; `with` or `async with`."""

    def __init__(self, monitor: Monitor) -> None:
        self.monitor = monitor
        self.rid = str(uuidlib.uuid4())

    def log(self, text: str | bytes) -> bool:
        return self.monitor.log(text, rid=self.rid)

    def __enter__(self) -> Run:
        self.monitor.start(rid=self.rid)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.monitor.finish(exc, self.rid)

    async def __aenter__(self) -> Run:
        await asyncio.to_thread(self.monitor.start, self.rid)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.monitor.finish, exc, self.rid)


def _tail(data: bytes, limit: int) -> bytes:
    if len(data) <= limit:
        return data
    cut = data[-limit:]
    while cut and cut[0] & 0xC0 == 0x80:  # do not start inside a UTF-8 character
        cut = cut[1:]
    return cut


def _shown(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BaseException):
        exc = exc.reason
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
