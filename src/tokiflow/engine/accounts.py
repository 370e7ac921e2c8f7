"""Account life cycle: invitations, password resets, two-factor codes (TOTP) and per-user
notification preferences.

Tokens (invitation, reset) are long random values stored as SHA-256 digests and used once;
TOTP secrets are stored sealed with the data folder's key. The SQL for the invitations,
password_resets and notification_prefs tables lives here until it moves to storage/accounts.py.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import secrets
import sqlite3
import zoneinfo
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.hashes import SHA1
from cryptography.hazmat.primitives.twofactor import InvalidToken
from cryptography.hazmat.primitives.twofactor.totp import TOTP

from tokiflow.engine import auth
from tokiflow.storage import accounts
from tokiflow.storage.accounts import ROLES, User
from tokiflow.storage.crypto import CryptoError, Sealer
from tokiflow.storage.timefmt import from_db, opt_from_db, to_db

INVITE_FOR = dt.timedelta(days=7)
RESET_FOR = dt.timedelta(hours=1)
TOTP_SETUP_FOR = dt.timedelta(minutes=15)
TOTP_DIGITS = 6
TOTP_STEP = 30
TOTP_ISSUER = "Tokiflow"


class AccountError(ValueError):
    """A request that cannot be done; str() is safe to show; `field` names the input at fault."""

    def __init__(self, message: str, field: str = "", *, status: int = 400) -> None:
        super().__init__(message)
        self.field = field
        self.status = status


# -- invitations ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Invitation:
    id: int
    org_id: int
    email: str
    role: str
    invited_by: int | None
    created_at: dt.datetime
    expires_at: dt.datetime
    accepted_at: dt.datetime | None


_INVITE = "id, org_id, email, role, invited_by, created_at, expires_at, accepted_at"


def _invitation(r: tuple) -> Invitation:
    return Invitation(r[0], r[1], r[2], r[3], r[4], from_db(r[5]), from_db(r[6]), opt_from_db(r[7]))


def create_invitation(
    conn: sqlite3.Connection,
    *,
    org_id: int,
    email: str,
    role: str,
    invited_by: int | None,
    now: dt.datetime,
) -> tuple[str, Invitation]:
    """A new invitation and its token (shown once); a pending one to the same address is
    replaced, so only the newest link works."""
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}", "role")
    existing = accounts.user_by_email(conn, email)
    if existing is not None and accounts.membership(conn, existing.id, org_id) is not None:
        raise AccountError(f"{email} is already a member", "email", status=409)
    conn.execute(
        "DELETE FROM invitations WHERE org_id = ? AND email = ? AND accepted_at IS NULL",
        (org_id, email),
    )
    token = auth.new_token()
    cur = conn.execute(
        "INSERT INTO invitations(org_id, email, role, token_hash, invited_by, created_at, "
        "expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (org_id, email, role, auth.token_hash(token), invited_by, to_db(now),
         to_db(now + INVITE_FOR)),
    )  # fmt: skip
    found = get_invitation(conn, int(cur.lastrowid or 0))
    assert found is not None
    return token, found


def get_invitation(conn: sqlite3.Connection, invitation_id: int) -> Invitation | None:
    row = conn.execute(
        f"SELECT {_INVITE} FROM invitations WHERE id = ?", (invitation_id,)
    ).fetchone()
    return None if row is None else _invitation(row)


def pending_invitations(conn: sqlite3.Connection, org_id: int) -> list[Invitation]:
    """Invitations not accepted yet (expired ones too, so they can be seen and revoked)."""
    rows = conn.execute(
        f"SELECT {_INVITE} FROM invitations WHERE org_id = ? AND accepted_at IS NULL ORDER BY id",
        (org_id,),
    )
    return [_invitation(r) for r in rows]


def revoke_invitation(conn: sqlite3.Connection, invitation_id: int) -> bool:
    cur = conn.execute(
        "DELETE FROM invitations WHERE id = ? AND accepted_at IS NULL", (invitation_id,)
    )
    return cur.rowcount == 1


def accept_invitation(
    conn: sqlite3.Connection,
    token: str,
    *,
    signed_in: User | None,
    name: str,
    password_hash: str | None,
    now: dt.datetime,
) -> tuple[User, Invitation, bool]:
    """Use an invitation once: add the signed-in user (whose email must match) or create the
    invited user with `password_hash`. Returns (user, invitation, whether the user is new)."""
    row = conn.execute(
        f"SELECT {_INVITE} FROM invitations WHERE token_hash = ?", (auth.token_hash(token),)
    ).fetchone()
    inv = None if row is None else _invitation(row)
    if inv is None or inv.accepted_at is not None or inv.expires_at <= now:
        raise AccountError("this invitation link is invalid, was already used or has expired")
    created = False
    if signed_in is not None:
        if signed_in.email.lower() != inv.email.lower():
            raise AccountError(
                f"this invitation is for {inv.email}: sign out, or sign in as that user", status=403
            )
        user = signed_in
    else:
        found = accounts.user_by_email(conn, inv.email)
        if found is not None:
            raise AccountError(
                f"{inv.email} already has an account: sign in first, then open the link again",
                status=409,
            )
        if password_hash is None:
            raise AccountError("choose a password for the new account", "password")
        user = accounts.create_user(
            conn, email=inv.email, name=name.strip(), password_hash=password_hash, now=now
        )
        created = True
    used = conn.execute(
        "UPDATE invitations SET accepted_at = ? WHERE id = ? AND accepted_at IS NULL",
        (to_db(now), inv.id),
    )
    if used.rowcount != 1:
        raise AccountError("this invitation link is invalid, was already used or has expired")
    current = accounts.membership(conn, user.id, inv.org_id)
    if current is None:
        accounts.add_member(conn, user.id, inv.org_id, inv.role, now)
    return user, inv, created


# -- members -------------------------------------------------------------------------------------


def change_role(
    conn: sqlite3.Connection, org_id: int, user_id: int, role: str, *, by_owner: bool
) -> tuple[str, str]:
    """Give a member another role; returns (old, new). Only owners grant or take the owner
    role, and the last owner keeps it."""
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}", "role")
    m = accounts.membership(conn, user_id, org_id)
    if m is None:
        raise AccountError("member not found", status=404)
    if "owner" in (m.role, role) and m.role != role and not by_owner:
        raise AccountError("only an owner may grant or take away the owner role", status=403)
    if m.role == "owner" and role != "owner" and accounts.owners(conn, org_id) <= 1:
        raise AccountError("the last owner cannot be demoted: make someone else owner first",
                           status=409)  # fmt: skip
    conn.execute(
        "UPDATE memberships SET role = ? WHERE user_id = ? AND org_id = ?", (role, user_id, org_id)
    )
    return m.role, role


def remove_member(conn: sqlite3.Connection, org_id: int, user_id: int, *, by_owner: bool) -> str:
    """Take a member out of the organisation; returns the role they had."""
    m = accounts.membership(conn, user_id, org_id)
    if m is None:
        raise AccountError("member not found", status=404)
    if m.role == "owner" and not by_owner:
        raise AccountError("only an owner may remove an owner", status=403)
    if m.role == "owner" and accounts.owners(conn, org_id) <= 1:
        raise AccountError("the last owner cannot be removed: make someone else owner first",
                           status=409)  # fmt: skip
    accounts.remove_member(conn, user_id, org_id)
    return m.role


# -- password reset ------------------------------------------------------------------------------


def request_reset(
    conn: sqlite3.Connection, email: str, now: dt.datetime
) -> tuple[str, User] | None:
    """A reset token for the account of `email` (None when there is none); earlier unused
    tokens of that user stop working."""
    user = accounts.user_by_email(conn, email)
    if user is None:
        return None
    conn.execute("DELETE FROM password_resets WHERE user_id = ? AND used_at IS NULL", (user.id,))
    token = auth.new_token()
    conn.execute(
        "INSERT INTO password_resets(user_id, token_hash, created_at, expires_at) "
        "VALUES (?, ?, ?, ?)",
        (user.id, auth.token_hash(token), to_db(now), to_db(now + RESET_FOR)),
    )
    return token, user


def confirm_reset(
    conn: sqlite3.Connection, token: str, password_hash: str, now: dt.datetime
) -> User:
    """Use a reset token once: set the new password, unlock the account, end every session."""
    row = conn.execute(
        "SELECT id, user_id, expires_at, used_at FROM password_resets WHERE token_hash = ?",
        (auth.token_hash(token),),
    ).fetchone()
    if row is None or row[3] is not None or from_db(row[2]) <= now:
        raise AccountError("this reset link is invalid, was already used or has expired", "token")
    used = conn.execute(
        "UPDATE password_resets SET used_at = ? WHERE id = ? AND used_at IS NULL",
        (to_db(now), row[0]),
    )
    user = accounts.get_user(conn, row[1])
    if used.rowcount != 1 or user is None:
        raise AccountError("this reset link is invalid, was already used or has expired", "token")
    accounts.set_password(conn, user.id, password_hash)
    conn.execute("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = ?", (user.id,))
    accounts.delete_sessions_of(conn, user.id)
    return user


def end_other_sessions(conn: sqlite3.Connection, user_id: int, keep_token: str) -> int:
    """Sign a user out everywhere but the session `keep_token` (after a password change)."""
    cur = conn.execute(
        "DELETE FROM sessions WHERE user_id = ? AND token_hash != ?",
        (user_id, auth.token_hash(keep_token)),
    )
    return cur.rowcount


# -- profile -------------------------------------------------------------------------------------


def check_time_zone(name: str) -> str:
    """An IANA time zone name, or AccountError."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise AccountError(f"unknown time zone {name!r} (use a name like Europe/London)",
                           "tz") from None  # fmt: skip
    return name


def update_profile(
    conn: sqlite3.Connection, user_id: int, *, name: str | None, tz: str | None
) -> User:
    if tz is not None:
        conn.execute("UPDATE users SET tz = ? WHERE id = ?", (check_time_zone(tz), user_id))
    if name is not None:
        conn.execute("UPDATE users SET name = ? WHERE id = ?", (name.strip(), user_id))
    user = accounts.get_user(conn, user_id)
    assert user is not None
    return user


# -- two-factor codes (TOTP, RFC 6238) -----------------------------------------------------------


def _totp(secret: bytes) -> TOTP:
    return TOTP(secret, TOTP_DIGITS, SHA1(), TOTP_STEP)


def _purpose(user_id: int) -> str:
    return f"totp:{user_id}"


@dataclass(frozen=True)
class TotpSetup:
    secret: str  # base32, for typing into an app by hand
    uri: str  # otpauth://, for a QR code
    setup_token: str  # the secret sealed for this user; sent back with the first code
    expires_at: dt.datetime


def start_totp(sealer: Sealer, user: User, now: dt.datetime) -> TotpSetup:
    """A new secret, not stored yet: it is handed out sealed and only kept once a code from
    it is confirmed (so a set-up abandoned half way never locks anyone out)."""
    if user.totp_secret is not None:
        raise AccountError("two-factor sign-in is already on: turn it off first", status=409)
    secret = secrets.token_bytes(20)
    payload = json.dumps({"s": secret.hex(), "u": user.id, "t": to_db(now)}).encode()
    token = base64.urlsafe_b64encode(sealer.seal(payload, f"totp-setup:{user.id}")).decode()
    uri = _totp(secret).get_provisioning_uri(user.email, TOTP_ISSUER)
    return TotpSetup(base64.b32encode(secret).decode(), uri, token, now + TOTP_SETUP_FOR)


def code_matches(secret: bytes, code: str, now: dt.datetime) -> bool:
    """Whether `code` is right at `now`, one step either side allowed for clock drift."""
    code = code.strip().replace(" ", "")
    if len(code) != TOTP_DIGITS or not code.isascii() or not code.isdigit():
        return False
    totp = _totp(secret)
    moment = int(now.timestamp())
    for drift in (0, -TOTP_STEP, TOTP_STEP):
        try:
            totp.verify(code.encode(), moment + drift)
            return True
        except InvalidToken:
            continue
    return False


def confirm_totp(
    conn: sqlite3.Connection,
    sealer: Sealer,
    user_id: int,
    setup_token: str,
    code: str,
    now: dt.datetime,
) -> None:
    """Turn two-factor sign-in on with the secret of `setup_token` once `code` matches it."""
    try:
        blob = base64.urlsafe_b64decode(setup_token.encode())
        data: dict[str, Any] = json.loads(sealer.open(blob, f"totp-setup:{user_id}"))
        secret, issued = bytes.fromhex(data["s"]), from_db(data["t"])
    except (CryptoError, ValueError, KeyError, TypeError):
        raise AccountError("setup_token is not one this server gave you", "setup_token") from None
    if data.get("u") != user_id or issued + TOTP_SETUP_FOR <= now:
        raise AccountError("this set-up has expired: start again", "setup_token")
    if not code_matches(secret, code, now):
        raise AccountError("that code is not right: check the time on your device", "code")
    cur = conn.execute(
        "UPDATE users SET totp_secret = ? WHERE id = ? AND totp_secret IS NULL",
        (sealer.seal(secret, _purpose(user_id)), user_id),
    )
    if cur.rowcount != 1:
        raise AccountError("two-factor sign-in is already on", status=409)


def user_code_ok(sealer: Sealer, user: User, code: str, now: dt.datetime) -> bool:
    """Whether `code` is the user's current TOTP code (False when they have no secret)."""
    if user.totp_secret is None:
        return False
    try:
        secret = sealer.open(user.totp_secret, _purpose(user.id))
    except CryptoError:
        return False
    return code_matches(secret, code, now)


def disable_totp(conn: sqlite3.Connection, user_id: int) -> bool:
    cur = conn.execute(
        "UPDATE users SET totp_secret = NULL WHERE id = ? AND totp_secret IS NOT NULL", (user_id,)
    )
    return cur.rowcount == 1


# -- notification preferences --------------------------------------------------------------------

MODES = ("immediate", "digest", "off")
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


@dataclass(frozen=True)
class NotificationPrefs:
    """How one user of one organisation wants to hear about incidents."""

    mode: str = "immediate"
    tags: tuple[str, ...] = ()  # only monitors with one of these tags (empty: all)
    quiet_start: str | None = None  # HH:MM in the user's time zone
    quiet_end: str | None = None


def get_prefs(conn: sqlite3.Connection, user_id: int, org_id: int) -> NotificationPrefs:
    row = conn.execute(
        "SELECT mode, tags, quiet_start, quiet_end FROM notification_prefs "
        "WHERE user_id = ? AND org_id = ?",
        (user_id, org_id),
    ).fetchone()
    if row is None:
        return NotificationPrefs()
    return NotificationPrefs(row[0], tuple(row[1].split()), row[2], row[3])


def check_prefs(
    mode: str, tags: list[str], quiet_start: str | None, quiet_end: str | None
) -> NotificationPrefs:
    if mode not in MODES:
        raise AccountError(f"mode must be one of {', '.join(MODES)}", "mode")
    for tag in tags:
        if not tag or any(c.isspace() for c in tag):
            raise AccountError("a tag is one word with no spaces", "tags")
    for name, value in (("quiet_start", quiet_start), ("quiet_end", quiet_end)):
        if value is not None and not _HHMM.match(value):
            raise AccountError("must be a time as HH:MM (00:00 to 23:59)", name)
    if (quiet_start is None) != (quiet_end is None):
        raise AccountError("give both quiet_start and quiet_end, or neither", "quiet_end")
    if quiet_start is not None and quiet_start == quiet_end:
        raise AccountError("quiet hours must not start and end at the same time", "quiet_end")
    return NotificationPrefs(mode, tuple(dict.fromkeys(tags)), quiet_start, quiet_end)


def save_prefs(
    conn: sqlite3.Connection, user_id: int, org_id: int, prefs: NotificationPrefs
) -> None:
    conn.execute(
        "INSERT INTO notification_prefs(user_id, org_id, mode, tags, quiet_start, quiet_end) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(user_id, org_id) DO UPDATE SET mode = excluded.mode, "
        "tags = excluded.tags, quiet_start = excluded.quiet_start, quiet_end = excluded.quiet_end",
        (user_id, org_id, prefs.mode, " ".join(prefs.tags), prefs.quiet_start, prefs.quiet_end),
    )


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


@dataclass(frozen=True)
class Decision:
    """What to do with one alert for one user: `now`, `digest`, `hold` (until `until`, the end
    of their quiet hours) or `skip`."""

    action: str
    until: dt.datetime | None = None


def decide(prefs: NotificationPrefs, monitor_tags: list[str], at: dt.datetime, tz: str) -> Decision:
    """Apply a user's preferences to an alert about a monitor with `monitor_tags` at `at`.

    Order: `off` skips everything; a tag filter skips monitors with none of the tags;
    `digest` collects the rest for the daily digest; `immediate` sends now, except inside
    quiet hours (which may cross midnight), where the alert is held until they end.
    """
    if prefs.mode == "off":
        return Decision("skip")
    if prefs.tags and not set(prefs.tags) & set(monitor_tags):
        return Decision("skip")
    if prefs.mode == "digest":
        return Decision("digest")
    if prefs.quiet_start is None or prefs.quiet_end is None:
        return Decision("now")
    zone = zoneinfo.ZoneInfo(tz)
    local = at.astimezone(zone)
    minute = local.hour * 60 + local.minute
    start, end = _minutes(prefs.quiet_start), _minutes(prefs.quiet_end)
    quiet = start <= minute < end if start < end else minute >= start or minute < end
    if not quiet:
        return Decision("now")
    wait = (end - minute) % (24 * 60)
    wall_end = (local.replace(second=0, microsecond=0, tzinfo=None)
                + dt.timedelta(minutes=wait))  # fmt: skip
    # The end of quiet hours on the wall clock; fold=0 picks the first of a repeated hour and
    # a time in a DST gap is read with the offset before the gap.
    return Decision("hold", wall_end.replace(tzinfo=zone).astimezone(dt.UTC))
