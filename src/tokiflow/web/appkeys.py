"""Typed keys for the objects an Application holds (no module-level state anywhere else)."""

from __future__ import annotations

from aiohttp import web

from tokiflow.clock import Clock
from tokiflow.config import Settings
from tokiflow.engine.dispatcher import Dispatcher
from tokiflow.engine.scheduler import Scheduler
from tokiflow.storage.crypto import Sealer
from tokiflow.storage.database import Database
from tokiflow.storage.outputs import OutputStore
from tokiflow.web.ratelimit import RateLimiter

SETTINGS = web.AppKey("settings", Settings)
CLOCK = web.AppKey("clock", Clock)
DB = web.AppKey("db", Database)
SCHEDULER = web.AppKey("scheduler", Scheduler)
PING_LIMITER = web.AppKey("ping_limiter", RateLimiter)
SEALER = web.AppKey("sealer", Sealer)
DISPATCHER = web.AppKey("dispatcher", Dispatcher)
LOGIN_LIMITER = web.AppKey("login_limiter", RateLimiter)
OUTPUTS = web.AppKey("outputs", OutputStore)
