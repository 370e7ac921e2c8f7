"""Ping ingest benchmark: a bare aiohttp `OK` server against the real Tokiflow server.

Each server runs as a subprocess pinned to core 0; the load generator (aiohttp client, this
process) runs on core 1. Phases: bare server at full speed (closed loop), Tokiflow at full speed,
then Tokiflow at half its peak rate (open loop, latency counted from each request's scheduled
time). At the end the `pings` rows are counted against the 200 replies Tokiflow gave.
Run: `.venv/bin/python bench/ping_ingest.py [--duration 10] [--monitors 100] [--quick]`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import random
import re
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

READY_TIMEOUT_S = 30.0
LISTENING_RE = re.compile(rb"listening on http://[^:\s]+:(\d+)")


def serve_bare() -> None:
    """The baseline: an aiohttp server whose only handler answers `OK`."""

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="OK")

    async def main() -> None:
        app = web.Application()
        app.router.add_route("*", "/ping/{tail:.*}", ok)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        print(f"bare listening on http://127.0.0.1:{runner.addresses[0][1]}", flush=True)
        await asyncio.Event().wait()  # until SIGTERM

    asyncio.run(main())


@dataclass
class Result:
    name: str
    seconds: float
    latencies: list[float] = field(default_factory=list)  # ms, measured window only
    errors: int = 0
    ok_total: int = 0  # every 200 reply, warm-up included (for the durability check)
    client_cpu: float = 0.0  # share of one core, over the whole phase
    server_cpu: float = 0.0

    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    def pct(self, q: float) -> float:
        lat = sorted(self.latencies)
        return lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan")


async def _get(sess: aiohttp.ClientSession, url: str, res: Result, t0: float, keep: bool) -> None:
    try:
        async with sess.get(url) as resp:
            body = await resp.read()
        good = resp.status == 200 and body == b"OK"
    except (aiohttp.ClientError, OSError, TimeoutError):
        good = False
    res.ok_total += good
    if keep and good:
        res.latencies.append((time.perf_counter() - t0) * 1000)
    elif keep:
        res.errors += 1


def _session(concurrency: int) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=concurrency),
        timeout=aiohttp.ClientTimeout(total=30),
    )


async def closed_loop(name: str, urls: list[str], duration: float, concurrency: int) -> Result:
    """`concurrency` workers, each sending its next request as soon as the last one returns."""
    res = Result(name, duration)
    warmup = min(1.0, duration / 5)
    start = time.perf_counter()
    measure_from, stop_at = start + warmup, start + warmup + duration

    async def worker(session: aiohttp.ClientSession) -> None:
        while (t0 := time.perf_counter()) < stop_at:
            await _get(session, random.choice(urls), res, t0, t0 >= measure_from)

    async with _session(concurrency) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return res


async def open_loop(name: str, urls: list[str], duration: float, rate: float, conc: int) -> Result:
    """Requests at a fixed rate whatever the replies do; latency counts from the scheduled time."""
    res = Result(name, duration)
    interval = 1.0 / rate
    tasks: set[asyncio.Task[None]] = set()
    async with _session(conc) as session:
        start = time.perf_counter()
        due = start
        while due < start + duration:
            while due <= time.perf_counter() and due < start + duration:
                if len(tasks) < 50 * conc:  # bound what piles up if the server stalls
                    task = asyncio.create_task(_get(session, random.choice(urls), res, due, True))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                else:
                    res.errors += 1
                due += interval
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
        await asyncio.gather(*tasks)
    return res


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc (0 where there is no /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measured(phase: Coroutine[Any, Any, Result], server_pid: int) -> Result:
    """Run a phase and note how busy the client and the server were meanwhile."""
    wall, mine, theirs = time.perf_counter(), time.process_time(), cpu_seconds(server_pid)
    res = await phase
    wall = time.perf_counter() - wall
    res.client_cpu = (time.process_time() - mine) / wall
    res.server_cpu = (cpu_seconds(server_pid) - theirs) / wall
    return res


Process = asyncio.subprocess.Process


async def start_server(argv: list[str], env: dict[str, str], log: Path) -> tuple[Process, int]:
    """Start a server subprocess on core 0 and return it with the port it printed."""
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        argv = ["taskset", "-c", "0", *argv]
    with log.open("wb") as err:
        proc = await asyncio.create_subprocess_exec(
            *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=err
        )
    assert proc.stdout is not None
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        line = await asyncio.wait_for(proc.stdout.readline(), deadline - time.monotonic())
        if not line:
            break
        if match := LISTENING_RE.search(line):
            return proc, int(match.group(1))
    proc.kill()
    raise SystemExit(f"server did not start: {argv}\n{log.read_text(errors='replace')[-2000:]}")


async def stop_server(proc: Process) -> None:
    proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), 20)
    except TimeoutError:
        proc.kill()
        await proc.wait()


def make_monitors(data_dir: Path, count: int) -> list[str]:
    from unlimited import allow_any_number

    from tokiflow.cli import main as tokiflow_cli

    allow_any_number(data_dir)
    uuids = []
    for k in range(count):
        out = io.StringIO()
        argv = ["monitors", "add", "--name", f"bench-{k}", "--period", "1h"]
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            code = tokiflow_cli([*argv, "--data-dir", str(data_dir), "--json"])
        if code != 0:
            raise SystemExit(f"tokiflow monitors add failed with {code}")
        uuids.append(json.loads(out.getvalue())["uuid"])
    return uuids


def row(res: Result) -> str:
    p50, p99 = res.pct(0.5), res.pct(0.99)
    cpu = f"{res.client_cpu:>8.0%}{res.server_cpu:>8.0%}"
    return f"{res.name:<30}{res.rate():>8.0f}{p50:>9.2f}{p99:>9.2f}{res.errors:>8}{cpu}"


async def run(args: argparse.Namespace) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKIFLOW_")}
    env.update(
        TOKIFLOW_PING_RATE_LIMIT="0", TOKIFLOW_ACCESS_LOG="false", TOKIFLOW_PINGS_KEPT="100000000"
    )
    tmp = Path(tempfile.mkdtemp(prefix="tokiflow-bench-"))
    data_dir = tmp / "data"
    uuids = make_monitors(data_dir, args.monitors)
    paths = [f"/ping/{u}" for u in uuids]
    results: list[Result] = []

    cmd = [sys.executable, __file__, "--serve-bare"]
    bare, port = await start_server(cmd, env, tmp / "bare.log")
    try:
        urls = [f"http://127.0.0.1:{port}{p}" for p in paths]
        name = f"bare aiohttp, c={args.concurrency}"
        base = await measured(closed_loop(name, urls, args.duration, args.concurrency), bare.pid)
    finally:
        await stop_server(bare)
    results.append(base)

    cmd = [sys.executable, "-m", "tokiflow", "serve", "--port", "0", "--data-dir", str(data_dir)]
    toki, port = await start_server(cmd, env, tmp / "tokiflow.log")
    try:
        urls = [f"http://127.0.0.1:{port}{p}" for p in paths]
        name = f"tokiflow, c={args.concurrency}"
        peak = await measured(closed_loop(name, urls, args.duration, args.concurrency), toki.pid)
        half = peak.rate() / 2
        name = f"tokiflow, fixed {half:.0f}/s"
        fixed = await measured(
            open_loop(name, urls, args.duration, half, args.concurrency), toki.pid
        )
        results += [peak, fixed]
    finally:
        await stop_server(toki)

    print(f"{args.monitors} monitors, {args.duration:g} s per phase, GET /ping/<uuid>")
    head = f"{'phase':<30}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
    print(head + f"{'cli cpu':>8}{'srv cpu':>8}")
    for res in results:
        print(row(res))
    print(f"throughput ratio tokiflow/bare: {peak.rate() / base.rate():.2f}")

    acked = sum(r.ok_total for r in results[1:])
    with contextlib.closing(sqlite3.connect(data_dir / "tokiflow.db")) as conn:
        stored = conn.execute("SELECT count(*) FROM pings").fetchone()[0]
    verdict = "OK" if stored == acked else ("MISSING PINGS" if stored < acked else "extra rows")
    print(f"durability: 200 replies {acked}, rows in pings {stored}: {verdict}")
    shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per phase")
    parser.add_argument("--monitors", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=64, help="client connections")
    parser.add_argument("--quick", action="store_true", help="2 s phases (smoke run)")
    parser.add_argument("--serve-bare", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:
        return serve_bare()
    if args.quick:
        args.duration = 2.0
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})  # the servers get core 0
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
