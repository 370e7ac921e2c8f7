"""`tokiflow run` and `tokiflow ping` as jobs use them: real subprocesses against a real server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli_helpers import Server, StoredMonitor, assert_one_clear_line, free_port, run
from tokiflow import wrapper

PY = sys.executable


def tokiflow(
    *args: str, env: dict[str, str] | None = None, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TOKIFLOW_")}
    return subprocess.run(
        [PY, "-m", "tokiflow", *args],
        capture_output=True,
        text=True,
        env={**clean, **(env or {})},
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        timeout=60,
    )


Job = StoredMonitor


@pytest.fixture
def job(tmp_path: Path, server_factory: type[Server]) -> Iterator[Job]:
    data = tmp_path / "data"
    server = server_factory(data)
    server.wait_ready()
    made = run("monitors", "add", "--name", "job", "--period", "1h", "--json", data_dir=data)
    assert made.returncode == 0, made.stderr
    yield Job(server, data, json.loads(made.stdout)["uuid"])
    server.stop()


def test_a_successful_command_pings_start_then_success_and_passes_both_streams_through(
    job: Job,
) -> None:
    script = "import sys; print('to stdout', flush=True); print('to stderr', file=sys.stderr)"
    result = tokiflow("run", "--url", job.url, "--", PY, "-c", script)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "to stdout\n"
    assert result.stderr == "to stderr\n"
    start, finish = job.pings()
    assert (start.kind, finish.kind, finish.exit_status) == ("start", "success", 0)
    assert start.rid is not None and start.rid == finish.rid
    assert finish.body is not None
    assert b"to stdout\n" in finish.body and b"to stderr\n" in finish.body
    assert [(r.status, r.rid) for r in job.runs()] == [("success", start.rid)]


def test_a_failing_command_reports_its_exit_status_and_the_wrapper_exits_with_it(
    job: Job,
) -> None:
    result = tokiflow("run", "--url", job.url, "--", "sh", "-c", "echo broken >&2; exit 3")
    assert result.returncode == 3
    finish = job.pings()[-1]
    assert (finish.kind, finish.exit_status, finish.body) == ("fail", 3, b"broken\n")
    assert job.runs()[0].status == "fail"


def test_a_command_that_does_not_exist_exits_127_and_pings_fail_with_the_reason(
    job: Job,
) -> None:
    result = tokiflow("run", "--url", job.url, "--", "no-such-command-tokiflow")
    assert result.returncode == 127
    assert "no-such-command-tokiflow: command not found" in result.stderr
    start, finish = job.pings()
    assert (start.kind, finish.kind, finish.rid) == ("start", "fail", start.rid)
    assert finish.body is not None and b"command not found" in finish.body


def test_a_file_that_is_not_executable_exits_126(job: Job, tmp_path: Path) -> None:
    script = tmp_path / "backup.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o644)
    result = tokiflow("run", "--url", job.url, "--", str(script))
    assert result.returncode == 126
    assert "permission denied" in result.stderr
    finish = job.pings()[-1]
    assert finish.kind == "fail" and finish.body is not None and b"cannot execute" in finish.body


CHILD_WAITS_FOR_TERM = """
import os, signal, sys
def on_term(signum, frame):
    print("child got SIGTERM", flush=True)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)
signal.signal(signal.SIGTERM, on_term)
print("ready", flush=True)
while True:
    signal.pause()
"""


def test_sigterm_is_forwarded_to_the_command_and_its_death_is_reported(job: Job) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKIFLOW_")}
    proc = subprocess.Popen(
        [PY, "-m", "tokiflow", "run", "--url", job.url, "--", PY, "-c", CHILD_WAITS_FOR_TERM],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "child got SIGTERM" in out
    assert proc.returncode == 143, err
    finish = job.pings()[-1]
    assert (finish.kind, finish.exit_status) == ("fail", 143)
    assert finish.body is not None and b"killed by SIGTERM" in finish.body


def test_output_larger_than_the_limit_keeps_its_redacted_tail(job: Job) -> None:
    token = "ghp_" + "aZ3kQ9xW2mP7vL5tR8nB4cY6hJ1dF0gS1234"
    script = (
        "print('FIRST LINE')\n"
        "for i in range(5000): print(f'line {i:05d} ' + 'x' * 40)\n"
        f"print('deploying with {token}')\n"
        "print('LAST LINE')\n"
    )
    result = tokiflow("run", "--url", job.url, "--capture-limit", "4k", "--", PY, "-c", script)
    assert result.returncode == 0
    assert result.stdout.startswith("FIRST LINE\n") and token in result.stdout  # shown in full
    body = job.pings()[-1].body
    assert body is not None
    assert len(body) <= 4096
    assert body.endswith(b"deploying with [REDACTED]\nLAST LINE\n")
    assert b"FIRST LINE" not in body and token.encode() not in body
    assert b"line 04999" in body


def test_the_body_is_cut_to_the_servers_ping_body_limit(job: Job) -> None:
    script = "for i in range(3000): print(f'row {i:05d}')"
    tokiflow("run", "--url", job.url, "--", PY, "-c", script)
    body = job.pings()[-1].body
    assert body is not None
    assert 9_900 <= len(body) <= 10_000  # the server announces Ping-Body-Limit: 10000
    assert body.endswith(b"row 02999\n")


def test_no_output_sends_an_empty_body_but_still_shows_the_output(job: Job) -> None:
    result = tokiflow("run", "--url", job.url, "--no-output", "--", "echo", "private")
    assert result.stdout == "private\n"
    assert job.pings()[-1].body in (None, b"")


def test_a_server_that_is_down_changes_nothing_for_the_job_and_is_bounded(
    tmp_path: Path,
) -> None:
    url = f"http://127.0.0.1:{free_port()}/ping/5f1e2d3c-1111-4222-8333-944455556666"
    began = time.monotonic()
    result = tokiflow(
        "run", "--url", url, "--retry-for", "2s", "--", "sh", "-c", "echo ran; exit 5"
    )
    elapsed = time.monotonic() - began
    assert result.returncode == 5
    assert result.stdout == "ran\n"
    assert "tokiflow run: warning: could not reach http://127.0.0.1:" in result.stderr
    assert elapsed < 10


def test_timeout_stops_the_command_and_reports_a_failure(job: Job) -> None:
    script = "import signal; print('started', flush=True); signal.pause()"
    result = tokiflow("run", "--url", job.url, "--timeout", "1s", "--", PY, "-c", script)
    assert result.returncode == wrapper.TIMEOUT_EXIT
    assert "timed out after 1s" in result.stderr
    finish = job.pings()[-1]
    assert finish.kind == "fail"
    assert finish.body is not None and finish.body.startswith(b"started\n")
    assert b"timed out after 1s" in finish.body


def test_a_background_child_that_keeps_the_output_open_does_not_hold_the_wrapper(
    job: Job,
) -> None:
    began = time.monotonic()
    result = tokiflow("run", "--url", job.url, "--", "sh", "-c", "sleep 15 & echo launched")
    assert result.returncode == 0
    assert result.stdout == "launched\n"
    assert time.monotonic() - began < 12
    assert job.pings()[-1].body == b"launched\n"


def test_the_target_can_come_from_environment_variables(job: Job) -> None:
    env = {"TOKIFLOW_UUID": job.uuid, "TOKIFLOW_SERVER": job.server.url}
    result = tokiflow("run", "--", "true", env=env)
    assert result.returncode == 0, result.stderr
    assert [p.kind for p in job.pings()] == ["start", "success"]


def test_a_slug_with_create_makes_the_monitor_on_first_use(job: Job) -> None:
    key = json.loads(run("orgs", "list", "--json", data_dir=job.data_dir).stdout)[0]["ping_key"]
    result = tokiflow(
        "run", "--slug", "nightly-etl", "--ping-key", key, "--server", job.server.url,
        "--create", "--", "true",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    listed = json.loads(run("monitors", "list", "--json", data_dir=job.data_dir).stdout)
    etl = [m for m in listed if m["slug"] == "nightly-etl"]
    assert len(etl) == 1 and etl[0]["ping_count"] == 2 and etl[0]["status"] == "up"


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "--", "true"], "say which monitor to ping"),
        (["run", "--uuid", "5f1e2d3c-1111-4222-8333-944455556666", "--", "true"], "--server"),
        (["run", "--url", "ftp://x/ping/1", "--", "true"], "not an http:// or https:// URL"),
        (["run", "--url", "http://x/ping/1"], "give the command to run"),
        (["run", "--url", "http://x/ping/1", "--timeout", "soon", "--", "true"], "--timeout"),
        (["run", "--url", "http://x/ping/1", "--capture-limit", "lots", "--", "true"], "size"),
    ],
)
def test_usage_mistakes_are_one_line_and_exit_2_without_running_anything(
    args: list[str], message: str
) -> None:
    result = tokiflow(*args)
    assert result.returncode == 2
    assert_one_clear_line(result, message)


def test_ping_sends_one_ping_and_prints_the_reply(job: Job) -> None:
    rid = "0b8e4a36-8f2e-4c1f-9a64-1f9d2f0e6b7a"
    started = tokiflow("ping", job.uuid, "--server", job.server.url, "--start", "--rid", rid)
    assert (started.returncode, started.stdout) == (0, "OK\n")
    ended = tokiflow("ping", job.url, "--exit", "7", "--rid", rid, "--body", "disk full")
    assert (ended.returncode, ended.stdout) == (0, "OK\n")
    logged = tokiflow("ping", job.url, "--log", "--body", "-", input="note password=hunter2\n")
    assert logged.returncode == 0
    start, end, log = job.pings()
    assert (start.kind, start.rid) == ("start", rid)
    assert (end.kind, end.exit_status, end.rid, end.body) == ("fail", 7, rid, b"disk full")
    assert (log.kind, log.body) == ("log", b"note password=[REDACTED]\n")


def test_ping_fails_clearly_on_an_unknown_monitor_or_an_unreachable_server(job: Job) -> None:
    missing = tokiflow("ping", f"{job.server.url}/ping/00000000-0000-4000-8000-000000000000")
    assert missing.stdout == "not found\n"
    assert_one_clear_line(missing, "the server answered 404 not found")
    down = tokiflow("ping", f"http://127.0.0.1:{free_port()}/ping/{job.uuid}")
    assert_one_clear_line(down, "could not reach http://127.0.0.1:")


@pytest.mark.parametrize(
    "text, size",
    [("32k", 32768), ("500", 500), ("1m", 1048576), ("64KiB", 65536), ("0", 0)],
)
def test_capture_sizes_read_as_bytes(text: str, size: int) -> None:
    assert wrapper.parse_size(text) == size


def test_the_tail_is_cut_on_a_character_boundary() -> None:
    data = "é" * 10  # two bytes each
    assert wrapper.cut_tail(data.encode(), 5) == ("é" * 2).encode()


def test_ping_urls_carry_the_action_the_run_id_and_create() -> None:
    target = wrapper.Target("http://h:8000/ping/key/etl/", create=True)
    assert target.for_action("start", "r1") == "http://h:8000/ping/key/etl/start?rid=r1&create=1"
    assert wrapper.Target("http://h/ping/u").for_action("") == "http://h/ping/u"


class InstantClock:
    """Time moves only when the code under test sleeps: backoff is checked without waiting."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def refused(url: str, body: bytes, timeout: float) -> wrapper.Reply:
    raise ConnectionRefusedError(111, "Connection refused")


async def test_pings_back_off_exponentially_and_give_up_when_the_retry_time_is_spent(
    capsys: pytest.CaptureFixture[str],
) -> None:
    clock = InstantClock()
    pinger = wrapper.Pinger(clock=clock, send=refused)
    assert await pinger.ping("http://h/ping/u/0?rid=r", b"", deadline=clock.now + 60) is None
    assert 55 <= sum(clock.sleeps) <= 60 + 1e-9  # summed floats may pass 60 by a hair
    assert clock.sleeps[0] <= 0.625 and clock.sleeps[1] >= 0.75 and clock.sleeps[2] >= 1.5
    assert max(clock.sleeps) <= 10
    warnings = capsys.readouterr().err.splitlines()
    assert warnings == [
        "tokiflow run: warning: could not reach http://h/ping/u/0: Connection refused; giving up"
    ]


async def test_a_rate_limited_ping_waits_as_long_as_the_server_asks() -> None:
    clock = InstantClock()
    replies = [wrapper.Reply(429, "rate limited", retry_after=7), wrapper.Reply(200, "OK")]
    pinger = wrapper.Pinger(clock=clock, send=lambda url, body, timeout: replies.pop(0))
    reply = await pinger.ping("http://h/ping/u", b"", deadline=clock.now + 60)
    assert reply is not None and reply.ok
    assert clock.sleeps and clock.sleeps[0] >= 7


async def test_a_ping_the_server_refuses_is_not_retried() -> None:
    clock = InstantClock()
    calls: list[str] = []

    def not_found(url: str, body: bytes, timeout: float) -> wrapper.Reply:
        calls.append(url)
        return wrapper.Reply(404, "not found")

    pinger = wrapper.Pinger(clock=clock, send=not_found)
    reply = await pinger.ping("http://h/ping/u", b"", deadline=clock.now + 60)
    assert reply is not None and reply.status == 404
    assert (len(calls), clock.sleeps) == (1, [])
