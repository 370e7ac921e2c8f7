"""Account life cycle: invitations, password resets, two-factor codes (TOTP) and per-user
notification preferences.

Tokens (invitation, reset) are long random values stored as SHA-256 digests and used once;
TOTP secrets are stored sealed with the data folder's key, and each accepted code's time step is
remembered so that a code works once. The SQL is in storage/accounts.py.
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

from tokiflow import licensing
from tokiflow.engine import auth
from tokiflow.storage import accounts
from tokiflow.storage.accounts import ROLES, Invitation, NotificationPrefs, User
from tokiflow.storage.crypto import CryptoError, Sealer
from tokiflow.storage.timefmt import from_db, to_db

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


def check_user_limit(conn: sqlite3.Connection, limits: licensing.Limits) -> None:
    """AccountError (403) when the plan in force allows no more user accounts; they count over
    the whole installation, as the licence covers it."""
    try:
        licensing.check_can_add_user(accounts.count_users(conn), limits)
    except licensing.LicenceLimitError as exc:
        raise AccountError(str(exc), "email", status=403) from None


def create_invitation(
    conn: sqlite3.Connection,
    *,
    org_id: int,
    email: str,
    role: str,
    invited_by: int | None,
    now: dt.datetime,
    limits: licensing.Limits,
) -> tuple[str, Invitation]:
    """A new invitation and its token (shown once); a pending one to the same address is
    replaced, so only the newest link works. Someone without an account yet is refused (403)
    when `limits`, the plan in force, allows no more users."""
    if role not in ROLES:
        raise AccountError(f"role must be one of {', '.join(ROLES)}", "role")
    existing = accounts.user_by_email(conn, email)
    if existing is not None and accounts.membership(conn, existing.id, org_id) is not None:
        raise AccountError(f"{email} is already a member", "email", status=409)
    if existing is None:
        check_user_limit(conn, limits)
    token = auth.new_token()
    found = accounts.create_invitation(
        conn, org_id=org_id, email=email, role=role, token_hash=auth.token_hash(token),
        invited_by=invited_by, now=now, expires_at=now + INVITE_FOR,
    )  # fmt: skip
    return token, found


get_invitation = accounts.get_invitation
pending_invitations = accounts.pending_invitations
revoke_invitation = accounts.revoke_invitation


def invitation_usable(conn: sqlite3.Connection, token: str) -> bool:
    """Whether a link's token names an invitation not used yet (expiry is checked on use)."""
    inv = accounts.invitation_by_hash(conn, auth.token_hash(token))
    return inv is not None and inv.accepted_at is None


def accept_invitation(
    conn: sqlite3.Connection,
    token: str,
    *,
    signed_in: User | None,
    name: str,
    password_hash: str | None,
    now: dt.datetime,
    limits: licensing.Limits,
) -> tuple[User, Invitation, bool]:
    """Use an invitation once: add the signed-in user (whose email must match) or create the
    invited user with `password_hash` (if `limits` allow one more user). Returns (user,
    invitation, whether the user is new)."""
    inv = accounts.invitation_by_hash(conn, auth.token_hash(token))
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
        check_user_limit(conn, limits)
        user = accounts.create_user(
            conn, email=inv.email, name=name.strip(), password_hash=password_hash, now=now
        )
        created = True
    if not accounts.mark_invitation_used(conn, inv.id, now):
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
    accounts.set_role(conn, user_id, org_id, role)
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
    token = auth.new_token()
    accounts.create_reset(conn, user.id, auth.token_hash(token), now, now + RESET_FOR)
    return token, user


def reset_usable(conn: sqlite3.Connection, token: str, now: dt.datetime) -> bool:
    """Whether a reset link's token was issued, is unused and has not expired (to say so before
    a new password is hashed or typed; confirm_reset checks again)."""
    found = accounts.reset_by_hash(conn, auth.token_hash(token))
    return found is not None and found.used_at is None and found.expires_at > now


def confirm_reset(
    conn: sqlite3.Connection, token: str, password_hash: str, now: dt.datetime
) -> User:
    """Use a reset token once: set the new password, unlock the account, end every session."""
    found = accounts.reset_by_hash(conn, auth.token_hash(token))
    if found is None or found.used_at is not None or found.expires_at <= now:
        raise AccountError("this reset link is invalid, was already used or has expired", "token")
    used = accounts.mark_reset_used(conn, found.id, now)
    user = accounts.get_user(conn, found.user_id)
    if not used or user is None:
        raise AccountError("this reset link is invalid, was already used or has expired", "token")
    accounts.set_password(conn, user.id, password_hash)
    accounts.unlock(conn, user.id)
    accounts.delete_sessions_of(conn, user.id)
    return user


def end_other_sessions(conn: sqlite3.Connection, user_id: int, keep_token: str) -> int:
    """Sign a user out everywhere but the session `keep_token` (after a password change)."""
    return accounts.delete_other_sessions(conn, user_id, auth.token_hash(keep_token))


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
    accounts.set_profile(
        conn, user_id, name=None if name is None else name.strip(),
        tz=None if tz is None else check_time_zone(tz),
    )  # fmt: skip
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


def matching_step(secret: bytes, code: str, now: dt.datetime) -> int | None:
    """The time step (Unix time // 30) whose code `code` is, looking at `now` and one step
    either side for clock drift; None when it matches none of them."""
    code = code.strip().replace(" ", "")
    if len(code) != TOTP_DIGITS or not code.isascii() or not code.isdigit():
        return None
    totp = _totp(secret)
    moment = int(now.timestamp())
    for drift in (0, -TOTP_STEP, TOTP_STEP):
        try:
            totp.verify(code.encode(), moment + drift)
        except InvalidToken:
            continue
        return (moment + drift) // TOTP_STEP
    return None


def code_matches(secret: bytes, code: str, now: dt.datetime) -> bool:
    """Whether `code` is right at `now`, one step either side allowed for clock drift."""
    return matching_step(secret, code, now) is not None


def confirm_totp(
    conn: sqlite3.Connection,
    sealer: Sealer,
    user_id: int,
    setup_token: str,
    code: str,
    now: dt.datetime,
) -> None:
    """Turn two-factor sign-in on with the secret of `setup_token` once `code` matches it (that
    code then counts as used)."""
    try:
        blob = base64.urlsafe_b64decode(setup_token.encode())
        data: dict[str, Any] = json.loads(sealer.open(blob, f"totp-setup:{user_id}"))
        secret, issued = bytes.fromhex(data["s"]), from_db(data["t"])
    except (CryptoError, ValueError, KeyError, TypeError):
        raise AccountError("setup_token is not one this server gave you", "setup_token") from None
    if data.get("u") != user_id or issued + TOTP_SETUP_FOR <= now:
        raise AccountError("this set-up has expired: start again", "setup_token")
    step = matching_step(secret, code, now)
    if step is None:
        raise AccountError("that code is not right: check the time on your device", "code")
    if not accounts.turn_totp_on(conn, user_id, sealer.seal(secret, _purpose(user_id)), step):
        raise AccountError("two-factor sign-in is already on", status=409)


def _user_step(sealer: Sealer, user: User, code: str, now: dt.datetime) -> int | None:
    if user.totp_secret is None:
        return None
    try:
        secret = sealer.open(user.totp_secret, _purpose(user.id))
    except CryptoError:
        return None
    return matching_step(secret, code, now)


def user_code_ok(sealer: Sealer, user: User, code: str, now: dt.datetime) -> bool:
    """Whether `code` is the user's current TOTP code and not one already used (False when they
    have no secret). Only a check: sign-in must use `use_code`, which also spends the code."""
    step = _user_step(sealer, user, code, now)
    return step is not None and (user.totp_last_step is None or step > user.totp_last_step)


def use_code(
    conn: sqlite3.Connection, sealer: Sealer, user: User, code: str, now: dt.datetime
) -> bool:
    """Accept the user's TOTP code once: it must be current and of a later time step than the
    last code accepted, which it then becomes (in the caller's write transaction), so a code
    seen by someone else cannot be replayed within its window."""
    step = _user_step(sealer, user, code, now)
    return step is not None and accounts.claim_totp_step(conn, user.id, step)


def disable_totp(conn: sqlite3.Connection, user_id: int) -> bool:
    return accounts.turn_totp_off(conn, user_id)


# -- notification preferences --------------------------------------------------------------------

MODES = ("immediate", "digest", "off")
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


get_prefs = accounts.get_prefs
save_prefs = accounts.save_prefs


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
    zone = zone_of(tz)
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


# -- digest timing -------------------------------------------------------------------------------

DIGEST_HOUR = 8  # digests go out daily at 08:00 in the user's time zone


def zone_of(tz: str) -> zoneinfo.ZoneInfo:
    """The user's zone; UTC for a name this machine does not know (it was checked on save)."""
    try:
        return zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return zoneinfo.ZoneInfo("UTC")


def next_digest_at(prefs: NotificationPrefs, after: dt.datetime, tz: str) -> dt.datetime:
    """When the digest that collects an alert of `after` goes out: the next 08:00 on the user's
    wall clock, or the end of their quiet hours when those cover 08:00."""
    zone = zone_of(tz)
    local = after.astimezone(zone).replace(tzinfo=None)
    wall = local.replace(hour=DIGEST_HOUR, minute=0, second=0, microsecond=0)
    if wall <= local:
        wall += dt.timedelta(days=1)
    when = wall.replace(tzinfo=zone).astimezone(dt.UTC)
    if prefs.quiet_start is not None and prefs.quiet_end is not None:
        quiet = NotificationPrefs("immediate", (), prefs.quiet_start, prefs.quiet_end)
        held = decide(quiet, [], when, tz)
        if held.until is not None:
            when = held.until
    return when
