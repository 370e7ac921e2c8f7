import sqlite3
from pathlib import Path

import pytest
import sqlite_utils
from sqlite_utils.migrations import Migrations

from tokiflow.storage import migrations as m
from tokiflow.storage.db import StorageError

SCHEMA = Path(__file__).parent.parent / "schema.sql"


def test_a_fresh_database_has_the_checked_in_schema(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    assert m.migrate(db) == m.known_names()
    assert m.schema_sql(db) == SCHEMA.read_text()


def test_it_applies_no_migration_twice(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    m.migrate(db)
    assert m.migrate(db) == []
    assert m.status(db).pending == []


def test_it_turns_on_wal_and_foreign_keys(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    m.migrate(db)
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def _two_step_set(fail_second: bool) -> Migrations:
    mset = Migrations(m.MIGRATION_SET)

    @mset()
    def m0001_initial(db: sqlite_utils.Database) -> None:
        db.execute("CREATE TABLE a (x INTEGER)")

    @mset()
    def m0002_more(db: sqlite_utils.Database) -> None:
        db.execute("CREATE TABLE b (y INTEGER)")
        db.execute("INSERT INTO a VALUES (1)")
        if fail_second:
            raise RuntimeError("boom")

    return mset


def test_a_failing_migration_rolls_back_and_stays_pending(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    with pytest.raises(RuntimeError, match="boom"):
        m.migrate(db, _two_step_set(fail_second=True))
    conn = sqlite3.connect(db)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "a" in tables and "b" not in tables
    assert conn.execute("SELECT count(*) FROM a").fetchone()[0] == 0
    conn.close()
    assert m.status(db, _two_step_set(False)).pending == ["m0002_more"]
    assert m.migrate(db, _two_step_set(fail_second=False)) == ["m0002_more"]


def test_it_copies_an_existing_database_aside_before_migrating(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    first = Migrations(m.MIGRATION_SET)
    first()(_two_step_set(False)._migrations[0].fn)
    m.migrate(db, first)
    m.migrate(db, _two_step_set(False))
    backup = tmp_path / "t.db.before-m0002_more.bak"
    assert backup.exists()
    names = {r[0] for r in sqlite3.connect(backup).execute("SELECT name FROM sqlite_master")}
    assert "a" in names and "b" not in names


def test_it_refuses_a_database_from_a_newer_version_and_leaves_it_alone(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    m.migrate(db)
    conn = sqlite3.connect(db)
    conn.execute(
        "INSERT INTO _sqlite_migrations(migration_set, name, applied_at) VALUES (?, ?, ?)",
        (m.MIGRATION_SET, "m9999_future", "2030-01-01"),
    )
    conn.commit()
    conn.close()
    before = db.read_bytes()
    with pytest.raises(StorageError, match="newer version of Tokiflow"):
        m.migrate(db)
    assert db.read_bytes() == before


def test_it_refuses_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    db.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StorageError, match="not a usable SQLite file"):
        m.migrate(db)
    assert db.read_bytes() == b"this is not sqlite" * 100
