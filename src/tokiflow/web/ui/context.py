"""What every UI page needs: who is signed in, the templates, rendering, flash messages, and
calls into the API's route handlers (so the UI and the API share one set of rules)."""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote
from zoneinfo import ZoneInfo

import jinja2
from aiohttp import web

from tokiflow import __version__
from tokiflow.engine import auth
from tokiflow.engine.audit import Actor
from tokiflow.engine.schedules import format_duration
from tokiflow.storage import accounts, monitors, orgs
from tokiflow.storage.accounts import User
from tokiflow.storage.monitors import Monitor
from tokiflow.storage.orgs import Org
from tokiflow.storage.writer import WriteFailed, WriterClosed
from tokiflow.web import appkeys, operations
from tokiflow.web.api.framework import SESSION_COOKIE, ApiError, ApiRequest, Caller, Endpoint
from tokiflow.web.api.native import API
from tokiflow.web.api.schema import SchemaError, validate
from tokiflow.web.ui import security

log = logging.getLogger(__name__)

TEMPLATES = web.AppKey("ui_templates", jinja2.Environment)
FLASH_COOKIE = "tokiflow_flash"
ORG_COOKIE = "tokiflow_org"


@dataclass(frozen=True)
class Viewer:
    """The signed-in user of a page, their organisation and role, and the session's CSRF token."""

    user: User
    csrf: str
    caller: Caller
    role: str
    orgs: tuple[tuple[Org, str], ...]

    @property
    def org(self) -> Org:
        return self.caller.org

    def can(self, scope: str) -> bool:
        return scope in self.caller.scopes


def make_templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("tokiflow", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["version"] = __version__
    return env


async def current_viewer(request: web.Request) -> Viewer | None:
    """The viewer of this request's session cookie, or None when not signed in."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    app = request.app
    now = app[appkeys.CLOCK].now()
    wanted = request.cookies.get(ORG_COOKIE)

    def read(conn: sqlite3.Connection) -> Viewer | None:
        found = auth.session_user(conn, token, now)
        if found is None:
            return None
        user, session = found
        mine: list[tuple[Org, str]] = []
        for m in accounts.memberships_of(conn, user.id):
            org = orgs.get(conn, m.org_id)
            if org is not None:
                mine.append((org, m.role))
        if not mine:
            return None
        org, role = next(((o, r) for o, r in mine if o.slug == wanted), mine[0])
        actor = Actor("user", user.id, user.email, request.remote or "",
                      request.headers.get("User-Agent", ""))  # fmt: skip
        caller = Caller(org, frozenset(auth.ROLE_SCOPES[role]), actor, user)
        return Viewer(user, session.csrf_token, caller, role, tuple(mine))

    viewer: Viewer | None = await app[appkeys.DB].read(read)
    return viewer


async def users_exist(request: web.Request) -> bool:
    return bool(await request.app[appkeys.DB].read(accounts.count_users))


def remember_org(request: web.Request, resp: web.StreamResponse, slug: str) -> None:
    """Make `slug` the organisation this browser's pages show (see `current_viewer`)."""
    secure = request.app[appkeys.SETTINGS].public_url.startswith("https://")
    resp.set_cookie(ORG_COOKIE, slug, max_age=365 * 86400, path="/", httponly=True,
                    samesite="Lax", secure=secure)  # fmt: skip


PageHandler = Callable[[web.Request, Viewer], Awaitable[web.StreamResponse]]


def page(scope: str = "read") -> Callable[[PageHandler], Callable[[web.Request], Any]]:
    """A handler for signed-in users: sends others to sign in, checks CSRF on POST and that the
    viewer's role has `scope` in the current organisation ("member": any member may)."""

    def wrap(fn: PageHandler) -> Callable[[web.Request], Any]:
        async def handler(request: web.Request) -> web.StreamResponse:
            viewer = await current_viewer(request)
            if viewer is None:
                if not await users_exist(request):
                    raise web.HTTPSeeOther("/setup")
                wanted = request.path_qs if request.method == "GET" else "/"
                raise web.HTTPSeeOther(f"/login?next={quote(wanted, safe='')}")
            if request.method == "POST":
                form = await request.post()
                if not security.tokens_match(form.get("csrf_token"), viewer.csrf):
                    return error_page(request, viewer, 403, "This form has expired or did not "
                                      "come from this site. Go back, reload and try again.")  # fmt: skip
            if not viewer.can(scope):
                return error_page(
                    request, viewer, 403, f"Your role ({viewer.role}) may not do this."
                )
            return await fn(request, viewer)

        handler.__name__ = fn.__name__
        return handler

    return wrap


class Fmt:
    """Time and duration formatting for templates, in the viewer's time zone."""

    def __init__(self, now: dt.datetime, tz: str) -> None:
        self.now = now
        try:
            self.zone = ZoneInfo(tz or "UTC")
        except Exception:  # an unknown zone stored long ago: show UTC rather than fail
            self.zone = ZoneInfo("UTC")

    def at(self, when: dt.datetime | None) -> str:
        if when is None:
            return "—"
        return when.astimezone(self.zone).strftime("%Y-%m-%d %H:%M:%S %Z")

    def iso(self, when: dt.datetime | None) -> str:
        return "" if when is None else when.isoformat().replace("+00:00", "Z")

    def ago(self, when: dt.datetime | None) -> str:
        if when is None:
            return "never"
        seconds = (self.now - when).total_seconds()
        future = seconds < 0
        seconds = abs(seconds)
        if seconds < 5:
            return "just now"
        if seconds < 60:
            text = f"{int(seconds)} s"
        elif seconds < 3600:
            text = f"{int(seconds // 60)} min"
        elif seconds < 86400:
            text = f"{int(seconds // 3600)} h"
        else:
            text = f"{int(seconds // 86400)} d"
        return f"in {text}" if future else f"{text} ago"

    def duration(self, seconds: float | None) -> str:
        if seconds is None:
            return "—"
        if seconds < 10:
            return f"{seconds:.2f} s"
        return format_duration(round(seconds))

    def parse(self, text: str | None) -> dt.datetime | None:
        """A datetime from an API view's RFC 3339 text."""
        if not text:
            return None
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def render(
    request: web.Request,
    template: str,
    viewer: Viewer | None,
    *,
    http_status: int = 200,
    **context: Any,
) -> web.Response:
    env = request.app[TEMPLATES]
    now = request.app[appkeys.CLOCK].now()
    flash = unquote(request.cookies.get(FLASH_COOKIE, ""))
    html = env.get_template(template).render(
        viewer=viewer,
        fmt=Fmt(now, viewer.user.tz if viewer else "UTC"),
        flash=flash,
        path=request.path,
        # An expiring or expired licence says so on every page signed-in people see.
        licence_banner=operations.licence_status(request.app).banner if viewer else None,
        **context,
    )
    resp = web.Response(text=html, content_type="text/html", status=http_status)
    if flash:
        resp.del_cookie(FLASH_COOKIE, path="/")
    return resp


def error_page(
    request: web.Request, viewer: Viewer | None, status: int, message: str
) -> web.Response:
    return render(request, "ui/error.html", viewer, http_status=status, status_code=status,
                  message=message)  # fmt: skip


def not_found(request: web.Request, viewer: Viewer, what: str) -> web.Response:
    return error_page(request, viewer, 404, f"No such {what} in {viewer.org.name}.")


def redirect(location: str, flash: str = "") -> web.HTTPSeeOther:
    """A 303 to `location`, with a one-time message for the next page."""
    resp = web.HTTPSeeOther(location)
    if flash:
        resp.set_cookie(FLASH_COOKIE, quote(flash[:300]), path="/", httponly=True, samesite="Lax")
    return resp


# -- calling the API's handlers -----------------------------------------------------------------


def _endpoint(method: str, path: str) -> Endpoint:
    for ep in API.endpoints:
        if ep.method == method and ep.path == path:
            return ep
    raise LookupError(f"no API route {method} {path}")


async def call_api(
    request: web.Request,
    caller: Caller | None,
    method: str,
    path: str,
    *,
    params: dict[str, str] | None = None,
    query: dict[str, Any] | None = None,
    body: Any = None,
) -> Any:
    """Run an /api/v1 route's handler in-process as `caller`, with the same scope check and body
    validation as over HTTP. Raises ApiError for anything the API would refuse."""
    ep = _endpoint(method, path)
    if ep.scope != "public":
        if caller is None:
            raise ApiError(401, "sign in first")
        caller.require(ep.scope)
    values = {p.name: p.schema.get("default") for p in ep.query}
    values.update({k: v for k, v in (query or {}).items() if v is not None})
    if ep.body is not None:
        try:
            validate(body, ep.body)
        except SchemaError as exc:
            raise ApiError(400, str(exc), field=exc.path.removeprefix("body.")) from None
    try:
        return await ep.handler(ApiRequest(request, caller, dict(params or {}), values, body))
    except (WriteFailed, WriterClosed) as exc:
        log.error("UI write failed: %s", exc)
        raise ApiError(503, "storage unavailable, try again") from None


def error_text(exc: ApiError) -> str:
    """An API error as a sentence for a form: without the `body.field:` prefix."""
    message = exc.message
    if message.startswith(("body.", "query.")) and ": " in message:
        return message.split(": ", 1)[1]
    field = exc.detail.get("field")
    if field and message.startswith(f"{field}: "):
        return message.split(": ", 1)[1]
    return message


async def send_test_alert(request: web.Request, viewer: Viewer, channel_id: str) -> str:
    """Send a channel's test alert through the API and say how it went (a flash message).
    Raises ApiError as the API does (404 for a channel outside the viewer's organisation)."""
    result = await call_api(request, viewer.caller, "POST", "/channels/{id}/test",
                            params={"id": channel_id})  # fmt: skip
    if result["ok"]:
        return f"Test alert sent ({result['status'] or 'ok'}, {result['latency_ms']:.0f} ms)."
    return f"Test alert failed: {result['error']}"


async def own_monitor(request: web.Request, viewer: Viewer) -> Monitor | None:
    """The monitor of the path's `{uuid}`, or None when there is none in the viewer's
    organisation (shown as not found, like a monitor that does not exist)."""
    uuid = request.match_info["uuid"].lower()
    m = await request.app[appkeys.DB].read(lambda c: monitors.by_uuid(c, uuid))
    return m if m is not None and m.org_id == viewer.org.id else None


def row_id(text: str | None) -> int | None:
    """A row id from a path or form (ASCII digits that fit an SQLite integer), else None: `"²"`
    passes `str.isdigit` but not `int`, and a larger number makes SQLite raise."""
    if not text or not text.isascii() or not text.isdigit() or len(text) > 19:
        return None
    value = int(text)
    return value if value < 2**63 else None
