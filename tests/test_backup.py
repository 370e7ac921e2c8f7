"""`tokiflow backup`, `restore`, `doctor` and `healthcheck`, run as an operator runs them."""

from __future__ import annotations

import datetime as dt
import gzip
import http.client
import io
import json
import socket
import sqlite3
import stat
import tarfile
import threading
import time
import uuid as uuidlib
from pathlib import Path

import pytest
from sqlite_utils.migrations import Migrations

from tests.cli_helpers import Server, assert_one_clear_line, free_port, run
from tokiflow import backup
from tokiflow.clock import SystemClock
from tokiflow.storage import migrations
from tokiflow.storage.timefmt import to_db


def _add_monitor(data: Path, name: str = "Nightly") -> str:
    result = run("monitors", "add", "--name", name, "--period", "1h", "--json", data_dir=data)
    assert result.returncode == 0, result.stderr
    return str(json.loads(result.stdout)["uuid"])


class Pinger(threading.Thread):
    """Pings one monitor over a keep-alive connection, each with a fresh run id, until stopped;
    `answered` holds the run ids of the pings answered OK, in order."""

    def __init__(self, port: int, uuid: str) -> None:
        super().__init__(daemon=True)
        self.port, self.uuid = port, uuid
        self.answered: list[str] = []
        self.errors: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        while not self.stop.is_set():
            rid = str(uuidlib.uuid4())
            try:
                conn.request("POST", f"/ping/{self.uuid}?rid={rid}", body=b"tick")
                resp = conn.getresponse()
                body = resp.read()
            except OSError as exc:
                self.errors.append(str(exc))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                continue
            if resp.status == 200 and body == b"OK":
                self.answered.append(rid)
            else:
                self.errors.append(f"{resp.status} {body!r}")
        conn.close()


def _wait_for(predicate: object, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached in time")


@pytest.mark.slow
def test_a_backup_under_ping_load_restores_every_ping_answered_before_it_began(
    tmp_path: Path, server_factory: type[Server]
) -> None:
    data = tmp_path / "data"
    uuid = _add_monitor(data)
    config = tmp_path / "tokiflow.toml"
    # No access log: nothing reads the server's stderr pipe until it stops, and a full pipe
    # would stall the server.
    config.write_text("pings_kept = 1000000\naccess_log = false\n")
    server = server_factory(data, "--config", str(config))
    server.wait_ready()
    pinger = Pinger(server.port, uuid)
    pinger.start()
    try:
        _wait_for(lambda: len(pinger.answered) >= 300)
        before = list(pinger.answered)
        archive = tmp_path / "nightly.tar.gz"
        made = run("backup", "--to", str(archive), data_dir=data)
        during = len(pinger.answered) - len(before)
    finally:
        pinger.stop.set()
        pinger.join(timeout=10)
    code, _, err = server.stop()
    assert code == 0, err
    assert made.returncode == 0, made.stderr
    assert made.stdout.splitlines()[-1] == str(archive)
    assert "copying the database" in made.stdout and "quick_check ok" in made.stdout
    assert during > 0, "the backup should have run while pings were being answered"
    assert pinger.errors == []
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600

    restored = tmp_path / "restored"
    back = run("restore", str(archive), data_dir=restored)
    assert back.returncode == 0, back.stderr
    db = sqlite3.connect(restored / "tokiflow.db")
    try:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        rids = {r[0] for r in db.execute("SELECT rid FROM pings")}
        n_pings, max_n, count = db.execute(
            "SELECT m.n_pings, max(p.n), count(*) FROM monitors m JOIN pings p "
            "ON p.monitor_id = m.id WHERE m.uuid = ?",
            (uuid,),
        ).fetchone()
    finally:
        db.close()
    assert set(before) <= rids
    # One committed moment: the monitor's counter agrees with the ping rows of the copy.
    assert n_pings == max_n == count >= len(before)
    assert stat.S_IMODE(restored.stat().st_mode) == 0o700
    assert (restored / "secret.key").read_bytes() == (data / "secret.key").read_bytes()

    again = server_factory(restored)
    again.wait_ready()
    shown = json.loads(run("monitors", "get", uuid, "--json", data_dir=restored).stdout)
    assert shown["ping_count"] == n_pings
    assert again.stop()[0] == 0


def _backup(tmp_path: Path, data: Path) -> Path:
    archive = tmp_path / "b.tar.gz"
    made = run("backup", "--to", str(archive), "--quiet", data_dir=data)
    assert made.returncode == 0, made.stderr
    assert made.stdout == f"{archive}\n"
    return archive


@pytest.fixture
def populated(tmp_path: Path) -> Path:
    """A data folder with a monitor, a key, a licence file and some captured output."""
    data = tmp_path / "data"
    _add_monitor(data)
    (data / "secret.key").write_text("ab" * 32 + "\n")
    (data / "secret.key").chmod(0o600)
    (data / "licence.txt").write_text("licence text\n")
    (data / "outputs" / "7").mkdir(mode=0o700, parents=True)
    (data / "outputs" / "7" / "1.bin").write_bytes(b"\x01sealed output")
    (data / "outputs" / "7" / "2.bin").write_bytes(b"\x01more")
    return data


def test_a_backup_holds_the_database_key_licence_and_output_and_restores_them_privately(
    tmp_path: Path, populated: Path
) -> None:
    archive = _backup(tmp_path, populated)
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert names[0] == "tokiflow.db" and names[-1] == "manifest.json"
    assert {"secret.key", "licence.txt", "outputs/7/1.bin", "outputs/7/2.bin"} <= set(names)
    target = tmp_path / "new"
    back = run("restore", str(archive), data_dir=target)
    assert back.returncode == 0, back.stderr
    assert "restored the backup of" in back.stdout
    for rel in ("secret.key", "licence.txt", "outputs/7/1.bin", "outputs/7/2.bin"):
        assert (target / rel).read_bytes() == (populated / rel).read_bytes()
    assert stat.S_IMODE((target / "secret.key").stat().st_mode) == 0o600
    for folder in (target, target / "outputs", target / "outputs" / "7"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert json.loads(run("monitors", "list", "--json", data_dir=target).stdout)[0]["name"] == (
        "Nightly"
    )


def test_restore_into_an_existing_empty_folder_works(tmp_path: Path, populated: Path) -> None:
    archive = _backup(tmp_path, populated)
    target = tmp_path / "empty"
    target.mkdir()
    assert run("restore", str(archive), data_dir=target).returncode == 0
    assert (target / "tokiflow.db").exists()


def test_restore_refuses_a_folder_that_is_not_empty_and_leaves_it_untouched(
    tmp_path: Path, populated: Path
) -> None:
    archive = _backup(tmp_path, populated)
    before = (populated / "tokiflow.db").read_bytes()
    result = run("restore", str(archive), data_dir=populated)
    assert_one_clear_line(result, "is not empty; restore into a new folder")
    assert (populated / "tokiflow.db").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if "restore" in p.name] == []


def _rewrite(archive: Path, target: Path, change: dict[str, bytes | None]) -> None:
    """Copy an archive, replacing (bytes) or dropping (None) the named members."""
    with tarfile.open(archive) as src, tarfile.open(target, "w:gz") as dst:
        for member in src:
            data = src.extractfile(member).read() if member.isfile() else b""  # type: ignore[union-attr]
            if member.name in change:
                if change[member.name] is None:
                    continue
                data = change[member.name]  # type: ignore[assignment]
            member.size = len(data)
            dst.addfile(member, io.BytesIO(data))


def test_restore_refuses_an_archive_whose_database_does_not_match_its_checksum(
    tmp_path: Path, populated: Path
) -> None:
    archive = _backup(tmp_path, populated)
    with tarfile.open(archive) as tar:
        db = bytearray(tar.extractfile("tokiflow.db").read())  # type: ignore[union-attr]
    db[5000] ^= 0xFF
    bad = tmp_path / "bad.tar.gz"
    _rewrite(archive, bad, {"tokiflow.db": bytes(db)})
    result = run("restore", str(bad), data_dir=tmp_path / "r")
    assert_one_clear_line(result, "tokiflow.db does not match its checksum")
    assert not (tmp_path / "r").exists()


def test_restore_refuses_archives_that_are_cut_short_incomplete_or_garbage(
    tmp_path: Path, populated: Path
) -> None:
    archive = _backup(tmp_path, populated)
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    assert_one_clear_line(run("restore", str(cut), data_dir=tmp_path / "r1"),
                          "is not a readable Tokiflow backup")  # fmt: skip
    no_manifest = tmp_path / "nomanifest.tar.gz"
    _rewrite(archive, no_manifest, {"manifest.json": None})
    assert_one_clear_line(run("restore", str(no_manifest), data_dir=tmp_path / "r2"),
                          "has no manifest")  # fmt: skip
    missing = tmp_path / "missing.tar.gz"
    _rewrite(archive, missing, {"outputs/7/2.bin": None})
    assert_one_clear_line(run("restore", str(missing), data_dir=tmp_path / "r3"),
                          "the backup is incomplete: 1 files missing (outputs/7/2.bin)")  # fmt: skip
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(gzip.compress(b"hello"))
    assert_one_clear_line(run("restore", str(junk), data_dir=tmp_path / "r4"),
                          "is not a readable Tokiflow backup")  # fmt: skip
    nothing = run("restore", str(tmp_path / "absent.tar.gz"), data_dir=tmp_path / "r5")
    assert_one_clear_line(nothing, "does not exist")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(("r", ".r"))] == []


def test_restore_refuses_an_archive_with_a_path_outside_the_data_folder(tmp_path: Path) -> None:
    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        info = tarfile.TarInfo("../escaped.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"boo"))
    result = run("restore", str(evil), data_dir=tmp_path / "r")
    assert_one_clear_line(result, "unsafe path '../escaped.txt'")
    assert not (tmp_path / "escaped.txt").exists()


def test_backup_refuses_a_missing_database_and_an_existing_target(
    tmp_path: Path, populated: Path
) -> None:
    none = run("backup", "--to", str(tmp_path / "x.tar.gz"), data_dir=tmp_path / "nothing")
    assert_one_clear_line(none, "no database in")
    taken = tmp_path / "taken.tar.gz"
    taken.write_text("keep me")
    result = run("backup", "--to", str(taken), data_dir=populated)
    assert_one_clear_line(result, "already exists; not overwriting it")
    assert taken.read_text() == "keep me"


def test_backup_without_to_writes_a_timestamped_archive_in_the_current_folder(
    tmp_path: Path, populated: Path
) -> None:
    now = dt.datetime(2026, 3, 2, 12, 30, 5, tzinfo=dt.UTC)
    assert backup.default_target(now) == Path("tokiflow-backup-20260302T123005Z.tar.gz")
    result = backup.create_backup(populated, tmp_path / "x.tar.gz", now)
    assert result.output_files == 2 and "secret.key" in result.members
    with tarfile.open(result.path) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert manifest["created_at"] == "2026-03-02T12:30:05Z"
    assert manifest["migrations"] == migrations.known_names()


# -- doctor -------------------------------------------------------------------------------------


def _doctor(data: Path, *extra: str) -> tuple[int, dict[str, dict[str, str]]]:
    result = run("doctor", "--json", *extra, data_dir=data)
    assert "Traceback" not in result.stderr
    found = json.loads(result.stdout)
    return result.returncode, {f"{f['check']}": f for f in found}


def test_doctor_passes_a_healthy_data_folder(tmp_path: Path, populated: Path) -> None:
    (populated / "licence.txt").unlink()
    result = run("doctor", data_dir=populated)
    assert result.returncode == 0, result.stdout
    assert "everything looks right" in result.stdout
    assert "quick_check ok" in result.stdout and "none pending" in result.stdout


def test_doctor_fails_on_loose_permissions_and_says_how_to_fix_them(populated: Path) -> None:
    (populated / "licence.txt").unlink()
    populated.chmod(0o755)
    (populated / "secret.key").chmod(0o644)
    code, found = _doctor(populated)
    assert code == 1
    assert found["data folder"]["level"] == "fail"
    assert found["data folder"]["fix"] == f"chmod 700 {populated}"
    assert found["secret.key"]["level"] == "fail" and "chmod 600" in found["secret.key"]["fix"]
    text = run("doctor", data_dir=populated).stdout
    assert "fix: chmod 700" in text and "2 problem(s)" in text


def test_doctor_fails_when_the_clock_is_behind_the_newest_ping(populated: Path) -> None:
    future = SystemClock().now() + dt.timedelta(days=2)
    db = sqlite3.connect(populated / "tokiflow.db")
    db.execute("UPDATE monitors SET last_ping_at = ?", (to_db(future),))
    db.commit()
    db.close()
    code, found = _doctor(populated)
    assert code == 1
    assert (
        found["clock"]["level"] == "fail" and "behind the newest ping" in found["clock"]["message"]
    )


def test_doctor_warns_about_pending_migrations(tmp_path: Path) -> None:
    data = tmp_path / "old"
    data.mkdir(mode=0o700)
    older = Migrations(migrations.MIGRATION_SET)
    older()(migrations.m0001_initial)
    migrations.migrate(data / "tokiflow.db", older)
    code, found = _doctor(data)
    assert code == 0
    assert found["migrations"]["level"] == "warn"
    assert "m0002_alerts" in found["migrations"]["message"]


def test_doctor_fails_on_a_damaged_database(tmp_path: Path) -> None:
    data = tmp_path / "d"
    data.mkdir(mode=0o700)
    (data / "tokiflow.db").write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)
    code, found = _doctor(data)
    assert code == 1 and found["database"]["level"] == "fail"


def test_doctor_fails_on_an_installed_licence_that_does_not_verify(populated: Path) -> None:
    code, found = _doctor(populated)
    assert code == 1
    assert (
        found["licence"]["level"] == "fail"
        and "not a Tokiflow licence" in (found["licence"]["message"])
    )


def test_doctor_checks_that_the_smtp_server_accepts_connections(populated: Path) -> None:
    (populated / "licence.txt").unlink()
    closed = free_port()
    code, found = _doctor(populated, "--config", str(_smtp_config(populated, closed)))
    assert code == 1
    assert found["smtp"]["level"] == "fail" and f"127.0.0.1:{closed}" in found["smtp"]["message"]
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        code, found = _doctor(populated, "--config", str(_smtp_config(populated, port)))
    assert code == 0 and found["smtp"]["level"] == "ok"


def _smtp_config(data: Path, port: int) -> Path:
    path = data.parent / f"smtp-{port}.toml"
    path.write_text(f'smtp_host = "127.0.0.1"\nsmtp_port = {port}\n')
    return path


# -- healthcheck --------------------------------------------------------------------------------


def test_healthcheck_exits_0_against_a_running_server_and_1_when_nothing_answers(
    tmp_path: Path, server_factory: type[Server]
) -> None:
    server = server_factory(tmp_path / "data")
    server.wait_ready()
    ok = run("healthcheck", "--port", str(server.port))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith(f"healthy: http://127.0.0.1:{server.port}/healthz answered 200")
    quiet = run("healthcheck", "--url", f"{server.url}/healthz", "--quiet")
    assert (quiet.returncode, quiet.stdout) == (0, "")
    missing = run("healthcheck", "--url", f"{server.url}/nope")
    assert_one_clear_line(missing, "answered 404")
    assert server.stop()[0] == 0
    down = run("healthcheck", "--port", str(server.port), "--timeout", "2")
    assert_one_clear_line(down, f"unhealthy: cannot reach http://127.0.0.1:{server.port}/healthz")
