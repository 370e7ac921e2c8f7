"""Local admin commands that work directly on the data folder, with or without a running server.

They go through the same engine and storage functions as the server, on their own connection
(SQLite's busy timeout serialises them with a running server's writer).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tokiflow import licensing
from tokiflow.cli import AddCommon, warn
from tokiflow.clock import SystemClock
from tokiflow.config import Settings
from tokiflow.engine import audit, auth, views
from tokiflow.engine.accounts import AccountError, check_user_limit
from tokiflow.storage import accounts, db, orgs
from tokiflow.storage.db import StorageError, connect, prepare_data_dir
from tokiflow.storage.migrations import migrate
from tokiflow.storage.monitors import Monitor
from tokiflow.storage.orgs import Org


class AdminError(StorageError):
    """A local admin command cannot do what was asked; reported as one line."""


@contextmanager
def transaction(settings: Settings, *, commit: bool = True) -> Iterator[sqlite3.Connection]:
    """A write transaction on the data folder's database (`commit=False`: a dry run)."""
    prepare_data_dir(settings.data_dir)
    migrate(settings.db_path)
    conn = connect(settings.db_path)
    try:
        with db.transaction(conn, commit=commit):
            yield conn
    finally:
        conn.close()


@contextmanager
def reading(settings: Settings) -> Iterator[sqlite3.Connection]:
    """A read-only connection to an existing database (migrated first)."""
    conn = _read(settings)
    try:
        yield conn
    finally:
        conn.close()


def org_for(conn: sqlite3.Connection, slug: str | None) -> Org:
    if slug is None:
        return orgs.ensure_default(conn, SystemClock().now())
    org = orgs.by_slug(conn, slug)
    if org is None:
        raise AdminError(f"no organisation with slug '{slug}' (see 'tokiflow orgs list')")
    return org


def _iso(value: Any) -> Any:
    return views.iso(value) if hasattr(value, "isoformat") else value


def monitor_json(m: Monitor, org: Org | None, settings: Settings) -> dict[str, Any]:
    """The JSON shape of a monitor in CLI output (the same as the API's)."""
    return views.monitor_view(m, org, settings.public_url)


def _read(settings: Settings) -> sqlite3.Connection:
    if not settings.db_path.exists():
        raise AdminError(f"no database in {settings.data_dir} (run 'tokiflow serve' first)")
    migrate(settings.db_path)
    return connect(settings.db_path, readonly=True)


def _org_readonly(conn: sqlite3.Connection, slug: str | None) -> int | None:
    if slug is None:
        return None
    org = orgs.by_slug(conn, slug)
    if org is None:
        raise AdminError(f"no organisation with slug '{slug}' (see 'tokiflow orgs list')")
    return org.id


def cmd_orgs_list(settings: Settings, args: argparse.Namespace) -> int:
    with transaction(settings) as conn:
        orgs.ensure_default(conn, SystemClock().now())
        rows = [{"slug": o.slug, "name": o.name, "ping_key": o.ping_key,
                 "created_at": _iso(o.created_at)} for o in orgs.list_all(conn)]  # fmt: skip
    if args.json:
        print(json.dumps(rows))
    else:
        for r in rows:
            print(f"{r['slug']:<20}  {r['name']:<30}  ping key {r['ping_key']}")
    return 0


def cmd_user_create(settings: Settings, args: argparse.Namespace) -> int:
    import sys

    password = sys.stdin.readline().rstrip("\n") if args.password_stdin else ""
    if not args.password_stdin:
        raise AdminError("give the password on standard input with --password-stdin")
    try:
        password_hash = auth.hash_password(password)
    except auth.PasswordPolicyError as exc:
        raise AdminError(str(exc)) from None
    now = SystemClock().now()
    limits = licensing.limits_in_force(settings.data_dir, now, warn=warn)
    with transaction(settings) as conn:
        if args.org:
            org = orgs.by_slug(conn, views_slug(args.org)) or orgs.create(
                conn, views_slug(args.org), args.org, now
            )
        else:
            org = orgs.ensure_default(conn, now)
        if accounts.user_by_email(conn, args.email) is not None:
            raise AdminError(f"a user with email {args.email} already exists")
        try:
            check_user_limit(conn, limits)
        except AccountError as exc:
            raise AdminError(str(exc)) from None
        user = accounts.create_user(conn, email=args.email.strip(), name=args.name or "",
                                    password_hash=password_hash, now=now)  # fmt: skip
        accounts.add_member(conn, user.id, org.id, args.role, now)
        audit.record(conn, org_id=org.id, actor=audit.CLI, action="user.create", target_kind="user",
                     target_id=user.id, after={"email": user.email, "role": args.role}, now=now)  # fmt: skip
    print(f"created user {user.email} ({args.role} of {org.slug})")
    return 0


def views_slug(name: str) -> str:
    from tokiflow.engine.monitors import slugify

    return slugify(name)


def cmd_apikey_create(settings: Settings, args: argparse.Namespace) -> int:
    now = SystemClock().now()
    with transaction(settings) as conn:
        org = org_for(conn, args.org)
        try:
            new = auth.create_api_key(conn, org_id=org.id, name=args.name, read_only=args.read_only,
                                      now=now, created_by="cli")  # fmt: skip
        except ValueError as exc:
            raise AdminError(str(exc)) from None
        audit.record(conn, org_id=org.id, actor=audit.CLI, action="apikey.create", target_kind="apikey",
                     target_id=new.row.id, after={"name": args.name, "read_only": args.read_only},
                     now=now)  # fmt: skip
    print(new.key)
    return 0


# -- the parsers (`monitors` and `incidents` are in cli_monitors) -----------------------------------


def define_user(user: argparse.ArgumentParser, add_common: AddCommon) -> None:
    usub = user.add_subparsers(dest="action", metavar="ACTION", required=True)
    ucreate = usub.add_parser("create", help="create a user and add them to an organisation")
    add_common(ucreate)
    ucreate.add_argument("--email", required=True, help="the user's email (their sign-in name)")
    ucreate.add_argument("--name", help="display name")
    ucreate.add_argument("--password-stdin", action="store_true",
                         help="read the password from standard input (one line)")  # fmt: skip
    ucreate.add_argument("--org", help="organisation name (created if missing; default: the first)")
    ucreate.add_argument(
        "--role", default="owner", choices=accounts.ROLES, help="role (default owner)"
    )
    ucreate.set_defaults(handler=cmd_user_create)


def define_apikey(key: argparse.ArgumentParser, add_common: AddCommon) -> None:
    ksub = key.add_subparsers(dest="action", metavar="ACTION", required=True)
    kcreate = ksub.add_parser("create", help="create an API key and print it (shown only once)")
    add_common(kcreate)
    kcreate.add_argument("--org", help="organisation slug (default: the first)")
    kcreate.add_argument("--name", required=True, help="what the key is for")
    kcreate.add_argument("--read-only", action="store_true", help="a key that can only read")
    kcreate.set_defaults(handler=cmd_apikey_create)


def define_orgs(org: argparse.ArgumentParser, add_common: AddCommon) -> None:
    """`orgs list` (cli_import adds `orgs dsn`)."""
    osub = org.add_subparsers(dest="action", metavar="ACTION", required=True)
    olist = osub.add_parser("list", help="organisations with slug and ping key")
    add_common(olist)
    olist.add_argument("--json", action="store_true", help="print a JSON array")
    olist.set_defaults(handler=cmd_orgs_list)
