"""Local admin commands that work directly on the data folder, with or without a running server.

They go through the same engine and storage functions as the server, on their own connection
(SQLite's busy timeout serialises them with a running server's writer).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from tokiflow.clock import SystemClock
from tokiflow.config import Settings
from tokiflow.engine import audit, auth, views
from tokiflow.engine import incidents as incident_actions
from tokiflow.engine.monitors import MonitorError, build_spec, create_monitor
from tokiflow.storage import accounts, channels, incidents, monitors, orgs
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
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT" if commit else "ROLLBACK")
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


def cmd_monitors_add(settings: Settings, args: argparse.Namespace) -> int:
    with transaction(settings) as conn:
        org = org_for(conn, args.org)
        try:
            spec = build_spec(
                org_id=org.id, name=args.name, slug=args.slug, period=args.period,
                cron=args.schedule, tz=args.tz, grace=args.grace,
                max_runtime=args.max_runtime, min_runtime=args.min_runtime,
                tags=args.tags or "", renotify_every=args.renotify,
                notify_resolve=not args.no_resolve_alerts, late_incidents=args.late_alerts,
            )  # fmt: skip
            m = create_monitor(conn, spec, SystemClock().now())
            if args.channels is not None:
                _set_channels(conn, m.id, org.id, args.channels)
        except MonitorError as exc:
            raise AdminError(str(exc)) from None
    data = monitor_json(m, org, settings)
    if args.json:
        print(json.dumps(data))
    else:
        print(f"created monitor '{m.name}' ({data['schedule_words']})")
        print(f"  ping URL:  {data['ping_url']}")
        print(f"  slug URL:  {data['slug_url']}")
    return 0


def _set_channels(conn: sqlite3.Connection, monitor_id: int, org_id: int, text: str) -> None:
    try:
        ids = [int(x) for x in text.replace(",", " ").split()]
    except ValueError:
        raise AdminError("--channels takes channel numbers, e.g. --channels 1,3") from None
    known = {c.id for c in channels.list_for_org(conn, org_id)}
    missing = [i for i in ids if i not in known]
    if missing:
        raise AdminError(
            f"no channel #{missing[0]} in this organisation (see 'tokiflow channels list')"
        )
    channels.set_monitor_channels(conn, monitor_id, ids)


def _read(settings: Settings) -> sqlite3.Connection:
    if not settings.db_path.exists():
        raise AdminError(f"no database in {settings.data_dir} (run 'tokiflow serve' first)")
    migrate(settings.db_path)
    return connect(settings.db_path, readonly=True)


def cmd_monitors_list(settings: Settings, args: argparse.Namespace) -> int:
    conn = _read(settings)
    try:
        by_id = {o.id: o for o in orgs.list_all(conn)}
        org_id = _org_readonly(conn, args.org)
        rows = [monitor_json(m, by_id.get(m.org_id), settings)
                for m in monitors.list_for_org(conn, org_id)]  # fmt: skip
    finally:
        conn.close()
    if args.json:
        print(json.dumps(rows))
        return 0
    if not rows:
        print("no monitors yet: add one with 'tokiflow monitors add --name NAME --period 1h'")
        return 0
    print(f"{'STATUS':<8}  {'NAME':<30}  {'LAST PING':<20}  {'UUID':<36}  SCHEDULE")
    for r in rows:
        last = (r["last_ping"] or "never")[:19]
        print(f"{r['status']:<8}  {r['name'][:30]:<30}  {last:<20}  {r['uuid']}  "
              f"{r['schedule_words']}")  # fmt: skip
    return 0


def _org_readonly(conn: sqlite3.Connection, slug: str | None) -> int | None:
    if slug is None:
        return None
    org = orgs.by_slug(conn, slug)
    if org is None:
        raise AdminError(f"no organisation with slug '{slug}' (see 'tokiflow orgs list')")
    return org.id


def cmd_monitors_get(settings: Settings, args: argparse.Namespace) -> int:
    conn = _read(settings)
    try:
        m = monitors.by_uuid(conn, args.uuid.lower())
        if m is None:
            raise AdminError(f"no monitor with uuid {args.uuid}")
        data = monitor_json(m, orgs.get(conn, m.org_id), settings)
    finally:
        conn.close()
    if args.json:
        print(json.dumps(data))
    else:
        width = max(len(k) for k in data)
        for key, value in data.items():
            print(f"{key:<{width}}  {value if value is not None else '-'}")
    return 0


def cmd_incidents_list(settings: Settings, args: argparse.Namespace) -> int:
    conn = _read(settings)
    try:
        org_id = _org_readonly(conn, args.org)
        rows = []
        for inc in incidents.list_recent(conn, org_id=org_id, limit=args.limit):
            m = monitors.get(conn, inc.monitor_id)
            rows.append({
                "id": inc.id, "kind": inc.kind, "state": inc.state,
                "monitor": m.name if m else None, "monitor_uuid": m.uuid if m else None,
                "reason": inc.reason, "opened_at": _iso(inc.opened_at),
                "acknowledged_at": _iso(inc.acknowledged_at), "resolved_at": _iso(inc.resolved_at),
            })  # fmt: skip
    finally:
        conn.close()
    if args.json:
        print(json.dumps(rows))
        return 0
    if not rows:
        print("no incidents")
    for r in rows:
        print(f"#{r['id']:<5} {r['kind']:<8} {r['state']:<12} {r['opened_at'][:19]}  "
              f"{r['monitor']}: {r['reason']}")  # fmt: skip
    return 0


def cmd_incidents_act(settings: Settings, args: argparse.Namespace) -> int:
    now = SystemClock().now()
    with transaction(settings) as conn:
        try:
            if args.action == "ack":
                inc = incident_actions.acknowledge(conn, args.id, now)
            else:
                inc = incident_actions.resolve(conn, args.id, now, "cli")
        except incident_actions.IncidentError as exc:
            raise AdminError(str(exc)) from None
    print(f"incident #{inc.id} is now {inc.state}")
    return 0


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
    with transaction(settings) as conn:
        if args.org:
            org = orgs.by_slug(conn, views_slug(args.org)) or orgs.create(
                conn, views_slug(args.org), args.org, now
            )
        else:
            org = orgs.ensure_default(conn, now)
        if accounts.user_by_email(conn, args.email) is not None:
            raise AdminError(f"a user with email {args.email} already exists")
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


AddCommon = Callable[[argparse.ArgumentParser], None]


def add_commands(sub: Any, add_common: AddCommon) -> None:
    """Register `monitors`, `incidents` and `orgs` on the `tokiflow` parser."""
    mon = sub.add_parser("monitors", help="add, list and inspect monitors (local data folder)")
    msub = mon.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = msub.add_parser("add", help="create a monitor and print its ping URLs")
    add_common(add)
    add.add_argument("--name", required=True, help="monitor name")
    add.add_argument("--slug", help="URL slug (default: from the name)")
    when = add.add_mutually_exclusive_group(required=True)
    when.add_argument("--period", help="expected every PERIOD, e.g. 1h, 15m, 1d")
    when.add_argument(
        "--schedule", metavar="CRON", help="5-field cron expression, e.g. '*/5 * * * *'"
    )
    add.add_argument("--tz", default="UTC", help="time zone of the cron expression (default UTC)")
    add.add_argument("--grace", default="1h", help="how late a ping may be before alerting (1h)")
    add.add_argument("--max-runtime", dest="max_runtime", help="alert when a run takes longer")
    add.add_argument("--min-runtime", dest="min_runtime", help="alert when a run is this fast")
    add.add_argument("--tags", help="space-separated tags")
    add.add_argument("--renotify", metavar="EVERY",
                     help="re-send alerts every EVERY (e.g. 30m) while an incident is open "
                     "and unacknowledged")  # fmt: skip
    add.add_argument("--late-alerts", action="store_true",
                     help="also open an incident (and alert) when a ping is late, in grace")  # fmt: skip
    add.add_argument("--no-resolve-alerts", action="store_true",
                     help="do not alert when the job recovers")  # fmt: skip
    add.add_argument("--channels", metavar="IDS",
                     help="alert only these channels (e.g. 1,3; '' for none); default: every "
                     "default channel of the organisation")  # fmt: skip
    add.add_argument("--org", help="organisation slug (default: the first organisation)")
    add.add_argument("--json", action="store_true", help="print the monitor as one JSON object")
    add.set_defaults(handler=cmd_monitors_add)

    lst = msub.add_parser("list", help="list monitors with their status")
    add_common(lst)
    lst.add_argument("--org", help="only this organisation's monitors")
    lst.add_argument("--json", action="store_true", help="print a JSON array")
    lst.set_defaults(handler=cmd_monitors_list)

    get = msub.add_parser("get", help="show one monitor")
    add_common(get)
    get.add_argument("uuid", help="the monitor's uuid")
    get.add_argument("--json", action="store_true", help="print one JSON object")
    get.set_defaults(handler=cmd_monitors_get)

    inc = sub.add_parser(
        "incidents", help="list, acknowledge, resolve incidents (local data folder)"
    )
    isub = inc.add_subparsers(dest="action", metavar="ACTION", required=True)
    ilist = isub.add_parser("list", help="recent incidents, newest first")
    add_common(ilist)
    ilist.add_argument("--org", help="only this organisation's incidents")
    ilist.add_argument("--limit", type=int, default=100, help="how many (default 100)")
    ilist.add_argument("--json", action="store_true", help="print a JSON array")
    ilist.set_defaults(handler=cmd_incidents_list)

    for action, words in (
        ("ack", "acknowledge an open incident"),
        ("resolve", "resolve an incident"),
    ):
        act = isub.add_parser(action, help=words)
        add_common(act)
        act.add_argument("id", type=int, help="the incident number (see 'incidents list')")
        act.set_defaults(handler=cmd_incidents_act)

    user = sub.add_parser("user", help="create users (local data folder)")
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

    key = sub.add_parser("apikey", help="create API keys (local data folder)")
    ksub = key.add_subparsers(dest="action", metavar="ACTION", required=True)
    kcreate = ksub.add_parser("create", help="create an API key and print it (shown only once)")
    add_common(kcreate)
    kcreate.add_argument("--org", help="organisation slug (default: the first)")
    kcreate.add_argument("--name", required=True, help="what the key is for")
    kcreate.add_argument("--read-only", action="store_true", help="a key that can only read")
    kcreate.set_defaults(handler=cmd_apikey_create)

    org = sub.add_parser("orgs", help="list organisations and their ping keys")
    osub = org.add_subparsers(dest="action", metavar="ACTION", required=True)
    olist = osub.add_parser("list", help="organisations with slug and ping key")
    add_common(olist)
    olist.add_argument("--json", action="store_true", help="print a JSON array")
    olist.set_defaults(handler=cmd_orgs_list)
