"""Helpers for tests that run Tokiflow as a real subprocess."""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def run(
    *args: str, data_dir: Path | None = None, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKIFLOW_")}
    cmd = [sys.executable, "-m", "tokiflow", *args]
    if data_dir is not None:
        cmd += ["--data-dir", str(data_dir)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, input=input, timeout=60)


def licensed_env(data_dir: Path) -> dict[str, str]:
    """Install an ENTERPRISE licence signed by a throwaway key in `data_dir` and return the
    environment in which `python -m tests.licensed_cli` (LICENSED_CLI) trusts that key."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from tokiflow import licensing
    from tokiflow.storage.db import prepare_data_dir

    key = Ed25519PrivateKey.generate()
    text = licensing.issue(key, licensee="Tokiflow tests", plan="ENTERPRISE",
                           issued=dt.date(2026, 1, 1), expires=None)  # fmt: skip
    prepare_data_dir(data_dir)
    licensing.licence_path(data_dir).write_text(text)
    return {
        "TEST_LICENCE_PUBLIC_KEY": licensing.public_key_text(key.public_key()),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }


# The command line as `python -m tokiflow` runs it, trusting the key `licensed_env` names.
LICENSED_CLI = [sys.executable, "-m", "tests.licensed_cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A real `tokiflow serve` process; `licensed` serves under an ENTERPRISE licence (see
    `licensed_env`) for tests whose subject is not the FREE plan's limits."""

    def __init__(self, data_dir: Path, *extra: str, licensed: bool = False) -> None:
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("TOKIFLOW_")}
        if licensed:
            env.update(licensed_env(data_dir))
        self._out = tempfile.TemporaryFile("w+")
        self._err = tempfile.TemporaryFile("w+")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.licensed_cli" if licensed else "tokiflow",
                "serve",
                "--port",
                str(self.port),
                "--data-dir",
                str(data_dir),
                *extra,
            ],
            # Files, not pipes: a pipe nobody reads fills up and blocks the server's logging.
            stdout=self._out,
            stderr=self._err,
            text=True,
            env=env,
        )
        self.url = f"http://127.0.0.1:{self.port}"

    def output(self) -> tuple[str, str]:
        """What the server printed so far (stdout, stderr)."""
        self._out.flush()
        self._err.flush()
        self._out.seek(0)
        self._err.seek(0)
        return self._out.read(), self._err.read()

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited: {self.output()[1]}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("server did not become ready")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> tuple[int, str, str]:
        self.proc.send_signal(sig)
        self.proc.wait(timeout=timeout)
        out, err = self.output()
        self.close()
        return self.proc.returncode, out, err

    def close(self) -> None:
        """Kill the process if it still runs and close its log files."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._out.close()
        self._err.close()


def assert_one_clear_line(result: subprocess.CompletedProcess[str], text: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip() and " INFO " not in ln]
    assert len(lines) == 1, result.stderr
    assert text in lines[0]


class HookReceiver:
    """A webhook receiver on a thread (stdlib), for tests that drive real server processes.

    `hang_first` keeps the first request waiting without an answer until `release()`.
    """

    def __init__(self, status: int = 200, *, hang_first: bool = False) -> None:
        import http.server
        import threading

        self.status = status
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.answered: list[bytes] = []
        self.hang = threading.Event() if hang_first else None
        self.got = threading.Condition()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with outer.got:
                    first = not outer.requests
                    outer.requests.append((self.path, dict(self.headers), body))
                    outer.got.notify_all()
                if first and outer.hang is not None:
                    outer.hang.wait(30)
                    return  # no answer: the connection just closes
                self.send_response(outer.status)
                self.end_headers()
                self.wfile.write(b"ok")
                with outer.got:
                    outer.answered.append(body)
                    outer.got.notify_all()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, count: int, timeout: float = 20) -> None:
        self.wait_until(lambda: len(self.requests) >= count, f"{count} requests", timeout)

    def wait_until(self, predicate: Callable[[], bool], what: str, timeout: float = 20) -> None:
        with self.got:
            if not self.got.wait_for(predicate, timeout):
                raise AssertionError(f"receiver never saw {what} ({len(self.requests)} requests)")

    def release(self) -> None:
        if self.hang is not None:
            self.hang.set()

    def close(self) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()


@dataclass
class StoredMonitor:
    """A monitor of a running test server, read back from its data folder."""

    server: Server
    data_dir: Path
    uuid: str

    @property
    def url(self) -> str:
        return f"{self.server.url}/ping/{self.uuid}"

    def _read(self, fn: Callable[[Any, Any], list[Any]]) -> list[Any]:
        from tokiflow.storage import monitors
        from tokiflow.storage.db import connect

        conn = connect(self.data_dir / "tokiflow.db", readonly=True)
        try:
            m = monitors.by_uuid(conn, self.uuid)
            assert m is not None
            return fn(conn, m)
        finally:
            conn.close()

    def pings(self) -> list[Any]:
        """Its pings, oldest first, with captured bodies decrypted."""
        from tokiflow.storage import outputs, pings

        store = outputs.open_store(self.data_dir)
        return self._read(
            lambda c, m: list(reversed(outputs.with_bodies(c, store, m, pings.recent(c, m.id))))
        )

    def runs(self) -> list[Any]:
        """Its runs, oldest first."""
        from tokiflow.storage import runs

        return self._read(lambda c, m: list(reversed(runs.recent(c, m.id))))
