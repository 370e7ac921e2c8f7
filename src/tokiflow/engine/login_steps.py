"""Sign-in in two steps for accounts with two-factor codes.

The password step checks the password but does not say whether it was right: it hands out a
sealed, short-lived ticket that records the answer where only the server can read it. The code
step opens the ticket and signs in only when both the password and the code were right, so the
answer to a password guess is never given without a valid code. Failures count towards the
account lock exactly as one-step sign-in does (engine.auth).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from tokiflow.engine import accounts as account_ops
from tokiflow.engine import auth
from tokiflow.storage import accounts
from tokiflow.storage.accounts import User
from tokiflow.storage.crypto import CryptoError, Sealer
from tokiflow.storage.timefmt import from_db, to_db

TICKET_FOR = dt.timedelta(minutes=5)
FAILED = "wrong email, password or two-factor code"
LOCKED = "too many failed sign-ins: try again later or reset your password"
_PURPOSE = "login-second-step"


@dataclass(frozen=True)
class Ticket:
    """What the password step found, readable only by the server."""

    user_id: int
    password_ok: bool
    issued: dt.datetime
    fingerprint: str


def needs_code(conn: sqlite3.Connection, email: str) -> User | None:
    """The account of `email` when it has two-factor sign-in on (the code step follows)."""
    user = accounts.user_by_email(conn, email.strip())
    return user if user is not None and user.totp_secret is not None else None


def is_locked(user: User, now: dt.datetime) -> bool:
    return user.locked_until is not None and user.locked_until > now


def _fingerprint(user: User) -> str:
    """Changes when the password or the two-factor secret does, so that a ticket issued before
    a password reset is worth nothing after it."""
    material = user.password_hash.encode() + b"|" + (user.totp_secret or b"")
    return hashlib.sha256(material).hexdigest()[:32]


def issue(sealer: Sealer, user: User, password_ok: bool, now: dt.datetime) -> str:
    """A sealed ticket for the code step (text safe for a form field)."""
    payload = {"u": user.id, "ok": password_ok, "t": to_db(now), "f": _fingerprint(user)}
    blob = sealer.seal(json.dumps(payload).encode(), _PURPOSE)
    return base64.urlsafe_b64encode(blob).decode()


def read_ticket(sealer: Sealer, text: str, now: dt.datetime) -> Ticket | None:
    """The ticket, or None when it was not issued here, was altered or has expired."""
    try:
        blob = base64.urlsafe_b64decode(text.encode())
        data: dict[str, Any] = json.loads(sealer.open(blob, _PURPOSE))
        ticket = Ticket(int(data["u"]), data["ok"] is True, from_db(data["t"]), str(data["f"]))
    except (CryptoError, ValueError, KeyError, TypeError):
        return None
    if ticket.issued > now or ticket.issued + TICKET_FOR <= now:
        return None
    return ticket


def finish(
    conn: sqlite3.Connection, sealer: Sealer, ticket: Ticket, code: str, now: dt.datetime
) -> User | str:
    """The signed-in user when the ticket's password and `code` were both right; else the
    message to show (the failure is counted and commits with the caller's transaction)."""
    user = accounts.get_user(conn, ticket.user_id)
    if user is None or user.totp_secret is None:
        return FAILED
    if is_locked(user, now):
        return LOCKED
    right = (
        ticket.password_ok
        and auth.constant_equal(ticket.fingerprint, _fingerprint(user))
        and account_ops.use_code(conn, sealer, user, code, now)
    )
    if not right:
        auth.record_failure(conn, user, now)
        return FAILED
    accounts.record_login(conn, user.id, ok=True, now=now, lock_until=None)
    return user
