"""Authentication: passwords (Argon2id), session and API-key tokens, roles and what they allow."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import sqlite3
from dataclasses import dataclass

from cryptography.exceptions import InvalidKey
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from tokiflow.storage import accounts
from tokiflow.storage.accounts import ApiKey, User

SESSION_DAYS = 14
LOCK_AFTER = 10  # failed logins in a row lock the account ...
LOCK_FOR = dt.timedelta(minutes=15)  # ... for this long
MIN_PASSWORD = 10
KEY_RW = "tfk_rw_"
KEY_RO = "tfk_ro_"

# What each role may do: read, write (monitors, channels, incidents), admin (members, keys,
# audit, organisation settings), billing (licence and plan).
ROLE_SCOPES = {
    "owner": {"read", "write", "admin", "billing"},
    "admin": {"read", "write", "admin", "billing"},
    "editor": {"read", "write"},
    "viewer": {"read"},
    "billing": {"billing"},
}


class AuthError(Exception):
    """Sign-in or token check failed; str() is safe to show (it never says which part was wrong)."""


class PasswordPolicyError(ValueError):
    """A new password is too weak."""


def hash_password(password: str) -> str:
    """An Argon2id PHC string (OWASP's minimum: 19 MiB, 2 iterations, 1 lane)."""
    check_password_policy(password)
    kdf = Argon2id(
        salt=secrets.token_bytes(16), length=32, iterations=2, lanes=1, memory_cost=19 * 1024
    )
    return kdf.derive_phc_encoded(password.encode())


def verify_password(password: str, phc: str) -> bool:
    try:
        Argon2id.verify_phc_encoded(password.encode(), phc)
    except (InvalidKey, ValueError):
        return False
    return True


def check_password_policy(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise PasswordPolicyError(f"password must be at least {MIN_PASSWORD} characters")
    if len(password) > 1024:
        raise PasswordPolicyError("password must be at most 1024 characters")


def token_hash(token: str) -> str:
    """The stored form of a random token (session, API key, invitation, reset)."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


# A fixed hash to verify against when the account does not exist, so that timing does not tell
# whether an email address has an account.
_DUMMY_HASH = (
    "$argon2id$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$"
    "PCsveEsBeTsGtZTMWJS4dWpvKM5lbVRZhVdrT0A474s"
)


def login(conn: sqlite3.Connection, email: str, password: str, now: dt.datetime) -> User:
    """Check an email and password; counts failures and locks the account after too many."""
    user = accounts.user_by_email(conn, email)
    if user is None:
        verify_password(password, _DUMMY_HASH)
        raise AuthError("wrong email or password")
    if user.locked_until is not None and user.locked_until > now:
        raise AuthError("too many failed sign-ins: try again later or reset your password")
    if not verify_password(password, user.password_hash):
        record_failure(conn, user, now)
        raise AuthError("wrong email or password")
    accounts.record_login(conn, user.id, ok=True, now=now, lock_until=None)
    return user


def record_failure(conn: sqlite3.Connection, user: User, now: dt.datetime) -> None:
    """Count a failed sign-in (a wrong password or two-factor code) on top of `user`'s count as
    read before this attempt; lock after too many."""
    failures = user.failed_logins + 1
    lock = now + LOCK_FOR if failures >= LOCK_AFTER else None
    accounts.record_login(conn, user.id, ok=False, now=now, lock_until=lock, failures=failures)


@dataclass(frozen=True)
class NewSession:
    token: str
    csrf_token: str
    expires_at: dt.datetime


def start_session(
    conn: sqlite3.Connection, user: User, now: dt.datetime, *, ip: str = "", user_agent: str = ""
) -> NewSession:
    token, csrf = new_token(), new_token()
    expires = now + dt.timedelta(days=SESSION_DAYS)
    accounts.create_session(
        conn, token_hash=token_hash(token), user_id=user.id, csrf_token=csrf, now=now,
        expires_at=expires, ip=ip, user_agent=user_agent[:200],
    )  # fmt: skip
    return NewSession(token, csrf, expires)


def session_user(
    conn: sqlite3.Connection, token: str, now: dt.datetime
) -> tuple[User, accounts.Session] | None:
    """The signed-in user of a session cookie, or None when it is unknown or expired."""
    session = accounts.session_by_hash(conn, token_hash(token))
    if session is None or session.expires_at <= now:
        return None
    user = accounts.get_user(conn, session.user_id)
    return None if user is None else (user, session)


@dataclass(frozen=True)
class NewKey:
    key: str  # shown once, never stored
    row: ApiKey


def create_api_key(
    conn: sqlite3.Connection,
    *,
    org_id: int,
    name: str,
    read_only: bool,
    now: dt.datetime,
    expires_at: dt.datetime | None = None,
    created_by: str = "",
) -> NewKey:
    """A new key `tfk_rw_...` or `tfk_ro_...` (the prefix tells its kind)."""
    if not name.strip() or len(name) > 100:
        raise ValueError("name must be 1 to 100 characters")
    key = (KEY_RO if read_only else KEY_RW) + secrets.token_urlsafe(30)
    row = accounts.create_key(
        conn, org_id=org_id, name=name.strip(), prefix=key[:12], key_hash=token_hash(key),
        read_only=read_only, now=now, expires_at=expires_at, created_by=created_by,
    )  # fmt: skip
    return NewKey(key, row)


def check_api_key(conn: sqlite3.Connection, key: str, now: dt.datetime) -> ApiKey:
    """The key row for a presented key; AuthError when unknown, revoked or expired."""
    row = accounts.key_by_hash(conn, token_hash(key.strip()))
    if row is None:
        raise AuthError("invalid API key")
    if row.revoked_at is not None:
        raise AuthError("this API key was revoked")
    if row.expires_at is not None and row.expires_at <= now:
        raise AuthError("this API key has expired")
    return row


def constant_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
