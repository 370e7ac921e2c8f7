"""Command: `tokiflow run`, the job wrapper (see wrapper.py)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from tokiflow import wrapper
from tokiflow.cli import AddCommon, CliError
from tokiflow.engine.schedules import ScheduleError, parse_duration
from tokiflow.ping_client import Target, TargetError, make_target

if TYPE_CHECKING:
    from tokiflow.config import Settings


def _duration(text: str, flag: str, *, zero_ok: bool = False) -> float:
    if zero_ok and text.strip() in ("0", "0s"):
        return 0.0
    try:
        return float(parse_duration(text))
    except ScheduleError as exc:
        raise CliError(f"{flag}: {exc}", code=2) from None


def _first(*values: str | None) -> str | None:
    return next((v for v in values if v), None)


def target_from(args: argparse.Namespace, env: Mapping[str, str]) -> Target:
    """The monitor to ping, from flags first, then TOKIFLOW_* environment variables."""
    url, uuid, slug = args.url, args.uuid, args.slug
    if not (url or uuid or slug):
        url = env.get("TOKIFLOW_URL") or None
        uuid = None if url else env.get("TOKIFLOW_UUID") or None
        slug = None if url or uuid else env.get("TOKIFLOW_SLUG") or None
    try:
        return make_target(
            url=url,
            uuid=uuid,
            slug=slug,
            ping_key=_first(args.ping_key, env.get("TOKIFLOW_PING_KEY")),
            server=_first(args.server, env.get("TOKIFLOW_SERVER")),
            create=args.create,
        )
    except TargetError as exc:
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


def define_run(run: argparse.ArgumentParser, add_common: AddCommon) -> None:
    run.description = (
        "Pings the monitor's /start, runs COMMAND with its output passed through, then pings "
        "/<exit status> with the tail of the output (secrets redacted). Exits with the command's "
        "exit status. See docs/run.md."
    )
    run.usage = (
        "tokiflow run [--url URL | --uuid UUID --server URL | --slug SLUG --ping-key KEY "
        "--server URL] [options] -- COMMAND [ARGS...]"
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
