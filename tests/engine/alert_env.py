"""A running engine with a dispatcher, and local receivers that record what they are sent (HTTP
requests, or emails through a real SMTP server)."""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import random
import threading
from email.message import Message
from pathlib import Path
from typing import Any

from aiohttp import web
from aiosmtpd.controller import Controller

from tests.cli_helpers import free_port
from tokiflow.clock import FakeClock
from tokiflow.config import Settings
from tokiflow.engine import channel_setup
from tokiflow.engine.dispatcher import Dispatcher
from tokiflow.engine.monitors import build_spec, create_monitor
from tokiflow.engine.pings import PingEvent, ingest
from tokiflow.engine.scheduler import Scheduler
from tokiflow.licensing import UNLIMITED
from tokiflow.storage import monitors, notifications, orgs
from tokiflow.storage.crypto import Sealer
from tokiflow.storage.database import Database
from tokiflow.storage.monitors import Monitor


class Receiver:
    """An aiohttp handler that records requests and answers with `status` (after `gate`)."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.gate: asyncio.Event | None = None
        self.arrived = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests.append((request.method, request.path_qs, dict(request.headers), body))
        self.arrived.set()
        if self.gate is not None:
            await self.gate.wait()
        return web.Response(status=self.status, text="ok")

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app


class Mailbox:
    """A real SMTP server (aiosmtpd) on a local port that keeps what it receives; made before it
    is started, so that "the SMTP server is down" is simply not started yet."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.got = threading.Condition()
        self.controller = Controller(self, hostname="127.0.0.1", port=free_port())
        self.running = False

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        with self.got:
            self.messages.append(email.message_from_bytes(envelope.content))
            self.got.notify_all()
        return "250 OK"

    def start(self) -> None:
        self.controller.start()
        self.running = True

    def stop(self) -> None:
        if self.running:
            self.controller.stop()
            self.running = False

    async def wait_for(self, count: int) -> list[Message]:
        def wait() -> bool:
            with self.got:
                return self.got.wait_for(lambda: len(self.messages) >= count, timeout=10)

        assert await asyncio.to_thread(wait), f"only {len(self.messages)} emails arrived"
        return self.messages

    def settings(self) -> dict[str, Any]:
        return {"smtp_host": "127.0.0.1", "smtp_port": self.controller.port, "smtp_tls": "none"}


class AlertEnv:
    def __init__(self, db: Database, clock: FakeClock, settings: Settings) -> None:
        self.db, self.clock, self.settings = db, clock, settings
        self.sealer = Sealer(b"s" * 32)
        self.scheduler = Scheduler(db, clock, started_at=clock.now())
        self.dispatcher = Dispatcher(db, clock, settings, self.sealer, rng=random.Random(7))
        self.scheduler.on_change = self.dispatcher.poke
        self.org_id = 0

    @classmethod
    async def open(cls, path: Path, clock: FakeClock, settings: Settings) -> AlertEnv:
        db = Database(path)
        await db.open()
        env = cls(db, clock, settings)
        now = clock.now()
        env.org_id = (await db.write(lambda c: orgs.ensure_default(c, now))).id
        await env.dispatcher.start()
        return env

    async def close(self) -> None:
        await self.dispatcher.close()
        await self.db.close()

    async def channel(
        self, kind: str, config: dict[str, Any], *, name: str = "ch", default: bool = True
    ) -> int:
        now = self.clock.now()
        row = await self.db.write(
            lambda c: channel_setup.create(
                c, self.sealer, org_id=self.org_id, kind=kind, name=name, config=config,
                is_default=default, now=now, limits=UNLIMITED,
            )
        )  # fmt: skip
        return row.id

    async def monitor(self, **kw: Any) -> Monitor:
        now = self.clock.now()
        kw.setdefault("name", "backup")
        spec = build_spec(org_id=self.org_id, **kw)
        return await self.db.write(lambda c: create_monitor(c, spec, now, limits=UNLIMITED))

    async def ping(self, m: Monitor, kind: str = "success", **kw: Any) -> None:
        ev = PingEvent(kind=kind, received_at=self.clock.now(), uuid=m.uuid, **kw)
        out = await ingest(self.db, self.scheduler, ev, pings_kept=1000, limits=UNLIMITED)
        if out.alerts_queued:
            self.dispatcher.poke()

    async def set(self, m: Monitor, **fields: Any) -> None:
        current = await self.db.read(lambda c: monitors.get(c, m.id))
        assert current is not None
        await self.db.write(lambda c: monitors.update(c, m.id, current.status, fields))

    async def deliver(self) -> int:
        """Dispatcher rounds at the current time until nothing more is due; how many were sent
        (a row that waits for an earlier one of its incident goes in a later round)."""
        total = 0
        while claimed := await self.dispatcher.tick(self.clock.now()):
            await self.dispatcher.drain()
            total += claimed
        return total

    async def after(self, seconds: float) -> int:
        await self.clock.advance(seconds)
        await self.scheduler.tick(self.clock.now())
        return await self.deliver()

    async def outbox(self) -> list[notifications.Notification]:
        return list(reversed(await self.db.read(lambda c: notifications.list_recent(c))))

    async def attempts(self, notification_id: int) -> list[notifications.Attempt]:
        return await self.db.read(lambda c: notifications.attempts(c, notification_id))


def at(clock: FakeClock, **delta: float) -> dt.datetime:
    return clock.now() + dt.timedelta(**delta)
