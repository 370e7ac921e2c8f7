"""Captured output on disk: redacted, capped to the tail, compressed, encrypted, bound to its ping,
written before the ping commits, and pruned by age, by size and when orphaned."""

from __future__ import annotations

import os
import secrets
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tokiflow.clock import FakeClock
from tokiflow.engine import retention
from tokiflow.engine.monitors import build_spec, create_monitor
from tokiflow.engine.pings import PingEvent, ingest
from tokiflow.engine.scheduler import Scheduler
from tokiflow.licensing import UNLIMITED
from tokiflow.storage import monitors, orgs, outputs, pings
from tokiflow.storage.crypto import Sealer
from tokiflow.storage.database import Database
from tokiflow.storage.db import connect
from tokiflow.storage.monitors import Monitor
from tokiflow.storage.outputs import OutputError, OutputRef, OutputStore
from tokiflow.storage.writer import WriteFailed

SECRET_URL = "postgres://backup:hunter2-Pa55@db.internal:5432/prod"
GITHUB_TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"


@dataclass
class Env:
    db: Database
    clock: FakeClock
    scheduler: Scheduler
    store: OutputStore
    m: Monitor

    async def ping(self, body: bytes, kind: str = "success", m: Monitor | None = None) -> int:
        target = m or self.m
        ev = PingEvent(kind=kind, received_at=self.clock.now(), uuid=target.uuid, body=body,
                       body_size=len(body))  # fmt: skip
        outcome = await ingest(
            self.db, self.scheduler, ev, pings_kept=1000, outputs=self.store, limits=UNLIMITED
        )
        assert outcome.monitor is not None
        return outcome.monitor.n_pings

    async def ref(self, n: int, m: Monitor | None = None) -> OutputRef:
        target = m or self.m
        found = await self.db.read(lambda c: outputs.get(c, target.id, n))
        assert found is not None
        return found

    async def text(self, n: int) -> bytes:
        return self.store.read(self.m.uuid, await self.ref(n))

    async def monitor(self, name: str, org_id: int | None = None) -> Monitor:
        now = self.clock.now()
        spec = build_spec(org_id=org_id or self.m.org_id, name=name, period="1h")
        return await self.db.write(lambda c: create_monitor(c, spec, now, limits=UNLIMITED))


@pytest.fixture
async def env(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Env]:
    db = Database(tmp_path / "data" / "tokiflow.db")
    await db.open()
    now = clock.now()
    org = await db.write(lambda c: orgs.ensure_default(c, now))
    spec = build_spec(org_id=org.id, name="backup", period="1h")
    m = await db.write(lambda c: create_monitor(c, spec, now, limits=UNLIMITED))
    store = OutputStore(tmp_path / "data" / "outputs", Sealer(secrets.token_bytes(32)), limit=32768)
    yield Env(db, clock, Scheduler(db, clock, started_at=now), store, m)
    await db.close()


def _file(env: Env, n: int, m: Monitor | None = None) -> Path:
    return env.store.root / str((m or env.m).id) / f"{n}.out"


async def test_a_ping_body_is_stored_compressed_and_encrypted_instead_of_in_the_ping_row(
    env: Env,
) -> None:
    body = b"dumped 1523 tables\n" * 200 + b"backup finished OK\n"
    n = await env.ping(body)
    raw = _file(env, n).read_bytes()
    assert b"dumped" not in raw and b"finished" not in raw
    assert len(raw) < len(body) // 10  # compressed before it was sealed
    assert oct(_file(env, n).stat().st_mode & 0o777) == "0o600"
    assert await env.text(n) == body
    ref = await env.ref(n)
    assert (ref.size, ref.kept, ref.stored, ref.redactions) == (len(body), len(body), len(raw), 0)
    [row] = await env.db.read(lambda c: pings.recent(c, env.m.id))
    assert row.body is None and row.body_size == len(body)
    found = await env.db.read(lambda c: outputs.latest_output(c, env.store, env.m))
    assert found is not None and found[1] == body


async def test_without_the_key_the_output_cannot_be_read(env: Env) -> None:
    n = await env.ping(b"the nightly report: 42 rows")
    other = OutputStore(env.store.root, Sealer(secrets.token_bytes(32)), limit=32768)
    with pytest.raises(OutputError, match="tampered with or the key is wrong"):
        other.read(env.m.uuid, await env.ref(n))


async def test_a_tampered_truncated_or_moved_file_is_detected_and_never_served(env: Env) -> None:
    first = await env.ping(b"first run output")
    second = await env.ping(b"second run output")
    path = _file(env, first)
    original = path.read_bytes()
    flipped = bytearray(original)
    flipped[-5] ^= 0x01
    path.write_bytes(bytes(flipped))
    with pytest.raises(OutputError, match="cannot be opened"):
        await env.text(first)
    path.write_bytes(original[:20])
    with pytest.raises(OutputError, match="damaged"):
        await env.text(first)
    # A valid file copied over another ping's does not open there: it is bound to its ping.
    path.write_bytes(_file(env, second).read_bytes())
    with pytest.raises(OutputError, match="cannot be opened"):
        await env.text(first)
    path.unlink()
    with pytest.raises(OutputError, match="missing"):
        await env.text(first)
    assert await env.text(second) == b"second run output"


async def test_the_cap_keeps_the_tail_of_the_output(env: Env) -> None:
    env.store.limit = 100
    body = b"".join(b"line %04d\n" % i for i in range(500))
    n = await env.ping(body)
    kept = await env.text(n)
    assert kept == body[-100:] and kept.endswith(b"line 0499\n")
    ref = await env.ref(n)
    assert (ref.size, ref.kept) == (len(body), 100)


async def test_secrets_are_redacted_before_the_output_touches_the_disk(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    written: list[bytes] = []
    real_compress = zlib.compress

    def spy(data: bytes, level: int = -1) -> bytes:
        written.append(bytes(data))
        return real_compress(data, level)

    monkeypatch.setattr(zlib, "compress", spy)
    body = f"connecting to {SECRET_URL}\nGITHUB_TOKEN={GITHUB_TOKEN}\ndone\n".encode()
    n = await env.ping(body)
    [plain] = written
    assert b"hunter2" not in plain and GITHUB_TOKEN.encode() not in plain
    assert await env.text(n) == plain
    assert b"postgres://backup:[REDACTED]@db.internal" in plain
    assert (await env.ref(n)).redactions == 2


async def test_organisation_patterns_are_redacted_too_and_bad_ones_are_refused(env: Env) -> None:
    now = env.clock.now()
    org_id = env.m.org_id
    await env.db.write(lambda c: outputs.add_pattern(c, org_id, r"ACME-\d{6}", "customer ids", now))
    with pytest.raises(ValueError, match="invalid redaction pattern"):
        await env.db.write(lambda c: outputs.add_pattern(c, org_id, "(unclosed", "", now))
    with pytest.raises(ValueError, match="already saved"):
        await env.db.write(lambda c: outputs.add_pattern(c, org_id, r"ACME-\d{6}", "", now))
    n = await env.ping(b"billed ACME-123456 and ACME-654321\n")
    assert await env.text(n) == b"billed [REDACTED] and [REDACTED]\n"
    assert (await env.ref(n)).redactions == 2
    # Another organisation's output is not touched by these patterns.
    other_org = await env.db.write(lambda c: orgs.create(c, "other", "Other", now))
    other = await env.monitor("other-job", other_org.id)
    n = await env.ping(b"ACME-123456", m=other)
    assert env.store.read(other.uuid, await env.ref(n, other)) == b"ACME-123456"


async def test_capture_can_be_turned_off_for_the_server_or_one_monitor(env: Env) -> None:
    env.store.limit = 0
    n = await env.ping(b"not kept")
    assert not _file(env, n).exists()
    assert await env.db.read(lambda c: outputs.get(c, env.m.id, n)) is None
    [row] = await env.db.read(lambda c: pings.recent(c, env.m.id, limit=1))
    assert row.body is None and row.body_size == 8
    await env.db.write(lambda c: monitors.update(c, env.m.id, "up", {"output_limit": 5}) or None)
    n = await env.ping(b"kept: only the tail")
    assert await env.text(n) == b" tail"


async def test_the_file_is_written_and_synced_inside_the_transaction_and_a_retry_overwrites_it(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[str] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append("fsync"), real_fsync(fd))[1])
    conn = connect(env.db.path)
    conn.set_trace_callback(lambda sql: synced.append(sql.split()[0]))
    m = monitors.get(conn, env.m.id)
    assert m is not None
    conn.execute("BEGIN IMMEDIATE")
    env.store.capture(conn, m, 7, b"attempt one", 11, env.clock.now())
    conn.execute("ROLLBACK")
    # The batch is rolled back and runs again: the same (monitor, n) overwrites the file.
    conn.execute("BEGIN IMMEDIATE")
    env.store.capture(conn, m, 7, b"attempt two", 11, env.clock.now())
    conn.execute("COMMIT")
    conn.close()
    assert synced.index("fsync") < synced.index("COMMIT")
    assert os.listdir(_file(env, 7).parent) == ["7.out"]
    assert await env.text(7) == b"attempt two"


async def test_a_ping_whose_output_cannot_be_written_is_refused_not_answered_without_it(
    env: Env,
) -> None:
    first = await env.ping(b"fine")
    folder = _file(env, first).parent
    for f in folder.iterdir():
        f.unlink()
    folder.rmdir()
    folder.write_bytes(b"not a folder")  # every write under it fails
    with pytest.raises(WriteFailed, match="output of ping #2 could not be written"):
        await env.ping(b"lost?")
    assert [p.n for p in await env.db.read(lambda c: pings.recent(c, env.m.id))] == [first]
    assert await env.ping(b"") == 2  # a ping without output still goes through
    found = await env.db.read(lambda c: outputs.latest_output(c, env.store, env.m))
    assert found is None  # the first file is gone: reported in the log, never served


async def test_files_without_a_record_are_swept_but_recorded_ones_stay(env: Env) -> None:
    kept = await env.ping(b"recorded")
    conn = connect(env.db.path)
    m = monitors.get(conn, env.m.id)
    assert m is not None
    conn.execute("BEGIN IMMEDIATE")
    env.store.capture(conn, m, 99, b"never committed", 15, env.clock.now())
    conn.execute("ROLLBACK")
    conn.close()
    gone = await env.monitor("deleted")
    await env.ping(b"of a monitor about to be deleted", m=gone)
    await env.db.write(lambda c: c.execute("DELETE FROM monitors WHERE id = ?", (gone.id,)))
    (_file(env, 5).parent / "5.out.tmp").write_bytes(b"junk")
    assert await retention.sweep_orphans(env.db, env.store.root) == 3
    assert sorted(os.listdir(env.store.root)) == [str(env.m.id)]
    assert os.listdir(_file(env, kept).parent) == [f"{kept}.out"]
    assert await env.text(kept) == b"recorded"


async def test_retention_deletes_output_by_age_and_by_total_size_per_organisation(
    env: Env,
) -> None:
    now = env.clock.now()
    other_org = await env.db.write(lambda c: orgs.create(c, "other", "Other", now))
    other = await env.monitor("other-job", other_org.id)
    old = await env.ping(os.urandom(2000))
    await env.clock.advance(10 * 86400, settle=0)
    recent = [await env.ping(os.urandom(2000)) for _ in range(5)]
    other_n = await env.ping(os.urandom(2000), m=other)
    sizes = {r.org_id: r.stored for r in await env.db.read(outputs.usage)}
    policy = retention.OutputPolicy(env.store.root, max_age_seconds=5 * 86400, max_total=7000)
    deleted = await retention.prune_outputs(env.db, env.clock.now(), policy)
    # The 10-day-old file goes by age; then the default organisation (5 x ~2 KB) is over 7000
    # bytes, so its two oldest go; the other organisation is under its total and keeps its file.
    assert deleted == 3
    assert not _file(env, old).exists()
    left = await env.db.read(
        lambda c: [
            r[0] for r in c.execute("SELECT n FROM outputs WHERE monitor_id = ?", (env.m.id,))
        ]  # fmt: skip
    )
    assert left == recent[2:]
    assert sorted(int(p.stem) for p in _file(env, 0).parent.iterdir()) == recent[2:]
    assert _file(env, other_n, other).exists()
    usage = {u.org_id: u for u in await env.db.read(outputs.usage)}
    assert usage[env.m.org_id].stored <= 7000 < sizes[env.m.org_id]
    assert usage[other_org.id].files == 1


def test_a_record_without_its_key_in_the_purpose_does_not_decrypt(tmp_path: Path) -> None:
    sealer = Sealer(secrets.token_bytes(32))
    blob = sealer.seal(zlib.compress(b"x"), outputs.purpose("uuid-a", 1))
    assert zlib.decompress(sealer.open(blob, outputs.purpose("uuid-a", 1))) == b"x"
    with pytest.raises(ValueError):
        sealer.open(blob, outputs.purpose("uuid-b", 1))
