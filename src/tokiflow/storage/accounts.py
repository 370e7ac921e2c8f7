"""Users, memberships, sessions, API keys, invitations, password resets and notification
preferences.

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
    totp_last_step: int | None = None  # the last two-factor time step accepted (no replays)


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
    "locked_until, totp_last_step"
)
_KEY = (
    "id, org_id, name, prefix, read_only, created_at, expires_at, last_used_at, revoked_at, "
    "created_by"
)


def _user(r: tuple) -> User:
    return User(
        r[0], r[1], r[2], r[3], None if r[4] is None else bytes(r[4]), r[5], from_db(r[6]),
        opt_from_db(r[7]), r[8], opt_from_db(r[9]), r[10],
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


def turn_totp_on(conn: sqlite3.Connection, user_id: int, sealed: bytes, step: int) -> bool:
    """Store a confirmed two-factor secret (and the step of the code that confirmed it);
    False when the user already has one."""
    cur = conn.execute(
        "UPDATE users SET totp_secret = ?, totp_last_step = max(coalesce(totp_last_step, 0), ?) "
        "WHERE id = ? AND totp_secret IS NULL",
        (sealed, step, user_id),
    )
    return cur.rowcount == 1


def turn_totp_off(conn: sqlite3.Connection, user_id: int) -> bool:
    cur = conn.execute(
        "UPDATE users SET totp_secret = NULL WHERE id = ? AND totp_secret IS NOT NULL", (user_id,)
    )
    return cur.rowcount == 1


def claim_totp_step(conn: sqlite3.Connection, user_id: int, step: int) -> bool:
    """Record `step` as the user's last accepted two-factor time step, only if it is later
    than the last one: False means the code was already used (a replay)."""
    cur = conn.execute(
        "UPDATE users SET totp_last_step = ? WHERE id = ? "
        "AND (totp_last_step IS NULL OR totp_last_step < ?)",
        (step, user_id, step),
    )
    return cur.rowcount == 1


def set_profile(
    conn: sqlite3.Connection, user_id: int, *, name: str | None = None, tz: str | None = None
) -> None:
    if tz is not None:
        conn.execute("UPDATE users SET tz = ? WHERE id = ?", (tz, user_id))
    if name is not None:
        conn.execute("UPDATE users SET name = ? WHERE id = ?", (name, user_id))


def unlock(conn: sqlite3.Connection, user_id: int) -> None:
    conn.execute("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE id = ?", (user_id,))


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


def set_role(conn: sqlite3.Connection, user_id: int, org_id: int, role: str) -> None:
    conn.execute(
        "UPDATE memberships SET role = ? WHERE user_id = ? AND org_id = ?", (role, user_id, org_id)
    )


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


def delete_other_sessions(conn: sqlite3.Connection, user_id: int, keep_hash: str) -> int:
    """End every session of the user but the one whose token hashes to `keep_hash`."""
    cur = conn.execute(
        "DELETE FROM sessions WHERE user_id = ? AND token_hash != ?", (user_id, keep_hash)
    )
    return cur.rowcount


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


# -- invitations -------------------------------------------------------------------------------


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
    token_hash: str,
    invited_by: int | None,
    now: dt.datetime,
    expires_at: dt.datetime,
) -> Invitation:
    """A new invitation; a pending one to the same address is replaced (only the newest link
    works)."""
    conn.execute(
        "DELETE FROM invitations WHERE org_id = ? AND email = ? AND accepted_at IS NULL",
        (org_id, email),
    )
    cur = conn.execute(
        "INSERT INTO invitations(org_id, email, role, token_hash, invited_by, created_at, "
        "expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (org_id, email, role, token_hash, invited_by, to_db(now), to_db(expires_at)),
    )
    found = get_invitation(conn, int(cur.lastrowid or 0))
    assert found is not None
    return found


def get_invitation(conn: sqlite3.Connection, invitation_id: int) -> Invitation | None:
    row = conn.execute(
        f"SELECT {_INVITE} FROM invitations WHERE id = ?", (invitation_id,)
    ).fetchone()
    return None if row is None else _invitation(row)


def invitation_by_hash(conn: sqlite3.Connection, token_hash: str) -> Invitation | None:
    row = conn.execute(
        f"SELECT {_INVITE} FROM invitations WHERE token_hash = ?", (token_hash,)
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


def mark_invitation_used(conn: sqlite3.Connection, invitation_id: int, now: dt.datetime) -> bool:
    cur = conn.execute(
        "UPDATE invitations SET accepted_at = ? WHERE id = ? AND accepted_at IS NULL",
        (to_db(now), invitation_id),
    )
    return cur.rowcount == 1


# -- password resets ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PasswordReset:
    id: int
    user_id: int
    expires_at: dt.datetime
    used_at: dt.datetime | None


def create_reset(
    conn: sqlite3.Connection,
    user_id: int,
    token_hash: str,
    now: dt.datetime,
    expires_at: dt.datetime,
) -> None:
    """A new reset token for the user; earlier unused ones stop working."""
    conn.execute("DELETE FROM password_resets WHERE user_id = ? AND used_at IS NULL", (user_id,))
    conn.execute(
        "INSERT INTO password_resets(user_id, token_hash, created_at, expires_at) "
        "VALUES (?, ?, ?, ?)",
        (user_id, token_hash, to_db(now), to_db(expires_at)),
    )  # fmt: skip


def reset_by_hash(conn: sqlite3.Connection, token_hash: str) -> PasswordReset | None:
    row = conn.execute(
        "SELECT id, user_id, expires_at, used_at FROM password_resets WHERE token_hash = ?",
        (token_hash,),
    ).fetchone()
    return None if row is None else PasswordReset(row[0], row[1], from_db(row[2]),
                                                  opt_from_db(row[3]))  # fmt: skip


def mark_reset_used(conn: sqlite3.Connection, reset_id: int, now: dt.datetime) -> bool:
    cur = conn.execute(
        "UPDATE password_resets SET used_at = ? WHERE id = ? AND used_at IS NULL",
        (to_db(now), reset_id),
    )
    return cur.rowcount == 1


# -- notification preferences ------------------------------------------------------------------


@dataclass(frozen=True)
class NotificationPrefs:
    """How one user of one organisation wants to hear about incidents by email. No stored row
    means `off`: only those who opted in get personal emails."""

    mode: str = "off"  # immediate, digest or off
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


def save_prefs(
    conn: sqlite3.Connection, user_id: int, org_id: int, prefs: NotificationPrefs
) -> None:
    conn.execute(
        "INSERT INTO notification_prefs(user_id, org_id, mode, tags, quiet_start, quiet_end) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(user_id, org_id) DO UPDATE SET mode = excluded.mode, "
        "tags = excluded.tags, quiet_start = excluded.quiet_start, quiet_end = excluded.quiet_end",
        (user_id, org_id, prefs.mode, " ".join(prefs.tags), prefs.quiet_start, prefs.quiet_end),
    )


def opted_in(conn: sqlite3.Connection, org_id: int) -> list[tuple[User, str, NotificationPrefs]]:
    """Members of the organisation who asked for incident emails: (user, role, preferences)."""
    columns = ", ".join("u." + c.strip() for c in _USER.split(","))
    rows = conn.execute(
        f"SELECT {columns}, m.role, p.mode, p.tags, p.quiet_start, p.quiet_end "
        "FROM notification_prefs p JOIN memberships m ON m.user_id = p.user_id "
        "AND m.org_id = p.org_id JOIN users u ON u.id = p.user_id "
        "WHERE p.org_id = ? AND p.mode != 'off' ORDER BY u.id",
        (org_id,),
    )
    n = len(_USER.split(","))
    return [
        (_user(r[:n]), r[n], NotificationPrefs(r[n + 1], tuple(r[n + 2].split()), r[n + 3],
                                               r[n + 4]))
        for r in rows
    ]  # fmt: skip
