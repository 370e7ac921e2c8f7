"""The application factory: builds the aiohttp Application without doing any I/O.

Resources open in `cleanup_ctx` order (database: migrate then open; then the engine's tasks) and
close in reverse, so only what started is cleaned up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from tokiflow.clock import Clock, SystemClock
from tokiflow.config import Settings
from tokiflow.engine import retention
from tokiflow.engine.dispatcher import Dispatcher
from tokiflow.engine.scheduler import Scheduler
from tokiflow.storage import monitors, orgs
from tokiflow.storage.crypto import Sealer, load_or_create_key
from tokiflow.storage.database import Database
from tokiflow.storage.outputs import OutputStore
from tokiflow.web import (
    appkeys,
    cronitor_api,
    hc_api,
    operations,
    ping_cronitor,
    ping_hc,
    ping_kuma,
    ping_sentry,
    system,
    ui,
)
from tokiflow.web.api import routes_account
from tokiflow.web.api import v1 as api_v1
from tokiflow.web.ratelimit import RateLimiter

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn an unexpected exception into a short 500 with no traceback (logged on our side)."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.rel_url.path)
        return web.json_response({"error": "internal error"}, status=500)


def create_app(settings: Settings, *, clock: Clock | None = None) -> web.Application:
    """Build the Application for `settings`; nothing is opened until the app starts."""
    app = web.Application(middlewares=[error_middleware], client_max_size=1024**2)
    app[appkeys.SETTINGS] = settings
    app[appkeys.CLOCK] = clock or SystemClock()
    app[appkeys.PING_LIMITER] = RateLimiter(
        app[appkeys.CLOCK], rate=settings.ping_rate_limit, burst=settings.ping_rate_burst
    )
    # Sign-in and set-up: 10 attempts per minute per address, bursts of 10.
    app[appkeys.LOGIN_LIMITER] = RateLimiter(app[appkeys.CLOCK], rate=10 / 60, burst=10)
    app.cleanup_ctx.append(_database)
    app.cleanup_ctx.append(_engine)
    app.cleanup_ctx.append(operations.ctx)
    app.add_routes(system.routes)
    ping_hc.add_routes(app)
    for module in (ping_cronitor, ping_sentry, ping_kuma, cronitor_api):
        module.add_routes(app)
    operations.add_routes(app)
    api_v1.setup(app)
    routes_account.setup(app)
    hc_api.add_routes(app)
    ui.setup(app)
    return app


async def _database(app: web.Application) -> AsyncIterator[None]:
    settings = app[appkeys.SETTINGS]
    db = Database(settings.db_path)
    await db.open()
    app[appkeys.DB] = db
    key = await asyncio.to_thread(load_or_create_key, settings.data_dir, settings.secret_key)
    app[appkeys.SEALER] = Sealer(key)
    app[appkeys.OUTPUTS] = OutputStore(
        settings.outputs_dir, app[appkeys.SEALER], limit=settings.output_capture_limit
    )
    checkpoints = asyncio.create_task(db.run_checkpoints(app[appkeys.CLOCK]), name="checkpoints")
    try:
        yield
    finally:
        checkpoints.cancel()
        try:
            await checkpoints
        except asyncio.CancelledError:
            pass
        await db.close()
        log.info("database closed")


async def _engine(app: web.Application) -> AsyncIterator[None]:
    """The scheduler (deadlines rebuilt from the database) and the retention task."""
    db = app[appkeys.DB]
    clock = app[appkeys.CLOCK]
    settings = app[appkeys.SETTINGS]
    output_policy = retention.OutputPolicy(
        settings.outputs_dir, settings.output_retention, settings.output_max_total
    )
    started_at = clock.now()
    await db.write(lambda conn: orgs.ensure_default(conn, started_at))
    scheduler = Scheduler(db, clock, started_at=started_at)
    scheduler.load(await db.read(lambda conn: list(monitors.deadlines(conn))))
    app[appkeys.SCHEDULER] = scheduler
    log.info("scheduler watching %d monitors", len(scheduler))
    dispatcher = Dispatcher(db, clock, app[appkeys.SETTINGS], app[appkeys.SEALER])
    app[appkeys.DISPATCHER] = dispatcher
    scheduler.on_change = dispatcher.poke
    tasks = [
        asyncio.create_task(scheduler.run(), name="scheduler"),
        asyncio.create_task(dispatcher.run(), name="dispatcher"),
        asyncio.create_task(
            retention.run(db, clock, settings.retention, output_policy=output_policy),
            name="retention",
        ),
    ]
    try:
        yield
    finally:
        tasks[1].cancel()  # no new claims; sends in flight get a moment to finish
        await dispatcher.close()
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:
                log.exception("%s task failed", task.get_name())
