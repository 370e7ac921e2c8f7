"""Opening the data folder and SQLite connections with the pragmas every connection needs."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BUSY_TIMEOUT_MS = 10_000


class StorageError(RuntimeError):
    """The data folder or database cannot be used; str() is one line a user can act on."""


def prepare_data_dir(data_dir: Path) -> None:
    """Create the data folder (0700) and its `outputs/` folder, and check that we can write there."""
    try:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        (data_dir / "outputs").mkdir(mode=0o700, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create data folder {data_dir}: {exc.strerror}") from None
    if not data_dir.is_dir():
        raise StorageError(f"data folder {data_dir} is not a folder")
    if not os.access(data_dir, os.W_OK | os.X_OK):
        raise StorageError(f"data folder {data_dir} is not writable by this user")


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """Open a connection in autocommit mode with foreign keys on and a busy timeout."""
    try:
        if readonly:
            conn = sqlite3.connect(
                f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
            )
        else:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA synchronous = NORMAL")
        # A WAL that grew under a burst is cut back to this size when it restarts.
        conn.execute("PRAGMA journal_size_limit = 67108864")
    except sqlite3.DatabaseError as exc:
        raise StorageError(f"database {path} is not a usable SQLite file: {exc}") from None
    return conn


def enable_wal(conn: sqlite3.Connection) -> None:
    """Switch the file to WAL; done once, outside any transaction."""
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise StorageError(f"database could not switch to WAL mode (got {mode})")


@contextmanager
def transaction(conn: sqlite3.Connection, *, commit: bool = True) -> Iterator[sqlite3.Connection]:
    """`BEGIN IMMEDIATE` on an autocommit connection, then `COMMIT`; `ROLLBACK` when the block
    raises, or always with `commit=False` (a dry run)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT" if commit else "ROLLBACK")


def quick_check(conn: sqlite3.Connection) -> list[str]:
    """SQLite's `quick_check` findings: `["ok"]` for a sound file."""
    return [r[0] for r in conn.execute("PRAGMA quick_check")]


def check_integrity(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse a file that is not a SQLite database, with a one-line reason."""
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        row = conn.execute("PRAGMA quick_check").fetchone()
    except sqlite3.DatabaseError as exc:
        raise StorageError(f"database {path} is not a usable SQLite file: {exc}") from None
    if row is None or row[0] != "ok":
        raise StorageError(f"database {path} is damaged: {row[0] if row else 'no answer'}")


def snapshot(db_path: Path, target: Path) -> None:
    """A consistent copy of a live database into `target` (a new file in rollback-journal mode,
    ready to archive); sqlite3.Error when it cannot be made."""
    src = connect(db_path, readonly=True)
    try:
        dst = sqlite3.connect(target)
        try:
            # pages=-1: the whole file in one step, inside one read transaction, so the copy is
            # one committed moment; a stepped copy restarts whenever the writer commits.
            src.backup(dst, pages=-1)
            dst.execute("PRAGMA journal_mode = DELETE")
        finally:
            dst.close()
    finally:
        src.close()


def file_findings(path: Path, *, full: bool = False) -> list[str]:
    """What SQLite's quick_check (integrity_check when `full`) says about a database file
    opened read-only: `["ok"]` for a sound one; sqlite3.DatabaseError for one that is not a
    database at all."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        pragma = "integrity_check" if full else "quick_check"
        return [r[0] for r in conn.execute(f"PRAGMA {pragma}")]
    finally:
        conn.close()
