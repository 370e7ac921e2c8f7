"""Organisations: the owners of monitors, with the ping key used in slug ping URLs."""

from __future__ import annotations

import datetime as dt
import secrets
import sqlite3
from dataclasses import dataclass

from tokiflow.storage.timefmt import from_db, to_db

DEFAULT_SLUG = "default"


@dataclass(frozen=True)
class Org:
    id: int
    slug: str
    name: str
    ping_key: str
    created_at: dt.datetime


_COLUMNS = "id, slug, name, ping_key, created_at"


def _row(row: tuple) -> Org:
    return Org(row[0], row[1], row[2], row[3], from_db(row[4]))


def new_ping_key() -> str:
    """22 url-safe characters (128 random bits)."""
    return secrets.token_urlsafe(16)


def create(conn: sqlite3.Connection, slug: str, name: str, now: dt.datetime) -> Org:
    """Insert an organisation with a fresh ping key."""
    cur = conn.execute(
        "INSERT INTO orgs(slug, name, ping_key, created_at) VALUES (?, ?, ?, ?)",
        (slug, name, new_ping_key(), to_db(now)),
    )
    org = get(conn, int(cur.lastrowid or 0))
    assert org is not None
    return org


def get(conn: sqlite3.Connection, org_id: int) -> Org | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM orgs WHERE id = ?", (org_id,)).fetchone()
    return None if row is None else _row(row)


def by_slug(conn: sqlite3.Connection, slug: str) -> Org | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM orgs WHERE slug = ?", (slug,)).fetchone()
    return None if row is None else _row(row)


def by_ping_key(conn: sqlite3.Connection, ping_key: str) -> Org | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM orgs WHERE ping_key = ?", (ping_key,)).fetchone()
    return None if row is None else _row(row)


def list_all(conn: sqlite3.Connection) -> list[Org]:
    return [_row(r) for r in conn.execute(f"SELECT {_COLUMNS} FROM orgs ORDER BY id")]


def ensure_default(conn: sqlite3.Connection, now: dt.datetime) -> Org:
    """The first organisation, created on first start so that monitors have an owner."""
    existing = conn.execute(f"SELECT {_COLUMNS} FROM orgs ORDER BY id LIMIT 1").fetchone()
    if existing is not None:
        return _row(existing)
    return create(conn, DEFAULT_SLUG, "Default", now)


def rename(conn: sqlite3.Connection, org_id: int, name: str) -> None:
    conn.execute("UPDATE orgs SET name = ? WHERE id = ?", (name, org_id))


def set_ping_key(conn: sqlite3.Connection, org_id: int, ping_key: str) -> None:
    conn.execute("UPDATE orgs SET ping_key = ? WHERE id = ?", (ping_key, org_id))
