"""Commands: `tokiflow channels add|list|test|delete` and `tokiflow deliveries list`.

They work on the data folder directly (server running or not); a running server's dispatcher
picks up what they queue within seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from tokiflow.channels.base import ChannelConfigError, ChannelError, SendContext
from tokiflow.channels.http import Outbound
from tokiflow.channels.registry import CHANNELS
from tokiflow.cli import AddCommon
from tokiflow.cli_admin import AdminError, _iso, _org_readonly, _read, org_for, transaction
from tokiflow.clock import SystemClock
from tokiflow.config import Settings
from tokiflow.engine import channel_setup
from tokiflow.engine.dispatcher import make_channel
from tokiflow.storage import channels, notifications
from tokiflow.storage.crypto import Sealer, load_or_create_key


def _sealer(settings: Settings) -> Sealer:
    return Sealer(load_or_create_key(settings.data_dir, settings.secret_key))


def _view_json(v: channel_setup.ChannelView) -> dict[str, Any]:
    return {
        "id": v.id, "kind": v.kind, "name": v.name, "default": v.is_default, "config": v.config,
        "last_error": v.last_error, "last_error_at": _iso(v.last_error_at),
        "created_at": _iso(v.created_at),
    }  # fmt: skip


def cmd_add(settings: Settings, args: argparse.Namespace) -> int:
    from tokiflow import licensing
    from tokiflow.cli import warn

    try:
        config = json.loads(args.channel_config)
    except json.JSONDecodeError as exc:
        raise AdminError(f"--config is not valid JSON: {exc.msg} at column {exc.colno}") from None
    with transaction(settings) as conn:
        sealer = _sealer(settings)
        org = org_for(conn, args.org)
        try:
            now = SystemClock().now()
            row = channel_setup.create(
                conn, sealer, org_id=org.id, kind=args.kind, name=args.name, config=config,
                is_default=not args.no_default, now=now,
                limits=licensing.limits_in_force(settings.data_dir, now, warn=warn),
            )  # fmt: skip
        except channel_setup.ChannelPlanError as exc:
            raise AdminError(exc.message) from None
        except ChannelConfigError as exc:
            raise AdminError(f"invalid channel: {exc}") from None
        shown = channel_setup.view(row, sealer)
    if args.json:
        print(json.dumps(_view_json(shown)))
    else:
        scope = "every monitor" if shown.is_default else "no monitor yet"
        print(f"created {shown.kind} channel #{shown.id} '{shown.name}' (alerts {scope})")
    return 0


def cmd_list(settings: Settings, args: argparse.Namespace) -> int:
    conn = _read(settings)
    try:
        sealer = _sealer(settings)
        org_id = _org_readonly(conn, args.org)
        views = [channel_setup.view(r, sealer) for r in channels.list_for_org(conn, org_id)]
    finally:
        conn.close()
    if args.json:
        print(json.dumps([_view_json(v) for v in views]))
        return 0
    if not views:
        print("no channels yet: add one with 'tokiflow channels add --kind webhook ...'")
    for v in views:
        error = f"  last error: {v.last_error}" if v.last_error else ""
        print(f"#{v.id:<4} {v.kind:<10} {v.name:<30} {json.dumps(v.config)}{error}")
    return 0


def cmd_test(settings: Settings, args: argparse.Namespace) -> int:
    """Send a test alert now and record it as a delivery."""
    clock = SystemClock()
    conn = _read(settings)
    try:
        row = channels.get(conn, args.id)
    finally:
        conn.close()
    if row is None:
        raise AdminError(f"no channel #{args.id}")
    sealer = _sealer(settings)

    async def send() -> tuple[bool, str, float]:
        http = Outbound(
            timeout=float(settings.outbound_timeout), block_private=settings.outbound_block_private
        )
        started = clock.monotonic()
        try:
            channel = make_channel(
                row, sealer, SendContext(settings=settings, http=http, clock=clock)
            )
            status = await channel.test()
            return True, status, (clock.monotonic() - started) * 1000
        except ChannelError as exc:
            return False, str(exc), (clock.monotonic() - started) * 1000
        finally:
            await http.close()

    ok, detail, latency = asyncio.run(send())
    now = clock.now()
    with transaction(settings) as conn:
        key = f"test-{row.id}-{now.timestamp():.6f}"
        notification_id = notifications.enqueue(
            conn, org_id=row.org_id, channel_id=row.id, incident_id=None, event="test",
            idempotency_key=key, message="{}", now=now,
        )  # fmt: skip
        assert notification_id is not None
        notifications.finish_test(conn, notification_id, ok=ok, error=detail, at=now)
        notifications.record_attempt(
            conn, notification_id, at=now, ok=ok, status=detail if ok else "",
            error="" if ok else detail, latency_ms=latency,
        )  # fmt: skip
        channels.set_error(conn, row.id, None if ok else detail, None if ok else now)
    if not ok:
        raise AdminError(f"test alert to channel #{row.id} failed: {detail}")
    print(f"test alert sent to channel #{row.id} '{row.name}' ({detail}, {latency:.0f} ms)")
    return 0


def cmd_delete(settings: Settings, args: argparse.Namespace) -> int:
    with transaction(settings) as conn:
        if not channels.delete(conn, args.id):
            raise AdminError(f"no channel #{args.id}")
    print(f"deleted channel #{args.id}")
    return 0


def cmd_deliveries(settings: Settings, args: argparse.Namespace) -> int:
    conn = _read(settings)
    try:
        org_id = _org_readonly(conn, args.org)
        rows = []
        for n in notifications.list_recent(
            conn, org_id=org_id, channel_id=args.channel, limit=args.limit
        ):
            tries = notifications.attempts(conn, n.id)
            rows.append({
                "id": n.id, "channel_id": n.channel_id, "incident_id": n.incident_id,
                "event": n.event, "state": n.state, "attempts": n.attempts,
                "created_at": _iso(n.created_at), "sent_at": _iso(n.sent_at),
                "next_attempt_at": _iso(n.next_attempt_at) if n.state == "pending" else None,
                "last_error": n.last_error,
                "history": [{"at": _iso(a.at), "ok": a.ok, "status": a.status, "error": a.error,
                             "latency_ms": round(a.latency_ms, 1)} for a in tries],
            })  # fmt: skip
    finally:
        conn.close()
    if args.json:
        print(json.dumps(rows))
        return 0
    if not rows:
        print("no deliveries yet")
    for r in rows:
        error = f"  {r['last_error']}" if r["last_error"] else ""
        print(f"#{r['id']:<5} channel #{r['channel_id']:<4} {r['event']:<12} {r['state']:<8} "
              f"{r['attempts']} attempt(s)  {r['created_at'][:19]}{error}")  # fmt: skip
    return 0


def define_channels(ch: argparse.ArgumentParser, add_common: AddCommon) -> None:
    csub = ch.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = csub.add_parser("add", help="add an alert channel")
    # --config is the channel's JSON here, so the config file comes from TOKIFLOW_CONFIG only.
    add.add_argument("--data-dir", dest="data_dir", metavar="DIR", help="data folder")
    add.add_argument("--kind", required=True, choices=sorted(CHANNELS), help="channel kind")
    add.add_argument("--name", required=True, help="a name for the channel")
    add.add_argument("--config", dest="channel_config", required=True, metavar="JSON",
                     help="the kind's settings as JSON")  # fmt: skip
    add.add_argument("--org", help="organisation slug (default: the first organisation)")
    add.add_argument("--no-default", action="store_true",
                     help="do not subscribe every monitor (new ones included) to it")  # fmt: skip
    add.add_argument("--json", action="store_true", help="print the channel as JSON")
    add.set_defaults(handler=cmd_add)

    lst = csub.add_parser("list", help="list channels (secrets masked) and their last error")
    add_common(lst)
    lst.add_argument("--org", help="only this organisation's channels")
    lst.add_argument("--json", action="store_true", help="print a JSON array")
    lst.set_defaults(handler=cmd_list)

    test = csub.add_parser("test", help="send a test alert through a channel now")
    add_common(test)
    test.add_argument("id", type=int, help="channel number")
    test.set_defaults(handler=cmd_test)

    delete = csub.add_parser("delete", help="delete a channel")
    add_common(delete)
    delete.add_argument("id", type=int, help="channel number")
    delete.set_defaults(handler=cmd_delete)


def define_deliveries(dl: argparse.ArgumentParser, add_common: AddCommon) -> None:
    dsub = dl.add_subparsers(dest="action", metavar="ACTION", required=True)
    dlist = dsub.add_parser("list", help="recent notifications with every attempt")
    add_common(dlist)
    dlist.add_argument("--org", help="only this organisation's deliveries")
    dlist.add_argument("--channel", type=int, help="only this channel's deliveries")
    dlist.add_argument("--limit", type=int, default=50, help="how many (default 50)")
    dlist.add_argument("--json", action="store_true", help="print a JSON array")
    dlist.set_defaults(handler=cmd_deliveries)
