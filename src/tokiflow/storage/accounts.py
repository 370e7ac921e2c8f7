"""Users, memberships, sessions, API keys, invitations and password resets.

Secrets are never stored in clear: passwords as Argon2id PHC strings, session tokens, API keys,
invitation and reset tokens as SHA-256 digests (they are long random values, so a fast hash is
enough), TOTP secrets sealed with the data folder's key.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass

from tokiflow.storage.timefmt import from_db, opt_from_db, to_db

ROLES = ("owner", "admin", "editor", "viewer", "billing")


@dataclass(frozen=True)
class User:
    id: int
    email: str
    name: str
    password_hash: str
    totp_secret: bytes | None
    tz: str
    created_at: dt.datetime
    last_login_at: dt.datetime | None
    failed_logins: int
    locked_until: dt.datetime | None


@dataclass(frozen=True)
class Membership:
    user_id: int
    org_id: int
    role: str


@dataclass(frozen=True)
class Session:
    id: int
    user_id: int
    csrf_token: str
    created_at: dt.datetime
    expires_at: dt.datetime


@dataclass(frozen=True)
class ApiKey:
    id: int
    org_id: int
    name: str
    prefix: str
    read_only: bool
    created_at: dt.datetime
    expires_at: dt.datetime | None
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None
    created_by: str


_USER = (
    "id, email, name, password_hash, totp_secret, tz, created_at, last_login_at, failed_logins, "
    "locked_until"
)
_KEY = (
    "id, org_id, name, prefix, read_only, created_at, expires_at, last_used_at, revoked_at, "
    "created_by"
)


def _user(r: tuple) -> User:
    return User(
        r[0], r[1], r[2], r[3], None if r[4] is None else bytes(r[4]), r[5], from_db(r[6]),
        opt_from_db(r[7]), r[8], opt_from_db(r[9]),
    )  # fmt: skip


def _key(r: tuple) -> ApiKey:
    return ApiKey(
        r[0], r[1], r[2], r[3], bool(r[4]), from_db(r[5]), opt_from_db(r[6]), opt_from_db(r[7]),
        opt_from_db(r[8]), r[9],
    )  # fmt: skip


# -- users -------------------------------------------------------------------------------------


def count_users(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM users").fetchone()[0])


def create_user(
    conn: sqlite3.Connection, *, email: str, name: str, password_hash: str, now: dt.datetime
) -> User:
    cur = conn.execute(
        "INSERT INTO users(email, name, password_hash, created_at) VALUES (?, ?, ?, ?)",
        (email, name, password_hash, to_db(now)),
    )
    user = get_user(conn, int(cur.lastrowid or 0))
    assert user is not None
    return user


def get_user(conn: sqlite3.Connection, user_id: int) -> User | None:
    row = conn.execute(f"SELECT {_USER} FROM users WHERE id = ?", (user_id,)).fetchone()
    return None if row is None else _user(row)


def user_by_email(conn: sqlite3.Connection, email: str) -> User | None:
    row = conn.execute(f"SELECT {_USER} FROM users WHERE email = ?", (email.strip(),)).fetchone()
    return None if row is None else _user(row)


def set_password(conn: sqlite3.Connection, user_id: int, password_hash: str) -> None:
    conn.execute("UPDATE users SET password_hash = ? WHERE id = ?", (password_hash, user_id))


def set_totp(conn: sqlite3.Connection, user_id: int, sealed: bytes | None) -> None:
    conn.execute("UPDATE users SET totp_secret = ? WHERE id = ?", (sealed, user_id))


def record_login(
    conn: sqlite3.Connection,
    user_id: int,
    *,
    ok: bool,
    now: dt.datetime,
    lock_until: dt.datetime | None,
    failures: int | None = None,
) -> None:
    """Count a login attempt: success resets the failure count, failure sets it (or adds one)
    and may lock the account."""
    if not ok and failures is not None:
        conn.execute(
            "UPDATE users SET failed_logins = ?, locked_until = ? WHERE id = ?",
            (failures, None if lock_until is None else to_db(lock_until), user_id),
        )
        return
    if ok:
        conn.execute(
            "UPDATE users SET last_login_at = ?, failed_logins = 0, locked_until = NULL WHERE id = ?",
            (to_db(now), user_id),
        )
    else:
        conn.execute(
            "UPDATE users SET failed_logins = failed_logins + 1, locked_until = ? WHERE id = ?",
            (None if lock_until is None else to_db(lock_until), user_id),
        )


# -- memberships -------------------------------------------------------------------------------


def add_member(
    conn: sqlite3.Connection, user_id: int, org_id: int, role: str, now: dt.datetime
) -> None:
    conn.execute(
        "INSERT INTO memberships(user_id, org_id, role, created_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT(user_id, org_id) DO UPDATE SET role = excluded.role",
        (user_id, org_id, role, to_db(now)),
    )


def remove_member(conn: sqlite3.Connection, user_id: int, org_id: int) -> bool:
    cur = conn.execute(
        "DELETE FROM memberships WHERE user_id = ? AND org_id = ?", (user_id, org_id)
    )
    return cur.rowcount == 1


def membership(conn: sqlite3.Connection, user_id: int, org_id: int) -> Membership | None:
    row = conn.execute(
        "SELECT user_id, org_id, role FROM memberships WHERE user_id = ? AND org_id = ?",
        (user_id, org_id),
    ).fetchone()
    return None if row is None else Membership(*row)


def memberships_of(conn: sqlite3.Connection, user_id: int) -> list[Membership]:
    rows = conn.execute(
        "SELECT user_id, org_id, role FROM memberships WHERE user_id = ? ORDER BY org_id",
        (user_id,),
    )
    return [Membership(*r) for r in rows]


def members(conn: sqlite3.Connection, org_id: int) -> list[tuple[User, str]]:
    rows = conn.execute(
        f"SELECT {', '.join('u.' + c.strip() for c in _USER.split(','))}, m.role FROM users u "
        "JOIN memberships m ON m.user_id = u.id WHERE m.org_id = ? ORDER BY u.email",
        (org_id,),
    )
    return [(_user(r[:-1]), r[-1]) for r in rows]


def owners(conn: sqlite3.Connection, org_id: int) -> int:
    return int(
        conn.execute(
            "SELECT count(*) FROM memberships WHERE org_id = ? AND role = 'owner'", (org_id,)
        ).fetchone()[0]
    )


# -- sessions ----------------------------------------------------------------------------------


def create_session(
    conn: sqlite3.Connection,
    *,
    token_hash: str,
    user_id: int,
    csrf_token: str,
    now: dt.datetime,
    expires_at: dt.datetime,
    ip: str,
    user_agent: str,
) -> None:
    conn.execute(
        "INSERT INTO sessions(token_hash, user_id, csrf_token, created_at, expires_at, "
        "last_seen_at, ip, user_agent) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            token_hash,
            user_id,
            csrf_token,
            to_db(now),
            to_db(expires_at),
            to_db(now),
            ip,
            user_agent,
        ),
    )


def session_by_hash(conn: sqlite3.Connection, token_hash: str) -> Session | None:
    row = conn.execute(
        "SELECT id, user_id, csrf_token, created_at, expires_at FROM sessions WHERE token_hash = ?",
        (token_hash,),
    ).fetchone()
    return (
        None if row is None else Session(row[0], row[1], row[2], from_db(row[3]), from_db(row[4]))
    )


def delete_session(conn: sqlite3.Connection, token_hash: str) -> None:
    conn.execute("DELETE FROM sessions WHERE token_hash = ?", (token_hash,))


def delete_sessions_of(conn: sqlite3.Connection, user_id: int) -> None:
    conn.execute("DELETE FROM sessions WHERE user_id = ?", (user_id,))


def prune_sessions(conn: sqlite3.Connection, now: dt.datetime) -> int:
    return conn.execute("DELETE FROM sessions WHERE expires_at < ?", (to_db(now),)).rowcount


# -- API keys ----------------------------------------------------------------------------------


def create_key(
    conn: sqlite3.Connection,
    *,
    org_id: int,
    name: str,
    prefix: str,
    key_hash: str,
    read_only: bool,
    now: dt.datetime,
    expires_at: dt.datetime | None,
    created_by: str,
) -> ApiKey:
    cur = conn.execute(
        "INSERT INTO api_keys(org_id, name, prefix, key_hash, read_only, created_at, expires_at, "
        "created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (org_id, name, prefix, key_hash, int(read_only), to_db(now),
         None if expires_at is None else to_db(expires_at), created_by),
    )  # fmt: skip
    key = get_key(conn, int(cur.lastrowid or 0))
    assert key is not None
    return key


def get_key(conn: sqlite3.Connection, key_id: int) -> ApiKey | None:
    row = conn.execute(f"SELECT {_KEY} FROM api_keys WHERE id = ?", (key_id,)).fetchone()
    return None if row is None else _key(row)


def key_by_hash(conn: sqlite3.Connection, key_hash: str) -> ApiKey | None:
    row = conn.execute(f"SELECT {_KEY} FROM api_keys WHERE key_hash = ?", (key_hash,)).fetchone()
    return None if row is None else _key(row)


def keys_of(conn: sqlite3.Connection, org_id: int) -> list[ApiKey]:
    rows = conn.execute(f"SELECT {_KEY} FROM api_keys WHERE org_id = ? ORDER BY id", (org_id,))
    return [_key(r) for r in rows]


def touch_key(conn: sqlite3.Connection, key_id: int, now: dt.datetime) -> None:
    conn.execute("UPDATE api_keys SET last_used_at = ? WHERE id = ?", (to_db(now), key_id))


def revoke_key(conn: sqlite3.Connection, key_id: int, now: dt.datetime) -> bool:
    cur = conn.execute(
        "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
        (to_db(now), key_id),
    )
    return cur.rowcount == 1
