"""The command line: `tokiflow serve`, `config`, `migrate`, `version` and the local admin commands."""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import signal
import socket
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from aiohttp import web

from tokiflow import __version__
from tokiflow.config import (
    SETTINGS_BY_NAME,
    ConfigError,
    Settings,
    effective_settings,
    load_settings,
)
from tokiflow.logs import AccessLogger, configure_logging
from tokiflow.storage.db import StorageError, prepare_data_dir
from tokiflow.storage.migrations import migrate, status

log = logging.getLogger(__name__)


class CliError(Exception):
    """A problem to report as one line on stderr, with a non-zero exit."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error message that points at --help."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="TOML config file (see docs/configuration.md)")
    p.add_argument("--data-dir", dest="data_dir", metavar="DIR", help=_help("data_dir"))


def _help(name: str) -> str:
    s = SETTINGS_BY_NAME[name]
    return f"{s.help} [env {s.env}, default {s.default or 'none'}]"


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="tokiflow",
        description="Tokiflow: a self-hosted cron-job and heartbeat monitor in one process.",
    )
    parser.add_argument("--version", action="version", version=f"tokiflow {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    serve = sub.add_parser("serve", help="run the server (HTTP, scheduler, alerts)")
    _add_common(serve)
    serve.add_argument("--host", help=_help("host"))
    serve.add_argument("--port", help=_help("port"))
    serve.add_argument("--base-url", dest="base_url", metavar="URL", help=_help("base_url"))
    serve.add_argument("--log-level", dest="log_level", help=_help("log_level"))
    serve.add_argument("--log-format", dest="log_format", help=_help("log_format"))

    config = sub.add_parser("config", help="print the effective settings and where each comes from")
    _add_common(config)

    mig = sub.add_parser("migrate", help="apply pending database migrations (or list them)")
    _add_common(mig)
    mig.add_argument("--list", action="store_true", help="only list applied and pending migrations")

    sub.add_parser("version", help="print the version")

    for module in _command_modules():
        module.add_commands(sub, _add_common)
    return parser


def _command_modules() -> list[Any]:
    # An explicit list (no plugin discovery): the frozen binary must see every import.
    from tokiflow import (
        cli_admin,
        cli_analytics,
        cli_backup,
        cli_channels,
        cli_crontab,
        cli_import,
        cli_license,
        cli_run,
    )

    return [
        cli_admin,
        cli_import,
        cli_channels,
        cli_run,
        cli_crontab,
        cli_analytics,
        cli_license,
        cli_backup,
    ]


def settings_from(args: argparse.Namespace) -> Settings:
    flags: dict[str, Any] = {
        name: getattr(args, name) for name in SETTINGS_BY_NAME if hasattr(args, name)
    }
    return load_settings(flags, config_file=getattr(args, "config", None))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        if args.command == "version":
            print(__version__)
            return 0
        if getattr(args, "no_settings", False):
            # The job wrapper must run the job whatever the server settings say.
            return int(args.handler(None, args))
        settings = settings_from(args)
        configure_logging(settings.log_level, settings.log_format)
        if args.command == "serve":
            return serve(settings)
        if args.command == "config":
            return cmd_config(settings)
        if args.command == "migrate":
            return cmd_migrate(settings, list_only=args.list)
        handler = getattr(args, "handler", None)
        if handler is None:
            parser.error(f"unknown command {args.command}")
        return int(handler(settings, args))
    except (CliError, ConfigError, StorageError) as exc:
        print(f"tokiflow: error: {exc}", file=sys.stderr)
        return getattr(exc, "code", 1)
    except KeyboardInterrupt:
        return 130


def cmd_config(settings: Settings) -> int:
    rows = effective_settings(settings)
    width = max(len(name) for name, _, _ in rows)
    for name, value, source in rows:
        print(f"{name:<{width}}  {value:<30}  ({source})")
    return 0


def cmd_migrate(settings: Settings, *, list_only: bool) -> int:
    path = settings.db_path
    current = status(path)
    if list_only:
        for name in current.applied:
            print(f"applied  {name}")
        for name in current.pending:
            print(f"pending  {name}")
        for name in current.unknown:
            print(f"unknown  {name}  (from a newer version)")
        return 0
    prepare_data_dir(settings.data_dir)
    done = migrate(path)
    print("applied " + ", ".join(done) if done else "database is up to date")
    return 0


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise CliError(f"port {port} on {host} is already in use") from None
        raise CliError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def serve(settings: Settings) -> int:
    """Run the server until SIGTERM or SIGINT, then drain requests and close cleanly."""
    sock = _bind(settings.host, settings.port)
    try:
        return asyncio.run(_serve(settings, sock))
    finally:
        sock.close()


async def _serve(settings: Settings, sock: socket.socket) -> int:
    from tokiflow.app import create_app

    app = create_app(settings)
    runner = web.AppRunner(
        app,
        access_log_class=AccessLogger,
        access_log=logging.getLogger("tokiflow.access") if settings.access_log else None,
        shutdown_timeout=float(settings.shutdown_timeout),
        handle_signals=False,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await runner.setup()
    except (StorageError, ConfigError) as exc:
        await runner.cleanup()
        raise CliError(str(exc)) from None
    site = web.SockSite(runner, sock, shutdown_timeout=float(settings.shutdown_timeout))
    await site.start()
    bound = sock.getsockname()[1]
    print(
        f"Tokiflow {__version__} listening on http://{settings.host}:{bound} "
        f"(data in {settings.data_dir}); press Ctrl+C to stop",
        flush=True,
    )
    await stop.wait()
    log.info("shutting down")
    await runner.cleanup()
    print("Tokiflow stopped", flush=True)
    return 0
