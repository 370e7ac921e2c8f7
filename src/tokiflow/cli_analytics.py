"""Commands: runtime analytics, anomaly thresholds, captured output and redaction patterns.

Read commands (`monitors stats`, `analytics`, `analytics storage`, `runs output`, `pings body`,
`redactions list`) open the database read-only; the others change it in one short transaction,
serialised with a running server's writer by SQLite's busy timeout. A running server picks the
changes up at the monitor's next ping.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from typing import Any

from tokiflow.cli import AddCommon
from tokiflow.cli_admin import reading, transaction
from tokiflow.cli_monitors import DAYS
from tokiflow.clock import SystemClock
from tokiflow.config import SETTINGS_BY_NAME, Settings
from tokiflow.engine import analytics
from tokiflow.engine.anomaly import seconds_words, size_words
from tokiflow.engine.schedules import format_duration
from tokiflow.storage import crypto, monitors, orgs, outputs, runs
from tokiflow.storage.db import StorageError
from tokiflow.storage.monitors import Monitor
from tokiflow.storage.orgs import Org
from tokiflow.storage.outputs import OutputError, OutputStore

_HOURS = "".join(f"{h:<3}" for h in range(0, 24, 3))
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_SHADES = " .:-=+*#%@"


class AnalyticsError(StorageError):
    """A command cannot do what was asked; reported as one line."""


def _monitor(conn: sqlite3.Connection, uuid: str) -> Monitor:
    m = monitors.by_uuid(conn, uuid.strip().lower())
    if m is None:
        raise AnalyticsError(f"no monitor with uuid {uuid} (see 'tokiflow monitors list')")
    return m


def _org(conn: sqlite3.Connection, slug: str | None) -> Org:
    if slug is None:
        found = orgs.list_all(conn)
        if not found:
            raise AnalyticsError("no organisation yet (run 'tokiflow serve' first)")
        return found[0]
    org = orgs.by_slug(conn, slug)
    if org is None:
        raise AnalyticsError(f"no organisation with slug '{slug}' (see 'tokiflow orgs list')")
    return org


def _store(settings: Settings) -> OutputStore:
    """The output store with the data folder's key (never creates a key for a read)."""
    if not settings.secret_key and not (settings.data_dir / crypto.KEY_FILE).exists():
        raise AnalyticsError(f"no secret key in {settings.data_dir}: no output can be read")
    try:
        key = crypto.load_or_create_key(settings.data_dir, settings.secret_key)
    except crypto.CryptoError as exc:
        raise AnalyticsError(str(exc)) from None
    limit = settings.output_capture_limit
    return OutputStore(settings.outputs_dir, crypto.Sealer(key), limit=limit)


def _secs(value: float | None) -> str:
    if value is None:
        return "-"
    return seconds_words(value) if value < 3600 else format_duration(round(value))


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}%"


# -- monitors stats / set-anomaly / set-capture -------------------------------------------------


def thresholds_json(m: Monitor, settings: Settings) -> dict[str, Any]:
    return {
        "anomaly_alerts": m.anomaly_alerts,
        "factor": m.anomaly_factor,
        "z": m.anomaly_z,
        "output_drop": m.output_drop,
        "capture_limit": settings.output_capture_limit
        if m.output_limit is None
        else m.output_limit,
        "capture_limit_is_default": m.output_limit is None,
    }


def cmd_monitor_stats(settings: Settings, args: argparse.Namespace) -> int:
    with reading(settings) as conn:
        m = _monitor(conn, args.uuid)
        report = analytics.monitor_report(
            conn, m, SystemClock().now(), days=args.days, window=max(settings.stats_window, 1)
        )
    data = analytics.as_json(report)
    data["thresholds"] = thresholds_json(m, settings)
    if args.json:
        print(json.dumps(data))
        return 0
    h, r, d = report.health, report.reliability, report.durations
    print(f"{m.name} ({m.uuid}), last {args.days} days, status {m.status}")
    print(f"  health     {h.score}/100 over 7 days ({h.failures} failed, {h.missed} missed, "
          f"{h.late} late, {h.on_time} on time)")  # fmt: skip
    print(f"  uptime     {_pct(report.uptime_percent)}")
    print(f"  outages    {r.outages} (MTBF {_secs(r.mtbf_seconds)}, MTTR {_secs(r.mttr_seconds)})")
    if d.runs:
        print(f"  durations  {d.runs} runs: mean {_secs(d.mean)} +/- {_secs(d.stdev)}, "
              f"min {_secs(d.min)}, max {_secs(d.max)}")  # fmt: skip
        print(f"             last {d.window} runs: p50 {_secs(d.p50)}, p95 {_secs(d.p95)}, "
              f"p99 {_secs(d.p99)}")  # fmt: skip
    else:
        print("  durations  no timed runs yet (send /start before the finish ping)")
    t = data["thresholds"]
    print(f"  anomaly    alerts {'on' if t['anomaly_alerts'] else 'off'}: over {t['factor']:g}x "
          f"the median and {t['z']:g} sigma; output under {t['output_drop']:.0%} of the last 7; "
          f"capture {size_words(t['capture_limit']) if t['capture_limit'] else 'off'}")  # fmt: skip
    _print_trend(report.failure_trend)
    _print_histogram(report.duration_histogram)
    _print_heatmap(report.failure_heatmap, m.tz)
    return 0


def _print_trend(trend: list[analytics.DayRate]) -> None:
    shown = [f"{d.day:%m-%d} {'-' if d.rate is None else f'{d.rate:.0%}'}" for d in trend[-14:]]
    print("  failures   " + ", ".join(shown))


def _print_histogram(buckets: list[analytics.Bucket]) -> None:
    if not buckets:
        return
    top = max(b.count for b in buckets)
    print("  durations of successful runs:")
    for b in buckets:
        label = f"<= {_secs(b.le)}" if b.le is not None else f"> {_secs(analytics.BUCKETS[-1])}"
        print(f"    {label:>12}  {'#' * round(30 * b.count / top):<30} {b.count}")


def _print_heatmap(grid: list[list[int]], tz: str) -> None:
    top = max(max(row) for row in grid)
    if top == 0:
        return
    print(f"  failures by weekday and hour ({tz}):")
    print(f"         {_HOURS}")
    for name, row in zip(_WEEKDAYS, grid, strict=True):
        cells = "".join(_SHADES[0 if c == 0 else 1 + (len(_SHADES) - 2) * c // top] for c in row)
        print(f"    {name}  {cells}")


def _set(settings: Settings, uuid: str, fields: dict[str, Any]) -> Monitor:
    with transaction(settings) as conn:
        m = _monitor(conn, uuid)
        if not monitors.update(conn, m.id, m.status, fields):
            raise AnalyticsError("the monitor changed meanwhile; try again")
        fresh = monitors.get(conn, m.id)
    assert fresh is not None
    return fresh


def cmd_set_anomaly(settings: Settings, args: argparse.Namespace) -> int:
    fields: dict[str, Any] = {}
    if args.factor is not None:
        if not 1 <= args.factor <= 100:
            raise AnalyticsError("--factor must be between 1 and 100 (times the median)")
        fields["anomaly_factor"] = args.factor
    if args.z is not None:
        if not 0 < args.z <= 100:
            raise AnalyticsError("--z must be above 0 and at most 100 (standard deviations)")
        fields["anomaly_z"] = args.z
    if args.output_drop is not None:
        if not 0 <= args.output_drop < 1:
            raise AnalyticsError("--output-drop must be from 0 (off) to below 1, e.g. 0.3")
        fields["output_drop"] = args.output_drop
    if args.alerts is not None:
        fields["anomaly_alerts"] = args.alerts
    if not fields:
        raise AnalyticsError("nothing to change: give --factor, --z, --output-drop, --on or --off")
    m = _set(settings, args.uuid, fields)
    t = thresholds_json(m, settings)
    if args.json:
        print(json.dumps(t))
    else:
        print(f"{m.name}: anomaly alerts {'on' if m.anomaly_alerts else 'off'}, factor "
              f"{m.anomaly_factor:g}, z {m.anomaly_z:g}, output drop {m.output_drop:g}")  # fmt: skip
    return 0


def cmd_set_capture(settings: Settings, args: argparse.Namespace) -> int:
    if args.default:
        limit = None
    else:
        try:
            limit = SETTINGS_BY_NAME["output_capture_limit"].parse(args.limit)
        except ValueError as exc:
            raise AnalyticsError(f"--limit: {exc}") from None
    m = _set(settings, args.uuid, {"output_limit": limit})
    t = thresholds_json(m, settings)
    if args.json:
        print(json.dumps(t))
    else:
        shown = size_words(t["capture_limit"]) if t["capture_limit"] else "off"
        origin = " (the server default)" if limit is None else ""
        print(f"{m.name}: output capture {shown}{origin}")
    return 0


# -- analytics / analytics storage ---------------------------------------------------------------


def cmd_analytics(settings: Settings, args: argparse.Namespace) -> int:
    with reading(settings) as conn:
        org = _org(conn, args.org)
        report = analytics.org_report(conn, org.id, org.slug, SystemClock().now(), days=args.days)
    if args.json:
        print(json.dumps(analytics.as_json(report)))
        return 0
    r = report.reliability
    health = "-" if report.health is None else f"{report.health:.0f}/100"
    print(f"organisation {org.slug}: {report.monitors} monitors, last {args.days} days")
    print(f"  health     {health} (average over the monitors, last 7 days)")
    print(f"  uptime     {_pct(report.uptime_percent)}")
    print(f"  outages    {r.outages} (MTBF {_secs(r.mtbf_seconds)}, MTTR {_secs(r.mttr_seconds)})")
    _print_trend(report.failure_trend)
    for title, rows in (("most reliable", report.most_reliable),
                        ("least reliable", report.least_reliable)):  # fmt: skip
        print(f"  {title}:")
        for x in rows:
            print(f"    {x.health:>3}/100  {_pct(x.uptime_percent):>9}  {x.name}  ({x.uuid})")
    _print_heatmap(report.failure_heatmap, "UTC")
    return 0


def cmd_storage(settings: Settings, args: argparse.Namespace) -> int:
    with reading(settings) as conn:
        slugs = {o.id: o.slug for o in orgs.list_all(conn)}
        rows = [
            {"org": slugs.get(u.org_id, str(u.org_id)), "files": u.files, "stored_bytes": u.stored,
             "output_bytes": u.size, "oldest": analytics.as_json(u.oldest),
             "limit_bytes": settings.output_max_total}
            for u in outputs.usage(conn)
        ]  # fmt: skip
    if args.json:
        print(json.dumps(rows))
        return 0
    if not rows:
        print("no captured output")
    for r in rows:
        share = r["stored_bytes"] / r["limit_bytes"] if r["limit_bytes"] else 0
        print(f"{r['org']:<20} {r['files']:>8} files  {size_words(r['stored_bytes']):>8} on disk "
              f"({share:.0%} of {size_words(r['limit_bytes'])})  from "
              f"{size_words(r['output_bytes'])} of output; oldest {r['oldest']}")  # fmt: skip
    print(f"output kept {format_duration(settings.output_retention)}, "
          f"at most {size_words(settings.output_max_total)} per organisation")  # fmt: skip
    return 0


# -- runs output / pings body --------------------------------------------------------------------


def _show_output(
    settings: Settings, conn: sqlite3.Connection, m: Monitor, n: int, args: argparse.Namespace
) -> int:
    ref = outputs.get(conn, m.id, n)
    if ref is None:
        raise AnalyticsError(f"ping #{n} of {m.name} has no captured output")
    try:
        data = _store(settings).read(m.uuid, ref)
    except OutputError as exc:
        raise AnalyticsError(str(exc)) from None
    if args.json:
        print(json.dumps({
            "monitor": m.uuid, "n": n, "run_id": ref.run_id,
            "created_at": analytics.as_json(ref.created_at), "size": ref.size, "kept": ref.kept,
            "redactions": ref.redactions, "output": data.decode("utf-8", "replace"),
        }))  # fmt: skip
        return 0
    cut = f", the last {ref.kept} of {ref.size} bytes" if ref.kept < ref.size else ""
    print(f"# {m.name} ping #{n} at {analytics.as_json(ref.created_at)}: {ref.redactions} "
          f"secret(s) redacted{cut}", file=sys.stderr)  # fmt: skip
    sys.stdout.buffer.write(data)
    sys.stdout.flush()
    return 0


def cmd_run_output(settings: Settings, args: argparse.Namespace) -> int:
    with reading(settings) as conn:
        run = runs.get(conn, args.run_id)
        if run is None:
            raise AnalyticsError(f"no run #{args.run_id}")
        m = monitors.get(conn, run.monitor_id)
        assert m is not None
        if run.end_ping is None:
            raise AnalyticsError(f"run #{run.id} has not finished ({run.status})")
        return _show_output(settings, conn, m, run.end_ping, args)


def cmd_ping_body(settings: Settings, args: argparse.Namespace) -> int:
    with reading(settings) as conn:
        return _show_output(settings, conn, _monitor(conn, args.uuid), args.n, args)


# -- redactions ----------------------------------------------------------------------------------


def cmd_redactions(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "list":
        with reading(settings) as conn:
            org = _org(conn, args.org)
            found = outputs.list_patterns(conn, org.id)
        rows = [{"id": p.id, "pattern": p.pattern, "note": p.note,
                 "created_at": analytics.as_json(p.created_at)} for p in found]  # fmt: skip
        if args.json:
            print(json.dumps(rows))
        elif not rows:
            print(f"no redaction patterns for {org.slug} (the built-in rules always apply)")
        for r in [] if args.json else rows:
            print(f"#{r['id']:<4} {r['pattern']}" + (f"  ({r['note']})" if r["note"] else ""))
        return 0
    with transaction(settings) as conn:
        org = _org(conn, args.org)
        if args.action == "add":
            try:
                p = outputs.add_pattern(conn, org.id, args.pattern, args.note, SystemClock().now())
            except ValueError as exc:
                raise AnalyticsError(str(exc)) from None
            print(
                f"added pattern #{p.id} for {org.slug}; it applies to output captured from now on"
            )
        elif not outputs.remove_pattern(conn, org.id, args.id):
            raise AnalyticsError(f"no pattern #{args.id} in {org.slug}")
        else:
            print(f"removed pattern #{args.id} from {org.slug}")
    return 0


# -- the parsers ----------------------------------------------------------------------------------
# (`monitors stats|set-anomaly|set-capture` are defined with the other monitor commands, in
# cli_monitors.)


def define_analytics(an: argparse.ArgumentParser, add_common: AddCommon) -> None:
    add_common(an)
    an.add_argument("--org", help="organisation slug (default: the first one)")
    an.add_argument("--days", type=int, choices=DAYS, default=7, help="period (default 7)")
    an.add_argument("--json", action="store_true", help="print one JSON object")
    an.set_defaults(handler=cmd_analytics)
    asub = an.add_subparsers(dest="action", metavar="ACTION", required=False)
    usage = asub.add_parser("storage", help="captured output on disk per organisation")
    add_common(usage)
    usage.add_argument("--json", action="store_true", help="print a JSON array")
    usage.set_defaults(handler=cmd_storage)


def define_runs(runs: argparse.ArgumentParser, add_common: AddCommon) -> None:
    rsub = runs.add_subparsers(dest="action", metavar="ACTION", required=True)
    out = rsub.add_parser("output", help="print the captured output of a finished run")
    add_common(out)
    out.add_argument("run_id", type=int, help="the run number (incident run ids, run lists)")
    out.add_argument("--json", action="store_true", help="print one JSON object")
    out.set_defaults(handler=cmd_run_output)


def define_pings(pings: argparse.ArgumentParser, add_common: AddCommon) -> None:
    psub = pings.add_subparsers(dest="action", metavar="ACTION", required=True)
    body = psub.add_parser("body", help="print the captured body of one ping")
    add_common(body)
    body.add_argument("uuid", help="the monitor's uuid")
    body.add_argument("n", type=int, help="the ping number")
    body.add_argument("--json", action="store_true", help="print one JSON object")
    body.set_defaults(handler=cmd_ping_body)


def define_redactions(red: argparse.ArgumentParser, add_common: AddCommon) -> None:
    rsub = red.add_subparsers(dest="action", metavar="ACTION", required=True)
    radd = rsub.add_parser("add", help="redact what this regular expression matches")
    add_common(radd)
    radd.add_argument("pattern", help="Python regular expression; group 'secret' limits it")
    radd.add_argument("--note", default="", help="what the pattern is for")
    rlist = rsub.add_parser("list", help="the organisation's patterns")
    add_common(rlist)
    rlist.add_argument("--json", action="store_true", help="print a JSON array")
    rrm = rsub.add_parser("remove", help="delete a pattern by its number")
    add_common(rrm)
    rrm.add_argument("id", type=int, help="the pattern number (see 'redactions list')")
    for p in (radd, rlist, rrm):
        p.add_argument("--org", help="organisation slug (default: the first one)")
        p.set_defaults(handler=cmd_redactions)
