"""The local admin commands as an operator runs them: real subprocesses on a data folder."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.cli_helpers import Server, assert_one_clear_line, run


def test_monitors_add_prints_the_monitor_as_json_with_its_ping_url(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = run("monitors", "add", "--name", "Nightly Backup", "--period", "1h", "--grace",
                 "5m", "--json", data_dir=data)  # fmt: skip
    assert result.returncode == 0, result.stderr
    m = json.loads(result.stdout)
    assert (m["name"], m["slug"], m["status"], m["schedule"], m["grace"]) == (
        "Nightly Backup", "nightly-backup", "new", 3600, 300,
    )  # fmt: skip
    assert m["ping_url"] == f"http://127.0.0.1:8000/ping/{m['uuid']}"
    orgs = json.loads(run("orgs", "list", "--json", data_dir=data).stdout)
    assert [o["slug"] for o in orgs] == ["default"] and len(orgs[0]["ping_key"]) == 22
    assert m["slug_url"].endswith(f"/ping/{orgs[0]['ping_key']}/nightly-backup")


def test_monitors_add_accepts_a_cron_schedule_with_a_time_zone(tmp_path: Path) -> None:
    result = run("monitors", "add", "--name", "Report", "--schedule", "0 9 * * MON-FRI",
                 "--tz", "Europe/Paris", "--json", data_dir=tmp_path / "d")  # fmt: skip
    m = json.loads(result.stdout)
    assert (m["schedule"], m["tz"], m["schedule_kind"]) == (
        "0 9 * * MON-FRI",
        "Europe/Paris",
        "cron",
    )
    assert "Monday through Friday" in m["schedule_words"]


def test_monitors_add_refuses_bad_input_with_one_line(tmp_path: Path) -> None:
    data = tmp_path / "d"
    bad_cron = run("monitors", "add", "--name", "x", "--schedule", "61 * * * *", data_dir=data)
    assert_one_clear_line(bad_cron, "schedule:")
    bad_tz = run("monitors", "add", "--name", "x", "--schedule", "0 * * * *", "--tz", "Mars/Base",
                 data_dir=data)  # fmt: skip
    assert_one_clear_line(bad_tz, "unknown time zone 'Mars/Base'")
    bad_period = run("monitors", "add", "--name", "x", "--period", "soon", data_dir=data)
    assert_one_clear_line(bad_period, "invalid duration")
    run("monitors", "add", "--name", "x", "--period", "1h", data_dir=data)
    dup = run("monitors", "add", "--name", "x", "--period", "1h", data_dir=data)
    assert_one_clear_line(dup, "'x' is already used")
    no_org = run("monitors", "add", "--name", "y", "--period", "1h", "--org", "nope", data_dir=data)
    assert_one_clear_line(no_org, "no organisation with slug 'nope'")


def test_monitors_get_and_list_show_state_after_pings(
    tmp_path: Path, server_factory: type[Server]
) -> None:
    import urllib.request

    data = tmp_path / "data"
    m = json.loads(run("monitors", "add", "--name", "job", "--period", "1h", "--json",
                       data_dir=data).stdout)  # fmt: skip
    server = server_factory(data)
    server.wait_ready()
    for suffix in ("/start", "", "/log", "/start"):
        with urllib.request.urlopen(f"{server.url}/ping/{m['uuid']}{suffix}") as resp:
            assert resp.read() == b"OK"
    # The commands work while the server runs.
    got = json.loads(run("monitors", "get", m["uuid"], "--json", data_dir=data).stdout)
    assert (got["status"], got["state"], got["ping_count"], got["open_runs"]) == (
        "running", "up", 4, 1,
    )  # fmt: skip
    assert got["last_ping"] is not None and got["last_duration"] is not None
    listed = json.loads(run("monitors", "list", "--json", data_dir=data).stdout)
    assert [x["uuid"] for x in listed] == [m["uuid"]]
    with urllib.request.urlopen(f"{server.url}/ping/{m['uuid']}/3") as resp:
        assert resp.status == 200
    incidents = json.loads(run("incidents", "list", "--json", data_dir=data).stdout)
    assert [(i["kind"], i["state"], i["monitor"]) for i in incidents] == [("FAIL", "open", "job")]
    assert "exit status 3" in incidents[0]["reason"]
    text = run("incidents", "list", data_dir=data).stdout
    assert "FAIL" in text and "exit status 3" in text
    assert server.stop()[0] == 0


def test_monitors_get_of_an_unknown_uuid_is_one_line(tmp_path: Path) -> None:
    data = tmp_path / "d"
    run("orgs", "list", data_dir=data)
    result = run("monitors", "get", "00000000-0000-0000-0000-000000000000", data_dir=data)
    assert_one_clear_line(result, "no monitor with uuid")


def test_read_commands_on_a_missing_data_folder_say_so(tmp_path: Path) -> None:
    result = run("monitors", "list", data_dir=tmp_path / "none")
    assert_one_clear_line(result, "no database in")
    assert not (tmp_path / "none").exists()


def test_admin_commands_write_to_the_same_database_file(tmp_path: Path) -> None:
    data = tmp_path / "d"
    run("monitors", "add", "--name", "a", "--period", "1h", data_dir=data)
    names = sqlite3.connect(data / "tokiflow.db").execute("SELECT name FROM monitors").fetchall()
    assert names == [("a",)]


def test_incidents_can_be_acknowledged_then_resolved_once(
    tmp_path: Path, server_factory: type[Server]
) -> None:
    import urllib.request

    data = tmp_path / "data"
    m = json.loads(run("monitors", "add", "--name", "job", "--period", "1h", "--json",
                       data_dir=data).stdout)  # fmt: skip
    server = server_factory(data)
    server.wait_ready()
    urllib.request.urlopen(f"{server.url}/ping/{m['uuid']}/fail").read()
    [inc] = json.loads(run("incidents", "list", "--json", data_dir=data).stdout)
    ack = run("incidents", "ack", str(inc["id"]), data_dir=data)
    assert ack.stdout == f"incident #{inc['id']} is now acknowledged\n"
    assert_one_clear_line(run("incidents", "ack", str(inc["id"]), data_dir=data), "not open")
    done = run("incidents", "resolve", str(inc["id"]), data_dir=data)
    assert done.stdout == f"incident #{inc['id']} is now resolved\n"
    again = run("incidents", "resolve", str(inc["id"]), data_dir=data)
    assert_one_clear_line(again, "already resolved")
    assert_one_clear_line(run("incidents", "ack", "999", data_dir=data), "no incident #999")
    [after] = json.loads(run("incidents", "list", "--json", data_dir=data).stdout)
    assert after["state"] == "resolved" and after["acknowledged_at"] is not None
    assert server.stop()[0] == 0


def test_update_pause_resume_and_delete_work_on_the_data_folder(tmp_path: Path) -> None:
    data = tmp_path / "d"
    m = json.loads(run("monitors", "create", "--name", "Nightly Backup", "--period", "1h",
                       "--json", data_dir=data).stdout)  # fmt: skip
    changed = json.loads(run("monitors", "update", "nightly-backup", "--grace", "10m",
                             "--schedule", "0 3 * * *", "--tz", "Europe/London",
                             "--no-resolve-alerts", "--json", data_dir=data).stdout)  # fmt: skip
    assert (changed["grace"], changed["schedule"], changed["tz"], changed["notify_resolve"]) == (
        600, "0 3 * * *", "Europe/London", False,
    )  # fmt: skip
    text = run("monitors", "update", m["uuid"], "--period", "2h", data_dir=data)
    assert text.stdout == "updated monitor 'Nightly Backup': now new (every 2h)\n"
    assert_one_clear_line(run("monitors", "update", m["uuid"], "--grace", "soon", data_dir=data),
                          "invalid duration")  # fmt: skip
    paused = json.loads(run("monitors", "pause", m["uuid"], "--json", data_dir=data).stdout)
    assert paused["status"] == "paused"
    resumed = run("monitors", "resume", "nightly-backup", data_dir=data)
    assert resumed.stdout.startswith("resumed monitor 'Nightly Backup': now new")
    refused = run("monitors", "delete", m["uuid"], data_dir=data)
    assert refused.returncode == 2 and "--yes" in refused.stderr
    gone = run("monitors", "delete", m["uuid"], "--yes", data_dir=data)
    assert gone.stdout == f"deleted monitor 'Nightly Backup' ({m['uuid']}) and its history\n"
    assert_one_clear_line(run("monitors", "get", m["uuid"], data_dir=data), "no monitor with uuid")
    db = sqlite3.connect(data / "tokiflow.db")
    actions = db.execute(
        "SELECT action, actor_kind FROM audit_log WHERE target_id = ? ORDER BY id", (m["uuid"],)
    ).fetchall()
    assert actions == [("monitor.create", "cli"), ("monitor.update", "cli"),
                       ("monitor.update", "cli"), ("monitor.pause", "cli"),
                       ("monitor.resume", "cli"), ("monitor.delete", "cli")]  # fmt: skip


def test_a_slug_used_in_two_organisations_needs_org(tmp_path: Path) -> None:
    data = tmp_path / "d"
    run("orgs", "list", data_dir=data)  # makes the default organisation
    run("user", "create", "--email", "b@beta.example", "--org", "Beta", "--password-stdin",
        data_dir=data, input="a long password\n")  # fmt: skip
    ours = json.loads(run("monitors", "add", "--name", "Sync", "--period", "1h", "--json",
                          data_dir=data).stdout)  # fmt: skip
    theirs = json.loads(run("monitors", "create", "--name", "Sync", "--period", "1h", "--org",
                            "beta", "--json", data_dir=data).stdout)  # fmt: skip
    assert ours["org"] == "default" and theirs["org"] == "beta"
    assert_one_clear_line(run("monitors", "get", "sync", data_dir=data), "several organisations")
    got = json.loads(
        run("monitors", "get", "sync", "--org", "beta", "--json", data_dir=data).stdout
    )
    assert got["uuid"] == theirs["uuid"]
    # A uuid of another organisation than --org is not found.
    other = run("monitors", "pause", ours["uuid"], "--org", "beta", data_dir=data)
    assert_one_clear_line(other, "no monitor with uuid")
    listed = json.loads(run("monitors", "list", "--org", "beta", "--json", data_dir=data).stdout)
    assert [x["uuid"] for x in listed] == [theirs["uuid"]]
