"""Alert channels of an organisation and which monitors each one serves.

A channel's config is stored sealed (AES-GCM): it holds webhook secrets, tokens and keys.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass

from tokiflow.storage.timefmt import from_db, opt_from_db, to_db


@dataclass(frozen=True)
class ChannelRow:
    id: int
    org_id: int
    kind: str
    name: str
    config: bytes
    is_default: bool
    created_at: dt.datetime
    last_error: str | None
    last_error_at: dt.datetime | None


_COLUMNS = "id, org_id, kind, name, config, is_default, created_at, last_error, last_error_at"


def _row(r: tuple) -> ChannelRow:
    return ChannelRow(
        r[0], r[1], r[2], r[3], bytes(r[4]), bool(r[5]), from_db(r[6]), r[7], opt_from_db(r[8])
    )


def insert(
    conn: sqlite3.Connection,
    *,
    org_id: int,
    kind: str,
    name: str,
    sealed_config: bytes,
    is_default: bool,
    now: dt.datetime,
) -> ChannelRow:
    """Insert a channel; a default channel is linked to every monitor of the organisation."""
    cur = conn.execute(
        "INSERT INTO channels(org_id, kind, name, config, is_default, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (org_id, kind, name, sealed_config, int(is_default), to_db(now)),
    )
    channel_id = int(cur.lastrowid or 0)
    if is_default:
        conn.execute(
            "INSERT INTO monitor_channels(monitor_id, channel_id) "
            "SELECT id, ? FROM monitors WHERE org_id = ?",
            (channel_id, org_id),
        )
    row = get(conn, channel_id)
    assert row is not None
    return row


def get(conn: sqlite3.Connection, channel_id: int) -> ChannelRow | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM channels WHERE id = ?", (channel_id,)).fetchone()
    return None if row is None else _row(row)


def list_for_org(conn: sqlite3.Connection, org_id: int | None = None) -> list[ChannelRow]:
    if org_id is None:
        rows = conn.execute(f"SELECT {_COLUMNS} FROM channels ORDER BY org_id, id")
    else:
        rows = conn.execute(
            f"SELECT {_COLUMNS} FROM channels WHERE org_id = ? ORDER BY id", (org_id,)
        )
    return [_row(r) for r in rows]


def delete(conn: sqlite3.Connection, channel_id: int) -> bool:
    return conn.execute("DELETE FROM channels WHERE id = ?", (channel_id,)).rowcount == 1


def set_error(
    conn: sqlite3.Connection, channel_id: int, error: str | None, at: dt.datetime | None
) -> None:
    """Record (or clear, with None) the channel's last delivery error, shown to users."""
    conn.execute(
        "UPDATE channels SET last_error = ?, last_error_at = ? WHERE id = ?",
        (error, None if at is None else to_db(at), channel_id),
    )


def link_defaults(conn: sqlite3.Connection, monitor_id: int, org_id: int) -> None:
    """Subscribe a new monitor to every default channel of its organisation."""
    conn.execute(
        "INSERT OR IGNORE INTO monitor_channels(monitor_id, channel_id) "
        "SELECT ?, id FROM channels WHERE org_id = ? AND is_default = 1",
        (monitor_id, org_id),
    )


def set_monitor_channels(conn: sqlite3.Connection, monitor_id: int, channel_ids: list[int]) -> None:
    """Replace the channels a monitor alerts (the ids must belong to its organisation)."""
    conn.execute("DELETE FROM monitor_channels WHERE monitor_id = ?", (monitor_id,))
    conn.executemany(
        "INSERT INTO monitor_channels(monitor_id, channel_id) "
        "SELECT m.id, c.id FROM monitors m JOIN channels c ON c.org_id = m.org_id "
        "WHERE m.id = ? AND c.id = ?",
        [(monitor_id, cid) for cid in channel_ids],
    )


def for_monitor(conn: sqlite3.Connection, monitor_id: int) -> list[ChannelRow]:
    rows = conn.execute(
        f"SELECT {', '.join('c.' + c.strip() for c in _COLUMNS.split(','))} FROM channels c "
        "JOIN monitor_channels mc ON mc.channel_id = c.id WHERE mc.monitor_id = ? ORDER BY c.id",
        (monitor_id,),
    )
    return [_row(r) for r in rows]


def update(
    conn: sqlite3.Connection, channel_id: int, *, name: str, config: bytes, is_default: bool
) -> None:
    conn.execute(
        "UPDATE channels SET name = ?, config = ?, is_default = ? WHERE id = ?",
        (name, config, int(is_default), channel_id),
    )


def link_every_monitor(conn: sqlite3.Connection, channel_id: int, org_id: int) -> None:
    """Subscribe every monitor of the organisation to the channel."""
    conn.execute(
        "INSERT OR IGNORE INTO monitor_channels(monitor_id, channel_id) "
        "SELECT id, ? FROM monitors WHERE org_id = ?",
        (channel_id, org_id),
    )
