import asyncio
import sqlite3
from pathlib import Path

import pytest

from tokiflow.storage.db import connect
from tokiflow.storage.writer import WriteFailed, Writer, WriterClosed


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    path = tmp_path / "w.db"
    conn = connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)")
    conn.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
    conn.execute(
        "CREATE TABLE child (pid INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)"
    )
    conn.close()
    return path


async def test_every_awaited_write_from_many_concurrent_writers_is_on_disk(db_path: Path) -> None:
    writer = Writer(db_path)
    writer.start()

    def insert(k: int) -> int:
        return lambda conn: conn.execute("INSERT INTO t VALUES (?, ?)", (k, f"v{k}")).lastrowid

    results = await asyncio.gather(*(writer.run(insert(k)) for k in range(2000)))
    assert results == list(range(2000))
    # Read with an independent connection before closing: acknowledged means committed.
    other = sqlite3.connect(db_path)
    assert other.execute("SELECT count(*) FROM t").fetchone()[0] == 2000
    other.close()
    assert writer.stats.writes == 2000
    assert writer.stats.batches < 2000, "writes were not grouped into batches"
    await writer.close()


async def test_a_failing_write_does_not_undo_the_others_in_its_batch(db_path: Path) -> None:
    writer = Writer(db_path)
    writer.start()

    def insert(k: int, v: str | None) -> object:
        return lambda conn: conn.execute("INSERT INTO t VALUES (?, ?)", (k, v))

    outcomes = await asyncio.gather(
        writer.run(insert(1, "a")),
        writer.run(insert(2, None)),  # NOT NULL violation
        writer.run(insert(3, "c")),
        return_exceptions=True,
    )
    assert isinstance(outcomes[1], sqlite3.IntegrityError)
    await writer.close()
    rows = sqlite3.connect(db_path).execute("SELECT k FROM t ORDER BY k").fetchall()
    assert rows == [(1,), (3,)]


async def test_a_batch_that_cannot_commit_reports_failure_to_every_caller(db_path: Path) -> None:
    writer = Writer(db_path)
    writer.start()
    # A deferred foreign key violation only shows at COMMIT, so the whole batch fails there.
    outcomes = await asyncio.gather(
        writer.run(lambda c: c.execute("INSERT INTO t VALUES (1, 'x')")),
        writer.run(lambda c: c.execute("INSERT INTO child VALUES (42)")),
        return_exceptions=True,
    )
    assert all(isinstance(o, WriteFailed) for o in outcomes)
    assert sqlite3.connect(db_path).execute("SELECT count(*) FROM t").fetchone()[0] == 0
    # The writer carries on after a failed batch.
    await writer.run(lambda c: c.execute("INSERT INTO t VALUES (5, 'y')"))
    await writer.close()
    assert sqlite3.connect(db_path).execute("SELECT k FROM t").fetchall() == [(5,)]


async def test_close_commits_what_was_queued_and_then_refuses_work(db_path: Path) -> None:
    writer = Writer(db_path)
    writer.start()
    pending = [
        asyncio.ensure_future(
            writer.run(lambda c, k=k: c.execute("INSERT INTO t VALUES (?, 'q')", (k,)))
        )
        for k in range(50)
    ]
    await asyncio.sleep(0)  # noqa: TID251 - one turn of the loop so the writes are queued
    await writer.close()
    await asyncio.gather(*pending)
    assert sqlite3.connect(db_path).execute("SELECT count(*) FROM t").fetchone()[0] == 50
    with pytest.raises(WriterClosed):
        await writer.run(lambda c: None)


async def test_a_checkpoint_copies_the_wal_into_the_database_file(tmp_path: Path) -> None:
    from tokiflow.storage.database import Database

    db = Database(tmp_path / "d" / "tokiflow.db")
    await db.open()
    for i in range(200):
        await db.write(
            lambda c, i=i: c.execute("INSERT INTO server_meta VALUES (?, ?)", (f"k{i}", "v"))
        )
    wal_pages, copied = db.checkpoint()
    assert wal_pages > 0 and copied == wal_pages
    await db.close()
