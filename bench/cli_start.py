"""Start-up time of the command line: what every cron job pays for `tokiflow ping` / `tokiflow run`.

    .venv/bin/python bench/cli_start.py [--runs 11] [--binary dist/tokiflow]

Each command runs as a fresh `python -m tokiflow ...` process (or the one-file binary, with
--binary); the figure is the median wall time from starting the process to its exit, next to
`python -c pass` measured in the same run (the interpreter's own start-up, which no change to
Tokiflow can remove). Pings go to a local stdlib HTTP server in this process that answers `OK`,
so the network costs next to nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Ok(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b"OK"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST

    def log_message(self, format: str, *args: object) -> None:
        pass


def _time(cmd: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11, help="runs per command (default 11)")
    parser.add_argument("--binary", help="time this tokiflow binary instead of python -m tokiflow")
    args = parser.parse_args()

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ping_url = f"http://127.0.0.1:{server.server_address[1]}/ping/{uuid.uuid4()}"
    py = [args.binary] if args.binary else [sys.executable, "-m", "tokiflow"]
    cases = [
        ("python -c pass", [sys.executable, "-c", "pass"]),
        ("tokiflow version", [*py, "version"]),
        ("tokiflow --help", [*py, "--help"]),
        ("tokiflow ping URL", [*py, "ping", ping_url]),
        ("tokiflow run --url URL -- true", [*py, "run", "--url", ping_url, "--", "true"]),
    ]
    with tempfile.TemporaryDirectory() as home:
        # No stored login and no TOKIFLOW_* settings from the caller's environment.
        env = {k: v for k, v in os.environ.items() if not k.startswith("TOKIFLOW_")}
        env["HOME"] = home
        env.pop("XDG_CONFIG_HOME", None)
        for _, cmd in cases:  # warm the file cache and the bytecode cache first
            _time(cmd, env)
        times: dict[str, list[float]] = {name: [] for name, _ in cases}
        for _ in range(args.runs):  # interleaved, so that a busy moment hits every case alike
            for name, cmd in cases:
                times[name].append(_time(cmd, env))
    server.shutdown()

    base = statistics.median(times["python -c pass"])
    print(f"{'command':<32} {'median':>8} {'min':>8} {'x python':>9}   ({args.runs} runs each)")
    for name, _ in cases:
        med = statistics.median(times[name])
        print(f"{name:<32} {med * 1000:>6.0f}ms {min(times[name]) * 1000:>6.0f}ms "
              f"{med / base:>8.1f}x")  # fmt: skip


if __name__ == "__main__":
    main()
