"""Commands: `tokiflow backup`, `restore`, `doctor` and `healthcheck` (operating a data folder)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import socket
import sqlite3
import stat
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokiflow import backup, licensing
from tokiflow.cli import AddCommon, CliError
from tokiflow.clock import Clock, SystemClock
from tokiflow.config import Settings
from tokiflow.storage import db, monitors
from tokiflow.storage.crypto import KEY_FILE
from tokiflow.storage.db import StorageError, connect
from tokiflow.storage.migrations import status as migration_status

DISK_FAIL_BYTES = 200 * 1024 * 1024
DISK_WARN_BYTES = 1024 * 1024 * 1024
CLOCK_SLACK = dt.timedelta(minutes=1)
SMTP_TIMEOUT = 3.0


def _progress(args: argparse.Namespace) -> Callable[[str], None]:
    if getattr(args, "quiet", False):
        return lambda _: None
    return lambda line: print(line, flush=True)


def cmd_backup(settings: Settings, args: argparse.Namespace, *, clock: Clock | None = None) -> int:
    now = (clock or SystemClock()).now()
    target = Path(args.to) if args.to else backup.default_target(now)
    progress = _progress(args)
    progress(f"backing up {settings.data_dir} to {target}")
    try:
        result = backup.create_backup(settings.data_dir, target, now, progress=progress)
    except OSError as exc:
        raise CliError(f"backup failed: {exc.strerror or exc}") from None
    progress(
        f"done: {result.path} ({backup._mb(result.size)}; database {backup._mb(result.db_size)}, "
        f"{result.output_files} output files)"
    )
    if KEY_FILE in result.members:
        progress("the archive holds the secret key: keep it as safe as the server itself")
    elif settings.secret_key:
        progress("the secret key was given by setting, not in the data folder: keep it with this")
    print(result.path)
    return 0


def cmd_restore(settings: Settings, args: argparse.Namespace) -> int:
    progress = _progress(args)
    try:
        result = backup.restore_backup(Path(args.file), settings.data_dir, progress=progress)
    except OSError as exc:
        raise CliError(f"restore failed: {exc.strerror or exc}") from None
    print(
        f"restored the backup of {result.created_at} (Tokiflow {result.tokiflow_version}) "
        f"into {result.data_dir}; start it with 'tokiflow serve --data-dir {result.data_dir}'"
    )
    if not result.secret_key_included:
        print(
            "the backup holds no secret key: give the server the key it used "
            "(TOKIFLOW_SECRET_KEY_FILE), or stored secrets and output cannot be read"
        )
    return 0


# -- doctor -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One doctor check: level ok|warn|fail, what was found, and what to do about it."""

    level: str
    check: str
    message: str
    fix: str = ""


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def check_permissions(settings: Settings) -> list[Finding]:
    data = settings.data_dir
    if not data.is_dir():
        return [Finding("fail", "data folder", f"{data} does not exist",
                        "start the server once or fix --data-dir / TOKIFLOW_DATA_DIR")]  # fmt: skip
    found = []
    mode = _mode(data)
    if mode & 0o077:
        found.append(Finding("fail", "data folder", f"{data} has mode {mode:04o}, readable by "
                             "others", f"chmod 700 {data}"))  # fmt: skip
    else:
        found.append(Finding("ok", "data folder", f"{data} has mode {mode:04o}"))
    if not os.access(data, os.W_OK | os.X_OK):
        found.append(Finding("fail", "data folder", f"{data} is not writable by this user",
                             "chown the folder to the user that runs Tokiflow"))  # fmt: skip
    # The database and output inherit the folder's protection; the secrets must not rely on it.
    for name in (KEY_FILE, licensing.LICENCE_FILE):
        path = data / name
        if not path.exists():
            continue
        mode = _mode(path)
        if mode & 0o077:
            found.append(Finding("fail", name, f"{path} has mode {mode:04o}; it holds a secret",
                                 f"chmod 600 {path}"))  # fmt: skip
        else:
            found.append(Finding("ok", name, f"mode {mode:04o}"))
    return found


def check_disk(settings: Settings) -> list[Finding]:
    if not settings.data_dir.is_dir():
        return []
    usage = shutil.disk_usage(settings.data_dir)
    free = f"{usage.free / 1024**3:.1f} GB free of {usage.total / 1024**3:.1f} GB"
    if usage.free < DISK_FAIL_BYTES:
        return [Finding("fail", "disk space", free, "free disk space: pings and alerts wait "
                        "while the disk is full")]  # fmt: skip
    if usage.free < DISK_WARN_BYTES or usage.free < usage.total * 0.05:
        return [Finding("warn", "disk space", free, "free some space soon")]
    return [Finding("ok", "disk space", free)]


def check_database(settings: Settings, now: dt.datetime) -> list[Finding]:
    path = settings.db_path
    if not path.exists():
        return [Finding("warn", "database", f"no database at {path} yet",
                        "start the server once ('tokiflow serve') to create it")]  # fmt: skip
    try:
        state = migration_status(path)
        conn = connect(path, readonly=True)
        try:
            rows = db.quick_check(conn)
            newest = monitors.newest_ping_at(conn)
        finally:
            conn.close()
    except (StorageError, sqlite3.Error) as exc:
        return [Finding("fail", "database", str(exc), "restore the latest backup")]
    found = []
    if rows != ["ok"]:
        found.append(Finding("fail", "database", "quick_check: " + "; ".join(rows[:3]),
                             "stop the server and restore the latest backup"))  # fmt: skip
    else:
        found.append(Finding("ok", "database", "quick_check ok"))
    if state.unknown:
        found.append(Finding("fail", "migrations", f"written by a newer Tokiflow "
                             f"({', '.join(state.unknown)})", "upgrade Tokiflow"))  # fmt: skip
    elif state.pending:
        found.append(Finding("warn", "migrations", f"{len(state.pending)} pending "
                             f"({', '.join(state.pending)})",
                             "the server applies them at start ('tokiflow migrate' does too)"))  # fmt: skip
    else:
        found.append(Finding("ok", "migrations", f"{len(state.applied)} applied, none pending"))
    found.append(_check_clock(now, newest))
    return found


def _check_clock(now: dt.datetime, last: dt.datetime | None) -> Finding:
    if last is None:
        return Finding("ok", "clock", f"{now:%Y-%m-%d %H:%M:%S} UTC (no pings yet to compare)")
    if now + CLOCK_SLACK < last:
        return Finding(
            "fail", "clock",
            f"the system clock ({now:%Y-%m-%d %H:%M:%S} UTC) is behind the newest ping "
            f"({last:%Y-%m-%d %H:%M:%S} UTC)",
            "fix the time (enable NTP: timedatectl set-ntp true); deadlines are wrong meanwhile",
        )  # fmt: skip
    return Finding("ok", "clock", f"{now:%Y-%m-%d %H:%M:%S} UTC, after the newest ping")


def check_smtp(settings: Settings) -> list[Finding]:
    if not settings.smtp_host:
        return []
    port = settings.smtp_port or {"tls": 465, "starttls": 587}.get(settings.smtp_tls, 25)
    where = f"{settings.smtp_host}:{port}"
    try:
        with socket.create_connection((settings.smtp_host, port), timeout=SMTP_TIMEOUT):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return [Finding("fail", "smtp", f"cannot connect to {where}: {reason}",
                        "check smtp_host/smtp_port and the firewall; email alerts wait "
                        "meanwhile")]  # fmt: skip
    return [Finding("ok", "smtp", f"{where} accepts connections")]


def check_licence(settings: Settings, now: dt.datetime) -> list[Finding]:
    try:
        lic = licensing.load_installed(settings.data_dir)
    except licensing.LicenceError as exc:
        return [Finding("fail", "licence", str(exc), "install a valid licence "
                        "('tokiflow license install FILE'); FREE limits apply meanwhile")]  # fmt: skip
    st = licensing.status(lic, now)
    words = f"{st.limits.plan} plan" + (f" ({st.state})" if lic else " (no licence installed)")
    if st.state in ("grace", "expired"):
        return [Finding("warn", "licence", words + f": {st.banner}", "install a renewed licence")]
    return [Finding("ok", "licence", words)]


def run_checks(settings: Settings, now: dt.datetime) -> list[Finding]:
    """Every doctor check, in the order they are printed."""
    return [
        *check_permissions(settings),
        *check_disk(settings),
        *check_database(settings, now),
        *check_smtp(settings),
        *check_licence(settings, now),
    ]


def cmd_doctor(settings: Settings, args: argparse.Namespace, *, clock: Clock | None = None) -> int:
    findings = run_checks(settings, (clock or SystemClock()).now())
    if args.json:
        print(json.dumps([f.__dict__ for f in findings]))
    else:
        for f in findings:
            print(f"{f.level.upper():<4}  {f.check:<12}  {f.message}")
            if f.fix and f.level != "ok":
                print(f"      {'':<12}  fix: {f.fix}")
    failed = [f for f in findings if f.level == "fail"]
    if not args.json:
        warned = sum(1 for f in findings if f.level == "warn")
        print(
            f"{len(failed)} problem(s), {warned} warning(s)"
            if failed or warned
            else "everything looks right"
        )
    return 1 if failed else 0


# -- healthcheck --------------------------------------------------------------------------------


def health_url(settings: Settings) -> str:
    """/healthz of the local server: a wildcard listen address is reached on loopback."""
    host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(settings.host, settings.host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}/healthz"


def cmd_healthcheck(settings: Settings, args: argparse.Namespace) -> int:
    url = args.url or health_url(settings)
    try:
        with urllib.request.urlopen(url, timeout=args.timeout) as resp:
            body = resp.read(4096)
    except urllib.error.HTTPError as exc:
        raise CliError(f"unhealthy: {url} answered {exc.code} {_reason(exc.read(4096))}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CliError(f"unhealthy: cannot reach {url}: {reason}") from None
    if not args.quiet:
        print(f"healthy: {url} answered 200 {_reason(body)}")
    return 0


def _reason(body: bytes) -> str:
    try:
        data: Any = json.loads(body)
    except ValueError:
        return body.decode(errors="replace").strip()[:200]
    return str(data.get("db") or data.get("status") or "") if isinstance(data, dict) else ""


def define_backup(bak: argparse.ArgumentParser, add_common: AddCommon) -> None:
    add_common(bak)
    bak.add_argument(
        "--to", metavar="FILE", help="archive to write (default: ./tokiflow-backup-<time>.tar.gz)"
    )
    bak.add_argument("--quiet", action="store_true", help="no progress lines, only the path")
    bak.set_defaults(handler=cmd_backup)


def define_restore(res: argparse.ArgumentParser, add_common: AddCommon) -> None:
    add_common(res)
    res.add_argument("file", help="the .tar.gz made by 'tokiflow backup'")
    res.add_argument("--quiet", action="store_true", help="no progress lines")
    res.set_defaults(handler=cmd_restore)


def define_doctor(doc: argparse.ArgumentParser, add_common: AddCommon) -> None:
    add_common(doc)
    doc.add_argument("--json", action="store_true", help="print the findings as JSON")
    doc.set_defaults(handler=cmd_doctor)


def define_healthcheck(hc: argparse.ArgumentParser, add_common: AddCommon) -> None:
    add_common(hc)
    hc.add_argument("--port", help="port of the server (default: the port setting)")
    hc.add_argument("--host", help="address of the server (default: the host setting)")
    hc.add_argument("--url", help="full URL to check instead (e.g. http://127.0.0.1:8000/healthz)")
    hc.add_argument("--timeout", type=float, default=5.0, help="seconds to wait (default 5)")
    hc.add_argument("--quiet", action="store_true", help="print nothing when healthy")
    hc.set_defaults(handler=cmd_healthcheck)
