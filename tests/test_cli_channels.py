"""Channel commands as an operator runs them, against real local receivers and a real server."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli_helpers import HookReceiver, Server, assert_one_clear_line, run


@pytest.fixture
def receiver() -> Iterator[HookReceiver]:
    r = HookReceiver()
    yield r
    r.close()


def add_webhook(data: Path, url: str, *extra: str, secret: str = "topsecret") -> dict:
    config = json.dumps({"url": url, "secret": secret})
    result = run("channels", "add", "--kind", "webhook", "--name", "ops hook", "--config", config,
                 "--json", *extra, data_dir=data)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_channels_add_validates_and_list_masks_secrets(tmp_path: Path) -> None:
    data = tmp_path / "d"
    ch = add_webhook(data, "http://hooks.example/x")
    assert (ch["kind"], ch["name"], ch["default"]) == ("webhook", "ops hook", True)
    assert ch["config"]["secret"] == "***"
    listed = json.loads(run("channels", "list", "--json", data_dir=data).stdout)
    assert [c["id"] for c in listed] == [ch["id"]] and listed[0]["config"]["secret"] == "***"
    assert "topsecret" not in run("channels", "list", data_dir=data).stdout
    bad = run("channels", "add", "--kind", "webhook", "--name", "x", "--config", '{"url": "ftp://x"}',
              data_dir=data)  # fmt: skip
    assert_one_clear_line(bad, "invalid channel: url: must be an http")
    not_json = run(
        "channels", "add", "--kind", "email", "--name", "x", "--config", "{to:", data_dir=data
    )
    assert_one_clear_line(not_json, "--config is not valid JSON")
    unknown = run(
        "channels", "add", "--kind", "fax", "--name", "x", "--config", "{}", data_dir=data
    )
    assert unknown.returncode == 2 and "invalid choice: 'fax'" in unknown.stderr


def test_channels_test_sends_now_and_logs_the_delivery(
    tmp_path: Path, receiver: HookReceiver
) -> None:
    data = tmp_path / "d"
    ch = add_webhook(data, receiver.url)
    result = run("channels", "test", str(ch["id"]), data_dir=data)
    assert result.returncode == 0, result.stderr
    assert f"test alert sent to channel #{ch['id']}" in result.stdout
    [(path, headers, body)] = receiver.requests
    assert path == "/hook" and headers["X-Tokiflow-Event"] == "test"
    assert json.loads(body)["title"] == "Tokiflow test alert"
    [delivery] = json.loads(run("deliveries", "list", "--json", data_dir=data).stdout)
    assert (delivery["event"], delivery["state"], delivery["history"][0]["ok"]) == (
        "test",
        "sent",
        True,
    )


def test_a_failing_test_alert_says_why_and_marks_the_channel(tmp_path: Path) -> None:
    data = tmp_path / "d"
    failing = HookReceiver(status=401)
    try:
        ch = add_webhook(data, failing.url)
        result = run("channels", "test", str(ch["id"]), data_dir=data)
    finally:
        failing.close()
    assert_one_clear_line(result, "failed: HTTP 401")
    [listed] = json.loads(run("channels", "list", "--json", data_dir=data).stdout)
    assert listed["last_error"].startswith("HTTP 401")
    assert_one_clear_line(run("channels", "test", "99", data_dir=data), "no channel #99")


def test_channels_delete_removes_it(tmp_path: Path) -> None:
    data = tmp_path / "d"
    ch = add_webhook(data, "http://hooks.example/x")
    assert run("channels", "delete", str(ch["id"]), data_dir=data).returncode == 0
    assert json.loads(run("channels", "list", "--json", data_dir=data).stdout) == []
    assert_one_clear_line(run("channels", "delete", str(ch["id"]), data_dir=data), "no channel")


def test_a_failing_job_alerts_the_webhook_through_a_running_server(
    tmp_path: Path, server_factory: type[Server], receiver: HookReceiver
) -> None:
    data = tmp_path / "d"
    add_webhook(data, receiver.url)
    m = json.loads(run("monitors", "add", "--name", "nightly", "--period", "1d", "--json",
                       data_dir=data).stdout)  # fmt: skip
    server = server_factory(data)
    server.wait_ready()
    urllib.request.urlopen(f"{server.url}/ping/{m['uuid']}/4").read()
    receiver.wait_for(1)
    urllib.request.urlopen(f"{server.url}/ping/{m['uuid']}").read()
    receiver.wait_for(2)
    events = [
        (h["X-Tokiflow-Event"], json.loads(b)["monitor_name"]) for _, h, b in receiver.requests
    ]
    assert events == [("open", "nightly"), ("resolved", "nightly")]
    assert "exit status 4" in json.loads(receiver.requests[0][2])["reason"]
    assert server.stop()[0] == 0
    deliveries = json.loads(run("deliveries", "list", "--json", data_dir=data).stdout)
    assert sorted(d["state"] for d in deliveries) == ["sent", "sent"]


def test_monitors_add_can_pick_channels_and_set_the_alert_policy(tmp_path: Path) -> None:
    data = tmp_path / "d"
    first = add_webhook(data, "http://a.example/x")
    add_webhook(data, "http://b.example/x", "--no-default")
    m = json.loads(run("monitors", "add", "--name", "x", "--period", "1h", "--renotify", "30m",
                       "--no-resolve-alerts", "--channels", str(first["id"]), "--json",
                       data_dir=data).stdout)  # fmt: skip
    assert (m["renotify_every"], m["notify_resolve"]) == (1800, False)
    bad = run("monitors", "add", "--name", "y", "--period", "1h", "--channels", "42", data_dir=data)
    assert_one_clear_line(bad, "no channel #42")
