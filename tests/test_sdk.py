"""The Python job SDK against a real server: the pings and runs it leaves behind."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli_helpers import Server, StoredMonitor, free_port, run
from tokiflow.sdk import Monitor

Stored = StoredMonitor


@pytest.fixture
def stored(tmp_path: Path, server_factory: type[Server]) -> Iterator[Stored]:
    data = tmp_path / "data"
    server = server_factory(data)
    server.wait_ready()
    made = run("monitors", "add", "--name", "job", "--period", "1h", "--json", data_dir=data)
    assert made.returncode == 0, made.stderr
    yield Stored(server, data, json.loads(made.stdout)["uuid"])
    server.stop()


def test_a_context_manager_pings_start_then_success_with_one_run_id(stored: Stored) -> None:
    with Monitor(stored.url) as m:
        m.log("halfway")
    start, log, success = stored.pings()
    assert [p.kind for p in (start, log, success)] == ["start", "log", "success"]
    assert start.rid == log.rid == success.rid == m.rid
    assert log.body == b"halfway"
    (only,) = stored.runs()
    assert (only.status, only.rid) == ("success", m.rid) and only.duration is not None


def test_an_exception_reports_a_failure_with_the_traceback_and_still_raises(
    stored: Stored,
) -> None:
    with pytest.raises(ValueError, match="disk full"), Monitor(stored.url):
        raise ValueError("disk full")
    finish = stored.pings()[-1]
    assert finish.kind == "fail" and finish.body is not None
    assert finish.body.startswith(b"Traceback (most recent call last):")
    assert finish.body.rstrip().endswith(b"ValueError: disk full")
    assert stored.runs()[0].status == "fail"


def test_a_decorated_function_is_one_run_per_call_and_returns_its_value(stored: Stored) -> None:
    @Monitor(uuid=stored.uuid, server=stored.server.url)
    def add(a: int, b: int) -> int:
        return a + b

    assert add(2, 3) == 5
    assert add(1, 1) == 2
    assert add.__name__ == "add"
    done = stored.runs()
    assert [r.status for r in done] == ["success", "success"]
    assert done[0].rid != done[1].rid


async def test_a_decorated_async_function_keeps_overlapping_runs_apart(stored: Stored) -> None:
    gate = asyncio.Event()

    @Monitor(stored.url)
    async def job(n: int) -> int:
        await gate.wait()
        if n == 2:
            raise RuntimeError("second one fails")
        return n

    first = asyncio.create_task(job(1))
    second = asyncio.create_task(job(2))
    while len(await asyncio.to_thread(stored.pings)) < 2:  # until both runs have started
        pass
    gate.set()
    assert await first == 1
    with pytest.raises(RuntimeError):
        await second
    by_rid = {r.rid: r.status for r in stored.runs()}
    assert sorted(by_rid.values()) == ["fail", "success"] and len(by_rid) == 2


def test_explicit_calls_send_exit_status_failure_and_output(stored: Stored) -> None:
    m = Monitor(stored.url)
    rid = m.start()
    assert m.exit_status(3, output="3 files skipped") is True
    assert m.fail("no space left") is True
    assert m.success() is True
    kinds = [(p.kind, p.exit_status, p.body, p.rid) for p in stored.pings()]
    assert kinds == [
        ("start", None, None, rid),
        ("fail", 3, b"3 files skipped", rid),
        ("fail", None, b"no space left", rid),
        ("success", None, None, rid),
    ]


def test_system_exit_reports_its_exit_status(stored: Stored) -> None:
    monitor = Monitor(stored.url)
    with pytest.raises(SystemExit), monitor:
        raise SystemExit(0)
    with pytest.raises(SystemExit), monitor:
        raise SystemExit(4)
    finishes = [(p.kind, p.exit_status) for p in stored.pings() if p.kind != "start"]
    assert finishes == [("success", 0), ("fail", 4)]


def test_the_monitor_can_come_from_the_environment(
    stored: Stored, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOKIFLOW_UUID", stored.uuid)
    monkeypatch.setenv("TOKIFLOW_SERVER", stored.server.url)
    assert Monitor().success() is True
    assert [p.kind for p in stored.pings()] == ["success"]


def test_an_unknown_monitor_is_a_warning_not_an_error(
    stored: Stored, caplog: pytest.LogCaptureFixture
) -> None:
    m = Monitor(f"{stored.server.url}/ping/00000000-0000-4000-8000-000000000000")
    with caplog.at_level(logging.WARNING, logger="tokiflow.sdk"):
        assert m.success() is False
    assert "answered 404 not found" in caplog.text


def test_a_server_that_is_down_never_breaks_the_job(caplog: pytest.LogCaptureFixture) -> None:
    monitor = Monitor(f"http://127.0.0.1:{free_port()}/ping/5f1e2d3c-1111-4222-8333-944455556666")
    with caplog.at_level(logging.WARNING, logger="tokiflow.sdk"):

        @monitor
        def job() -> str:
            return "done"

        assert job() == "done"
    assert caplog.text.count("could not reach http://127.0.0.1:") == 2


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({}, "give url= or uuid="),
        ({"uuid": "nope", "server": "http://x"}, "not a valid uuid"),
        ({"uuid": "5f1e2d3c-1111-4222-8333-944455556666"}, "needs server="),
        ({"url": "ftp://x/ping/1"}, "not an http:// or https:// URL"),
    ],
)
def test_a_monitor_that_is_not_configured_is_refused_up_front(
    kwargs: dict[str, str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("TOKIFLOW_URL", "TOKIFLOW_UUID", "TOKIFLOW_SERVER"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match=message):
        Monitor(**kwargs)


def test_the_sdk_file_uses_only_the_standard_library() -> None:
    import sys

    source = (Path(__file__).resolve().parent.parent / "src/tokiflow/sdk.py").read_text()
    imported = {
        line.split()[1].split(".")[0]
        for line in source.splitlines()
        if line.startswith(("import ", "from "))
    }
    assert imported - {"__future__"} <= set(sys.stdlib_module_names)
