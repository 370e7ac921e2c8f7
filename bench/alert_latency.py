"""Alert latency: from a monitor's deadline (plus grace) passing to the webhook receiver getting
the MISSED alert, over many monitors that go down at once.

A real `tokiflow serve` runs as a subprocess; this process creates the monitors (period 1 min,
grace 1 s) and a webhook channel pointing at a receiver it serves itself, pings every monitor
once, and waits for the alerts. Latency = arrival time - (due_at + grace) read back from the
database. Run: `.venv/bin/python bench/alert_latency.py [--monitors 500]` (takes ~70 s: the
deadlines are real time).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import aiohttp
from aiohttp import web
from unlimited import allow_any_number

LISTENING_RE = re.compile(r"listening on http://[^:\s]+:(\d+)")


def cli(*args: str) -> str:
    from tokiflow.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(list(args))
    if code != 0:
        raise SystemExit(f"tokiflow {' '.join(args)} failed")
    return out.getvalue()


async def run(monitors: int) -> None:
    data = Path(tempfile.mkdtemp(prefix="tf-alert-bench-")) / "data"
    arrivals: dict[str, float] = {}
    done = asyncio.Event()

    async def receive(request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("event") == "open":
            arrivals.setdefault(body["monitor_uuid"], time.time())
            if len(arrivals) >= monitors:
                done.set()
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    hook_port = runner.addresses[0][1]

    print(f"creating {monitors} monitors ...", flush=True)
    allow_any_number(data)
    cli("channels", "add", "--kind", "webhook", "--name", "bench", "--config",
        json.dumps({"url": f"http://127.0.0.1:{hook_port}/hook"}), "--data-dir", str(data))  # fmt: skip
    uuids = [
        json.loads(
            cli(
                "monitors",
                "add",
                "--name",
                f"m{i}",
                "--period",
                "1m",
                "--grace",
                "1s",
                "--json",
                "--data-dir",
                str(data),
            )
        )["uuid"]  # fmt: skip
        for i in range(monitors)
    ]
    env = {**os.environ, "TOKIFLOW_ACCESS_LOG": "false", "TOKIFLOW_PING_RATE_LIMIT": "0"}
    server = subprocess.Popen(
        [sys.executable, "-m", "tokiflow", "serve", "--port", "0", "--data-dir", str(data)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        match = LISTENING_RE.search(line)
        if not match:
            raise SystemExit(f"server did not start: {line!r}")
        base = f"http://127.0.0.1:{match.group(1)}"
        async with aiohttp.ClientSession() as session:
            await asyncio.gather(*(session.get(f"{base}/ping/{u}") for u in uuids))
        print("pinged every monitor once; waiting for the deadlines (about 61 s) ...", flush=True)
        await asyncio.wait_for(done.wait(), timeout=180)
    finally:
        server.terminate()
        server.wait(15)
        await runner.cleanup()

    conn = sqlite3.connect(data / "tokiflow.db")
    rows = conn.execute("SELECT uuid, due_at, grace FROM monitors").fetchall()
    latencies = []
    for uuid, due_at, grace in rows:
        down_at = datetime.fromisoformat(due_at) + timedelta(seconds=grace)
        latencies.append((arrivals[uuid] - down_at.timestamp()) * 1000)
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(f"\n{monitors} monitors going down at once; latency from deadline+grace to webhook:")
    print(f"  p50 {statistics.median(latencies):8.1f} ms")
    print(f"  p99 {p99:8.1f} ms")
    print(f"  max {latencies[-1]:8.1f} ms")
    print(
        f"  aim: p99 < 1000 ms (Healthchecks checks every 2 s) -> {'met' if p99 < 1000 else 'NOT met'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--monitors", type=int, default=500)
    args = parser.parse_args()
    asyncio.run(run(args.monitors))


if __name__ == "__main__":
    main()
