"""Security headers on every UI response, and CSRF checks for the UI's forms.

Forms post the session's CSRF token as a hidden `csrf_token` field. Before sign-in (the sign-in and
first-run forms) there is no session yet, so those forms use a double-submit cookie instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from tokiflow.engine import auth
from tokiflow.web import appkeys

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}
HSTS = "max-age=31536000; includeSubDomains"
PRE_SESSION_COOKIE = "tokiflow_csrf"
UI_ROUTE_PREFIX = "ui."


def is_ui(request: web.Request) -> bool:
    """Whether a request was routed to a UI page, UI endpoint or static file."""
    name = request.match_info.route.name or ""
    return name.startswith(UI_ROUTE_PREFIX)


def add_headers(request: web.Request, resp: web.StreamResponse) -> None:
    for name, value in HEADERS.items():
        resp.headers.setdefault(name, value)
    if request.app[appkeys.SETTINGS].public_url.startswith("https://") or request.secure:
        resp.headers.setdefault("Strict-Transport-Security", HSTS)
    if not (request.match_info.route.name or "").startswith("ui.static"):
        # Pages show one organisation's data: never kept by shared caches or the back button.
        resp.headers.setdefault("Cache-Control", "no-store")


@web.middleware
async def headers_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Add the security headers to every UI response, errors and redirects included."""
    try:
        resp = await handler(request)
    except web.HTTPException as exc:
        if is_ui(request):
            add_headers(request, exc)
        raise
    if is_ui(request) and not resp.prepared:
        add_headers(request, resp)
    return resp


def tokens_match(given: object, expected: str) -> bool:
    return isinstance(given, str) and bool(expected) and auth.constant_equal(given, expected)


def pre_session_token(request: web.Request) -> tuple[str, bool]:
    """The double-submit token for forms shown before sign-in: (token, whether it is new)."""
    current = request.cookies.get(PRE_SESSION_COOKIE, "")
    if len(current) >= 32:
        return current, False
    return auth.new_token(), True


def set_pre_session_cookie(request: web.Request, resp: web.StreamResponse, token: str) -> None:
    secure = request.app[appkeys.SETTINGS].public_url.startswith("https://")
    resp.set_cookie(
        PRE_SESSION_COOKIE, token, httponly=True, samesite="Strict", secure=secure, path="/"
    )
