"""kill -9 the real server under ping load: every ping that was answered `200 OK` must be in the
database afterwards, the file must be intact, and the server must start again on it.

The server runs as a real subprocess on a real data folder; the load is an aiohttp client in this
process. Every request carries its own number in the User-Agent (and POSTs in the body too), so
each acknowledged request can be found again in the `pings` table.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid as uuidlib
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from tokiflow.storage import monitors, outputs, pings

MONITORS = 3
CONCURRENCY = 32
KILL_AFTER_ACKS = 800  # SIGKILL once this many pings were answered 200 ...
MAX_PINGS = 4000  # ... and never send more than this many in any case
LOAD_DEADLINE_S = 40.0
READY_DEADLINE_S = 20.0
LISTENING_RE = re.compile(r"listening on http://[^:\s]+:(\d+)")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKIFLOW_")}
    env.update(
        TOKIFLOW_PING_RATE_LIMIT="0",
        TOKIFLOW_ACCESS_LOG="false",
        TOKIFLOW_PINGS_KEPT="1000000",  # no pruning: every stored ping stays to be found
    )
    return env


def _add_monitor(data_dir: Path, name: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "tokiflow", "monitors", "add", "--name", name, "--period", "1h"]
        + ["--data-dir", str(data_dir), "--json"],
        env=_env(),
        capture_output=True,
        check=True,
        timeout=30,
    )
    return str(json.loads(out.stdout)["uuid"])


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


def _start_server(data_dir: Path, log: Path) -> Server:
    """Start `tokiflow serve` on a free port and wait until /healthz answers 200."""
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tokiflow", "serve", "--port", "0"]
            + ["--host", "127.0.0.1", "--data-dir", str(data_dir)],
            env=_env(),
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + READY_DEADLINE_S
    port = None
    while port is None:
        match = LISTENING_RE.search(log.read_text(errors="replace"))
        if match:
            port = int(match.group(1))
        elif proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait(10)
            raise AssertionError("server did not start:\n" + log.read_text(errors="replace"))
        else:
            time.sleep(0.05)  # polling for readiness, bounded by the deadline
    server = Server(proc, port, log)
    while _healthz(server) != 200:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            proc.wait(10)
            raise AssertionError("server never became healthy:\n" + server.log_tail())
        time.sleep(0.05)
    return server


def _healthz(server: Server) -> int | None:
    try:
        with urllib.request.urlopen(server.base + "/healthz", timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


@dataclass(frozen=True)
class Sent:
    """What request number i was, so its row can be recognised and checked."""

    i: int
    monitor: str
    path: str
    method: str
    kind: str
    exit_status: int | None
    rid: str | None
    body: bytes | None

    @property
    def user_agent(self) -> str:
        return f"kill9/{self.i}"


def _request(i: int, uuids: list[str]) -> Sent:
    """A mix of start (with a run id), success with that run id, failure and POST with a body."""
    group = i // 4
    monitor = uuids[group % len(uuids)]
    rid = str(uuidlib.UUID(int=group + 1))
    match i % 4:
        case 0:
            return Sent(
                i, monitor, f"/ping/{monitor}/start?rid={rid}", "GET", "start", None, rid, None
            )
        case 1:
            return Sent(i, monitor, f"/ping/{monitor}?rid={rid}", "GET", "success", None, rid, None)
        case 2:
            return Sent(i, monitor, f"/ping/{monitor}/3", "GET", "fail", 3, None, None)
        case _:
            body = f"ping-{i}".encode()
            return Sent(i, monitor, f"/ping/{monitor}", "POST", "success", None, None, body)


@dataclass
class Load:
    acked: list[Sent] = field(default_factory=list)
    other_status: list[tuple[int, int, str]] = field(default_factory=list)
    failed_before_kill: list[tuple[int, str]] = field(default_factory=list)
    failed_after_kill: int = 0
    in_flight_at_kill: int = 0
    sent: int = 0


async def _load(server: Server, uuids: list[str]) -> Load:
    """Ping from CONCURRENCY connections; SIGKILL the server once KILL_AFTER_ACKS were answered."""
    load = Load()
    killed = asyncio.Event()
    in_flight: set[int] = set()
    counter = iter(range(MAX_PINGS))

    def kill() -> None:
        if not killed.is_set():
            os.kill(server.proc.pid, signal.SIGKILL)
            load.in_flight_at_kill = len(in_flight)
            killed.set()

    async def worker(session: aiohttp.ClientSession) -> None:
        for i in counter:
            if killed.is_set():
                return
            sent = _request(i, uuids)
            in_flight.add(i)
            load.sent += 1
            try:
                async with session.request(
                    sent.method,
                    server.base + sent.path,
                    data=sent.body,
                    headers={"User-Agent": sent.user_agent},
                ) as resp:
                    text = await resp.text()
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                if killed.is_set():
                    load.failed_after_kill += 1
                else:
                    load.failed_before_kill.append((i, repr(exc)))
                continue
            finally:
                in_flight.discard(i)
            if resp.status == 200 and text == "OK":
                load.acked.append(sent)
                if len(load.acked) >= KILL_AFTER_ACKS:
                    kill()
            else:
                load.other_status.append((i, resp.status, text[:200]))

    timeout = aiohttp.ClientTimeout(total=15)
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        workers = [asyncio.create_task(worker(session)) for _ in range(CONCURRENCY)]
        try:
            await asyncio.wait_for(asyncio.gather(*workers), LOAD_DEADLINE_S)
        finally:
            kill()  # whatever happened, the server dies before the database is read
    return load


def _stored(db_path: Path) -> dict[str, tuple[str, str, int | None, str | None, str, bytes]]:
    """Every stored ping by User-Agent: (monitor uuid, kind, exit status, rid, method, body)."""
    conn = sqlite3.connect(db_path)
    try:
        integrity = conn.execute("PRAGMA integrity_check").fetchall()
        assert integrity == [("ok",)], f"database damaged after SIGKILL: {integrity}"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        # The monitor row is updated in the same transaction as its pings: they must agree.
        counts = conn.execute(
            "SELECT m.uuid, m.n_pings, count(p.n), coalesce(max(p.n), 0) "
            "FROM monitors m LEFT JOIN pings p ON p.monitor_id = m.id GROUP BY m.id"
        ).fetchall()
        assert all(r[1] == r[2] == r[3] for r in counts), f"(n_pings, count, max n): {counts}"
        rows = conn.execute(
            "SELECT p.user_agent, m.uuid, p.kind, p.exit_status, p.rid, p.method, p.n "
            "FROM pings p JOIN monitors m ON m.id = p.monitor_id"
        ).fetchall()
        # Bodies are captured (encrypted) under outputs/: each must have survived the kill too.
        store = outputs.open_store(db_path.parent)
        bodies = {}
        for r in rows:
            m = monitors.by_uuid(conn, r[1])
            ping = pings.get(conn, m.id, r[6]) if m else None
            assert m is not None and ping is not None
            bodies[r[0]] = outputs.ping_body(conn, store, m, ping) or b""
    finally:
        conn.close()
    stored = {r[0]: (r[1], r[2], r[3], r[4], r[5], bodies[r[0]]) for r in rows}
    assert len(stored) == len(rows), "a request was stored twice"
    return stored


def _expected(sent: Sent) -> tuple[str, str, int | None, str | None, str, bytes]:
    return (sent.monitor, sent.kind, sent.exit_status, sent.rid, sent.method, sent.body or b"")


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_every_ping_answered_ok_survives_sigkill(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    uuids = [_add_monitor(data_dir, f"job-{k}") for k in range(MONITORS)]
    server = _start_server(data_dir, tmp_path / "server-1.log")
    try:
        load = asyncio.run(_load(server, uuids))
    finally:
        server.proc.kill()
        server.proc.wait(10)
    assert server.proc.returncode == -signal.SIGKILL, server.log_tail()

    # Before the kill, every request must have been answered 200 OK: no 429, 500 or 503.
    assert load.other_status == [], load.other_status[:10]
    assert load.failed_before_kill == [], load.failed_before_kill[:10]
    # Not vacuous: plenty was acknowledged, and the kill landed with requests still in flight.
    # (How many of those were never answered varies from 31 to 1 of 31 on a busy machine, when
    # the replies were already in the socket buffers, so it is not asserted.)
    assert len(load.acked) >= KILL_AFTER_ACKS
    assert load.in_flight_at_kill >= CONCURRENCY // 2
    assert load.sent < MAX_PINGS, "the load ran out before the kill"

    stored = _stored(data_dir / "tokiflow.db")
    missing = [s.i for s in load.acked if s.user_agent not in stored]
    assert missing == [], (
        f"{len(missing)} of {len(load.acked)} pings answered 200 OK are not stored "
        f"({load.failed_after_kill} requests were cut off by the kill): {missing[:20]}"
    )
    wrong = [s.i for s in load.acked if stored[s.user_agent] != _expected(s)]
    assert wrong == [], f"stored pings differ from what was sent: {wrong[:20]}"
    # Nothing was stored that was never sent.
    assert set(stored) <= {_request(i, uuids).user_agent for i in range(load.sent)}

    server = _start_server(data_dir, tmp_path / "server-2.log")
    try:
        assert _healthz(server) == 200
        req = urllib.request.Request(
            f"{server.base}/ping/{uuids[0]}",
            data=b"after-restart",
            headers={"User-Agent": "kill9/after-restart"},
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert (resp.status, resp.read()) == (200, b"OK")
    finally:
        server.proc.terminate()
        server.proc.wait(20)
    assert server.proc.returncode == 0, server.log_tail()
    after = _stored(data_dir / "tokiflow.db")
    assert after["kill9/after-restart"] == (
        uuids[0],
        "success",
        None,
        None,
        "POST",
        b"after-restart",
    )
    assert len(after) == len(stored) + 1
