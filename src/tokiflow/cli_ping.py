"""Command: `tokiflow ping`, one ping to a monitor.

Standard library only, and no asyncio (see ping_client): jobs run it on every cron run.
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid as uuidlib
from collections.abc import Mapping
from typing import TYPE_CHECKING

from tokiflow.cli import AddCommon, CliError
from tokiflow.cli_http import stored_server
from tokiflow.ping_client import TargetError, describe_error, make_target, ping_once, shown_url
from tokiflow.redaction import redact_bytes

if TYPE_CHECKING:
    from tokiflow.config import Settings


def _first(*values: str | None) -> str | None:
    return next((v for v in values if v), None)


def _ping_url(args: argparse.Namespace, env: Mapping[str, str]) -> str:
    what = args.target
    # Without --server or TOKIFLOW_SERVER, the server of a stored `tokiflow login`.
    server = _first(args.server, env.get("TOKIFLOW_SERVER")) or stored_server(env)
    try:
        if what.startswith(("http://", "https://")):
            target = make_target(url=what)
        elif "/" in what:
            key, _, slug = what.partition("/")
            if not key or not slug:
                raise CliError(f"'{what}' is not PING_KEY/SLUG (both parts are needed)", code=2)
            target = make_target(slug=slug, ping_key=key, server=server)
        else:
            try:
                uuidlib.UUID(what)
            except ValueError:
                raise CliError(
                    f"'{what}' is not a ping URL, a uuid or PING_KEY/SLUG", code=2
                ) from None
            target = make_target(uuid=what, server=server)
    except TargetError as exc:
        raise CliError(str(exc), code=2) from None
    if args.fail:
        action = "fail"
    elif args.start:
        action = "start"
    elif args.log:
        action = "log"
    elif args.exit is not None:
        action = str(args.exit)
    else:
        action = ""
    rid = None
    if args.rid is not None:
        try:
            rid = str(uuidlib.UUID(args.rid))
        except ValueError:
            raise CliError(f"--rid '{args.rid}' is not a uuid", code=2) from None
    return target.for_action(action, rid)


def cmd_ping(
    settings: Settings | None, args: argparse.Namespace, env: Mapping[str, str] | None = None
) -> int:
    env = os.environ if env is None else env
    url = _ping_url(args, env)
    if args.body is None:
        body = b""
    elif args.body == "-":
        body = sys.stdin.buffer.read()
    else:
        body = args.body.encode()
    body, _ = redact_bytes(body)
    try:
        reply = ping_once(url, body)
    except Exception as exc:  # any way of not reaching the server is one line, not a traceback
        raise CliError(f"could not reach {shown_url(url)}: {describe_error(exc)}") from None
    print(reply.text)
    if not reply.ok:
        raise CliError(f"the server answered {reply.status} {reply.text}")
    return 0


def _exit_status(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number from 0 to 255") from None
    if not 0 <= value <= 255:
        raise argparse.ArgumentTypeError(f"{value} is not a number from 0 to 255")
    return value


def define_ping(ping: argparse.ArgumentParser, add_common: AddCommon) -> None:
    ping.description = "Sends one ping (POST) and prints the reply; exit status 0 on 2xx."
    ping.add_argument("target", metavar="UUID_OR_URL", help="a ping URL, a uuid, or PING_KEY/SLUG")
    kind = ping.add_mutually_exclusive_group()
    kind.add_argument("--fail", action="store_true", help="report a failure (/fail)")
    kind.add_argument("--start", action="store_true", help="report a start (/start)")
    kind.add_argument("--log", action="store_true", help="send a message only (/log)")
    kind.add_argument("--exit", type=_exit_status, metavar="N", help="report exit status N (/N)")
    ping.add_argument(
        "--server", metavar="URL", help="Tokiflow's base URL, for a uuid or PING_KEY/SLUG "
        "[env TOKIFLOW_SERVER; default: the server of 'tokiflow login']"
    )  # fmt: skip
    ping.add_argument("--rid", metavar="RID", help="run id (a uuid) pairing a start and its end")
    ping.add_argument(
        "--body", metavar="TEXT", help="text sent with the ping ('-' reads it from stdin)"
    )
    ping.set_defaults(handler=cmd_ping, no_settings=True)
