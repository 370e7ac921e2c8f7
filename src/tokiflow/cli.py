"""The command line: the registry of every `tokiflow` command, its parser, and `main`.

Only the command that runs is loaded. `tokiflow --help` needs each command's name and one-line
help, kept in COMMANDS below; `tokiflow ping ...` imports the module that defines and runs `ping`
and nothing else. So the commands a job runs on every cron run (`ping`, `run`) and the remote
commands (`monitors list --server ...`) start without importing the server, its templates or its
database code; the commands that work on the data folder import those when they run.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn

from tokiflow import __version__

if TYPE_CHECKING:
    from tokiflow.config import Settings

AddCommon = Callable[[argparse.ArgumentParser], None]
Define = Callable[[argparse.ArgumentParser, AddCommon], None]


class Command(NamedTuple):
    """A top-level command: its name and one-line help, and the functions that add its arguments
    and sub-commands to its parser ("module:function" in the tokiflow package), imported only when
    the command is used. A command's functions set the `handler` that runs it."""

    name: str
    help: str
    define: tuple[str, ...] = ()


def _command(name: str, help: str, *define: str) -> Command:
    return Command(name, help, define)


# Every command, in the order of `tokiflow --help`. An explicit list (no plugin discovery); the
# frozen binary carries every module of the package (see tokiflow.spec).
# fmt: off
COMMANDS: tuple[Command, ...] = (
    _command("serve", "run the server (HTTP, scheduler, alerts)", "cli_serve:define_serve"),
    _command("config", "print the effective settings and where each comes from",
             "cli_serve:define_config"),
    _command("migrate", "apply pending database migrations (or list them)",
             "cli_serve:define_migrate"),
    _command("version", "print the version"),
    _command("monitors", "list, show, create, change, pause and delete monitors (data folder or "
             "server)", "cli_monitors:define_monitors"),
    _command("incidents", "list, acknowledge, resolve incidents (data folder or server)",
             "cli_monitors:define_incidents"),
    _command("user", "create users (local data folder)", "cli_admin:define_user"),
    _command("apikey", "create API keys (local data folder)", "cli_admin:define_apikey"),
    _command("orgs", "list organisations and their ping keys",
             "cli_admin:define_orgs", "cli_import:define_orgs_dsn"),
    _command("import", "import monitors from Healthchecks, Cronitor, Uptime Kuma",
             "cli_import:define_import"),
    _command("channels", "alert channels: add, list, test, delete",
             "cli_channels:define_channels"),
    _command("deliveries", "the alert delivery log", "cli_channels:define_deliveries"),
    _command("run", "run a command and report its start, exit status and output to a monitor",
             "cli_run:define_run"),
    _command("ping", "send one ping and print the server's reply", "cli_ping:define_ping"),
    _command("login", "sign this command line in to a server (stores an API key)",
             "cli_login:define_login"),
    _command("logout", "revoke the stored API key and remove the stored login",
             "cli_login:define_logout"),
    _command("crontab", "monitor every job of a crontab (wrap) or undo it",
             "cli_crontab:define_crontab"),
    _command("analytics", "an organisation's health, uptime and reliability",
             "cli_analytics:define_analytics"),
    _command("runs", "job runs and their captured output", "cli_analytics:define_runs"),
    _command("pings", "stored pings and their bodies", "cli_analytics:define_pings"),
    _command("redactions", "an organisation's own redaction patterns for output",
             "cli_analytics:define_redactions"),
    _command("license", "install and show the licence (plan limits)",
             "cli_license:define_license"),
    _command("backup", "online, consistent backup of the data folder (.tar.gz)",
             "cli_backup:define_backup"),
    _command("restore", "restore a backup into an empty data folder", "cli_backup:define_restore"),
    _command("doctor", "check permissions, disk, database, clock and SMTP",
             "cli_backup:define_doctor"),
    _command("healthcheck", "exit 0 if the local server's /healthz is ok",
             "cli_backup:define_healthcheck"),
)
# fmt: on


class CliError(Exception):
    """A problem to report as one line on stderr, with a non-zero exit."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def warn(message: str) -> None:
    """One warning line on stderr (the command goes on)."""
    print(f"tokiflow: warning: {message}", file=sys.stderr)


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error message that points at --help."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="TOML config file (see docs/configuration.md)")
    p.add_argument("--data-dir", dest="data_dir", metavar="DIR", help=setting_help("data_dir"))


def setting_help(name: str) -> str:
    """A flag's help for the setting `name`: its text, environment variable and default."""
    from tokiflow.config import SETTINGS_BY_NAME

    s = SETTINGS_BY_NAME[name]
    return f"{s.help} [env {s.env}, default {s.default or 'none'}]"


def _resolve(ref: str) -> Any:
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(f"tokiflow.{module}"), name)


def build_parser(commands: Collection[str] | None = None) -> argparse.ArgumentParser:
    """The `tokiflow` parser. Every command is listed; only those in `commands` (all of them when
    None) get their arguments, which imports the modules that define them."""
    parser = Parser(
        prog="tokiflow",
        description="Tokiflow: a self-hosted cron-job and heartbeat monitor in one process.",
    )
    parser.add_argument("--version", action="version", version=f"tokiflow {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for command in COMMANDS:
        p = sub.add_parser(command.name, help=command.help)
        if commands is None or command.name in commands:
            for ref in command.define:
                define: Define = _resolve(ref)
                define(p, _add_common)
    return parser


def _named_command(argv: Sequence[str]) -> list[str]:
    # The first word that is not an option: tokiflow's own options (--help, --version) take no
    # values, so it is the command (or a typo, which argparse reports with the full list).
    return [word for word in argv if not word.startswith("-")][:1]


def settings_from(args: argparse.Namespace) -> Settings:
    from tokiflow.config import SETTINGS_BY_NAME, load_settings

    flags: dict[str, Any] = {
        name: getattr(args, name) for name in SETTINGS_BY_NAME if hasattr(args, name)
    }
    return load_settings(flags, config_file=getattr(args, "config", None))


def use_logging(settings: Settings) -> None:
    """Log as the settings say. Commands on a server do without: the logging set-up imports the
    server's HTTP stack (for its access log)."""
    from tokiflow.logs import configure_logging

    configure_logging(settings.log_level, settings.log_format)


def _failed(exc: Exception) -> int:
    print(f"tokiflow: error: {exc}", file=sys.stderr)
    code: int = getattr(exc, "code", 1)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_named_command(argv))
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
        return _with_settings(parser, args)
    except CliError as exc:
        return _failed(exc)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        from tokiflow.storage.db import StorageError  # only commands on the data folder raise it

        if not isinstance(exc, StorageError):
            raise
        return _failed(exc)


def _with_settings(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    # The settings (config file, TOKIFLOW_* variables) are read only by the commands that use
    # them, so that `tokiflow ping` and `tokiflow --help` do not load them.
    from tokiflow.config import ConfigError

    try:
        settings = settings_from(args)
        if not getattr(args, "may_be_remote", False):
            use_logging(settings)  # else the handler does, once it knows it works here
        handler = getattr(args, "handler", None)
        if handler is None:
            parser.error(f"unknown command {args.command}")
        return int(handler(settings, args))
    except ConfigError as exc:
        return _failed(exc)
