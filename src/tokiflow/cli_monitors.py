"""`tokiflow monitors list|get|create|update|delete|pause|resume|stats|set-anomaly|set-capture`
and `tokiflow incidents list|ack|resolve`: on this machine's data folder, or on a server through
its API (see cli_remote for which one a command uses). Both sides print the same tables and JSON.

This module defines the commands and picks the side; the data folder's (cli_monitors_local) is
imported only when a command works there, so that commands on a server start fast.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tokiflow import cli_remote
from tokiflow.cli import AddCommon, use_logging

if TYPE_CHECKING:
    from tokiflow.config import Settings

Handler = Callable[["Settings", argparse.Namespace], int]
DAYS = (7, 30, 90)  # the periods of the statistics commands


def _local(name: str) -> Handler:
    """The handler of a command on the data folder (cli_monitors_local.LOCAL[name])."""

    def handler(settings: Settings, args: argparse.Namespace) -> int:
        from tokiflow.cli_monitors_local import LOCAL

        return LOCAL[name](settings, args)

    return handler


def _either(name: str) -> Handler:
    """A handler that works on a server when one is chosen, else on the data folder."""
    remote, local = cli_remote.REMOTE[name], _local(name)

    def handler(settings: Settings, args: argparse.Namespace) -> int:
        client = cli_remote.client_for(args, os.environ)
        if client is not None:
            return remote(cli_remote.Remote(client), args)
        use_logging(settings)  # main leaves it to commands that may work on a server
        return local(settings, args)

    return handler


# -- the parsers ----------------------------------------------------------------------------------


def _limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
    if not 1 <= value <= 500:
        raise argparse.ArgumentTypeError("give a number from 1 to 500")
    return value


def _command(parent: Any, name: str, help: str, add_common: AddCommon, **kw: Any) -> Any:
    """A sub-command with the flags that choose where it works, and --json."""
    p = parent.add_parser(name, help=help, **kw)
    add_common(p)
    p.add_argument("--server", metavar="URL",
                   help="work on this server through its API (default: the stored login, if "
                   "any, unless --data-dir is given)")  # fmt: skip
    p.add_argument("--api-key", dest="api_key", metavar="KEY",
                   help="API key for the server [env TOKIFLOW_API_KEY; default: the stored "
                   "login's]")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print JSON (the API's shapes)")
    p.set_defaults(may_be_remote=True)
    return p


def _monitor_flags(p: argparse.ArgumentParser, *, creating: bool) -> None:
    if creating:
        p.add_argument("--name", required=True, help="monitor name")
    else:
        p.add_argument("--name", help="new name")
    p.add_argument("--slug", help="URL slug" + (" (default: from the name)" if creating else ""))
    p.add_argument("--description", help="what the job does, for people")
    when = p.add_mutually_exclusive_group(required=creating)
    when.add_argument("--period", help="expected every PERIOD, e.g. 1h, 15m, 1d")
    when.add_argument(
        "--schedule", metavar="CRON", help="5-field cron expression, e.g. '*/5 * * * *'"
    )
    p.add_argument("--tz", help="time zone of the cron expression (default UTC)")
    p.add_argument("--grace", help="how late a ping may be before alerting (default 1h)")
    p.add_argument("--max-runtime", dest="max_runtime", metavar="DURATION",
                   help="alert when a run takes longer ('off' to clear)")  # fmt: skip
    p.add_argument("--min-runtime", dest="min_runtime", metavar="DURATION",
                   help="alert when a run is this fast ('off' to clear)")  # fmt: skip
    p.add_argument("--tags", help="space-separated tags ('' for none)")
    p.add_argument("--renotify", metavar="EVERY",
                   help="re-send alerts every EVERY (e.g. 30m) while an incident is open and "
                   "unacknowledged ('off' to stop)")  # fmt: skip
    p.add_argument("--late-alerts", dest="late_alerts", action=argparse.BooleanOptionalAction,
                   help="also open an incident (and alert) when a ping is late, in grace")  # fmt: skip
    p.add_argument("--resolve-alerts", dest="resolve_alerts",
                   action=argparse.BooleanOptionalAction,
                   help="alert when the job recovers (the default; --no-resolve-alerts: not)")  # fmt: skip
    p.add_argument("--channels", metavar="IDS",
                   help="alert only these channels (e.g. 1,3; '' for none); default: every "
                   "default channel of the organisation")  # fmt: skip
    p.add_argument("--org", help="organisation slug (default: the first organisation; on a "
                   "server, the API key's)")  # fmt: skip


def _one_monitor(p: argparse.ArgumentParser) -> None:
    p.add_argument("monitor", metavar="UUID_OR_SLUG", help="the monitor's uuid or slug")
    p.add_argument("--org", help="organisation of a slug used in several")


def define_monitors(mon: argparse.ArgumentParser, add_common: AddCommon) -> None:
    msub = mon.add_subparsers(dest="action", metavar="ACTION", required=True)

    create = _command(msub, "create", "create a monitor and print its ping URLs", add_common,
                      aliases=["add"])  # fmt: skip
    _monitor_flags(create, creating=True)
    create.set_defaults(handler=_either("monitors create"))

    lst = _command(msub, "list", "list monitors with their status", add_common)
    lst.add_argument("--org", help="only this organisation's monitors")
    lst.set_defaults(handler=_either("monitors list"))

    get = _command(msub, "get", "show one monitor", add_common)
    _one_monitor(get)
    get.set_defaults(handler=_either("monitors get"))

    update = _command(msub, "update", "change a monitor (only the flags given)", add_common)
    update.add_argument("monitor", metavar="UUID_OR_SLUG", help="the monitor's uuid or slug")
    _monitor_flags(update, creating=False)
    update.set_defaults(handler=_either("monitors update"))

    delete = _command(msub, "delete", "delete a monitor and its history", add_common)
    _one_monitor(delete)
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    delete.set_defaults(handler=_either("monitors delete"))

    for action, words in (("pause", "pause a monitor: no alerts until it is resumed or pinged"),
                          ("resume", "resume a paused monitor (it waits for its next ping)")):  # fmt: skip
        p = _command(msub, action, words, add_common)
        _one_monitor(p)
        p.set_defaults(handler=_either(f"monitors {action}"))

    _define_statistics(msub, add_common)


def _on_off(p: argparse.ArgumentParser) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--on", dest="alerts", action="store_const", const=True, help="alerts on")
    g.add_argument("--off", dest="alerts", action="store_const", const=False, help="alerts off")


def _define_statistics(msub: Any, add_common: AddCommon) -> None:
    """`monitors stats|set-anomaly|set-capture`: the data folder only (see cli_analytics)."""
    st = msub.add_parser("stats", help="health, uptime, MTBF/MTTR, durations and failure trends")
    add_common(st)
    st.add_argument("uuid", help="the monitor's uuid")
    st.add_argument("--days", type=int, choices=DAYS, default=7, help="period (default 7)")
    st.add_argument("--json", action="store_true", help="print one JSON object")
    st.set_defaults(handler=_local("monitors stats"))

    sa = msub.add_parser("set-anomaly", help="anomaly thresholds of a monitor, alerts on or off")
    add_common(sa)
    sa.add_argument("uuid", help="the monitor's uuid")
    sa.add_argument("--factor", type=float, help="slow = over FACTOR x the median (1.5)")
    sa.add_argument("--z", type=float, help="... and over Z standard deviations (3)")
    sa.add_argument("--output-drop", dest="output_drop", type=float,
                    help="output alert below this share of the last 7 (0.3; 0 turns it off)")  # fmt: skip
    _on_off(sa)
    sa.add_argument("--json", action="store_true", help="print the thresholds as JSON")
    sa.set_defaults(handler=_local("monitors set-anomaly"))

    sc = msub.add_parser("set-capture", help="how much output of a monitor is kept per ping")
    add_common(sc)
    sc.add_argument("uuid", help="the monitor's uuid")
    which = sc.add_mutually_exclusive_group(required=True)
    which.add_argument("--limit", help="bytes kept (the tail), e.g. 64k; 0 turns capture off")
    which.add_argument("--default", action="store_true", help="use output_capture_limit")
    sc.add_argument("--json", action="store_true", help="print the thresholds as JSON")
    sc.set_defaults(handler=_local("monitors set-capture"))


def define_incidents(inc: argparse.ArgumentParser, add_common: AddCommon) -> None:
    isub = inc.add_subparsers(dest="action", metavar="ACTION", required=True)
    ilist = _command(isub, "list", "recent incidents, newest first", add_common)
    ilist.add_argument("--org", help="only this organisation's incidents")
    ilist.add_argument("--limit", type=_limit, default=100, help="how many, 1-500 (default 100)")
    ilist.set_defaults(handler=_either("incidents list"))
    for action, words in (("ack", "acknowledge an open incident"),
                          ("resolve", "resolve an incident")):  # fmt: skip
        act = _command(isub, action, words, add_common)
        act.add_argument("id", type=int, help="the incident number (see 'incidents list')")
        act.set_defaults(handler=_either(f"incidents {action}"))
