"""Commands: `tokiflow login` (a device sign-in that stores an API key for this command line)
and `tokiflow logout`. See cli_http for where the login is kept."""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tokiflow.cli import AddCommon, CliError
from tokiflow.cli_http import (
    Client,
    Credentials,
    CredentialsError,
    HttpFailure,
    Unreachable,
    delete_credentials,
    load_credentials,
    save_credentials,
)
from tokiflow.cli_remote import (
    EXIT_REFUSED,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    Remote,
    parse_server,
    stored_login,
)
from tokiflow.clock import Clock, SystemClock

if TYPE_CHECKING:
    from tokiflow.config import Settings

LOGIN_WAIT = 20  # seconds each login poll asks the server to hold on for a decision


def _login_server(args: argparse.Namespace, env: Mapping[str, str]) -> str:
    if args.server:
        return parse_server(args.server)
    if env.get("TOKIFLOW_SERVER"):
        return parse_server(env["TOKIFLOW_SERVER"], "TOKIFLOW_SERVER")
    stored = stored_login(env)
    if stored is not None:
        return stored.server
    raise CliError("give the server's address, e.g. tokiflow login --server "
                   "https://tokiflow.example.com", EXIT_USAGE)  # fmt: skip


async def wait_for_key(
    client: Client, started: dict[str, Any], client_name: str, clock: Clock
) -> dict[str, Any]:
    """Poll until the sign-in is approved (the reply with the key), denied or expired.

    Each poll asks the server to hold on for a decision (`wait`), so an approval is seen at
    once; the interval (longer after `slow_down`) is kept between polls that were not held.
    """
    interval = int(started.get("interval") or 5)
    body = {"device_code": started["device_code"], "client_name": client_name,
            "wait": LOGIN_WAIT}  # fmt: skip
    failures = 0
    while True:
        began = clock.monotonic()
        try:
            reply: dict[str, Any] = await asyncio.to_thread(
                client.call, "POST", "/auth/device/token", body, timeout=LOGIN_WAIT + 30
            )
            return reply
        except Unreachable as exc:
            failures += 1
            if failures >= 3:
                raise CliError(f"cannot reach {client.server}: {exc}", EXIT_UNREACHABLE) from None
            await clock.sleep(interval)
        except HttpFailure as exc:
            failures = 0
            code = exc.detail.get("code")
            if code == "authorization_pending":
                held = exc.detail.get("waited") and clock.monotonic() - began >= 1
                if not held:
                    await clock.sleep(interval)
            elif code == "slow_down":
                interval = int(exc.detail.get("interval") or interval + 5)
                await clock.sleep(interval)
            elif code in ("expired_token", "access_denied", "invalid_grant"):
                raise CliError(exc.message, EXIT_REFUSED) from None
            else:
                raise Remote(client).error(exc) from None


def _open_browser(url: str) -> None:
    try:
        import webbrowser

        webbrowser.open(url)
    except Exception:  # no browser is fine: the URL is printed
        pass


def cmd_login(
    settings: Settings | None,
    args: argparse.Namespace,
    env: Mapping[str, str] | None = None,
    clock: Clock | None = None,
) -> int:
    env = os.environ if env is None else env
    server = _login_server(args, env)
    client = Client(server)
    host = socket.gethostname()
    try:
        started = client.call("POST", "/auth/device", {"client_name": host})
    except Unreachable as exc:
        raise CliError(f"cannot reach {server}: {exc}", EXIT_UNREACHABLE) from None
    except HttpFailure as exc:
        if exc.status == 404:
            raise CliError(f"{server} does not offer command-line sign-in (is it a Tokiflow "
                           "server, and a recent one?)", EXIT_REFUSED) from None  # fmt: skip
        raise Remote(client).error(exc) from None
    if not isinstance(started, dict) or not all(
        isinstance(started.get(k), str)
        for k in ("device_code", "user_code", "verification_uri", "verification_uri_complete")
    ):
        raise CliError(f"{server} did not answer as a Tokiflow server does", EXIT_REFUSED)
    minutes = max(1, int(started.get("expires_in", 900)) // 60)
    print(f"To sign in, open {started['verification_uri']} and enter the code\n\n"
          f"    {started['user_code']}\n\n"
          f"(it expires in {minutes} minutes). Waiting for approval...", flush=True)  # fmt: skip
    if not args.no_browser and sys.stdout.isatty():
        _open_browser(started["verification_uri_complete"])
    reply = asyncio.run(wait_for_key(client, started, host, clock or SystemClock()))
    if not isinstance(reply, dict) or not isinstance(reply.get("api_key"), str):
        raise CliError(f"{server} approved the sign-in but sent no API key", EXIT_REFUSED)
    try:
        path = save_credentials(env, Credentials(server, reply["api_key"]))
    except CredentialsError as exc:
        raise CliError(str(exc)) from None
    org = reply.get("org") or {}
    print(f"Logged in to {server} for organisation {org.get('name')} ({org.get('slug')}) with "
          f"the API key '{reply.get('key_name')}' ({reply.get('key_prefix')}…).\n"
          f"Saved in {path} (readable only by you).")  # fmt: skip
    return 0


def cmd_logout(
    settings: Settings | None, args: argparse.Namespace, env: Mapping[str, str] | None = None
) -> int:
    env = os.environ if env is None else env
    try:
        stored = load_credentials(env)
    except CredentialsError:
        stored = None  # a broken file is removed all the same
    try:
        path = delete_credentials(env)
    except CredentialsError as exc:
        raise CliError(str(exc)) from None
    if path is None:
        print("not logged in")
        return 0
    where = f" of {stored.server}" if stored else ""
    print(f"logged out{where}: removed {path}. {_revoked(stored)}")
    return 0


def _revoked(stored: Credentials | None) -> str:
    """Revoke the stored key on its server; what happened, in words."""
    if stored is None:
        return "The API key in it could not be read: revoke it in Settings > API keys."
    try:
        Client(stored.server, stored.api_key, timeout=10).call("DELETE", "/keys/current")
    except Unreachable as exc:
        return (f"The server cannot be reached ({exc}): the API key works until it is revoked "
                "in Settings > API keys.")  # fmt: skip
    except HttpFailure as exc:
        if exc.status == 401:
            return "The API key was already revoked."
        return (f"The server did not revoke the API key ({exc.message}): revoke it in "
                "Settings > API keys.")  # fmt: skip
    return "The API key is revoked on the server."


def define_login(login: argparse.ArgumentParser, add_common: AddCommon) -> None:
    login.description = (
        "Starts a device sign-in: shows a short code and a URL; approve the code in the browser "
        "as a user who may create API keys, and a new read-write key is stored in "
        "~/.config/tokiflow/credentials (mode 0600). See docs/cli.md."
    )
    login.add_argument("--server", metavar="URL",
                       help="the server's base URL (default: TOKIFLOW_SERVER, else the server of "
                       "the stored login)")  # fmt: skip
    login.add_argument("--no-browser", dest="no_browser", action="store_true",
                       help="only print the URL; do not try to open a browser")  # fmt: skip
    login.set_defaults(handler=cmd_login, no_settings=True)


def define_logout(logout: argparse.ArgumentParser, add_common: AddCommon) -> None:
    logout.set_defaults(handler=cmd_logout, no_settings=True)
