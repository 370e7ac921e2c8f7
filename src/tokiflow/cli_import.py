"""`tokiflow import healthchecks|cronitor|uptime-kuma` (monitors from other services, with
`--dry-run`) and `tokiflow orgs dsn` (an organisation's Sentry DSN), on the data folder.

An import is planned first (what would be created, what is skipped and why) and then created in
one transaction with an audit entry per monitor; `--dry-run` prints the plan and changes nothing.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections.abc import Callable
from typing import Any

from tokiflow import licensing
from tokiflow.cli import AddCommon, warn
from tokiflow.cli_admin import org_for, transaction
from tokiflow.clock import SystemClock
from tokiflow.config import Settings
from tokiflow.engine import audit
from tokiflow.engine.monitors import MonitorLimitError
from tokiflow.engine.schedules import describe
from tokiflow.importers import Planner, SourceError, create_all
from tokiflow.importers import cronitor as cronitor_import
from tokiflow.importers import healthchecks as hc_import
from tokiflow.importers import uptime_kuma as kuma_import
from tokiflow.storage.db import StorageError

PlanFn = Callable[[sqlite3.Connection, int, list[dict[str, Any]]], Planner]


class ImportFailed(StorageError):
    """An import or DSN lookup cannot go ahead; reported as one line."""


def _read_file(path: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except OSError as exc:
        raise ImportFailed(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ImportFailed(f"{path} is not a UTF-8 text file") from None


def run_import(
    settings: Settings,
    args: argparse.Namespace,
    load: Callable[[], list[dict[str, Any]]],
    plan: PlanFn,
) -> int:
    """Load the source, plan against the database, create (unless --dry-run), print a summary."""
    try:
        source = load()
    except SourceError as exc:
        raise ImportFailed(str(exc)) from None
    dry = bool(args.dry_run)
    now = SystemClock().now()
    with transaction(settings, commit=not dry) as conn:
        org = org_for(conn, args.org)
        try:
            planner = plan(conn, org.id, source)
        except SourceError as exc:
            raise ImportFailed(str(exc)) from None
        if not dry:
            limits = licensing.limits_in_force(settings.data_dir, now, warn=warn)
            try:
                create_all(conn, planner.plans, now, audit.CLI, limits=limits)
            except MonitorLimitError as exc:
                raise ImportFailed(f"nothing imported: {exc}") from None
    _print_plan(planner, settings, dry)
    return 0


def _print_plan(planner: Planner, settings: Settings, dry: bool) -> None:
    created = [p for p in planner.plans if p.spec is not None]
    skipped = [p for p in planner.plans if p.spec is None]
    verb = "would create" if dry else "created"
    for p in created:
        assert p.spec is not None
        when = describe(p.spec.schedule)
        paused = ", paused" if p.paused else ""
        print(f"{verb:<12}  {p.spec.name}  [{p.spec.slug}]  {when}{paused}")
        print(f"{'':<12}  ping URL {settings.public_url}/ping/{p.spec.uuid or '<new uuid>'}")
        for note in p.notes:
            print(f"{'':<12}  note: {note}")
    for p in skipped:
        print(f"{'skipped':<12}  {p.source}: {p.reason}")
    tail = " (dry run: nothing was changed)" if dry else ""
    print(f"{len(created)} {verb}, {len(skipped)} skipped{tail}")


def cmd_import_healthchecks(settings: Settings, args: argparse.Namespace) -> int:
    key = args.api_key
    if args.api_key_stdin:
        key = sys.stdin.readline().strip()
    if not key:
        raise ImportFailed("give the project's read-write API key (--api-key or --api-key-stdin)")
    return run_import(settings, args, lambda: hc_import.fetch(args.url, key), hc_import.plan)


def cmd_import_cronitor(settings: Settings, args: argparse.Namespace) -> int:
    return run_import(
        settings, args, lambda: cronitor_import.load(_read_file(args.file)), cronitor_import.plan
    )


def cmd_import_kuma(settings: Settings, args: argparse.Namespace) -> int:
    return run_import(
        settings, args, lambda: kuma_import.load(_read_file(args.file)), kuma_import.plan
    )


def cmd_orgs_dsn(settings: Settings, args: argparse.Namespace) -> int:
    from tokiflow.web.ping_sentry import dsn

    with transaction(settings) as conn:
        org = org_for(conn, args.org)
    print(dsn(settings.public_url, org))
    return 0


def _subcommands(parser: argparse.ArgumentParser) -> Any:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return parser.add_subparsers(dest="action", metavar="ACTION", required=True)


def define_import(imp: argparse.ArgumentParser, add_common: AddCommon) -> None:
    isub = imp.add_subparsers(dest="source", metavar="SOURCE", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        add_common(p)
        p.add_argument("--org", help="organisation slug (default: the first organisation)")
        p.add_argument("--dry-run", action="store_true", help="print what would happen only")

    hc = isub.add_parser("healthchecks", help="checks from a Healthchecks API (same uuids)")
    common(hc)
    hc.add_argument(
        "--url", required=True, help="the Healthchecks site, e.g. https://healthchecks.io"
    )
    hc.add_argument("--api-key", help="the project's read-write API key")
    hc.add_argument("--api-key-stdin", action="store_true", help="read the API key from stdin")
    hc.set_defaults(handler=cmd_import_healthchecks)

    cr = isub.add_parser("cronitor", help="monitors from a Cronitor YAML or JSON export")
    common(cr)
    cr.add_argument("file", metavar="FILE", help="cronitor.yaml or the API's JSON ('-': stdin)")
    cr.set_defaults(handler=cmd_import_cronitor)

    kuma = isub.add_parser("uptime-kuma", help="push monitors from an Uptime Kuma JSON backup")
    common(kuma)
    kuma.add_argument("file", metavar="FILE", help="the JSON backup file ('-': stdin)")
    kuma.set_defaults(handler=cmd_import_kuma)


def define_orgs_dsn(org: argparse.ArgumentParser, add_common: AddCommon) -> None:
    """`orgs dsn`, next to the `orgs` commands of cli_admin."""
    dsn = _subcommands(org).add_parser("dsn", help="print the organisation's Sentry DSN")
    add_common(dsn)
    dsn.add_argument("--org", help="organisation slug (default: the first)")
    dsn.set_defaults(handler=cmd_orgs_dsn)
