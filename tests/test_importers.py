"""`tokiflow import healthchecks|cronitor|uptime-kuma` and `tokiflow orgs dsn`, run in-process on
a real data folder; Healthchecks is a local fake of its API v3. Imported monitors are then
pinged through the real app at their old URLs."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.web.compat_helpers import by_uuid, stored_pings, with_compat_routes
from tokiflow import cli
from tokiflow.clock import FakeClock
from tokiflow.config import Settings
from tokiflow.importers import Upserted, slug_for_key, upsert
from tokiflow.importers.uptime_kuma import token_uuid
from tokiflow.licensing import UNLIMITED
from tokiflow.storage import monitors, orgs
from tokiflow.storage.db import connect
from tokiflow.storage.monitors import Monitor

AiohttpClient = Callable[[web.Application], Awaitable[TestClient]]
MakeApp = Callable[..., web.Application]
RW_KEY = "hc-rw-key"
RO_KEY = "hc-ro-key"

HC_CHECKS: list[dict[str, Any]] = [
    {
        "name": "Nightly backup",
        "slug": "nightly-backup",
        "tags": "prod db",
        "desc": "pg_dump",
        "grace": 900,
        "n_pings": 12,
        "status": "up",
        "started": False,
        "last_ping": "2026-03-01T03:00:02+00:00",
        "manual_resume": False,
        "methods": "",
        "uuid": "31365bce-8c5d-4a3b-8a1d-3d0c8b7c6a01",
        "ping_url": "https://hc-ping.com/31365bce-8c5d-4a3b-8a1d-3d0c8b7c6a01",
        "channels": "4ec2bbd5-cba1-4c24-a9b6-3d8b9a2f1b11",
        "schedule": "0 3 * * *",
        "tz": "Europe/Riga",
    },
    {
        "name": "Queue heartbeat",
        "slug": "",
        "tags": "",
        "desc": "",
        "grace": 60,
        "n_pings": 0,
        "status": "paused",
        "started": False,
        "last_ping": None,
        "manual_resume": True,
        "methods": "POST",
        "ping_url": "https://hc-ping.com/5f0e8f2d-7e0b-4f0c-9a51-1c2d3e4f5a6b",
        "channels": "",
        "timeout": 300,
    },
    {
        "name": "Weekly report",
        "slug": "weekly",
        "tags": "",
        "desc": "",
        "grace": 3600,
        "n_pings": 0,
        "status": "new",
        "started": False,
        "last_ping": None,
        "manual_resume": False,
        "methods": "",
        "uuid": "0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e",
        "channels": "",
        "schedule": "OnCalendar=Mon *-*-* 09:00",
        "tz": "UTC",
    },
]


class FakeHealthchecks:
    """GET /api/v3/checks/ as Healthchecks answers it, for the read-write and read-only keys."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                key = self.headers.get("X-Api-Key", "")
                outer.requests.append((self.path, key))
                if self.path != "/api/v3/checks/":
                    return self._send(404, {"error": "not found"})
                if key == RW_KEY:
                    return self._send(200, {"checks": HC_CHECKS})
                if key == RO_KEY:
                    ro = [
                        {k: v for k, v in c.items() if k not in ("uuid", "ping_url")}
                        | {"unique_key": "a" * 40}
                        for c in HC_CHECKS
                    ]
                    return self._send(200, {"checks": ro})
                self._send(401, {"error": "missing api key"})

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_hc() -> Iterator[FakeHealthchecks]:
    server = FakeHealthchecks()
    yield server
    server.close()


@pytest.fixture
def tokiflow(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], data_dir: Path
) -> Callable[..., tuple[int, str, str]]:
    """Run `tokiflow ARGS --data-dir DATA` in-process: (exit status, stdout, stderr)."""
    for name in [n for n in __import__("os").environ if n.startswith("TOKIFLOW_")]:
        monkeypatch.delenv(name)

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = cli.main([*args, "--data-dir", str(data_dir)])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def all_monitors(settings: Settings) -> dict[str, Monitor]:
    conn = connect(settings.db_path, readonly=True)
    try:
        return {m.uuid: m for m in monitors.list_for_org(conn)}
    finally:
        conn.close()


# -- Healthchecks ----------------------------------------------------------------------------


async def test_healthchecks_checks_keep_their_uuids_schedules_and_ping_urls(
    tokiflow: Callable[..., tuple[int, str, str]],
    fake_hc: FakeHealthchecks,
    settings: Settings,
    aiohttp_client: AiohttpClient,
    make_app: MakeApp,
) -> None:
    code, out, err = tokiflow("import", "healthchecks", "--url", fake_hc.url, "--api-key", RW_KEY)
    assert code == 0, err
    assert fake_hc.requests == [("/api/v3/checks/", RW_KEY)]
    found = all_monitors(settings)
    backup = found["31365bce-8c5d-4a3b-8a1d-3d0c8b7c6a01"]
    assert (backup.name, backup.slug, backup.cron, backup.tz, backup.grace) == (
        "Nightly backup",
        "nightly-backup",
        "0 3 * * *",
        "Europe/Riga",
        900,
    )
    assert (backup.tags, backup.description, backup.status) == ("prod db", "pg_dump", "new")
    queue = found["5f0e8f2d-7e0b-4f0c-9a51-1c2d3e4f5a6b"]
    assert (queue.slug, queue.period, queue.grace, queue.status) == (
        "queue-heartbeat",
        300,
        60,
        "paused",
    )
    assert (queue.methods, queue.manual_resume) == ("post", True)
    assert "0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e" not in found
    assert "integrations are not imported" in out
    assert "skipped       Weekly report: schedule:" in out
    assert out.strip().endswith("2 created, 1 skipped")

    # The old ping URL works unchanged against Tokiflow.
    client = await aiohttp_client(make_app())
    resp = await client.get("/ping/31365bce-8c5d-4a3b-8a1d-3d0c8b7c6a01")
    assert (resp.status, await resp.text()) == (200, "OK")


def test_a_second_healthchecks_import_skips_what_exists(
    tokiflow: Callable[..., tuple[int, str, str]], fake_hc: FakeHealthchecks, settings: Settings
) -> None:
    tokiflow("import", "healthchecks", "--url", fake_hc.url + "/api/v3/", "--api-key", RW_KEY)
    code, out, _ = tokiflow("import", "healthchecks", "--url", fake_hc.url, "--api-key", RW_KEY)
    assert code == 0
    assert "a monitor with uuid 31365bce-8c5d-4a3b-8a1d-3d0c8b7c6a01 already exists" in out
    assert out.strip().endswith("0 created, 3 skipped")
    assert len(all_monitors(settings)) == 2


def test_a_dry_run_prints_the_plan_and_changes_nothing(
    tokiflow: Callable[..., tuple[int, str, str]], fake_hc: FakeHealthchecks, settings: Settings
) -> None:
    code, out, _ = tokiflow(
        "import", "healthchecks", "--url", fake_hc.url, "--api-key", RW_KEY, "--dry-run"
    )
    assert code == 0
    assert "would create  Nightly backup  [nightly-backup]" in out
    assert f"{settings.public_url}/ping/31365bce-8c5d-4a3b-8a1d-3d0c8b7c6a01" in out
    assert out.strip().endswith("2 would create, 1 skipped (dry run: nothing was changed)")
    assert all_monitors(settings) == {}


@pytest.mark.parametrize(
    ("key", "url", "message"),
    [
        (RO_KEY, None, "read-only API key"),
        ("wrong", None, "refused the API key (401)"),
        (RW_KEY, "http://127.0.0.1:9", "cannot reach http://127.0.0.1:9/api/v3"),
        (RW_KEY, "ftp://example.com", "is not an http(s) URL"),
    ],
)
def test_healthchecks_import_problems_are_one_clear_line(
    tokiflow: Callable[..., tuple[int, str, str]],
    fake_hc: FakeHealthchecks,
    settings: Settings,
    key: str,
    url: str | None,
    message: str,
) -> None:
    code, out, err = tokiflow(
        "import", "healthchecks", "--url", url or fake_hc.url, "--api-key", key
    )
    assert code == 1
    lines = [ln for ln in err.splitlines() if ln.strip() and " INFO " not in ln]
    assert len(lines) == 1 and message in lines[0], err
    assert "Traceback" not in err


# -- Cronitor ------------------------------------------------------------------------------------

CRONITOR_YAML = """\
jobs:
  nightly-database-backup:
    schedule: 0 0 * * *
    timezone: America/New_York
    notify:
      - devops-alert-pagerduty
    assertions:
      - metric.duration < 5 minutes
  send-welcome-email:
    schedule: every 10 minutes
    grace_seconds: 120
    assertions:
      - metric.count > 0
      - metric.duration < 30 seconds
checks:
  cronitor-homepage:
    request:
      url: https://cronitor.io
heartbeats:
  production-deploy:
    notify:
      alerts: ['deploys-slack']
"""


def test_a_cronitor_yaml_config_is_imported_by_key(
    tokiflow: Callable[..., tuple[int, str, str]], tmp_path: Path, settings: Settings
) -> None:
    path = tmp_path / "cronitor.yaml"
    path.write_text(CRONITOR_YAML)
    code, out, err = tokiflow("import", "cronitor", str(path))
    assert code == 0, err
    by_slug = {m.slug: m for m in all_monitors(settings).values()}
    backup = by_slug["nightly-database-backup"]
    assert (backup.cron, backup.tz, backup.max_runtime) == ("0 0 * * *", "America/New_York", 300)
    email = by_slug["send-welcome-email"]
    assert (email.period, email.grace, email.max_runtime) == (600, 120, 30)
    assert "production-deploy" in by_slug
    assert "assertion 'metric.count > 0' has no Tokiflow equivalent" in out
    assert "alert targets are not imported" in out
    assert "skipped       cronitor-homepage: type: 'check' monitors are not supported" in out
    assert out.strip().endswith("3 created, 1 skipped")
    # The key is the identity: importing again skips, it does not rename.
    code, out, _ = tokiflow("import", "cronitor", str(path))
    assert "a monitor with slug 'nightly-database-backup' already exists" in out


def test_a_cronitor_json_export_is_imported(
    tokiflow: Callable[..., tuple[int, str, str]], tmp_path: Path, settings: Settings
) -> None:
    export = {
        "monitors": [
            {
                "key": "ETL Load",
                "name": "ETL load",
                "type": "job",
                "schedule": "30 1 * * *",
                "tags": ["data team"],
                "paused": True,
                "note": "loads the warehouse",
            },
            {"key": "bad", "type": "job", "schedule": "every fortnight"},
        ],
        "page_size": 50,
        "total_monitor_count": 2,
    }
    path = tmp_path / "monitors.json"
    path.write_text(json.dumps(export))
    code, out, _ = tokiflow("import", "cronitor", str(path))
    assert code == 0
    [etl] = all_monitors(settings).values()
    assert (etl.slug, etl.name, etl.tags, etl.status, etl.description) == (
        "etl-load",
        "ETL load",
        "data-team",
        "paused",
        "loads the warehouse",
    )
    assert "skipped       bad: schedule: cannot read the schedule 'every fortnight'" in out


def test_an_unreadable_cronitor_file_is_one_clear_line(
    tokiflow: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    code, _, err = tokiflow("import", "cronitor", str(tmp_path / "missing.yaml"))
    assert (code, "cannot read" in err) == (1, True)
    bad = tmp_path / "bad.yaml"
    bad.write_text("jobs: [unclosed")
    code, _, err = tokiflow("import", "cronitor", str(bad))
    assert (code, "neither JSON nor YAML" in err) == (1, True)


# -- Uptime Kuma -------------------------------------------------------------------------------

KUMA_BACKUP = {
    "version": "1.23.16",
    "notificationList": [],
    "monitorList": [
        {
            "id": 1,
            "name": "Backup job",
            "type": "push",
            "pushToken": "Xk3pQ9zLmNo2",
            "interval": 3600,
            "retryInterval": 300,
            "maxretries": 2,
            "active": 1,
            "upsideDown": False,
            "description": "restic",
            "tags": [
                {"tag_id": 1, "monitor_id": 1, "name": "env", "value": "prod", "color": "#fff"}
            ],
        },
        {
            "id": 2,
            "name": "Fast push",
            "type": "push",
            "pushToken": "AbCdEf123456",
            "interval": 20,
            "retryInterval": 20,
            "maxretries": 0,
            "active": 0,
            "upsideDown": False,
        },
        {
            "id": 3,
            "name": "Homepage",
            "type": "http",
            "url": "https://example.com",
            "interval": 60,
            "active": 1,
        },
        {
            "id": 4,
            "name": "Inverted",
            "type": "push",
            "pushToken": "ZZZ",
            "interval": 60,
            "active": 1,
            "upsideDown": True,
        },
    ],
}


async def test_kuma_push_monitors_are_imported_and_keep_their_push_urls(
    tokiflow: Callable[..., tuple[int, str, str]],
    tmp_path: Path,
    aiohttp_client: AiohttpClient,
    make_app: MakeApp,
    clock: FakeClock,
) -> None:
    path = tmp_path / "kuma.json"
    path.write_text(json.dumps(KUMA_BACKUP))
    code, out, err = tokiflow("import", "uptime-kuma", str(path))
    assert code == 0, err
    assert "skipped       Homepage: a 'http' monitor, not a push monitor" in out
    assert "skipped       Inverted: upside-down mode" in out
    assert "interval 20s raised to Tokiflow's minimum of 60s" in out
    assert out.strip().endswith("2 created, 2 skipped")

    client = await aiohttp_client(with_compat_routes(make_app()))
    backup = await by_uuid(client, token_uuid("Xk3pQ9zLmNo2"))
    assert (backup.period, backup.grace, backup.failure_tolerance) == (3600, 600, 2)
    assert (backup.tags, backup.description) == ("env:prod", "restic")
    fast = await by_uuid(client, token_uuid("AbCdEf123456"))
    assert (fast.period, fast.grace, fast.status) == (60, 60, "paused")
    resp = await client.get("/api/push/Xk3pQ9zLmNo2?status=up&msg=OK&ping=")
    assert await resp.json() == {"ok": True}
    assert [p.kind for p in await stored_pings(client, backup)] == ["success"]


def test_a_file_that_is_not_a_kuma_backup_is_refused(
    tokiflow: Callable[..., tuple[int, str, str]], tmp_path: Path
) -> None:
    path = tmp_path / "other.json"
    path.write_text('{"hello": 1}')
    code, _, err = tokiflow("import", "uptime-kuma", str(path))
    assert code == 1 and "no monitorList found" in err


# -- the organisation's Sentry DSN -------------------------------------------------------------


def test_orgs_dsn_prints_the_dsn_from_the_base_url(
    tokiflow: Callable[..., tuple[int, str, str]], settings: Settings
) -> None:
    code, out, err = tokiflow("orgs", "dsn", "--config", "/dev/null")
    assert code == 0, err
    conn = connect(settings.db_path, readonly=True)
    org = orgs.list_all(conn)[0]
    conn.close()
    assert out.strip() == f"http://{org.ping_key}@127.0.0.1:8000/{org.id}"
    code, _, err = tokiflow("orgs", "dsn", "--org", "nope")
    assert code == 1 and "no organisation with slug 'nope'" in err


# -- upsert (used by the Cronitor API and Sentry check-ins) ------------------------------------


def test_upsert_creates_then_changes_only_what_differs(
    settings: Settings, clock: FakeClock
) -> None:
    from tokiflow.storage.migrations import migrate

    settings.data_dir.mkdir(parents=True)
    migrate(settings.db_path)
    conn = connect(settings.db_path)
    try:
        org = orgs.ensure_default(conn, clock.now())
        now = clock.now()
        first: Upserted = upsert(
            conn, org.id, "job", {"cron": "0 * * * *"}, now, now, limits=UNLIMITED
        )
        again = upsert(conn, org.id, "job", {"cron": "0 * * * *"}, now, now, limits=UNLIMITED)
        changed = upsert(conn, org.id, "job", {"grace": 120}, now, now, limits=UNLIMITED)
    finally:
        conn.close()
    assert (first.action, again.action, changed.action) == ("created", "unchanged", "updated")
    assert (changed.monitor.cron, changed.monitor.grace) == ("0 * * * *", 120)


@pytest.mark.parametrize(
    ("key", "slug"),
    [("nightly-job", "nightly-job"), ("Nightly Job", "nightly-job"), ("ETL_1", "etl_1")],
)
def test_foreign_keys_map_to_stable_slugs(key: str, slug: str) -> None:
    assert slug_for_key(key) == slug
