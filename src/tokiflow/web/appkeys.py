"""Typed keys for the objects an Application holds (no module-level state anywhere else)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    pass

SETTINGS = web.AppKey["Settings"]("settings")
CLOCK = web.AppKey["Clock"]("clock")
DB = web.AppKey["Database"]("db")
SCHEDULER = web.AppKey["Scheduler"]("scheduler")
PING_LIMITER = web.AppKey["RateLimiter"]("ping_limiter")
