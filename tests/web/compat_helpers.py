"""Helpers for the Cronitor, Sentry and Uptime Kuma front door tests: the app with their routes,
monitors and keys made straight in the database, and what was stored."""

from __future__ import annotations

import sqlite3
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from tokiflow.clock import FakeClock
from tokiflow.config import Settings
from tokiflow.engine import audit, auth
from tokiflow.engine.monitors import build_spec, create_monitor
from tokiflow.licensing import UNLIMITED
from tokiflow.storage import incidents, monitors, orgs, outputs, pings, runs
from tokiflow.storage.incidents import Incident
from tokiflow.storage.monitors import Monitor
from tokiflow.storage.orgs import Org
from tokiflow.storage.pings import Ping
from tokiflow.storage.runs import Run
from tokiflow.web import appkeys


def with_compat_routes(app: web.Application) -> web.Application:
    """The app as create_app builds it (it registers the compatibility front doors)."""
    return app


def app_of(client: TestClient) -> web.Application:
    app = client.app
    assert app is not None
    return app


async def default_org(client: TestClient) -> Org:
    return await app_of(client)[appkeys.DB].read(lambda conn: orgs.list_all(conn)[0])


async def api_key(client: TestClient, clock: FakeClock, *, read_only: bool = False) -> str:
    org = await default_org(client)

    def write(conn: sqlite3.Connection) -> str:
        new = auth.create_api_key(
            conn, org_id=org.id, name="test", read_only=read_only, now=clock.now()
        )
        return new.key

    return await app_of(client)[appkeys.DB].write(write)


async def add_monitor(client: TestClient, clock: FakeClock, **fields: Any) -> Monitor:
    org = await default_org(client)
    fields.setdefault("name", "nightly backup")
    fields.setdefault("period", "1d")
    spec = build_spec(org_id=org.id, **fields)
    return await app_of(client)[appkeys.DB].write(
        lambda conn: create_monitor(conn, spec, clock.now(), limits=UNLIMITED)
    )


async def by_slug(client: TestClient, slug: str) -> Monitor | None:
    org = await default_org(client)
    found = await app_of(client)[appkeys.DB].read(lambda conn: monitors.by_slug(conn, org.id, slug))
    return found[0] if found else None


async def by_uuid(client: TestClient, uuid: str) -> Monitor:
    found = await app_of(client)[appkeys.DB].read(lambda conn: monitors.by_uuid(conn, uuid))
    assert found is not None
    return found


async def stored_pings(client: TestClient, m: Monitor) -> list[Ping]:
    """The monitor's pings, oldest first."""
    store = app_of(client)[appkeys.OUTPUTS]
    newest = await app_of(client)[appkeys.DB].read(
        lambda conn: outputs.with_bodies(conn, store, m, pings.recent(conn, m.id))
    )
    return newest[::-1]


async def stored_runs(client: TestClient, m: Monitor) -> list[Run]:
    """The monitor's runs, oldest first."""
    newest = await app_of(client)[appkeys.DB].read(lambda conn: runs.recent(conn, m.id))
    return newest[::-1]


async def open_incidents(client: TestClient, m: Monitor) -> list[Incident]:
    return await app_of(client)[appkeys.DB].read(lambda conn: incidents.current(conn, m.id))


async def audit_actions(client: TestClient) -> list[str]:
    """The default organisation's audit log actions, oldest first."""
    org = await default_org(client)
    rows = await app_of(client)[appkeys.DB].read(lambda conn: audit.entries(conn, org.id))
    return [e.action for e in reversed(rows)]


def make_pings_unwritable(settings: Settings) -> None:
    """Swap the pings table for a view: reads still work, every insert fails."""
    conn = sqlite3.connect(settings.db_path)
    conn.execute("ALTER TABLE pings RENAME TO pings_old")
    conn.execute("CREATE VIEW pings AS SELECT * FROM pings_old")
    conn.commit()
    conn.close()
