"""Commands: `tokiflow crontab wrap|unwrap` (the rewriting itself is in tokiflow.crontab).

`wrap` creates one monitor per job on the local data folder and rewrites each job line to run
under `tokiflow run`; `unwrap` puts the original lines back, byte for byte. Both show a unified
diff and ask before installing, and keep a timestamped copy of the crontab they replace (and a
JSON record of what they did) in `<data dir>/crontab-backups/`.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
import uuid as uuidlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokiflow import crontab, licensing
from tokiflow.cli import AddCommon, CliError, warn
from tokiflow.cli_admin import org_for as _org
from tokiflow.cli_admin import transaction as _transaction
from tokiflow.clock import SystemClock
from tokiflow.config import Settings
from tokiflow.engine.monitors import MonitorError, build_spec, create_monitor, slugify
from tokiflow.engine.schedules import ScheduleError, cron_schedule, parse_duration
from tokiflow.redaction import redact
from tokiflow.storage import monitors, orgs
from tokiflow.storage.db import connect, prepare_data_dir

BACKUPS = "crontab-backups"
_ENCODING = ("utf-8", "surrogateescape")


@dataclass(frozen=True)
class Source:
    """A crontab to rewrite: a file, or a user's crontab installed with the crontab command."""

    label: str
    key: str  # for backup file names
    system: bool
    path: Path | None = None
    user: str | None = None

    def read(self) -> bytes:
        if self.path is not None:
            try:
                return self.path.read_bytes()
            except OSError as exc:
                raise CliError(f"cannot read {self.path}: {exc.strerror}") from None
        result = _crontab_command("-l", user=self.user)
        if result.returncode != 0:
            message = result.stderr.decode(*_ENCODING).strip()
            if "no crontab for" in message:
                return b""
            raise CliError(f"crontab -l failed: {message or f'exit status {result.returncode}'}")
        return result.stdout

    def install(self, data: bytes) -> None:
        if self.path is not None:
            _replace_file(self.path, data)
            return
        result = _crontab_command("-", user=self.user, data=data)
        if result.returncode != 0:
            message = result.stderr.decode(*_ENCODING).strip()
            raise CliError(f"crontab - failed: {message or f'exit status {result.returncode}'}")


def _crontab_command(
    *args: str, user: str | None, data: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    program = shutil.which("crontab")
    if program is None:
        raise CliError("the crontab command is not installed; rewrite a file with --file instead")
    command = [program, *(["-u", user] if user else []), *args]
    return subprocess.run(command, input=data, capture_output=True, timeout=60)


def _replace_file(path: Path, data: bytes) -> None:
    """Write atomically, keeping the file's mode and (where allowed) owner."""
    real = path.resolve()
    st = real.stat()
    tmp = real.with_name(f".{real.name}.tokiflow-tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, st.st_mode & 0o7777)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.chown(tmp, st.st_uid, st.st_gid)
        except PermissionError:
            pass
        os.chmod(tmp, st.st_mode & 0o7777)
        os.replace(tmp, real)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise CliError(f"cannot write {path}: {exc.strerror}") from None


def source_from(args: argparse.Namespace) -> Source:
    if args.file:
        path = Path(args.file)
        if path.name.endswith("anacrontab"):
            raise CliError(
                "anacrontab has its own format (period in days, delay, job id); wrap its jobs "
                "by hand with 'tokiflow run'"
            )
        system = args.system or str(path) == "/etc/crontab" or path.parent == Path("/etc/cron.d")
        key = ("file" + "-".join(path.resolve().parts).replace("/", ""))[:100]
        return Source(label=str(path), key=key, system=system, path=path)
    if args.system:
        raise CliError("--system goes with --file (a user's crontab has no user field)", code=2)
    user = args.user
    return Source(
        label=f"the crontab of user {user}" if user else "your crontab",
        key=f"user-{user}" if user else "user",
        system=False,
        user=user,
    )


def system_timezone() -> str:
    """The machine's time zone, which cron reads schedules in (not the caller's TZ)."""
    try:
        target = os.readlink("/etc/localtime")
        if "zoneinfo/" in target:
            return target.split("zoneinfo/", 1)[1]
    except OSError:
        pass
    try:
        name = Path("/etc/timezone").read_text().strip()
        if name:
            return name
    except OSError:
        pass
    return "UTC"


def tokiflow_command() -> str:
    """How cron should call this program: the frozen binary, the installed script, or -m."""
    if getattr(sys, "frozen", False):
        return shlex.quote(sys.executable)
    script = Path(sys.executable).with_name("tokiflow")
    if script.is_file() and os.access(script, os.X_OK):
        return shlex.quote(str(script))
    found = shutil.which("tokiflow")
    if found:
        return shlex.quote(os.path.abspath(found))
    return f"{shlex.quote(sys.executable)} -m tokiflow"


def _base_url(args: argparse.Namespace, settings: Settings) -> str:
    base = (args.server_url or settings.public_url).rstrip("/")
    if not base.startswith(("http://", "https://")) or any(c in base for c in " \t%'\"\\"):
        raise CliError(f"--server-url '{base}' must be an http:// or https:// URL", code=2)
    return base


@contextmanager
def _slug_checker(settings: Settings, org_slug: str | None) -> Iterator[Callable[[str], bool]]:
    """Whether a slug is taken in the organisation, read without changing anything."""
    if not settings.db_path.exists():
        yield lambda slug: False
        return
    conn = connect(settings.db_path, readonly=True)
    try:
        found = orgs.by_slug(conn, org_slug) if org_slug else next(iter(orgs.list_all(conn)), None)
        if found is None:
            yield lambda slug: False
        else:
            org_id = found.id
            yield lambda slug: monitors.slug_taken(conn, org_id, slug)
    except sqlite3.Error as exc:
        raise CliError(f"cannot read {settings.db_path}: {exc}") from None
    finally:
        conn.close()


def _write(text: str) -> None:
    sys.stdout.flush()
    sys.stdout.buffer.write(text.encode(*_ENCODING))
    sys.stdout.buffer.flush()


def _show_diff(before: str, after: str, label: str) -> None:
    old = [line.text for line in crontab.split_lines(before)]
    new = [line.text for line in crontab.split_lines(after)]
    diff = difflib.unified_diff(old, new, f"{label} (now)", f"{label} (new)", lineterm="")
    _write("".join(line + "\n" for line in diff))


def _confirm(args: argparse.Namespace, question: str) -> None:
    if args.yes:
        return
    if not sys.stdin.isatty():
        raise CliError(
            "not installing without confirmation: run again with --yes "
            "(or with --dry-run to only see the changes)"
        )
    answer = input(f"{question} [y/N] ")
    if answer.strip().lower() not in ("y", "yes"):
        raise CliError("cancelled; nothing changed")


def _save_backup(settings: Settings, source: Source, data: bytes, record: dict[str, Any]) -> Path:
    """Keep the crontab being replaced, and a record of what was done, in the data folder."""
    folder = settings.data_dir / BACKUPS
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    stamp = SystemClock().now().strftime("%Y%m%dT%H%M%S.%fZ")
    base = folder / f"{stamp}-{source.key}"
    backup = base.with_name(base.name + ".crontab")
    fd = os.open(backup, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    record = {**record, "at": stamp, "target": source.label, "backup": backup.name}
    fd = os.open(base.with_name(base.name + ".json"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(record, fh, indent=2)
    return backup


def known_urls(settings: Settings) -> set[str]:
    """Ping URLs that `crontab wrap` set up with this data folder (from its records)."""
    urls: set[str] = set()
    for path in sorted((settings.data_dir / BACKUPS).glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and record.get("action") == "wrap":
            urls.update(str(m.get("url")) for m in record.get("monitors", []))
    return urls


def cmd_wrap(settings: Settings, args: argparse.Namespace) -> int:
    source = source_from(args)
    tz = args.tz or system_timezone()
    try:
        cron_schedule("* * * * *", tz)
        parse_duration(args.grace)
    except ScheduleError as exc:
        raise CliError(str(exc), code=2) from None
    tokiflow = shlex.quote(args.tokiflow) if args.tokiflow else tokiflow_command()
    if "tokiflow" not in tokiflow:
        raise CliError("--tokiflow must be the path of the tokiflow program", code=2)
    original = source.read()
    text = original.decode(*_ENCODING)
    with _slug_checker(settings, args.org) as slug_taken:
        plan = crontab.plan_wrap(
            text, system=source.system, default_tz=tz, tokiflow=tokiflow,
            base_url=_base_url(args, settings), slug_taken=slug_taken,
            new_uuid=lambda: str(uuidlib.uuid4()), slugify=slugify,
        )  # fmt: skip
    for note in plan.notes:
        print(f"note: {note}")
    if not plan.jobs:
        already = f" ({plan.already} already wrapped)" if plan.already else ""
        print(f"nothing to wrap in {source.label}{already}")
        return 0
    _show_diff(text, plan.text, source.label)
    for job in plan.jobs:
        print(f"monitor '{job.name}': {job.schedule} ({job.tz})  {job.url}")
    if args.dry_run:
        print(f"dry run: {len(plan.jobs)} job(s) would be wrapped; nothing changed")
        return 0
    _confirm(args, f"Create {len(plan.jobs)} monitor(s) and install this crontab?")
    now = SystemClock().now()
    limits = licensing.limits_in_force(settings.data_dir, now, warn=warn)
    with _transaction(settings) as conn:
        org = _org(conn, args.org)
        for job in plan.jobs:
            try:
                spec = build_spec(
                    org_id=org.id, name=job.name, slug=job.slug, cron=job.schedule, tz=job.tz,
                    grace=args.grace, tags="crontab", uuid=job.uuid,
                    description=redact(f"{source.label}, line {job.index + 1}: {job.original}")[0],
                )  # fmt: skip
                create_monitor(conn, spec, now, limits=limits)
            except MonitorError as exc:
                raise CliError(f"line {job.index + 1}: {exc}") from None
        record = {
            "action": "wrap",
            "monitors": [
                {"uuid": j.uuid, "name": j.name, "slug": j.slug, "url": j.url,
                 "line": j.index + 1, "schedule": j.schedule, "tz": j.tz}
                for j in plan.jobs
            ],
        }  # fmt: skip
        backup = _save_backup(settings, source, original, record)
        source.install(plan.text.encode(*_ENCODING))
    print(f"wrapped {len(plan.jobs)} job(s) in {source.label}; the previous version is in {backup}")
    return 0


def cmd_unwrap(settings: Settings, args: argparse.Namespace) -> int:
    source = source_from(args)
    original = source.read()
    text = original.decode(*_ENCODING)
    plan = crontab.plan_unwrap(text, system=source.system, known_urls=known_urls(settings))
    for note in plan.notes:
        print(f"note: {note}")
    if not plan.restored:
        print(f"nothing to unwrap in {source.label}")
        return 0
    _show_diff(text, plan.text, source.label)
    if args.dry_run:
        print(f"dry run: {len(plan.restored)} line(s) would be restored; nothing changed")
        return 0
    _confirm(args, f"Restore {len(plan.restored)} line(s) and install this crontab?")
    prepare_data_dir(settings.data_dir)
    backup = _save_backup(settings, source, original, {"action": "unwrap", "urls": plan.urls})
    source.install(plan.text.encode(*_ENCODING))
    print(
        f"restored {len(plan.restored)} line(s) in {source.label}; the previous version is in "
        f"{backup}. The monitors stay in Tokiflow: pause or delete them if they are not needed."
    )
    return 0


def _add_source(p: argparse.ArgumentParser) -> None:
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--user", metavar="U", help="this user's crontab, via 'crontab -u U' (default: yours)"
    )
    where.add_argument("--file", metavar="F", help="rewrite this crontab file in place instead")
    p.add_argument(
        "--system", action="store_true",
        help="F is a system crontab with a user field (automatic for /etc/crontab, /etc/cron.d/*)",
    )  # fmt: skip
    p.add_argument("--dry-run", dest="dry_run", action="store_true",
                   help="only print the changes")  # fmt: skip
    p.add_argument("--yes", action="store_true", help="install without asking")


def define_crontab(cron: argparse.ArgumentParser, add_common: AddCommon) -> None:
    csub = cron.add_subparsers(dest="action", metavar="ACTION", required=True)
    wrap = csub.add_parser(
        "wrap",
        help="create a monitor per job and run each job under 'tokiflow run'",
        description="Creates one monitor per crontab job (schedule and time zone copied) on the "
        "local data folder and rewrites each job to run under 'tokiflow run'. See docs/run.md.",
    )
    add_common(wrap)
    _add_source(wrap)
    wrap.add_argument("--org", metavar="SLUG", help="organisation (default: the first one)")
    wrap.add_argument(
        "--server-url", dest="server_url", metavar="URL",
        help="Tokiflow's URL as the jobs reach it (default: the base_url setting)",
    )  # fmt: skip
    wrap.add_argument("--tz", help="time zone of jobs without CRON_TZ/TZ (default: the machine's)")
    wrap.add_argument("--grace", default="1h", help="grace time of the new monitors (1h)")
    wrap.add_argument(
        "--tokiflow",
        metavar="PATH",
        help="the tokiflow program cron should run (default: this one)",
    )
    wrap.set_defaults(handler=cmd_wrap)

    unwrap = csub.add_parser(
        "unwrap",
        help="restore the job lines 'crontab wrap' rewrote",
        description="Puts back, byte for byte, the job lines that 'tokiflow crontab wrap' "
        "rewrote with this data folder. The monitors are kept.",
    )
    add_common(unwrap)
    _add_source(unwrap)
    unwrap.set_defaults(handler=cmd_unwrap)
