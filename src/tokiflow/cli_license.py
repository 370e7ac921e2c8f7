"""Commands: `tokiflow license install|show` (operators) and `license issue|keygen` (the vendor).

`issue` and `keygen` need the vendor's private signing key, which never ships with Tokiflow:
they are here so that the vendor signs with the very code that verifies.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tokiflow import licensing
from tokiflow.cli import AddCommon, CliError
from tokiflow.clock import Clock, SystemClock
from tokiflow.config import Settings
from tokiflow.licensing import LicenceError


class LicenceCommandError(CliError):
    """A licence command cannot do what was asked; reported as one line."""


Keys = Mapping[str, Ed25519PublicKey] | None


def _fail(exc: LicenceError) -> LicenceCommandError:
    return LicenceCommandError(str(exc))


def cmd_install(
    settings: Settings, args: argparse.Namespace, *, keys: Keys = None, clock: Clock | None = None
) -> int:
    now = (clock or SystemClock()).now()
    try:
        lic = licensing.install(Path(args.file), settings.data_dir, now, keys)
    except LicenceError as exc:
        raise _fail(exc) from None
    st = licensing.status(lic, now)
    print(f"installed the {lic.plan} licence for {lic.licensee} in {settings.data_dir}")
    _print_status(st)
    print("a running server applies it to the next monitor or user added; no restart is needed")
    return 0


def cmd_show(
    settings: Settings, args: argparse.Namespace, *, keys: Keys = None, clock: Clock | None = None
) -> int:
    now = (clock or SystemClock()).now()
    try:
        lic = licensing.load_installed(settings.data_dir, keys)
    except LicenceError as exc:
        path = licensing.licence_path(settings.data_dir)
        raise LicenceCommandError(f"the installed licence {path} is not valid: {exc}") from None
    st = licensing.status(lic, now)
    if args.json:
        print(json.dumps(st.as_json()))
    else:
        _print_status(st)
    return 0


def _print_status(st: licensing.Status) -> None:
    lic, lim = st.licence, st.limits
    rows: list[tuple[str, Any]] = []
    if lic is None:
        rows.append(("plan", "FREE (no licence installed)"))
    else:
        rows += [
            ("licensee", lic.licensee + (f" <{lic.email}>" if lic.email else "")),
            ("licence", f"{lic.id} ({lic.plan})"),
            ("issued", lic.issued.isoformat()),
            ("expires", lic.expires.isoformat() if lic.expires else "never"),
            ("state", st.state),
            ("plan in force", lim.plan),
        ]
    rows += [
        ("monitors", _limit(lim.monitors)),
        ("users", _limit(lim.users)),
        ("retention", "unlimited" if lim.retention_days is None else f"{lim.retention_days} days"),
        ("features", ", ".join(sorted(lim.features)) or "-"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    if st.banner:
        print(f"WARNING: {st.banner}")


def _limit(value: int | None) -> str:
    return "unlimited" if value is None else str(value)


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date (YYYY-MM-DD)") from None


def _expiry(text: str) -> dt.date | None:
    return None if text == "never" else _date(text)


def _count(text: str) -> int | None:
    if text == "unlimited":
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number or 'unlimited'") from None
    if value < 0:
        raise argparse.ArgumentTypeError("expected a number >= 0 or 'unlimited'")
    return value


def cmd_issue(settings: Settings, args: argparse.Namespace) -> int:
    del settings
    try:
        key = licensing.load_private_key(Path(args.key))
        text = licensing.issue(
            key,
            licensee=args.licensee,
            email=args.email or "",
            plan=args.plan,
            issued=args.issued or SystemClock().now().date(),
            expires=args.expires,
            monitors="plan" if args.monitors is False else args.monitors,
            users="plan" if args.users is False else args.users,
            retention_days="plan" if args.retention_days is False else args.retention_days,
            features=args.feature or (),
        )
    except LicenceError as exc:
        raise _fail(exc) from None
    if licensing.key_id(key.public_key()) not in licensing.trusted_keys():
        print(
            "tokiflow: warning: this signing key is not built into this Tokiflow, whose "
            "servers will refuse the licence",
            file=sys.stderr,
        )
    if args.out:
        Path(args.out).write_text(text)
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def cmd_keygen(settings: Settings, args: argparse.Namespace) -> int:
    del settings
    out = Path(args.out)
    key = licensing.generate_private_key()
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise LicenceCommandError(f"{out} already exists; not overwriting a signing key") from None
    except OSError as exc:
        raise LicenceCommandError(f"cannot create {out}: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(licensing.private_key_pem(key))
    pub = key.public_key()
    print(f"wrote the private signing key to {out} (keep it secret; it never ships)")
    print("add this line to BUILT_IN_PUBLIC_KEYS in src/tokiflow/licensing.py:")
    print(f'    "{licensing.key_id(pub)}": "{licensing.public_key_text(pub)}",')
    return 0


def define_license(lic: argparse.ArgumentParser, add_common: AddCommon) -> None:
    lsub = lic.add_subparsers(dest="action", metavar="ACTION", required=True)

    inst = lsub.add_parser("install", help="verify a licence file and install it")
    add_common(inst)
    inst.add_argument("file", help="the licence file you received")
    inst.set_defaults(handler=cmd_install)

    show = lsub.add_parser("show", help="the licence, the plan in force and its limits")
    add_common(show)
    show.add_argument("--json", action="store_true", help="print one JSON object")
    show.set_defaults(handler=cmd_show)

    issue = lsub.add_parser("issue", help="vendor: sign a licence with the private key")
    issue.add_argument("--key", required=True, metavar="FILE", help="PEM Ed25519 private key")
    issue.add_argument("--licensee", required=True, help="who the licence is for")
    issue.add_argument("--email", help="the licensee's contact address")
    issue.add_argument("--plan", required=True, type=str.upper, choices=licensing.PLANS)
    issue.add_argument(
        "--expires", required=True, type=_expiry, help="last valid day, YYYY-MM-DD, or 'never'"
    )
    issue.add_argument("--issued", type=_date, help="issue date (default: today, UTC)")
    for flag, what in (("--monitors", "monitors"), ("--users", "users")):
        issue.add_argument(
            flag, type=_count, default=False, help=f"{what} allowed (default: the plan's)"
        )
    issue.add_argument(
        "--retention-days",
        dest="retention_days",
        type=_count,
        default=False,
        help="days of history kept (default: the plan's)",
    )
    issue.add_argument(
        "--feature",
        action="append",
        choices=licensing.FEATURES,
        help="a feature beyond the plan's (repeatable)",
    )
    issue.add_argument("--out", metavar="FILE", help="write here instead of standard output")
    issue.set_defaults(handler=cmd_issue)

    keygen = lsub.add_parser("keygen", help="vendor: create a new licence-signing key pair")
    keygen.add_argument("--out", required=True, metavar="FILE", help="where the private key goes")
    keygen.set_defaults(handler=cmd_keygen)
