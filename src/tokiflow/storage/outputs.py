"""Captured job output: ping bodies on local disk, redacted, capped, compressed and encrypted.

One file per ping, `<data dir>/outputs/<monitor id>/<n>.out`, holding
`Sealer.seal(zlib(redacted tail of the body))` with a purpose string naming the monitor's uuid
and the ping number, so a file copied onto another ping or monitor does not open. The `outputs`
row (same key as the ping) records sizes and the redaction count; the ping row itself keeps no
body. Files are written and fsynced inside the writer's transaction, before it commits: an
answered ping never loses its output, and a batch that is rolled back and run again rewrites the
same file. Files left behind by a batch that never committed are removed by retention.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import sqlite3
import zlib
from dataclasses import dataclass
from pathlib import Path

from tokiflow.redaction import check_patterns, redact_bytes
from tokiflow.storage.crypto import CryptoError, Sealer, load_or_create_key
from tokiflow.storage.monitors import Monitor
from tokiflow.storage.pings import Ping
from tokiflow.storage.timefmt import from_db, to_db
from tokiflow.storage.writer import WriteFailed

log = logging.getLogger(__name__)

SUFFIX = ".out"
# Redaction looks at this much more than the kept tail, so that a secret cut by the cap is
# still recognised as a whole before it is cut (and redaction shrinking the text cannot pull
# unredacted bytes into the tail).
REDACT_MARGIN = 64 * 1024


class OutputError(Exception):
    """Captured output that cannot be shown: missing, damaged, tampered with or wrong key."""


@dataclass(frozen=True)
class OutputRef:
    """The record of one captured output (the `outputs` row)."""

    monitor_id: int
    n: int
    org_id: int
    run_id: int | None
    created_at: dt.datetime
    size: int  # bytes the job sent
    kept: int  # bytes kept after redaction and the cap (before compression)
    stored: int  # bytes on disk
    redactions: int


_COLUMNS = "monitor_id, n, org_id, run_id, created_at, size, kept, stored, redactions"


def _row(r: tuple) -> OutputRef:
    return OutputRef(r[0], r[1], r[2], r[3], from_db(r[4]), r[5], r[6], r[7], r[8])


def purpose(monitor_uuid: str, n: int) -> str:
    return f"tokiflow output {monitor_uuid} {n}"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class OutputStore:
    """The output folder with its key and the default cap (`output_capture_limit`)."""

    def __init__(self, root: Path, sealer: Sealer, *, limit: int) -> None:
        self.root = root
        self.sealer = sealer
        self.limit = limit

    def path(self, monitor_id: int, n: int) -> Path:
        return self.root / str(monitor_id) / f"{n}{SUFFIX}"

    def limit_for(self, m: Monitor) -> int:
        """The monitor's cap: its own setting, else the server's; 0 means capture off."""
        return self.limit if m.output_limit is None else m.output_limit

    def capture(
        self,
        conn: sqlite3.Connection,
        m: Monitor,
        n: int,
        body: bytes,
        size: int,
        at: dt.datetime,
        run_id: int | None = None,
    ) -> OutputRef | None:
        """Redact, cap (keeping the tail), seal and durably write a ping's body, and record it;
        None when capture is off for the monitor or the body is empty."""
        limit = self.limit_for(m)
        if limit <= 0 or not body:
            return None
        patterns = patterns_for(conn, m.org_id)
        try:
            cleaned, count = redact_bytes(body[-(limit + REDACT_MARGIN) :], patterns)
        except ValueError:
            # A pattern saved before validation existed must not lose the output: redact with
            # the built-in rules and say so.
            log.warning("organisation %d has an invalid redaction pattern; skipped", m.org_id)
            cleaned, count = redact_bytes(body[-(limit + REDACT_MARGIN) :])
        kept = cleaned[-limit:]
        blob = self.sealer.seal(zlib.compress(kept, 6), purpose(m.uuid, n))
        try:
            self._write(self.path(m.id, n), blob)
        except OSError as exc:
            # The ping is refused (503, the client retries) rather than answered without output.
            raise WriteFailed(f"output of ping #{n} could not be written: {exc}") from None
        ref = OutputRef(m.id, n, m.org_id, run_id, at, max(size, len(body)), len(kept), len(blob),
                        count)  # fmt: skip
        conn.execute(
            f"INSERT OR REPLACE INTO outputs({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (ref.monitor_id, ref.n, ref.org_id, ref.run_id, to_db(at), ref.size, ref.kept,
             ref.stored, ref.redactions),
        )  # fmt: skip
        return ref

    def _write(self, path: Path, blob: bytes) -> None:
        folder = path.parent
        if not folder.is_dir():
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            _fsync_dir(folder.parent)
        existed = path.exists()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            view = memoryview(blob)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        if not existed:
            _fsync_dir(folder)  # the new name must survive a power cut too

    def read(self, monitor_uuid: str, ref: OutputRef) -> bytes:
        """The decrypted output; OutputError when the file is missing, damaged or tampered with."""
        path = self.path(ref.monitor_id, ref.n)
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            raise OutputError(f"the output file of ping #{ref.n} is missing ({path})") from None
        except OSError as exc:
            raise OutputError(f"the output file {path} cannot be read: {exc.strerror}") from None
        try:
            data = zlib.decompress(self.sealer.open(blob, purpose(monitor_uuid, ref.n)))
        except CryptoError as exc:
            raise OutputError(f"the output file {path} cannot be opened: {exc}") from None
        except zlib.error:
            raise OutputError(f"the output file {path} is damaged (bad compression)") from None
        if len(data) != ref.kept:
            raise OutputError(f"the output file {path} does not match its record")
        return data


def latest_output(
    conn: sqlite3.Connection, store: OutputStore, m: Monitor
) -> tuple[OutputRef, bytes] | None:
    """The newest captured output of a monitor, decrypted (for alert messages); None if there
    is none or it cannot be read (that is logged)."""
    ref = latest(conn, m.id)
    if ref is None:
        return None
    try:
        return ref, store.read(m.uuid, ref)
    except OutputError as exc:
        log.warning("monitor %s: %s", m.uuid, exc)
        return None


# -- the outputs table ---------------------------------------------------------------------------


def get(conn: sqlite3.Connection, monitor_id: int, n: int) -> OutputRef | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM outputs WHERE monitor_id = ? AND n = ?", (monitor_id, n)
    ).fetchone()
    return None if row is None else _row(row)


def latest(conn: sqlite3.Connection, monitor_id: int) -> OutputRef | None:
    """The newest captured output of a monitor (a backwards range on the primary key)."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM outputs WHERE monitor_id = ? ORDER BY n DESC LIMIT 1",
        (monitor_id,),
    ).fetchone()
    return None if row is None else _row(row)


@dataclass(frozen=True)
class Usage:
    """Captured output of one organisation."""

    org_id: int
    files: int
    stored: int  # bytes on disk
    size: int  # bytes the jobs sent
    oldest: dt.datetime | None


def usage(conn: sqlite3.Connection) -> list[Usage]:
    """Files and bytes per organisation."""
    rows = conn.execute(
        "SELECT org_id, count(*), sum(stored), sum(size), min(created_at) FROM outputs "
        "GROUP BY org_id ORDER BY org_id"
    )
    return [Usage(r[0], r[1], r[2] or 0, r[3] or 0, from_db(r[4]) if r[4] else None) for r in rows]


def usage_of(conn: sqlite3.Connection, org_id: int) -> Usage:
    """Files and bytes of one organisation (through its (org_id, created_at) index)."""
    row = conn.execute(
        "SELECT count(*), sum(stored), sum(size), min(created_at) FROM outputs WHERE org_id = ?",
        (org_id,),
    ).fetchone()
    return Usage(org_id, row[0], row[1] or 0, row[2] or 0, from_db(row[3]) if row[3] else None)


def take_older_than(
    conn: sqlite3.Connection, before: dt.datetime, limit: int
) -> list[tuple[int, int]]:
    """Delete up to `limit` records created before `before`; their (monitor, n) keys, whose files
    the caller removes once the deletion has committed."""
    rows = conn.execute(
        "SELECT monitor_id, n FROM outputs WHERE created_at < ? ORDER BY created_at LIMIT ?",
        (to_db(before), limit),
    ).fetchall()
    conn.executemany("DELETE FROM outputs WHERE monitor_id = ? AND n = ?", rows)
    return [(r[0], r[1]) for r in rows]


def excess_by_org(conn: sqlite3.Connection, max_total: int) -> list[tuple[int, int]]:
    """(organisation, bytes over) for every organisation whose output on disk exceeds
    `max_total` (a scan of the table: run it on a reader, not in the writer)."""
    rows = conn.execute(
        "SELECT org_id, sum(stored) FROM outputs GROUP BY org_id HAVING sum(stored) > ?",
        (max_total,),
    )
    return [(r[0], r[1] - max_total) for r in rows]


def take_oldest(
    conn: sqlite3.Connection, org_id: int, excess: int, limit: int
) -> tuple[list[tuple[int, int]], int]:
    """Delete the organisation's oldest records until `excess` bytes are freed (at most `limit`
    records); their (monitor, n) keys and the bytes freed."""
    rows = conn.execute(
        "SELECT monitor_id, n, stored FROM outputs WHERE org_id = ? ORDER BY created_at LIMIT ?",
        (org_id, limit),
    ).fetchall()
    taken: list[tuple[int, int]] = []
    freed = 0
    for monitor_id, n, stored in rows:
        if freed >= excess:
            break
        taken.append((monitor_id, n))
        freed += stored
    conn.executemany("DELETE FROM outputs WHERE monitor_id = ? AND n = ?", taken)
    return taken, freed


def known_numbers(conn: sqlite3.Connection, monitor_id: int) -> set[int]:
    return {r[0] for r in conn.execute("SELECT n FROM outputs WHERE monitor_id = ?", (monitor_id,))}


def monitor_exists(conn: sqlite3.Connection, monitor_id: int) -> bool:
    return conn.execute("SELECT 1 FROM monitors WHERE id = ?", (monitor_id,)).fetchone() is not None


# -- per-organisation redaction patterns ---------------------------------------------------------


@dataclass(frozen=True)
class Pattern:
    id: int
    org_id: int
    pattern: str
    note: str
    created_at: dt.datetime


def patterns_for(conn: sqlite3.Connection, org_id: int) -> list[str]:
    """The organisation's extra redaction patterns (regular expressions)."""
    rows = conn.execute(
        "SELECT pattern FROM redaction_patterns WHERE org_id = ? ORDER BY pattern", (org_id,)
    )
    return [r[0] for r in rows]


def list_patterns(conn: sqlite3.Connection, org_id: int) -> list[Pattern]:
    rows = conn.execute(
        "SELECT id, org_id, pattern, note, created_at FROM redaction_patterns WHERE org_id = ? "
        "ORDER BY id",
        (org_id,),
    )
    return [Pattern(r[0], r[1], r[2], r[3], from_db(r[4])) for r in rows]


def add_pattern(
    conn: sqlite3.Connection, org_id: int, pattern: str, note: str, at: dt.datetime
) -> Pattern:
    """Save a pattern after checking it; ValueError says what is wrong with it."""
    check_patterns([pattern])
    try:
        cur = conn.execute(
            "INSERT INTO redaction_patterns(org_id, pattern, note, created_at) VALUES (?, ?, ?, ?)",
            (org_id, pattern, note, to_db(at)),
        )
    except sqlite3.IntegrityError:
        raise ValueError(f"pattern {pattern!r} is already saved for this organisation") from None
    return Pattern(int(cur.lastrowid or 0), org_id, pattern, note, at)


def remove_pattern(conn: sqlite3.Connection, org_id: int, pattern_id: int) -> bool:
    cur = conn.execute(
        "DELETE FROM redaction_patterns WHERE id = ? AND org_id = ?", (pattern_id, org_id)
    )
    return cur.rowcount == 1


def ping_body(conn: sqlite3.Connection, store: OutputStore, m: Monitor, p: Ping) -> bytes | None:
    """A ping's body as stored: in the ping row, or captured (decrypted) in the output store.

    Raises OutputError for a captured file that cannot be read (damaged, tampered with)."""
    if p.body is not None:
        return p.body
    ref = get(conn, m.id, p.n)
    return None if ref is None else store.read(m.uuid, ref)


def with_bodies(
    conn: sqlite3.Connection, store: OutputStore, m: Monitor, rows: list[Ping]
) -> list[Ping]:
    """The pings with their captured bodies filled in."""
    return [dataclasses.replace(p, body=ping_body(conn, store, m, p)) for p in rows]


def open_store(data_dir: Path, *, secret_key: str = "", limit: int = 32 * 1024) -> OutputStore:
    """The output store of a data folder, for commands and tests working beside the server."""
    return OutputStore(
        data_dir / "outputs", Sealer(load_or_create_key(data_dir, secret_key)), limit=limit
    )
