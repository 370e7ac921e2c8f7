"""The one-file binary: it carries every module and data file, serves, upgrades old databases.

The binary runs with an environment that has no PATH to any Python, the way it runs on a host
that has none. `pytest -s` prints its size and its cold start time.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlite_utils.migrations import Migrations

from tests.cli_helpers import ROOT, free_port
from tokiflow.cli import build_parser
from tokiflow.storage import migrations

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"PATH": "/nonexistent", "HOME": str(tmp_path), "LANG": "C.UTF-8", **extra}


def _run(binary: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(binary), *args], capture_output=True, text=True,
                          env=_env(tmp_path), timeout=120)  # fmt: skip


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


class BinaryServer:
    def __init__(self, binary: Path, tmp_path: Path, data: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [str(binary), "serve", "--port", str(self.port), "--data-dir", str(data)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=_env(tmp_path, TOKIFLOW_ACCESS_LOG="false"), start_new_session=True,
        )  # fmt: skip

    def wait_ready(self, timeout: float = 60) -> float:
        """Seconds from the start of the process to its first answered request."""
        deadline = self.started + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"binary exited: {self.proc.communicate()[1]}")
            try:
                if _get(self.url + "/healthz")[0] == 200:
                    return time.monotonic() - self.started
            except OSError:
                time.sleep(0.01)
        raise AssertionError("the binary did not answer in time")

    def stop(self) -> tuple[int, str, str]:
        self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=30)
        return self.proc.returncode, out, err

    def kill(self) -> None:
        """SIGKILL the whole process group: the one-file binary's bootloader cannot pass a
        SIGKILL on to the Python process it started."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.communicate()


def test_the_binary_serves_answers_a_ping_and_stops_cleanly_on_sigterm(
    binary: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    server = BinaryServer(binary, tmp_path, data)
    try:
        cold_start = server.wait_ready()
        size = binary.stat().st_size
        print(f"\nbinary: {size / 1024 / 1024:.1f} MB, cold start to first answered request "
              f"{cold_start:.2f} s")  # fmt: skip
        added = _run(binary, tmp_path, "monitors", "add", "--name", "smoke", "--period", "1h",
                     "--json", "--data-dir", str(data))  # fmt: skip
        assert added.returncode == 0, added.stderr
        uuid = json.loads(added.stdout)["uuid"]
        assert _get(f"{server.url}/ping/{uuid}") == (200, b"OK")
        status, body = _get(f"{server.url}/metrics")
        assert status == 200 and b"tokiflow_pings_received_total 1" in body
        wrapper = _run(binary, tmp_path, "run", "--help")
        if wrapper.returncode == 0:
            # The job itself needs a PATH to find `true`; the binary still needs no Python.
            ran = subprocess.run(
                [str(binary), "run", "--url", f"{server.url}/ping/{uuid}", "--", "true"],
                capture_output=True, text=True, env=_env(tmp_path, PATH="/usr/bin:/bin"),
                timeout=60,
            )  # fmt: skip
            assert ran.returncode == 0, ran.stderr
        shown = _run(binary, tmp_path, "monitors", "get", uuid, "--json", "--data-dir", str(data))
        assert json.loads(shown.stdout)["ping_count"] >= 1
        code, out, err = server.stop()
    finally:
        server.kill()
    assert code == 0, err
    assert "Tokiflow stopped" in out
    assert "Traceback" not in err


def _commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple]:
    found: list[tuple] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append((*prefix, name))
                found.extend(_commands(sub, (*prefix, name)))
    return found


def test_every_command_of_the_binary_runs_its_help(binary: Path, tmp_path: Path) -> None:
    # Top-level commands: each one's `--help` imports that command's module (the command line
    # loads only the command it runs), so together they prove every command module is carried;
    # the archive test below checks the other modules.
    commands = [c for c in _commands(build_parser()) if len(c) == 1]
    assert len(commands) > 10
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda c: (c, _run(binary, tmp_path, *c, "--help")), commands))
    for command, result in results:
        assert result.returncode == 0, (command, result.stderr)
        assert "usage: tokiflow" in result.stdout


def test_the_binary_carries_every_module_and_data_file_of_the_package(binary: Path) -> None:
    viewer = ROOT / "build" / "binary-venv" / "bin" / "pyi-archive_viewer"
    listing = subprocess.run([str(viewer), "-r", "-b", str(binary)], capture_output=True,
                             text=True, timeout=120).stdout  # fmt: skip
    entries = {line.strip().strip("'") for line in listing.splitlines()}
    package = binary.parent.parent / "src" / "tokiflow"  # the sources it was built from
    missing = []
    for path in package.rglob("*"):
        if not path.is_file() or "__pycache__" in path.parts:
            continue
        rel = path.relative_to(package.parent)
        if path.suffix == ".py":
            name = ".".join(rel.with_suffix("").parts).removesuffix(".__init__")
        else:
            name = rel.as_posix()
        if name not in entries:
            missing.append(name)
    assert missing == []
    assert "tzdata/zoneinfo/Europe/London" in entries


def test_the_binary_backs_up_restores_and_checks_a_data_folder(
    binary: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    assert _run(binary, tmp_path, "monitors", "add", "--name", "b", "--period", "1d",
                "--data-dir", str(data)).returncode == 0  # fmt: skip
    archive = tmp_path / "b.tar.gz"
    made = _run(binary, tmp_path, "backup", "--to", str(archive), "--data-dir", str(data))
    assert made.returncode == 0, made.stderr
    back = _run(binary, tmp_path, "restore", str(archive), "--data-dir", str(tmp_path / "r"))
    assert back.returncode == 0, back.stderr
    doctor = _run(binary, tmp_path, "doctor", "--data-dir", str(tmp_path / "r"))
    assert doctor.returncode == 0, doctor.stdout
    shown = _run(binary, tmp_path, "license", "show", "--json", "--data-dir", str(data))
    assert json.loads(shown.stdout)["plan"] == "FREE"


def test_the_binary_upgrades_an_older_database_after_keeping_a_copy(
    binary: Path, tmp_path: Path
) -> None:
    data = tmp_path / "old"
    data.mkdir(mode=0o700)
    db_path = data / "tokiflow.db"
    first = Migrations(migrations.MIGRATION_SET)
    first()(migrations.m0001_initial)
    assert migrations.migrate(db_path, first) == ["m0001_initial"]
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute("INSERT INTO orgs(id, slug, name, ping_key, created_at) VALUES "
                     "(1, 'default', 'Default', 'k' , '2026-01-01T00:00:00.000000Z')")  # fmt: skip
        conn.execute(
            "INSERT INTO monitors(uuid, org_id, name, slug, schedule_kind, period, grace, "
            "created_at, updated_at) VALUES ('0b5a2c1e-1111-4222-8333-444455556666', 1, "
            "'legacy', 'legacy', 'period', 3600, 300, '2026-01-01T00:00:00.000000Z', "
            "'2026-01-01T00:00:00.000000Z')"
        )
    conn.close()
    pending = _run(binary, tmp_path, "migrate", "--list", "--data-dir", str(data))
    assert "pending  m0002_alerts" in pending.stdout
    server = BinaryServer(binary, tmp_path, data)
    try:
        server.wait_ready()
        status, _ = _get(f"{server.url}/ping/0b5a2c1e-1111-4222-8333-444455556666")
        assert status == 200
        code, _, err = server.stop()
    finally:
        server.kill()
    assert code == 0, err
    assert "applied migration m0002_alerts" in err
    assert (data / "tokiflow.db.before-m0002_alerts.bak").is_file()
    after = _run(binary, tmp_path, "migrate", "--list", "--data-dir", str(data))
    assert "pending" not in after.stdout
    assert after.stdout.count("applied") == len(migrations.known_names())
    copy = sqlite3.connect(data / "tokiflow.db.before-m0002_alerts.bak")
    assert copy.execute("SELECT name FROM monitors").fetchall() == [("legacy",)]
    copy.close()


def test_install_sh_installs_the_real_binary_under_a_fake_root(
    binary: Path, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    result = subprocess.run(
        [str(ROOT / "packaging" / "install.sh"), "--binary", str(binary), "--destdir", str(root)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    installed = root / "usr" / "local" / "bin" / "tokiflow"
    assert _run(installed, tmp_path, "version").stdout.strip() == (
        _run(binary, tmp_path, "version").stdout.strip()
    )
