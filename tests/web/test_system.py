from pathlib import Path

from aiohttp.test_utils import TestClient

from tokiflow import __version__


async def test_healthz_reports_ok_when_the_database_reads_and_writes(client: TestClient) -> None:
    resp = await client.get("/healthz")
    assert resp.status == 200
    assert await resp.json() == {"status": "ok", "version": __version__, "db": "ok"}


async def test_healthz_reports_503_when_the_database_cannot_be_written(
    client: TestClient, data_dir: Path
) -> None:
    # Swap the table the health check writes to for a view: reads work, writes fail.
    import sqlite3

    conn = sqlite3.connect(data_dir / "tokiflow.db")
    conn.execute("ALTER TABLE server_meta RENAME TO server_meta_old")
    conn.execute("CREATE VIEW server_meta AS SELECT * FROM server_meta_old")
    conn.commit()
    conn.close()
    resp = await client.get("/healthz")
    assert resp.status == 503
    body = await resp.json()
    assert body["status"] == "error" and "server_meta" in body["db"]


async def test_version_answers_the_package_version(client: TestClient) -> None:
    resp = await client.get("/version")
    assert (await resp.json()) == {"version": __version__}


async def test_an_unknown_path_is_a_plain_404(client: TestClient) -> None:
    resp = await client.get("/nope")
    assert resp.status == 404
