"""Commands: `tokiflow run` (the job wrapper) and `tokiflow ping`."""

from __future__ import annotations

import argparse
import os
import sys
import uuid as uuidlib
from collections.abc import Callable, Mapping
from typing import Any

from tokiflow import wrapper
from tokiflow.cli import CliError
from tokiflow.config import Settings
from tokiflow.engine.schedules import ScheduleError, parse_duration
from tokiflow.redaction import redact_bytes

ENV_HELP = "[env {}]"


def _duration(text: str, flag: str, *, zero_ok: bool = False) -> float:
    if zero_ok and text.strip() in ("0", "0s"):
        return 0.0
    try:
        return float(parse_duration(text))
    except ScheduleError as exc:
        raise CliError(f"{flag}: {exc}", code=2) from None


def _first(*values: str | None) -> str | None:
    return next((v for v in values if v), None)


def target_from(args: argparse.Namespace, env: Mapping[str, str]) -> wrapper.Target:
    """The monitor to ping, from flags first, then TOKIFLOW_* environment variables."""
    url, uuid, slug = args.url, args.uuid, args.slug
    if not (url or uuid or slug):
        url = env.get("TOKIFLOW_URL") or None
        uuid = None if url else env.get("TOKIFLOW_UUID") or None
        slug = None if url or uuid else env.get("TOKIFLOW_SLUG") or None
    try:
        return wrapper.make_target(
            url=url,
            uuid=uuid,
            slug=slug,
            ping_key=_first(args.ping_key, env.get("TOKIFLOW_PING_KEY")),
            server=_first(args.server, env.get("TOKIFLOW_SERVER")),
            create=args.create,
        )
    except wrapper.WrapperError as exc:
        raise CliError(str(exc), code=2) from None


def cmd_run(
    settings: Settings | None, args: argparse.Namespace, env: Mapping[str, str] | None = None
) -> int:
    env = os.environ if env is None else env
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise CliError("give the command to run after --, e.g. tokiflow run --url URL -- cmd", 2)
    try:
        limit = wrapper.parse_size(args.capture_limit)
    except wrapper.WrapperError as exc:
        raise CliError(f"--capture-limit: {exc}", code=2) from None
    opts = wrapper.RunOptions(
        target=target_from(args, env),
        command=command,
        timeout=_duration(args.timeout, "--timeout") if args.timeout else None,
        capture_limit=limit,
        capture=not args.no_output and limit > 0,
        retry_for=_duration(args.retry_for, "--retry-for", zero_ok=True),
    )
    return wrapper.run(opts)


def _ping_url(args: argparse.Namespace, env: Mapping[str, str]) -> str:
    what = args.target
    server = _first(args.server, env.get("TOKIFLOW_SERVER"))
    try:
        if what.startswith(("http://", "https://")):
            target = wrapper.make_target(url=what)
        elif "/" in what:
            key, _, slug = what.partition("/")
            target = wrapper.make_target(slug=slug, ping_key=key, server=server)
        else:
            try:
                uuidlib.UUID(what)
            except ValueError:
                raise CliError(
                    f"'{what}' is not a ping URL, a uuid or PING_KEY/SLUG", code=2
                ) from None
            target = wrapper.make_target(uuid=what, server=server)
    except wrapper.WrapperError as exc:
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
        reply = wrapper.ping_once(url, body)
    except Exception as exc:  # any way of not reaching the server is one line, not a traceback
        raise CliError(
            f"could not reach {wrapper.shown_url(url)}: {wrapper.describe_error(exc)}"
        ) from None
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


def add_commands(sub: Any, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    """Register these commands on the `tokiflow` parser."""
    run = sub.add_parser(
        "run",
        help="run a command and report its start, exit status and output to a monitor",
        description="Pings the monitor's /start, runs COMMAND with its output passed through, "
        "then pings /<exit status> with the tail of the output (secrets redacted). Exits "
        "with the command's exit status. See docs/run.md.",
        usage="tokiflow run [--url URL | --uuid UUID --server URL | --slug SLUG --ping-key KEY "
        "--server URL] [options] -- COMMAND [ARGS...]",
    )
    who = run.add_mutually_exclusive_group()
    who.add_argument("--url", help="the monitor's ping URL [env TOKIFLOW_URL]")
    who.add_argument("--uuid", help="the monitor's uuid (with --server) [env TOKIFLOW_UUID]")
    who.add_argument(
        "--slug", help="the monitor's slug (with --ping-key and --server) [env TOKIFLOW_SLUG]"
    )
    run.add_argument(
        "--server", metavar="URL", help="Tokiflow's base URL, e.g. http://host:8000 "
        "[env TOKIFLOW_SERVER]"
    )  # fmt: skip
    run.add_argument(
        "--ping-key", dest="ping_key", metavar="KEY",
        help="the organisation's ping key, for --slug [env TOKIFLOW_PING_KEY]",
    )  # fmt: skip
    run.add_argument(
        "--create", action="store_true", help="create the monitor if the slug is new (?create=1)"
    )
    run.add_argument(
        "--timeout", metavar="DURATION",
        help="stop the command after DURATION (e.g. 30m, 1h): SIGTERM, then SIGKILL 5 s later; "
        "reported as a failure and the exit status is 124",
    )  # fmt: skip
    run.add_argument(
        "--capture-limit", dest="capture_limit", default="32k", metavar="SIZE",
        help="send at most the last SIZE bytes of output (default 32k)",
    )  # fmt: skip
    run.add_argument(
        "--no-output", dest="no_output", action="store_true",
        help="send no output with the finish ping (it is still shown)",
    )  # fmt: skip
    run.add_argument(
        "--retry-for", dest="retry_for", default="60s", metavar="DURATION",
        help="keep retrying an unreachable server this long per ping (default 60s)",
    )  # fmt: skip
    run.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command and its args")
    run.set_defaults(handler=cmd_run, no_settings=True)

    ping = sub.add_parser(
        "ping",
        help="send one ping and print the server's reply",
        description="Sends one ping (POST) and prints the reply; exit status 0 on 2xx.",
    )
    ping.add_argument("target", metavar="UUID_OR_URL", help="a ping URL, a uuid, or PING_KEY/SLUG")
    kind = ping.add_mutually_exclusive_group()
    kind.add_argument("--fail", action="store_true", help="report a failure (/fail)")
    kind.add_argument("--start", action="store_true", help="report a start (/start)")
    kind.add_argument("--log", action="store_true", help="send a message only (/log)")
    kind.add_argument("--exit", type=_exit_status, metavar="N", help="report exit status N (/N)")
    ping.add_argument(
        "--server", metavar="URL", help="Tokiflow's base URL, for a uuid or PING_KEY/SLUG "
        "[env TOKIFLOW_SERVER]"
    )  # fmt: skip
    ping.add_argument("--rid", metavar="RID", help="run id (a uuid) pairing a start and its end")
    ping.add_argument(
        "--body", metavar="TEXT", help="text sent with the ping ('-' reads it from stdin)"
    )
    ping.set_defaults(handler=cmd_ping, no_settings=True)
