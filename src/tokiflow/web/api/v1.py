"""The `/api/v1` route set: one Api object every route module adds its routes to."""

from __future__ import annotations

from aiohttp import web

from tokiflow.web import appkeys
from tokiflow.web.api import (
    routes_account,
    routes_analytics,
    routes_audit,
    routes_auth,
    routes_channels,
    routes_device,
    routes_keys,
    routes_members,
    routes_monitors,
    routes_org,
)
from tokiflow.web.api.native import API


def setup(app: web.Application) -> None:
    """Register every /api/v1 route, the OpenAPI document and its docs page."""
    # The route modules registered on API when imported above (an explicit list, for the
    # frozen binary).
    assert routes_auth and routes_monitors and routes_org and routes_channels and routes_keys
    assert routes_members and routes_audit and routes_account and routes_analytics

    routes_device.setup(app)
    API.add_to(app)
    app.router.add_get("/api/v1/openapi.json", openapi_json)
    app.router.add_get("/api/v1/docs", docs_page)


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(API.openapi(request.app[appkeys.SETTINGS].public_url))


async def docs_page(request: web.Request) -> web.Response:
    """A plain page listing every route (no script, nothing from another origin)."""
    rows = []
    for ep in API.endpoints:
        rows.append(
            f"<tr><td><code>{ep.method}</code></td><td><code>{API.prefix}{ep.path}</code></td>"
            f"<td>{ep.summary}</td><td>{ep.scope}</td></tr>"
        )
    html = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Tokiflow API</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem}"
        "td,th{padding:.3rem .6rem;text-align:left;border-bottom:1px solid #ddd}</style></head>"
        f"<body><h1>Tokiflow API</h1><p>{API.description}</p>"
        "<p>Machine-readable: <a href='/api/v1/openapi.json'>/api/v1/openapi.json</a>.</p>"
        "<table><thead><tr><th>Method</th><th>Path</th><th>What it does</th><th>Access</th></tr>"
        f"</thead><tbody>{''.join(rows)}</tbody></table></body></html>"
    )
    return web.Response(text=html, content_type="text/html")
