"""Server render time of the web UI's main pages with 10,000 monitors in the database.

Builds the real app on a temporary data folder, inserts the monitors (a tenth of them down with
an open incident, recent pings and runs on one), signs a user in, and times each page from a
middleware inside the server (handler + template rendering; no client or network time).
Run: `.venv/bin/python bench/ui_render.py [--monitors 10000] [--rounds 20]`. The target is under
100 ms per page. `--pings-per-monitor 100` first gives every monitor a realistic history (that many
pings, half as many runs, over the last 7 days; see `bench/analytics_org.py`).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tokiflow.app import create_app
from tokiflow.config import load_settings
from tokiflow.engine import auth
from tokiflow.engine.monitors import build_spec, create_monitor
from tokiflow.licensing import UNLIMITED
from tokiflow.storage import accounts, orgs
from tokiflow.web import appkeys, ui
from tokiflow.web.api.framework import SESSION_COOKIE
from tokiflow.web.ui.context import TEMPLATES

TIMINGS = web.AppKey("bench_timings", dict)


@web.middleware
async def timing(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    started = time.perf_counter()
    resp = await handler(request)
    request.app[TIMINGS].setdefault(request.path_qs, []).append(time.perf_counter() - started)
    return resp


async def run(n_monitors: int, rounds: int, pings_per_monitor: int = 0) -> None:
    data = Path(tempfile.mkdtemp(prefix="tf-ui-bench-")) / "data"
    settings = load_settings({"data_dir": str(data), "access_log": False}, env={})
    app = create_app(settings)
    if TEMPLATES not in app:
        ui.setup(app)
    app[TIMINGS] = {}
    app.middlewares.append(timing)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        token, uuids = await seed(app, n_monitors)
        if pings_per_monitor:
            from analytics_org import seed_history  # bench/, next to this file

            ids = await app[appkeys.DB].read(
                lambda c: [r[0] for r in c.execute("SELECT id FROM monitors ORDER BY id")]
            )
            now = dt.datetime.now(dt.UTC)
            n = seed_history(settings.db_path, ids, pings_per_monitor, 7, now)
            print(f"history: {n} pings, {n // 2} runs over 7 days")
        uuid = uuids[-1]
        client.session.cookie_jar.update_cookies({SESSION_COOKIE: token})
        for i in range(n_monitors // 10):  # a tenth fail: down, with an incident each
            await client.get(f"/ping/{uuids[i]}/fail")
        for _ in range(30):
            await client.get(f"/ping/{uuid}/start")
            await client.get(f"/ping/{uuid}")
        await client.get(f"/ping/{uuid}/start")  # a last run with 600 lines of output
        await client.post(f"/ping/{uuid}", data="".join(f"INFO line {i}\n" for i in range(600)))
        run_id = await app[appkeys.DB].read(
            lambda c: c.execute("SELECT max(id) FROM runs").fetchone()[0]
        )
        pages = [
            "/",
            "/?partial=1",
            "/monitors",
            "/monitors?status=down",
            "/monitors?q=job-99",
            "/monitors?tag=team-3&sort=last_ping",
            "/monitors?page=100",
            "/monitors/new",
            f"/monitors/{uuid}",
            f"/monitors/{uuid}/runs/{run_id}",
            "/analytics",
            "/analytics?days=90",
            f"/monitors/{uuid}/analytics",
            f"/monitors/{uuid}/analytics?days=90",
            "/ui/palette?q=job-12",
            "/incidents",
            "/settings/channels",
            "/ui/schedule?kind=cron&cron=30+2+*+*+1-5&tz=Europe/London",
        ]
        for page in pages:
            for _ in range(rounds):
                resp = await client.get(page)
                assert resp.status == 200, (page, resp.status)
                await resp.read()
        print(f"{n_monitors} monitors, {rounds} renders per page (server time, ms)")
        print(f"{'page':58} {'median':>8} {'p95':>8} {'max':>8}")
        for page in pages:
            times = sorted(t * 1000 for t in app[TIMINGS][page])
            p95 = times[int(len(times) * 0.95) - 1]
            print(f"{page[:58]:58} {statistics.median(times):8.1f} {p95:8.1f} {times[-1]:8.1f}")
    finally:
        await client.close()


async def seed(app: web.Application, n: int) -> tuple[str, list[str]]:
    """An owner with a session, and `n` monitors (every hour, tags team-0..9 and prod)."""
    db = app[appkeys.DB]
    now = dt.datetime.now(dt.UTC)
    password = auth.hash_password("a long password")

    def write(conn: object) -> tuple[str, list[str]]:
        org = orgs.ensure_default(conn, now)  # type: ignore[arg-type]
        user = accounts.create_user(conn, email="bench@example.com", name="", password_hash=password,
                                    now=now)  # type: ignore[arg-type]  # fmt: skip
        accounts.add_member(conn, user.id, org.id, "owner", now)  # type: ignore[arg-type]
        session = auth.start_session(conn, user, now)  # type: ignore[arg-type]
        uuids = []
        for i in range(n):
            spec = build_spec(org_id=org.id, name=f"Job {i}", slug=f"job-{i}", period="1h",
                              tags=[f"team-{i % 10}", "prod"])  # fmt: skip
            uuids.append(create_monitor(conn, spec, now, limits=UNLIMITED).uuid)  # type: ignore[arg-type]
        return session.token, uuids

    found: tuple[str, list[str]] = await db.write(write)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--monitors", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--pings-per-monitor", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(run(args.monitors, args.rounds, args.pings_per_monitor))


if __name__ == "__main__":
    main()
