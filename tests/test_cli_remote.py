"""The command line against a server, as a user runs it: `tokiflow login` (approved over HTTP by a
signed-in owner, or on the /device page), then the monitor and incident commands as real
subprocesses against a real `tokiflow serve`, and the errors people meet."""

from __future__ import annotations

import asyncio
import http.cookiejar
import json
import os
import re
import socket
import stat
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.cli_helpers import Server, assert_one_clear_line
from tests.conftest import MakeApp
from tokiflow.clock import FakeClock
from tokiflow.engine import auth
from tokiflow.storage import accounts, orgs
from tokiflow.web import appkeys

PASSWORD = "a long password"
CODE = re.compile(r"\b[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}\b")
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("TOKIFLOW_") and k != "XDG_CONFIG_HOME"}  # fmt: skip
    env["HOME"] = str(home)
    env.update(extra)
    return env


def cli(
    home: Path, *args: str, input: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    home.mkdir(parents=True, exist_ok=True)
    return subprocess.run([sys.executable, "-m", "tokiflow", *args], capture_output=True, text=True,
                          env=cli_env(home, **env), input=input, cwd=home, timeout=60)  # fmt: skip


def cli_json(home: Path, *args: str, **env: str) -> Any:
    result = cli(home, *args, "--json", **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


class Login:
    """`tokiflow login` running in the background, as in a terminal."""

    def __init__(self, home: Path, *args: str, **env: str) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tokiflow", "login", "--no-browser", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(home, **env),
            cwd=home,
        )  # fmt: skip
        self.shown: list[str] = []

    def code(self) -> str:
        assert self.proc.stdout is not None
        for _ in range(10):
            line = self.proc.stdout.readline()
            self.shown.append(line)
            found = CODE.search(line)
            if found:
                return found.group(0)
        raise AssertionError(f"no code shown: {self.shown} {self.proc.stderr}")

    def finish(self) -> tuple[int, str, str]:
        # Read through the same buffered streams as code() (communicate() would skip what they
        # already hold).
        assert self.proc.stdout is not None and self.proc.stderr is not None
        out, err = self.proc.stdout.read(), self.proc.stderr.read()
        self.proc.wait(timeout=60)
        self.proc.stdout.close()
        self.proc.stderr.close()
        return self.proc.returncode, "".join(self.shown) + out, err


class Browser:
    """A signed-in user's HTTP session: cookie jar, CSRF token, JSON calls and form posts."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )
        self.csrf = ""

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json",
                                              "X-CSRF-Token": self.csrf})  # fmt: skip
        try:
            with self.opener.open(req, timeout=30) as resp:
                raw = resp.read()
                return resp.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def sign_in(self, email: str) -> Browser:
        status, me = self.call("POST", "/api/v1/auth/login", {"email": email, "password": PASSWORD})
        assert status == 200, me
        self.csrf = me["csrf_token"]
        return self

    def approve(self, user_code: str, approve: bool = True) -> dict[str, Any]:
        status, body = self.call("POST", "/api/v1/auth/device/approve",
                                 {"user_code": user_code, "approve": approve})  # fmt: skip
        assert status == 200, body
        return dict(body)

    def page(self, path: str) -> str:
        with self.opener.open(self.base + path, timeout=30) as resp:
            return str(resp.read().decode())

    def form(self, path: str, fields: dict[str, str]) -> tuple[int, str]:
        data = urllib.parse.urlencode(fields).encode()
        try:
            with self.opener.open(self.base + path, data=data, timeout=30) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()


@dataclass
class Site:
    """A running server with an owner of the organisation `acme`, and a logged-in command line."""

    server: Server
    data: Path
    home: Path
    login: tuple[int, str, str]
    signed_in: Browser | None = None

    @property
    def url(self) -> str:
        return self.server.url

    def owner(self) -> Browser:
        """The owner's browser, signed in once per site: the server limits sign-ins per
        address (10 a minute), and the tests sharing this site would pass that."""
        if self.signed_in is None:
            self.signed_in = Browser(self.url).sign_in("ops@acme.example")
        return self.signed_in

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return cli(self.home, *args, **env)

    def make_monitor(self, name: str) -> dict[str, Any]:
        status, m = self.owner().call("POST", "/api/v1/monitors", {"name": name, "period": "1h"})
        assert status == 201, m
        return dict(m)


def local(data: Path, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    result = cli(data.parent / "admin-home", *args, "--data-dir", str(data), input=input)
    assert result.returncode == 0, result.stderr
    return result


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("remote")
    data = root / "data"
    local(data, "user", "create", "--email", "ops@acme.example", "--org", "Acme",
          "--password-stdin", input=PASSWORD + "\n")  # fmt: skip
    server = Server(data)
    try:
        server.wait_ready()
        home = root / "home"
        login = Login(home, "--server", server.url + "/")
        code = login.code()
        Browser(server.url).sign_in("ops@acme.example").approve(code)
        yield Site(server, data, home, login.finish())
    finally:
        server.close()


def test_login_stores_a_read_write_key_readable_only_by_its_owner(site: Site) -> None:
    status, shown, err = site.login
    assert status == 0, err
    assert f"open {site.url}/device and enter the code" in shown
    assert "expires in 15 minutes" in shown
    assert f"Logged in to {site.url} for organisation Acme (acme)" in shown
    path = site.home / ".config" / "tokiflow" / "credentials"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    stored = json.loads(path.read_text())
    assert stored["server"] == site.url and stored["api_key"].startswith("tfk_rw_")
    status, keys = site.owner().call("GET", "/api/v1/keys")
    names = {k["name"]: k for k in keys["keys"]}
    made = names[f"CLI login on {socket.gethostname()[:60]}"]
    assert made["kind"] == "read-write" and made["prefix"] == stored["api_key"][:12]
    assert made["created_by"] == "ops@acme.example (tokiflow login)"


def test_monitors_create_list_and_get_work_on_the_server_of_the_stored_login(site: Site) -> None:
    m = cli_json(site.home, "monitors", "create", "--name", "Remote Backup", "--period", "1h",
                 "--grace", "5m", "--tags", "db nightly")  # fmt: skip
    assert (m["name"], m["slug"], m["status"], m["grace"], m["tags"]) == (
        "Remote Backup", "remote-backup", "new", 300, ["db", "nightly"],
    )  # fmt: skip
    assert m["ping_url"] == f"{site.url}/ping/{m['uuid']}" and m["org"] == "acme"
    # It was made on the server, not in a data folder here.
    assert not (site.home / "tokiflow-data").exists()
    status, seen = site.owner().call("GET", f"/api/v1/monitors/{m['uuid']}")
    assert status == 200 and seen["name"] == "Remote Backup"

    text = site.run("monitors", "add", "--name", "Report", "--schedule", "0 9 * * MON-FRI",
                    "--tz", "Europe/Paris")  # fmt: skip
    assert text.returncode == 0 and "created monitor 'Report'" in text.stdout
    assert "ping URL:" in text.stdout and "slug URL:" in text.stdout

    listed = cli_json(site.home, "monitors", "list")
    assert {"Remote Backup", "Report"} <= {x["name"] for x in listed}
    table = site.run("monitors", "list").stdout
    assert table.splitlines()[0].split()[:2] == ["STATUS", "NAME"]
    assert re.search(rf"new\s+Remote Backup\s+never\s+{m['uuid']}\s+every 1h", table)

    assert cli_json(site.home, "monitors", "get", m["uuid"])["uuid"] == m["uuid"]
    by_slug = site.run("monitors", "get", "remote-backup")
    assert by_slug.returncode == 0 and re.search(r"^grace\s+300$", by_slug.stdout, re.M)


def test_monitors_update_changes_only_the_flags_given(site: Site) -> None:
    m = site.make_monitor("Updated Job")
    changed = cli_json(site.home, "monitors", "update", "updated-job", "--grace", "10m",
                       "--tags", "db", "--late-alerts", "--max-runtime", "30m")  # fmt: skip
    assert (changed["grace"], changed["tags"], changed["late_alerts"], changed["max_runtime"]) == (
        600, ["db"], True, 1800,
    )  # fmt: skip
    assert changed["schedule"] == 3600 and changed["name"] == "Updated Job"
    cleared = cli_json(site.home, "monitors", "update", m["uuid"], "--max-runtime", "off")
    assert cleared["max_runtime"] is None and cleared["grace"] == 600
    nothing = site.run("monitors", "update", m["uuid"])
    assert nothing.returncode == 2 and "nothing to change" in nothing.stderr
    bad = site.run("monitors", "update", m["uuid"], "--schedule", "61 * * * *")
    assert_one_clear_line(bad, "schedule")
    assert bad.returncode == 1


def test_monitors_pause_resume_and_delete_on_the_server(site: Site) -> None:
    m = site.make_monitor("Short Lived")
    assert cli_json(site.home, "monitors", "pause", m["uuid"])["status"] == "paused"
    resumed = site.run("monitors", "resume", m["uuid"])
    assert resumed.stdout.startswith("resumed monitor 'Short Lived': now new")
    refused = site.run("monitors", "delete", m["uuid"])
    assert refused.returncode == 2 and "--yes" in refused.stderr
    gone = site.run("monitors", "delete", "short-lived", "--yes")
    assert gone.returncode == 0 and "deleted monitor 'Short Lived'" in gone.stdout
    status, _ = site.owner().call("GET", f"/api/v1/monitors/{m['uuid']}")
    assert status == 404
    missing = site.run("monitors", "get", m["uuid"])
    assert_one_clear_line(missing, f"no monitor with uuid {m['uuid']}")
    # The changes are in the audit log as made with the login's key.
    status, log = site.owner().call("GET", "/api/v1/audit")
    mine = [e for e in log["entries"] if e["target_id"] == m["uuid"]]
    assert {e["action"] for e in mine} >= {"monitor.pause", "monitor.resume", "monitor.delete"}
    assert all(e["actor"]["kind"] == "key" for e in mine if e["action"] != "monitor.create")


def test_ping_and_the_incident_commands_use_the_stored_login(site: Site) -> None:
    m = site.make_monitor("Flaky Job")
    pinged = site.run("ping", m["uuid"], "--exit", "3")
    assert (pinged.returncode, pinged.stdout) == (0, "OK\n"), pinged.stderr
    incidents = cli_json(site.home, "incidents", "list")
    mine = [i for i in incidents if i["monitor_uuid"] == m["uuid"]]
    assert [(i["kind"], i["state"]) for i in mine] == [("FAIL", "open")]
    assert "exit status 3" in mine[0]["reason"]
    table = site.run("incidents", "list", "--limit", "5").stdout
    assert re.search(rf"#{mine[0]['id']}\s+FAIL\s+open\s+.*Flaky Job\s+.*exit status 3", table)
    ack = site.run("incidents", "ack", str(mine[0]["id"]))
    assert ack.stdout == f"incident #{mine[0]['id']} is now acknowledged\n"
    again = site.run("incidents", "ack", str(mine[0]["id"]))
    assert_one_clear_line(again, "not open")
    done = cli_json(site.home, "incidents", "resolve", str(mine[0]["id"]))
    assert done["state"] == "resolved" and done["resolved_by"].startswith("API key tfk_rw_")
    assert_one_clear_line(site.run("incidents", "ack", "99999"), "no incident #99999")


def test_another_organisations_monitor_is_not_found(site: Site) -> None:
    local(site.data, "user", "create", "--email", "b@beta.example", "--org", "Beta",
          "--password-stdin", input=PASSWORD + "\n")  # fmt: skip
    beta_key = local(
        site.data, "apikey", "create", "--org", "beta", "--name", "beta"
    ).stdout.strip()
    theirs = cli_json(site.home, "monitors", "create", "--name", "Beta Job", "--period", "1h",
                      "--server", site.url, "--api-key", beta_key)  # fmt: skip
    assert theirs["org"] == "beta"
    for args in (("get",), ("update", "--grace", "5m"), ("delete", "--yes")):
        result = site.run("monitors", args[0], theirs["uuid"], *args[1:])
        assert_one_clear_line(result, f"no monitor with uuid {theirs['uuid']}")
        assert result.returncode == 1
    assert_one_clear_line(
        site.run("monitors", "get", "beta-job"), "no monitor with slug 'beta-job'"
    )
    wrong_org = site.run("monitors", "list", "--org", "beta")
    assert_one_clear_line(wrong_org, "belongs to organisation 'acme', not 'beta'")
    # The key from the environment wins over the stored login's.
    listed = cli_json(site.home, "monitors", "list", TOKIFLOW_API_KEY=beta_key)
    assert [x["uuid"] for x in listed] == [theirs["uuid"]]
    status, _ = site.owner().call("GET", f"/api/v1/monitors/{theirs['uuid']}")
    assert status == 404


def test_a_data_folder_given_explicitly_is_worked_on_locally(site: Site, tmp_path: Path) -> None:
    data = tmp_path / "here"
    made = cli_json(site.home, "monitors", "create", "--name", "Local One", "--period", "1h",
                    "--data-dir", str(data))  # fmt: skip
    assert made["ping_url"].startswith("http://127.0.0.1:8000/")
    listed = cli_json(site.home, "monitors", "list", "--data-dir", str(data))
    assert [x["name"] for x in listed] == ["Local One"]
    assert "Local One" not in {x["name"] for x in cli_json(site.home, "monitors", "list")}
    both = site.run("monitors", "list", "--server", site.url, "--data-dir", str(data))
    assert both.returncode == 2 and "not both" in both.stderr


def test_a_revoked_key_says_to_log_in_again(site: Site, tmp_path: Path) -> None:
    home = tmp_path / "other"
    login = Login(home, "--server", site.url)
    site.owner().approve(login.code())
    assert login.finish()[0] == 0
    key = json.loads((home / ".config/tokiflow/credentials").read_text())["api_key"]
    assert cli(home, "monitors", "list").returncode == 0
    owner = site.owner()
    _, keys = owner.call("GET", "/api/v1/keys")
    [row] = [k for k in keys["keys"] if k["prefix"] == key[:12]]
    assert owner.call("DELETE", f"/api/v1/keys/{row['id']}")[0] == 204
    for args in (("monitors", "list"), ("incidents", "list"), ("monitors", "get", "x")):
        result = cli(home, *args)
        assert_one_clear_line(result, "not logged in or key revoked: run tokiflow login")
        assert result.returncode == 4


def test_a_stopped_server_is_reported_as_unreachable(
    tmp_path: Path, server_factory: type[Server]
) -> None:
    server = server_factory(tmp_path / "data")
    server.wait_ready()
    url = server.url
    assert server.stop()[0] == 0
    home = tmp_path / "home"
    folder = home / ".config" / "tokiflow"
    folder.mkdir(parents=True)
    (folder / "credentials").write_text(json.dumps({"server": url, "api_key": "tfk_rw_x"}))
    for args in (("monitors", "list"), ("incidents", "ack", "1"), ("monitors", "pause", "x")):
        result = cli(home, *args)
        assert_one_clear_line(result, f"cannot reach {url}: Connection refused")
        assert result.returncode == 3
    result = cli(home, "login", "--no-browser")
    assert_one_clear_line(result, f"cannot reach {url}")
    # `tokiflow ping UUID` goes to the stored login's server too.
    pinged = cli(home, "ping", "2f6e5b9a-0c1d-4e8f-9a7b-1c2d3e4f5a6b")
    assert_one_clear_line(pinged, f"could not reach {url}/ping/2f6e5b9a")


def test_a_sign_in_denied_on_the_device_page_stores_nothing(site: Site, tmp_path: Path) -> None:
    home = tmp_path / "denied"
    login = Login(home, "--server", site.url)
    code = login.code()
    owner = site.owner()
    page = owner.page(f"/device?code={code}")
    token = TOKEN.search(page)
    assert token and f'value="{code}"' in page
    status, html = owner.form("/device", {"csrf_token": token.group(1), "user_code": code,
                                          "org": "acme", "decision": "deny"})  # fmt: skip
    assert status == 200 and "Sign-in denied" in html
    rc, _, err = login.finish()
    assert rc == 1 and "the sign-in was denied in the browser" in err
    assert not (home / ".config" / "tokiflow" / "credentials").exists()


def test_login_follows_xdg_config_home_and_logout_removes_the_file(
    site: Site, tmp_path: Path
) -> None:
    home, xdg = tmp_path / "h", tmp_path / "xdg"
    login = Login(home, "--server", site.url, XDG_CONFIG_HOME=str(xdg))
    owner = site.owner()
    page = owner.page("/device")
    token = TOKEN.search(page)
    assert token
    status, html = owner.form("/device", {"csrf_token": token.group(1), "decision": "approve",
                                          "user_code": login.code(), "org": "acme"})  # fmt: skip
    assert status == 200 and "Sign-in approved" in html
    assert login.finish()[0] == 0
    path = xdg / "tokiflow" / "credentials"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not (home / ".config").exists()
    assert cli(home, "monitors", "list", XDG_CONFIG_HOME=str(xdg)).returncode == 0
    key = json.loads(path.read_text())["api_key"]
    out = cli(home, "logout", XDG_CONFIG_HOME=str(xdg))
    assert out.returncode == 0 and f"logged out of {site.url}: removed {path}" in out.stdout
    assert "The API key is revoked on the server." in out.stdout
    assert not path.exists()
    # The key itself no longer works anywhere.
    request = urllib.request.Request(site.url + "/api/v1/monitors", headers={"X-Api-Key": key})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    refused.value.close()
    assert refused.value.code == 401
    again = cli(home, "logout", XDG_CONFIG_HOME=str(xdg))
    assert (again.returncode, again.stdout) == (0, "not logged in\n")
    # Logged out, the commands are back on the local data folder.
    result = cli(home, "monitors", "list", XDG_CONFIG_HOME=str(xdg))
    assert_one_clear_line(result, "no database in")


def test_login_and_remote_commands_explain_missing_pieces(tmp_path: Path) -> None:
    home = tmp_path / "nobody"
    result = cli(home, "login", "--no-browser")
    assert_one_clear_line(result, "give the server's address")
    assert result.returncode == 2
    result = cli(home, "monitors", "list", TOKIFLOW_API_KEY="tfk_rw_x")
    assert_one_clear_line(result, "an API key needs a server")
    result = cli(home, "monitors", "list", "--server", "ftp://example.com")
    assert_one_clear_line(result, "is not a server URL")


async def test_a_login_code_that_expires_ends_the_command(
    tmp_path: Path,
    make_app: MakeApp,
    clock: FakeClock,
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]],
) -> None:
    # The server runs here on the fake clock; the command line is a real process polling it.
    server = await aiohttp_server(make_app())
    url = str(server.make_url("")).rstrip("/")
    home = tmp_path / "home"
    home.mkdir()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tokiflow", "login", "--no-browser", "--server", url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=cli_env(home),
        cwd=home,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    shown = ""
    while not CODE.search(shown):
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert line, shown
        shown += line.decode()
    # Whether its poll is held by the server yet or arrives later, the code has run out.
    await clock.advance(15 * 60)
    await asyncio.wait_for(proc.wait(), 30)
    err = (await proc.stderr.read()).decode()
    assert proc.returncode == 1, err
    assert "the code expired before it was approved: run tokiflow login again" in err
    assert not (home / ".config" / "tokiflow" / "credentials").exists()


async def test_an_approved_login_on_the_fake_clock_finishes_without_waiting_an_interval(
    tmp_path: Path,
    make_app: MakeApp,
    clock: FakeClock,
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]],
) -> None:
    app = make_app()
    server = await aiohttp_server(app)
    url = str(server.make_url("")).rstrip("/")
    now, phc = clock.now(), auth.hash_password(PASSWORD)

    def owner(conn: Any) -> None:
        org = orgs.create(conn, "acme", "Acme", now)
        user = accounts.create_user(conn, email="ops@acme.example", name="", password_hash=phc,
                                    now=now)  # fmt: skip
        accounts.add_member(conn, user.id, org.id, "owner", now)

    await app[appkeys.DB].write(owner)
    home = tmp_path / "home"
    home.mkdir()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tokiflow", "login", "--no-browser", "--server", url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=cli_env(home),
        cwd=home,
    )  # fmt: skip
    assert proc.stdout is not None
    shown = ""
    while not (found := CODE.search(shown)):
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert line, shown
        shown += line.decode()
    browser = Browser(url)
    await asyncio.to_thread(browser.sign_in, "ops@acme.example")
    await asyncio.to_thread(browser.approve, found.group(0))
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err
    assert "Logged in to" in out.decode()
    assert stat.S_IMODE((home / ".config/tokiflow/credentials").stat().st_mode) == 0o600


def test_docs_describe_every_flag_of_the_login_monitor_and_incident_commands() -> None:
    import argparse

    from tokiflow.cli import build_parser

    text = (Path(__file__).resolve().parent.parent / "docs" / "cli.md").read_text()
    parser = build_parser()
    top = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = []
    for name in ("login", "logout", "monitors", "incidents"):
        command = top.choices[name]
        subs = [a for a in command._actions if isinstance(a, argparse._SubParsersAction)]
        mine = ("create", "list", "get", "update", "delete", "pause", "resume", "ack", "resolve")
        parsers = [p for n, p in subs[0].choices.items() if n in mine] if subs else [command]
        for p in parsers:
            for action in p._actions:
                for flag in action.option_strings:
                    if flag.startswith("--") and flag != "--help" and f"`{flag}" not in text:
                        missing.append(f"{p.prog} {flag}")
    assert sorted(set(missing)) == []


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        "[]",
        '"a string"',
        '{"server": "http://127.0.0.1:9"}',
        '{"server": "http://127.0.0.1:9", "api_key": null}',
        '{"server": "http://127.0.0.1:9", "api_key": ""}',
        '{"server": "ftp://x", "api_key": "tfk_rw_x"}',
    ],
)
def test_a_broken_credentials_file_is_one_clear_line_and_logout_removes_it(
    tmp_path: Path, content: str
) -> None:
    home = tmp_path / "home"
    path = home / ".config" / "tokiflow" / "credentials"
    path.parent.mkdir(parents=True)
    path.write_text(content)
    result = cli(home, "monitors", "list")
    assert_one_clear_line(result, f"{path} is not a Tokiflow login: run 'tokiflow logout'")
    out = cli(home, "logout")
    assert out.returncode == 0 and f"removed {path}" in out.stdout
    assert not path.exists()


@pytest.mark.parametrize(
    ("start", "token", "said"),
    [
        ({}, {}, "did not answer as a Tokiflow server does"),
        ([1, 2], {}, "did not answer as a Tokiflow server does"),
        ({"device_code": "d", "user_code": "ABCD-EFGH", "verification_uri": "http://x/device",
          "verification_uri_complete": "http://x/device?code=ABCD-EFGH", "interval": 1},
         {"key_name": "cli"}, "approved the sign-in but sent no API key"),
    ],
)  # fmt: skip
async def test_login_against_a_server_that_answers_in_another_shape_is_one_clear_line(
    tmp_path: Path,
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]],
    start: Any,
    token: Any,
    said: str,
) -> None:
    async def started(request: web.Request) -> web.Response:
        return web.json_response(start)

    async def polled(request: web.Request) -> web.Response:
        return web.json_response(token)

    app = web.Application()
    app.router.add_post("/api/v1/auth/device", started)
    app.router.add_post("/api/v1/auth/device/token", polled)
    server = await aiohttp_server(app)
    url = str(server.make_url("")).rstrip("/")
    home = tmp_path / "home"
    home.mkdir()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tokiflow", "login", "--no-browser", "--server", url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=cli_env(home),
        cwd=home,
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    result = subprocess.CompletedProcess([], proc.returncode or 0, "", err.decode())
    assert proc.returncode == 1
    assert_one_clear_line(result, said)
    assert not (home / ".config" / "tokiflow" / "credentials").exists()
