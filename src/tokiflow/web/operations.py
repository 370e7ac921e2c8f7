"""Operations: the licence in force, /metrics for Prometheus, and the self-heartbeat task."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web


def add_routes(app: web.Application) -> None:
    """Register the operations routes."""


async def ctx(app: web.Application) -> AsyncIterator[None]:
    """Start and stop the operations tasks (cleanup_ctx)."""
    yield
