"""The commands a job runs on every cron run (`ping`, `run`), `version`, `--help` and the commands
on a server start without the server: each test runs `python -m tokiflow ...` as a real process
(through runpy, as `-m` does) and reads the modules it had loaded when it exited.

Loading modules is what costs start-up time, so these tests check what is loaded, not how long
it takes (timings are bench/cli_start.py's business).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.cli_helpers import free_port
from tokiflow import __version__
from tokiflow.cli import COMMANDS, build_parser

MakeServer = Callable[[web.Application], Awaitable[TestServer]]
UUID = "5f1e2d3c-1111-4222-8333-944455556666"
API_KEY = "tk_startup_test_key"
# Tokiflow's own modules that belong to the server or the data folder.
SERVER_SIDE = ("tokiflow.app", "tokiflow.web", "tokiflow.storage", "tokiflow.channels",
               "tokiflow.logs", "tokiflow.licensing", "tokiflow.importers",
               "tokiflow.cli_serve", "tokiflow.cli_monitors_local")  # fmt: skip
# The dependencies that cost the most start-up time (the standard-library check covers them too).
HEAVY = ("aiohttp", "jinja2", "aiosqlite", "sqlite_utils", "croniter", "cryptography")


@dataclass
class FakeServer:
    """A ping endpoint and the two API listings the remote commands read."""

    url: str = ""
    pings: list[tuple[str, str]] = field(default_factory=list)


async def _fake_server(make: MakeServer) -> FakeServer:
    fake = FakeServer()

    async def ping(request: web.Request) -> web.Response:
        fake.pings.append((request.method, request.path))
        return web.Response(text="OK")

    async def listing(request: web.Request) -> web.Response:
        if request.headers.get("X-Api-Key") != API_KEY:
            return web.json_response({"error": "invalid API key"}, status=401)
        if request.path.endswith("/monitors"):
            monitor = {"uuid": UUID, "name": "nightly-backup", "slug": "nightly-backup",
                       "status": "up", "last_ping": None, "schedule_words": "every 1 day"}  # fmt: skip
            return web.json_response({"monitors": [monitor], "next_offset": None})
        return web.json_response({"incidents": []})

    app = web.Application()
    app.router.add_route("*", "/ping/{tail:.*}", ping)
    app.router.add_get("/api/v1/monitors", listing)
    app.router.add_get("/api/v1/incidents", listing)
    server = await make(app)
    fake.url = f"http://127.0.0.1:{server.port}"
    return fake


@dataclass(frozen=True)
class Started:
    code: int
    out: str
    err: str
    modules: frozenset[str]  # sys.modules when the process exited


# Runs its arguments as `python -m tokiflow` would, then writes sys.modules to a file at exit.
HARNESS = """
import atexit, os, runpy, sys

def dump():
    with open(os.environ["STARTUP_TEST_MODULES"], "w") as fh:
        fh.write("\\n".join(sorted(sys.modules)))

atexit.register(dump)
if sys.argv[1:2] != ["--nothing"]:
    runpy.run_module("tokiflow", run_name="__main__", alter_sys=True)
"""


async def tokiflow(home: Path, *args: str) -> Started:
    """`python -m tokiflow ARGS` with HOME at `home` (no stored login), no TOKIFLOW_* variables."""
    listing = home / "modules.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKIFLOW_")}
    env.update(HOME=str(home), XDG_CONFIG_HOME="", STARTUP_TEST_MODULES=str(listing))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HARNESS, *args, env=env, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 50)
    assert proc.returncode is not None
    modules = frozenset(listing.read_text().split("\n"))
    return Started(proc.returncode, out.decode(), err.decode(), modules)


@pytest.fixture
async def interpreter_only(tmp_path: Path) -> frozenset[str]:
    """What the interpreter and this harness load without Tokiflow (site hooks included)."""
    started = await tokiflow(tmp_path, "--nothing")
    assert "site" in started.modules and "runpy" in started.modules
    assert not [m for m in started.modules if m.startswith("tokiflow")]
    return started.modules


def beyond_stdlib(started: Started, baseline: frozenset[str]) -> list[str]:
    """Modules loaded beyond the standard library and Tokiflow's client-side modules."""
    # (sysconfig's data module is named after the platform, so it is not in stdlib_module_names.)
    allowed = sys.stdlib_module_names | {"tokiflow"}
    return sorted(
        m for m in started.modules - baseline
        if (m.split(".")[0] not in allowed and not m.startswith("_sysconfigdata_"))
        or m.startswith(SERVER_SIDE)
    )  # fmt: skip


async def test_the_listing_shows_the_modules_a_command_loads_when_it_runs(tmp_path: Path) -> None:
    # The control: `config` loads the server's modules for its command, and the listing has them.
    started = await tokiflow(tmp_path, "config", "--data-dir", str(tmp_path / "data"))
    assert started.code == 0, started.err
    assert "data_dir" in started.out
    assert {"aiohttp", "sqlite_utils", "tokiflow.cli_serve"} <= started.modules


async def test_ping_loads_only_the_standard_library_and_the_ping_client(
    aiohttp_server: MakeServer, tmp_path: Path, interpreter_only: frozenset[str]
) -> None:
    fake = await _fake_server(aiohttp_server)
    started = await tokiflow(tmp_path, "ping", f"{fake.url}/ping/{UUID}", "--body", "done")
    assert (started.code, started.out, started.err) == (0, "OK\n", "")
    assert fake.pings == [("POST", f"/ping/{UUID}")]
    assert beyond_stdlib(started, interpreter_only) == []
    assert not [m for m in started.modules if m.split(".")[0] in HEAVY]
    assert "asyncio" not in started.modules  # one ping needs no event loop


async def test_ping_to_a_closed_port_fails_in_one_line_without_loading_the_server(
    tmp_path: Path, interpreter_only: frozenset[str]
) -> None:
    started = await tokiflow(tmp_path, "ping", f"http://127.0.0.1:{free_port()}/ping/{UUID}")
    assert started.code == 1
    assert started.err.startswith("tokiflow: error: could not reach http://127.0.0.1:")
    assert started.err.count("\n") == 1  # one line, no traceback
    assert beyond_stdlib(started, interpreter_only) == []


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ((UUID, "--server", "http://[::1"), "server URL 'http://[::1' is not an http"),
        (("http://[::1/ping/x",), "ping URL 'http://[::1/ping/x' is not an http"),
        (("key/", "--server", "http://127.0.0.1"), "'key/' is not PING_KEY/SLUG"),
        (("/slug", "--server", "http://127.0.0.1"), "'/slug' is not PING_KEY/SLUG"),
    ],
)
async def test_a_ping_target_that_is_not_one_is_a_usage_error_in_one_line(
    args: tuple[str, ...], reason: str, tmp_path: Path
) -> None:
    started = await tokiflow(tmp_path, "ping", *args)
    assert started.code == 2
    assert started.err.startswith("tokiflow: error: ")
    assert reason in started.err
    assert started.err.count("\n") == 1  # one line, no traceback


async def test_run_wraps_a_job_loading_only_the_standard_library_and_the_wrapper(
    aiohttp_server: MakeServer, tmp_path: Path, interpreter_only: frozenset[str]
) -> None:
    fake = await _fake_server(aiohttp_server)
    started = await tokiflow(tmp_path, "run", "--url", f"{fake.url}/ping/{UUID}", "--", "true")
    assert started.code == 0, started.err
    assert [path for _, path in fake.pings] == [f"/ping/{UUID}/start", f"/ping/{UUID}/0"]
    assert beyond_stdlib(started, interpreter_only) == []
    assert "tokiflow.wrapper" in started.modules


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (("version",), f"{__version__}\n"),
        (("--version",), f"tokiflow {__version__}\n"),
        (("--help",), "    ping       send one ping and print the server's reply\n"),
        (("ping", "--help"), "usage: tokiflow ping [-h]"),
        (("monitors", "--help"), "health, uptime, MTBF/MTTR"),
    ],
)
async def test_version_and_help_load_only_the_command_line(
    args: tuple[str, ...], shown: str, tmp_path: Path, interpreter_only: frozenset[str]
) -> None:
    started = await tokiflow(tmp_path, *args)
    assert (started.code, started.err) == (0, "")
    assert shown in started.out
    assert beyond_stdlib(started, interpreter_only) == []
    if args in (("version",), ("--help",)):
        assert sorted(m for m in started.modules if m.startswith("tokiflow")) == [
            "tokiflow",
            "tokiflow.cli",
        ]


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (("monitors", "list"), "nightly-backup"),
        (("monitors", "list", "--json"), f'"uuid": "{UUID}"'),
        (("incidents", "list"), "no incidents"),
    ],
)
async def test_commands_on_a_server_load_no_server_module(
    args: tuple[str, ...],
    shown: str,
    aiohttp_server: MakeServer,
    tmp_path: Path,
    interpreter_only: frozenset[str],
) -> None:
    fake = await _fake_server(aiohttp_server)
    started = await tokiflow(tmp_path, *args, "--server", fake.url, "--api-key", API_KEY)
    assert (started.code, started.err) == (0, "")
    assert shown in started.out
    assert beyond_stdlib(started, interpreter_only) == []


@pytest.mark.parametrize(
    ("args", "code", "shown"),
    [
        (("monitors", "list", "--server", "http://127.0.0.1:{port}"), 4, "not logged in to"),
        (("monitors", "list", "--server", "http://127.0.0.1:{port}", "--api-key", "k"), 3,
         "cannot reach http://127.0.0.1:"),
        (("login", "--server", "http://127.0.0.1:{port}"), 3, "cannot reach http://127.0.0.1:"),
        (("logout",), 0, "not logged in"),
    ],
)  # fmt: skip
async def test_login_logout_and_remote_errors_load_no_server_module(
    args: tuple[str, ...],
    code: int,
    shown: str,
    tmp_path: Path,
    interpreter_only: frozenset[str],
) -> None:
    port = free_port()  # nothing listens there
    started = await tokiflow(tmp_path, *(a.format(port=port) for a in args))
    assert started.code == code, started.err
    assert shown in started.out + started.err
    assert beyond_stdlib(started, interpreter_only) == []


def _helps(parser: argparse.ArgumentParser, path: str = "tokiflow") -> dict[str, str]:
    """The help text of a parser and of every sub-command below it, by command path."""
    found = {path: parser.format_help()}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.update(_helps(sub, f"{path} {name}"))
    return found


def test_a_command_defined_alone_has_the_same_help_as_in_the_full_parser() -> None:
    # main() defines only the command it runs; the docs and the binary's tests walk the full
    # parser. Both must show the same text, sub-commands included.
    full = _helps(build_parser())
    assert _helps(build_parser([]))["tokiflow"] == full["tokiflow"]
    for command in COMMANDS:
        alone = _helps(build_parser([command.name]))
        under = ["tokiflow", command.name]
        mine = {path: text for path, text in alone.items() if path.split()[:2] == under}
        assert mine == {path: text for path, text in full.items() if path.split()[:2] == under}
