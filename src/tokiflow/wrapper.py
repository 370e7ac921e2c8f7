"""The job wrapper behind `tokiflow run`: ping start, run the command with its output passed through
live, then ping its exit status with the (redacted) tail of its output.

Standard library only (urllib for HTTP, through ping_client), so it stays small in the frozen
binary and starts fast. The rules that
matter to a job: the command always runs and the wrapper always exits with the command's own exit
status; network trouble only delays the wrapper by a bounded time and prints a warning.
"""

from __future__ import annotations

import asyncio
import errno
import http.client
import os
import random
import re
import signal
import sys
import uuid as uuidlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tokiflow.clock import Clock, SystemClock
from tokiflow.ping_client import (
    REQUEST_TIMEOUT,
    Reply,
    Target,
    describe_error,
    http_send,
    shown_url,
)
from tokiflow.redaction import redact_bytes

PROG = "tokiflow run"
DEFAULT_CAPTURE_LIMIT = 32 * 1024
DEFAULT_RETRY_FOR = 60.0
KILL_AFTER = 5.0  # seconds between SIGTERM and SIGKILL when a command times out
TIMEOUT_EXIT = 124  # as timeout(1)
# Output kept beyond the limit before redacting, so that a secret straddling the cut is still
# recognised whole and redacted before the final cut.
REDACTION_MARGIN = 8 * 1024
# How long to keep reading output after the command exited, for children that keep the pipes.
DRAIN_AFTER_EXIT = 2.0

_SIZE_RE = re.compile(r"(\d+)\s*([kmg]?)(?:i?b)?", re.I)
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


class WrapperError(ValueError):
    """A usage problem (bad size, no command): reported as one line before anything runs."""


def parse_size(text: str) -> int:
    """Bytes in "32k", "1m", "500", "64KiB" (k = 1024)."""
    match = _SIZE_RE.fullmatch(text.strip())
    if not match:
        raise WrapperError(f"invalid size '{text}': use a number of bytes or forms like 32k, 1m")
    return int(match[1]) * _SIZE_UNITS[match[2].lower()]


Sender = Callable[[str, bytes, float], Reply]


def warn(message: str) -> None:
    print(f"{PROG}: warning: {message}", file=sys.stderr, flush=True)


@dataclass
class Pinger:
    """Sends pings, retrying network errors, 429 and 5xx with exponential backoff and jitter until
    a deadline; never raises: a ping that cannot be delivered is a warning, nothing more."""

    clock: Clock
    send: Sender = http_send
    request_timeout: float = REQUEST_TIMEOUT
    min_timeout: float = 2.0
    first_delay: float = 0.5
    max_delay: float = 10.0

    async def ping(
        self, url: str, body: bytes, deadline: float, give_up: asyncio.Event | None = None
    ) -> Reply | None:
        delay = self.first_delay
        while True:
            remaining = deadline - self.clock.monotonic()
            # Less time per request as the retry time runs out, but never a hopeless sliver.
            timeout = min(self.request_timeout, max(remaining, self.min_timeout))
            reply: Reply | None = None
            try:
                reply = await asyncio.to_thread(self.send, url, body, timeout)
            except (OSError, http.client.HTTPException) as exc:
                problem, wait = describe_error(exc), delay
            except Exception as exc:  # a bug or an odd URL must not change the job's outcome
                warn(f"could not ping {shown_url(url)}: {exc}")
                return None
            else:
                if reply.ok:
                    return reply
                if reply.status != 429 and reply.status < 500:
                    warn(f"{shown_url(url)} answered {reply.status} {reply.text}")
                    return reply
                problem, wait = f"answered {reply.status} {reply.text}", delay
            wait = min(wait * random.uniform(0.75, 1.25), self.max_delay)
            if reply is not None and reply.retry_after is not None:
                wait = max(wait, reply.retry_after)  # never sooner than the server asked
            remaining = deadline - self.clock.monotonic()
            if remaining <= 0 or (give_up is not None and give_up.is_set()):
                warn(f"could not reach {shown_url(url)}: {problem}; giving up")
                return None
            await self.clock.sleep(min(wait, remaining))
            delay = min(delay * 2, self.max_delay)


class Tail:
    """The last `size` bytes of everything appended, in arrival order."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.total = 0
        self._buf = bytearray()

    def append(self, data: bytes) -> None:
        self.total += len(data)
        if self.size <= 0:
            return
        self._buf += data
        excess = len(self._buf) - self.size
        if excess > 0:
            del self._buf[:excess]

    def bytes(self) -> bytes:
        return bytes(self._buf)


def cut_tail(data: bytes, limit: int) -> bytes:
    """The last `limit` bytes, not starting in the middle of a UTF-8 character."""
    if limit <= 0:
        return b""
    if len(data) <= limit:
        return data
    cut = data[-limit:]
    for i in range(min(3, len(cut))):
        if cut[i] & 0xC0 != 0x80:  # not a continuation byte
            return cut[i:]
    return cut


def report_body(captured: bytes, limit: int, redact_patterns: Sequence[str] = ()) -> bytes:
    """What a finish ping carries: the redacted tail of the output, at most `limit` bytes."""
    cleaned, _ = redact_bytes(cut_tail(captured, limit + REDACTION_MARGIN), redact_patterns)
    return cut_tail(cleaned, limit)


@dataclass(frozen=True)
class RunOptions:
    """What `tokiflow run` was asked to do."""

    target: Target
    command: Sequence[str]
    timeout: float | None = None
    capture_limit: int = DEFAULT_CAPTURE_LIMIT
    capture: bool = True
    retry_for: float = DEFAULT_RETRY_FOR
    kill_after: float = KILL_AFTER
    redact_patterns: Sequence[str] = field(default_factory=tuple)


def exit_status_of(returncode: int) -> int:
    """A shell-style exit status: 128+N for a process killed by signal N."""
    return 128 - returncode if returncode < 0 else returncode


def _spawn_problem(exc: OSError, program: str) -> tuple[int, str]:
    if isinstance(exc, FileNotFoundError):
        return 127, f"{program}: command not found"
    if exc.errno == errno.ENOEXEC:
        return 126, f"{program}: cannot execute: exec format error"
    if isinstance(exc, PermissionError | IsADirectoryError):
        return 126, f"{program}: cannot execute: permission denied"
    return 126, f"{program}: cannot execute: {exc.strerror or exc}"


def _write_all(fd: int, data: bytes) -> bool:
    """Pass output through; False once the terminal is gone (the job keeps running)."""
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view) :]
    except BlockingIOError:
        return True  # a non-blocking terminal that is full: drop rather than stall the job
    except OSError:
        return False
    return True


class _Pump:
    """Copies one of the command's output pipes to our own stream, and into the tail, as data
    arrives (no buffering, so output shows up live and on the stream it was written to)."""

    def __init__(self, read_fd: int, out_fd: int, tail: Tail) -> None:
        self.loop = asyncio.get_running_loop()
        self.fd, self.out_fd, self.tail = read_fd, out_fd, tail
        self.passthrough = True
        self.done: asyncio.Future[None] = self.loop.create_future()
        os.set_blocking(read_fd, False)
        self.loop.add_reader(read_fd, self._readable)

    def _readable(self) -> None:
        try:
            chunk = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self.close()
            return
        if self.passthrough:
            self.passthrough = _write_all(self.out_fd, chunk)
        self.tail.append(chunk)

    def close(self) -> None:
        if self.fd >= 0:
            self.loop.remove_reader(self.fd)
            os.close(self.fd)
            self.fd = -1
        if not self.done.done():
            self.done.set_result(None)


class _Job:
    """One run of the command: its process, output pumps and signal forwarding."""

    def __init__(self, opts: RunOptions) -> None:
        self.opts = opts
        limit = opts.capture_limit + REDACTION_MARGIN if opts.capture else 0
        self.tail = Tail(limit)
        self.proc: asyncio.subprocess.Process | None = None
        self.pumps: list[_Pump] = []
        # In a terminal the command stays in the terminal's process group, so that Ctrl+C and
        # reading from the terminal work as usual; otherwise it gets its own group, so that
        # forwarded signals and a timeout reach the processes it started too.
        self.own_group = not os.isatty(0)
        self.signals: list[int] = []

    async def start(self) -> None:
        kwargs: dict[str, Any] = {"process_group": 0} if self.own_group else {}
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            self.proc = await asyncio.create_subprocess_exec(
                *self.opts.command, stdin=None, stdout=out_w, stderr=err_w, **kwargs
            )
        except BaseException:
            os.close(out_r)
            os.close(err_r)
            raise
        finally:
            os.close(out_w)
            os.close(err_w)
        self.pumps = [_Pump(out_r, 1, self.tail), _Pump(err_r, 2, self.tail)]
        if self.signals:  # a signal came while the command was starting
            self.kill(self.signals[-1])

    async def drain(self) -> None:
        """Read what is left; children that outlive the command may keep the pipes open, so
        give up after a short while."""
        if self.pumps:
            await asyncio.wait([p.done for p in self.pumps], timeout=DRAIN_AFTER_EXIT)
        for pump in self.pumps:
            pump.close()

    def kill(self, sig: int) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        try:
            if self.own_group:
                os.killpg(self.proc.pid, sig)
            else:
                os.kill(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def forward(self, sig: int) -> None:
        self.signals.append(sig)
        if sig == signal.SIGINT and not self.own_group:
            return  # the terminal sent it to the whole foreground group already
        self.kill(sig)

    async def wait(self, timeout: float | None) -> bool:
        """Wait for the command to exit; True if it had to be stopped because of `timeout`."""
        assert self.proc is not None
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
            return False
        except TimeoutError:
            pass
        self.kill(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), self.opts.kill_after)
        except TimeoutError:
            self.kill(signal.SIGKILL)
            await self.proc.wait()
        return True


async def run_async(
    opts: RunOptions, *, clock: Clock | None = None, send: Sender = http_send
) -> int:
    """Run the command under monitoring and return the exit status the wrapper should exit with."""
    clock = clock or SystemClock()
    pinger = Pinger(clock=clock, send=send)
    rid = str(uuidlib.uuid4())
    target = opts.target
    stop_starting = asyncio.Event()
    start_ping = asyncio.create_task(
        pinger.ping(
            target.for_action("start", rid), b"", clock.monotonic() + opts.retry_for, stop_starting
        )
    )
    job = _Job(opts)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, job.forward, sig)
    try:
        status, action, note = await _execute(job, opts)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    finished = clock.monotonic()
    stop_starting.set()
    started = await start_ping
    output = job.tail.bytes() if opts.capture else b""
    if note and output and not output.endswith(b"\n"):
        output += b"\n"
    output += note.encode()
    # The wrapper's own note (timeout, start failure) is sent even with --no-output.
    limit = opts.capture_limit if opts.capture else len(note.encode())
    if started is not None and started.body_limit is not None:
        limit = min(limit, started.body_limit)
    body = report_body(output, limit, opts.redact_patterns)
    await pinger.ping(target.for_action(action, rid), body, finished + opts.retry_for)
    return status


async def _execute(job: _Job, opts: RunOptions) -> tuple[int, str, str]:
    """Run the command: (wrapper exit status, finish ping action, a note for the output)."""
    try:
        await job.start()
    except OSError as exc:
        status, reason = _spawn_problem(exc, opts.command[0])
        print(f"{PROG}: {reason}", file=sys.stderr, flush=True)
        job.tail = Tail(0)
        return status, "fail", f"{PROG}: {reason}\n"
    assert job.proc is not None
    try:
        timed_out = await job.wait(opts.timeout)
    finally:
        await job.drain()
    returncode = job.proc.returncode or 0
    status = exit_status_of(returncode)
    if timed_out:
        note = f"{PROG}: timed out after {format_seconds(opts.timeout)}; the command was stopped\n"
        print(note, end="", file=sys.stderr, flush=True)
        return TIMEOUT_EXIT, "fail", note
    note = ""
    if returncode < 0 and -returncode in signal.valid_signals():
        note = f"{PROG}: the command was killed by {signal.Signals(-returncode).name}\n"
    return status, str(status), note


def format_seconds(value: float | None) -> str:
    """3600 -> "1h", 90 -> "1m 30s", 2.5 -> "2.5s"."""
    if value is None:
        return "-"
    whole, parts = int(value), []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        count, whole = divmod(whole, size)
        if count:
            parts.append(f"{count}{unit}")
    rest = whole + (value - int(value))
    if rest or not parts:
        parts.append(f"{rest:g}s")
    return " ".join(parts)


def run(opts: RunOptions, *, clock: Clock | None = None) -> int:
    """`tokiflow run`: returns the exit status to exit with."""
    if not opts.command:
        raise WrapperError("give the command to run after --, e.g. tokiflow run --url URL -- cmd")
    return asyncio.run(run_async(opts, clock=clock))
