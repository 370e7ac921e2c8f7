"""The command palette's data (Ctrl/Cmd+K): the pages and actions the viewer may use, and the
monitors of their organisation whose name or slug matches what they typed (at most 20).

JSON for app.js, behind the session like every page; the palette itself is a dialog in
base.html. Pages are listed only when the server has them (a page another part adds later
appears by itself) and actions only when the viewer's role allows them."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tokiflow.storage import monitor_lists
from tokiflow.web import appkeys
from tokiflow.web.ui.context import Viewer, page

routes = web.RouteTableDef()

LIMIT = 20
# (title, paths (the first the server has is used), scope needed, extra words it is found by)
PAGES = (
    ("Go to the dashboard", ("/",), "read", "home overview"),
    ("Go to monitors", ("/monitors",), "read", "checks jobs list"),
    ("Go to incidents", ("/incidents",), "read", "alerts outages"),
    ("Go to analytics", ("/analytics",), "read", "reports uptime health"),
    ("Go to settings", ("/settings", "/settings/org", "/settings/channels"), "read",
     "organisation preferences"),
    ("Alert channels", ("/settings/channels",), "read", "settings integrations notifications"),
    ("API keys", ("/settings/keys",), "read", "settings tokens"),
    ("Members", ("/settings/members",), "read", "settings people invite users"),
    ("Audit log", ("/settings/audit",), "read", "settings history changes"),
    ("Your account", ("/account",), "read", "profile password two-factor"),
    ("New monitor", ("/monitors/new",), "write", "create add"),
)  # fmt: skip
ACTIONS = (("Toggle the theme (auto, dark, light)", "theme", "dark light mode colours"),)


def _paths(app: web.Application) -> set[str]:
    """The plain paths the server answers with a GET page."""
    found: set[str] = set()
    for resource in app.router.resources():
        info = resource.get_info()
        if "path" in info:
            found.add(str(info["path"]))
    return found


def _matches(query: str, *texts: str) -> bool:
    hay = " ".join(texts).lower()
    return all(word in hay for word in query.lower().split())


@routes.get("/ui/palette", name="ui.palette")
@page("read")
async def palette(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """`{items: [{kind, title, href|action, detail}]}`: pages, actions, then monitors."""
    q = (request.query.get("q") or "").strip()[:100]
    known = _paths(request.app)
    items: list[dict[str, Any]] = []
    for title, paths, scope, words in PAGES:
        path = next((p for p in paths if p in known), None)
        if path is not None and viewer.can(scope) and _matches(q, title, path, words):
            items.append({"kind": "page", "title": title, "href": path, "detail": path})
    for title, action, words in ACTIONS:
        if _matches(q, title, words):
            items.append({"kind": "action", "title": title, "action": action, "detail": ""})
    org_id = viewer.org.id
    found = await request.app[appkeys.DB].read(lambda c: monitor_lists.find(c, org_id, q, LIMIT))
    for m in found:
        shown = "running" if m.open_runs > 0 and m.status != "paused" else m.status  # as views
        items.append({"kind": "monitor", "title": m.name, "href": f"/monitors/{m.uuid}",
                      "detail": f"{shown} · {m.slug}", "status": shown})  # fmt: skip
    return web.json_response({"items": items})
