"""The analytics and output commands as an operator runs them: real subprocesses on a data folder
that the engine filled (pings with output, timed runs, a failure) the way the server does."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli_helpers import assert_one_clear_line, run
from tokiflow.clock import FakeClock, SystemClock
from tokiflow.engine.monitors import build_spec, create_monitor
from tokiflow.engine.pings import PingEvent, ingest
from tokiflow.engine.scheduler import Scheduler
from tokiflow.licensing import UNLIMITED
from tokiflow.storage import orgs
from tokiflow.storage.crypto import Sealer, load_or_create_key
from tokiflow.storage.database import Database
from tokiflow.storage.outputs import OutputStore

DURATIONS = [10.0, 11.0, 9.0, 10.5, 9.5, 10.0, 12.0, 8.0, 10.0, 10.25, 9.75, 10.0]
TOKEN = "ghp_" + "Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4J3i2"


@dataclass
class Data:
    path: Path
    backup: str
    flaky: str
    last_run: int
    last_n: int


@pytest.fixture
async def data(tmp_path: Path) -> Data:
    path = tmp_path / "data"
    clock = FakeClock(SystemClock().now() - dt.timedelta(days=1))
    db = Database(path / "tokiflow.db")
    await db.open()
    store = OutputStore(path / "outputs", Sealer(load_or_create_key(path)), limit=32768)
    sch = Scheduler(db, clock, started_at=clock.now())
    now = clock.now()
    org = await db.write(lambda c: orgs.ensure_default(c, now))
    made = []
    for name in ("backup", "flaky"):
        spec = build_spec(org_id=org.id, name=name, period="1h")
        made.append(
            await db.write(lambda c, spec=spec: create_monitor(c, spec, now, limits=UNLIMITED))
        )
    backup, flaky = made

    async def ping(uuid: str, kind: str, body: bytes = b"") -> tuple[int, int | None]:
        ev = PingEvent(kind=kind, received_at=clock.now(), uuid=uuid, body=body,
                       body_size=len(body))  # fmt: skip
        out = await ingest(db, sch, ev, pings_kept=1000, outputs=store, limits=UNLIMITED)
        assert out.monitor is not None
        return out.monitor.n_pings, out.monitor.id

    for i, seconds in enumerate(DURATIONS):
        await ping(backup.uuid, "start")
        await ping(flaky.uuid, "start")
        await clock.advance(seconds, settle=0)
        last_n, _ = await ping(backup.uuid, "success", f"run {i}: copied 120 files\n".encode())
        await ping(flaky.uuid, "fail" if i % 4 == 3 else "success")
        await clock.advance(3600 - seconds, settle=0)
    await ping(backup.uuid, "start")
    await clock.advance(10, settle=0)
    body = f"run 12: copied 120 files\nGITHUB_TOKEN={TOKEN}\nall done\n".encode()
    last_n, _ = await ping(backup.uuid, "success", body)
    last_run = await db.read(
        lambda c: c.execute("SELECT max(id) FROM runs WHERE monitor_id = ?", (backup.id,))
    )
    run_id = last_run.fetchone()[0]
    await db.close()
    return Data(path, backup.uuid, flaky.uuid, run_id, last_n)


def _json(*args: str, data: Data) -> object:
    result = run(*args, "--json", data_dir=data.path)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


async def test_monitors_stats_reports_durations_health_and_thresholds(data: Data) -> None:
    report = _json("monitors", "stats", data.backup, data=data)
    assert isinstance(report, dict)
    d = report["durations"]
    assert (d["runs"], d["window"], d["min"], d["max"], d["p50"]) == (13, 13, 8.0, 12.0, 10.0)
    assert d["mean"] == pytest.approx(sum(DURATIONS + [10.0]) / 13)
    assert report["health"]["score"] == 100 and report["uptime_percent"] == 100.0
    assert report["thresholds"] == {
        "anomaly_alerts": True, "factor": 1.5, "z": 3.0, "output_drop": 0.3,
        "capture_limit": 32768, "capture_limit_is_default": True,
    }  # fmt: skip
    assert [(b["le"], b["count"]) for b in report["duration_histogram"]] == [(10, 9), (30, 4)]
    text = run("monitors", "stats", data.flaky, "--days", "30", data_dir=data.path)
    assert text.returncode == 0, text.stderr
    assert "health     100/100 over 7 days (3 failed, 0 missed, 0 late, 9 on time)" in text.stdout
    assert "outages    3 (MTBF" in text.stdout


async def test_set_anomaly_and_set_capture_change_one_monitor_and_refuse_bad_values(
    data: Data,
) -> None:
    got = _json("monitors", "set-anomaly", data.backup, "--factor", "2", "--off", data=data)
    assert got == {
        "anomaly_alerts": False, "factor": 2.0, "z": 3.0, "output_drop": 0.3,
        "capture_limit": 32768, "capture_limit_is_default": True,
    }  # fmt: skip
    got = _json("monitors", "set-capture", data.backup, "--limit", "4k", data=data)
    assert isinstance(got, dict) and got["capture_limit"] == 4096
    report = _json("monitors", "stats", data.backup, data=data)
    assert isinstance(report, dict) and report["thresholds"] == got
    bad = run("monitors", "set-anomaly", data.backup, "--factor", "0.5", data_dir=data.path)
    assert_one_clear_line(bad, "--factor must be between 1 and 100")
    bad = run("monitors", "set-capture", data.backup, "--limit", "lots", data_dir=data.path)
    assert_one_clear_line(bad, "--limit: expected a size")
    none = run("monitors", "set-anomaly", data.backup, data_dir=data.path)
    assert_one_clear_line(none, "nothing to change")


async def test_runs_output_and_pings_body_print_the_redacted_output_with_its_count(
    data: Data,
) -> None:
    result = run("runs", "output", str(data.last_run), data_dir=data.path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "run 12: copied 120 files\nGITHUB_TOKEN=[REDACTED]\nall done\n"
    assert "1 secret(s) redacted" in result.stderr
    same = _json("pings", "body", data.backup, str(data.last_n), data=data)
    assert isinstance(same, dict)
    assert (same["output"], same["redactions"]) == (result.stdout, 1)
    none = run("pings", "body", data.flaky, "3", data_dir=data.path)
    assert_one_clear_line(none, "has no captured output")


async def test_a_tampered_output_file_is_reported_and_not_printed(data: Data) -> None:
    files = sorted((data.path / "outputs").glob("*/*.out"), key=lambda p: int(p.stem))
    blob = bytearray(files[-1].read_bytes())
    blob[20] ^= 0xFF
    files[-1].write_bytes(bytes(blob))
    result = run("runs", "output", str(data.last_run), data_dir=data.path)
    assert_one_clear_line(result, "cannot be opened: sealed data was tampered with")
    assert result.stdout == ""


async def test_analytics_ranks_an_organisations_monitors_and_shows_storage(data: Data) -> None:
    report = _json("analytics", "--days", "30", data=data)
    assert isinstance(report, dict)
    assert report["monitors"] == 2 and report["health"] == 100
    assert [m["name"] for m in report["least_reliable"]] == ["flaky", "backup"]
    assert report["reliability"]["outages"] == 3
    assert sum(map(sum, report["failure_heatmap"])) == 3
    text = run("analytics", data_dir=data.path)
    assert text.returncode == 0 and "least reliable:" in text.stdout
    [usage] = _json("analytics", "storage", data=data)  # type: ignore[misc]
    assert (usage["org"], usage["files"], usage["limit_bytes"]) == ("default", 13, 1024**3)
    wrong = run("analytics", "--org", "nope", data_dir=data.path)
    assert_one_clear_line(wrong, "no organisation with slug 'nope'")


async def test_redaction_patterns_are_added_listed_and_removed(data: Data) -> None:
    added = run("redactions", "add", r"ACME-\d+", "--note", "customer ids", data_dir=data.path)
    assert added.returncode == 0 and "added pattern #1" in added.stdout
    listed = _json("redactions", "list", data=data)
    assert isinstance(listed, list)
    assert [(p["id"], p["pattern"], p["note"]) for p in listed] == [
        (1, r"ACME-\d+", "customer ids")
    ]
    bad = run("redactions", "add", "(", data_dir=data.path)
    assert_one_clear_line(bad, "invalid redaction pattern")
    assert run("redactions", "remove", "1", data_dir=data.path).returncode == 0
    assert _json("redactions", "list", data=data) == []
    gone = run("redactions", "remove", "1", data_dir=data.path)
    assert_one_clear_line(gone, "no pattern #1 in default")


def test_stats_of_an_unknown_monitor_or_an_empty_folder_is_one_clear_line(tmp_path: Path) -> None:
    empty = run("monitors", "stats", "0e3b7a52-3c4f-4f25-9e0c-56a1e1d9b0aa", data_dir=tmp_path)
    assert_one_clear_line(empty, "no database in")
    run("monitors", "add", "--name", "x", "--period", "1h", data_dir=tmp_path)
    unknown = run("monitors", "stats", "0e3b7a52-3c4f-4f25-9e0c-56a1e1d9b0aa", data_dir=tmp_path)
    assert_one_clear_line(unknown, "no monitor with uuid")
