"""Size and cold start of the one-file binary (DESIGN.md, Shipping).

    packaging/build-binary && .venv/bin/python bench/binary_start.py [--binary dist/tokiflow] [--runs 5]

Cold start is the time from starting `tokiflow serve` on an empty data folder to its first
answered /healthz (the one-file binary unpacks itself, imports, creates and migrates the
database, then listens). Also the time of `tokiflow version`, which is what every CLI command
and the container health check pay before doing any work.
"""

from __future__ import annotations

import argparse
import signal
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_start(binary: Path) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        env = {"PATH": "/nonexistent", "HOME": tmp, "TOKIFLOW_ACCESS_LOG": "false"}
        started = time.monotonic()
        proc = subprocess.Popen(
            [str(binary), "serve", "--port", str(port), "--data-dir", f"{tmp}/data"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
        )  # fmt: skip
        try:
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                        return time.monotonic() - started
                except OSError:
                    if proc.poll() is not None:
                        raise SystemExit("the binary exited before answering") from None
                    time.sleep(0.005)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)


def version_time(binary: Path) -> float:
    started = time.monotonic()
    subprocess.run([str(binary), "version"], check=True, capture_output=True)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", default="dist/tokiflow", type=Path)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if not args.binary.is_file():
        raise SystemExit(f"{args.binary} not found: run packaging/build-binary first")
    size = args.binary.stat().st_size
    starts = [serve_start(args.binary) for _ in range(args.runs)]
    versions = [version_time(args.binary) for _ in range(args.runs)]
    print(f"binary              {size / 1024 / 1024:.1f} MB ({size} bytes)")
    print(f"serve -> /healthz   median {statistics.median(starts):.2f} s, "
          f"min {min(starts):.2f} s, max {max(starts):.2f} s ({args.runs} runs)")  # fmt: skip
    print(f"tokiflow version    median {statistics.median(versions):.2f} s")


if __name__ == "__main__":
    main()
