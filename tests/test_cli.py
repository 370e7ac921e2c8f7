"""The command line as a user runs it: real subprocesses on a temporary data folder."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.cli_helpers import ROOT, Server, assert_one_clear_line, free_port, run
from tokiflow.storage import monitors, outputs, pings
from tokiflow.storage.migrations import known_names


def test_serve_answers_healthz_and_stops_cleanly_on_sigterm(
    tmp_path: Path, server_factory: type[Server]
) -> None:
    data = tmp_path / "data"
    server = server_factory(data)
    server.wait_ready()
    with urllib.request.urlopen(server.url + "/healthz") as resp:
        assert json.load(resp)["status"] == "ok"
    started = time.monotonic()
    code, out, err = server.stop(signal.SIGTERM)
    assert code == 0, err
    assert time.monotonic() - started < 10
    assert f"listening on http://127.0.0.1:{server.port}" in out
    assert (data / "tokiflow.db").exists() and (data / "outputs").is_dir()
    assert oct((data).stat().st_mode & 0o777) == "0o700"
    for name in known_names():
        assert f"applied migration {name}" in err


def test_a_second_start_reuses_the_database_and_applies_nothing(
    tmp_path: Path, server_factory: type[Server]
) -> None:
    data = tmp_path / "data"
    first = server_factory(data)
    first.wait_ready()
    first.stop(signal.SIGINT)
    second = server_factory(data)
    second.wait_ready()
    code, _, err = second.stop()
    assert code == 0
    assert "applied migration" not in err
    conn = sqlite3.connect(data / "tokiflow.db")
    applied = conn.execute("SELECT name FROM _sqlite_migrations ORDER BY id").fetchall()
    assert [name for (name,) in applied] == known_names()


def test_an_unknown_flag_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = run("serve", "--frobnicate")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "tokiflow: error: unrecognized arguments: --frobnicate (see 'tokiflow --help')"
    ]


def test_a_port_in_use_is_one_line_and_leaves_no_data(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run("serve", "--port", str(port), data_dir=tmp_path / "data")
    assert_one_clear_line(result, f"port {port} on 127.0.0.1 is already in use")
    assert not (tmp_path / "data").exists()


def test_an_unwritable_data_dir_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = run("serve", "--port", str(free_port()), data_dir=blocker / "data")
    assert_one_clear_line(result, "cannot create data folder")


def test_a_corrupt_database_is_refused_and_left_unchanged(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "tokiflow.db").write_bytes(b"garbage" * 1000)
    result = run("serve", "--port", str(free_port()), data_dir=data)
    assert_one_clear_line(result, "is not a usable SQLite file")
    assert (data / "tokiflow.db").read_bytes() == b"garbage" * 1000


def test_a_database_from_a_newer_version_is_refused_and_left_unchanged(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run("migrate", data_dir=data).returncode == 0
    conn = sqlite3.connect(data / "tokiflow.db")
    conn.execute(
        "INSERT INTO _sqlite_migrations(migration_set, name, applied_at) "
        "VALUES ('tokiflow', 'm9999_future', 'x')"
    )
    conn.commit()
    conn.close()
    before = (data / "tokiflow.db").read_bytes()
    result = run("serve", "--port", str(free_port()), data_dir=data)
    assert_one_clear_line(result, "written by a newer version of Tokiflow")
    assert (data / "tokiflow.db").read_bytes() == before


def test_migrate_lists_applied_and_pending_migrations(tmp_path: Path) -> None:
    data = tmp_path / "data"
    names = known_names()
    assert run("migrate", "--list", data_dir=data).stdout == "".join(
        f"pending  {n}\n" for n in names
    )
    assert run("migrate", data_dir=data).stdout == f"applied {', '.join(names)}\n"
    assert run("migrate", "--list", data_dir=data).stdout == "".join(
        f"applied  {n}\n" for n in names
    )
    assert run("migrate", data_dir=data).stdout == "database is up to date\n"


def test_config_prints_effective_settings_with_their_source_and_masks_secrets(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "TOKIFLOW_PORT": "9123", "TOKIFLOW_SECRET_KEY": "topsecret"}
    result = subprocess.run(
        [sys.executable, "-m", "tokiflow", "config", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0
    assert "topsecret" not in result.stdout
    lines = {ln.split()[0]: ln for ln in result.stdout.splitlines()}
    assert "9123" in lines["port"] and "(env TOKIFLOW_PORT)" in lines["port"]
    assert "***" in lines["secret_key"]
    assert "(flag)" in lines["data_dir"]


def test_the_launcher_runs_the_package_from_the_repository_root() -> None:
    result = subprocess.run(
        [str(ROOT / "tokiflow"), "--version"], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("tokiflow ")


def test_json_logs_are_one_object_per_line_with_request_latency(
    tmp_path: Path, server_factory: type[Server]
) -> None:
    server = server_factory(tmp_path / "data", "--log-format", "json")
    server.wait_ready()
    with urllib.request.urlopen(server.url + "/version?token=secret-value") as resp:
        assert resp.status == 200
    code, _, err = server.stop()
    assert code == 0
    records = [json.loads(line) for line in err.splitlines() if line.strip()]
    access = [r for r in records if r["logger"] == "tokiflow.access" and r["path"] == "/version"]
    assert len(access) == 1
    assert access[0]["status"] == 200 and access[0]["latency_ms"] >= 0
    assert "secret-value" not in err


def test_sigterm_lets_a_request_in_flight_finish_and_flushes_its_write(
    tmp_path: Path, server_factory: type[Server]
) -> None:
    data = tmp_path / "data"
    m = json.loads(
        run("monitors", "add", "--name", "job", "--period", "1h", "--json", data_dir=data).stdout
    )
    server = server_factory(data)
    server.wait_ready()
    # Hold SQLite's write lock so that the ping's handler waits on the writer: in flight.
    blocker = sqlite3.connect(data / "tokiflow.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    body = b"x" * 100
    with socket.create_connection(("127.0.0.1", server.port), timeout=15) as sock:
        sock.sendall(
            f"POST /ping/{m['uuid']} HTTP/1.1\r\nHost: localhost\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        # A later request answered means the server has read the ping and is handling it.
        with urllib.request.urlopen(server.url + "/version", timeout=5) as resp:
            assert resp.status == 200
        server.proc.send_signal(signal.SIGTERM)
        # The server has taken the signal once it stops accepting new connections.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
            except (ConnectionRefusedError, ConnectionResetError):
                break
        else:
            raise AssertionError("the server kept accepting connections after SIGTERM")
        blocker.execute("COMMIT")
        reply = b""
        while chunk := sock.recv(4096):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 200 OK") and reply.endswith(b"OK")
    server.proc.wait(timeout=10)
    out, err = server.output()
    assert server.proc.returncode == 0, err
    conn = sqlite3.connect(data / "tokiflow.db")
    m_row = monitors.by_uuid(conn, m["uuid"])
    assert m_row is not None
    [ping] = pings.recent(conn, m_row.id)
    assert outputs.ping_body(conn, outputs.open_store(data), m_row, ping) == body
    conn.close()
