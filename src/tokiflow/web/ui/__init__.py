"""The web UI: server-rendered pages (jinja2), a little plain JavaScript, live updates over
server-sent events, and strict security headers. `setup(app)` registers all of it."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from aiohttp import web

from tokiflow.web.ui import (
    events,
    pages_account,
    pages_analytics,
    pages_auth,
    pages_dashboard,
    pages_device,
    pages_incidents,
    pages_monitors,
    pages_onboarding,
    pages_org,
    pages_runs,
    pages_settings,
    palette,
    security,
)
from tokiflow.web.ui.context import TEMPLATES, make_templates

STATIC_PREFIX = "/static/"


def static_dir() -> Path:
    """The package's static folder (a real folder in a wheel and in the PyInstaller binary)."""
    return Path(str(resources.files("tokiflow").joinpath("static")))


def setup(app: web.Application) -> None:
    """Register the UI's routes, static files, security headers middleware and resources."""
    app[TEMPLATES] = make_templates()
    app[events.STREAMS] = events.Streams()
    app.on_shutdown.append(events.on_shutdown)
    app.middlewares.append(security.headers_middleware)
    for table in (
        pages_auth.routes,
        pages_dashboard.routes,
        pages_monitors.routes,
        pages_runs.routes,
        palette.routes,
        pages_incidents.routes,
        pages_analytics.routes,
        pages_settings.routes,
        pages_account.routes,
        pages_org.routes,
        pages_onboarding.routes,
        pages_device.routes,
        events.routes,
    ):
        app.add_routes(table)
    app.router.add_static(STATIC_PREFIX, static_dir(), name="ui.static", append_version=False)
