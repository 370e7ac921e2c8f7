"""Commands: `tokiflow serve` (the server), `config` (the effective settings) and `migrate`."""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import signal
import socket

from aiohttp import web

from tokiflow import __version__
from tokiflow.cli import AddCommon, CliError, setting_help
from tokiflow.config import ConfigError, Settings, effective_settings
from tokiflow.logs import AccessLogger
from tokiflow.storage.db import StorageError, prepare_data_dir
from tokiflow.storage.migrations import migrate, status

log = logging.getLogger(__name__)


def cmd_config(settings: Settings, args: argparse.Namespace) -> int:
    rows = effective_settings(settings)
    width = max(len(name) for name, _, _ in rows)
    for name, value, source in rows:
        print(f"{name:<{width}}  {value:<30}  ({source})")
    return 0


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    path = settings.db_path
    current = status(path)
    if args.list:
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


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
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


# -- the parsers ----------------------------------------------------------------------------------


def define_serve(p: argparse.ArgumentParser, add_common: AddCommon) -> None:
    add_common(p)
    p.add_argument("--host", help=setting_help("host"))
    p.add_argument("--port", help=setting_help("port"))
    p.add_argument("--base-url", dest="base_url", metavar="URL", help=setting_help("base_url"))
    p.add_argument("--log-level", dest="log_level", help=setting_help("log_level"))
    p.add_argument("--log-format", dest="log_format", help=setting_help("log_format"))
    p.set_defaults(handler=cmd_serve)


def define_config(p: argparse.ArgumentParser, add_common: AddCommon) -> None:
    add_common(p)
    p.set_defaults(handler=cmd_config)


def define_migrate(p: argparse.ArgumentParser, add_common: AddCommon) -> None:
    add_common(p)
    p.add_argument("--list", action="store_true", help="only list applied and pending migrations")
    p.set_defaults(handler=cmd_migrate)
