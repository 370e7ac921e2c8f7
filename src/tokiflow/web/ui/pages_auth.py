"""First-run setup, sign in, sign out and accepting an invitation: the pages before a session."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tokiflow.web.api.framework import ApiError
from tokiflow.web.ui import security
from tokiflow.web.ui.context import Viewer as Viewer
from tokiflow.web.ui.context import (
    call_api,
    current_viewer,
    error_text,
    page,
    redirect,
    render,
    users_exist,
)

routes = web.RouteTableDef()


def _safe_next(raw: str | None) -> str:
    """Only a path on this site: never `//host` or a full URL (no open redirect)."""
    if not raw or not raw.startswith("/") or raw.startswith("//") or "\\" in raw:
        return "/"
    return raw


def _form_page(
    request: web.Request, template: str, status: int = 200, **context: Any
) -> web.Response:
    token, new = security.pre_session_token(request)
    resp = render(request, template, None, http_status=status, form_token=token, **context)
    if new:
        security.set_pre_session_cookie(request, resp, token)
    return resp


async def _checked_form(request: web.Request) -> dict[str, str] | None:
    """The posted form, or None when its double-submit token does not match the cookie."""
    form = await request.post()
    expected = request.cookies.get(security.PRE_SESSION_COOKIE, "")
    if not security.tokens_match(form.get("csrf_token"), expected):
        return None
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _signed_in_redirect(api_response: web.StreamResponse, location: str) -> web.HTTPSeeOther:
    """A redirect carrying the session cookie the API handler set."""
    resp = redirect(location)
    for name, morsel in api_response.cookies.items():
        resp.cookies[name] = morsel
    return resp


_EXPIRED = "The form expired: it has been reloaded, please send it again."


@routes.get("/setup", name="ui.setup")
async def setup_page(request: web.Request) -> web.StreamResponse:
    if await users_exist(request):
        raise web.HTTPSeeOther("/login")
    return _form_page(request, "ui/setup.html", values={}, errors={})


@routes.post("/setup", name="ui.setup_post")
async def setup_post(request: web.Request) -> web.StreamResponse:
    if await users_exist(request):
        raise web.HTTPSeeOther("/login")
    form = await _checked_form(request)
    if form is None:
        return _form_page(request, "ui/setup.html", 403, values={}, errors={"form": _EXPIRED})
    values = {k: form.get(k, "") for k in ("email", "name", "org_name")}
    if form.get("password", "") != form.get("password2", ""):
        errors = {"password2": "the two passwords differ"}
        return _form_page(request, "ui/setup.html", 400, values=values, errors=errors)
    body = {k: v.strip() for k, v in values.items() if v.strip()}
    body["email"] = values["email"]
    body["password"] = form.get("password", "")
    try:
        resp = await call_api(request, None, "POST", "/auth/setup", body=body)
    except ApiError as exc:
        field = exc.detail.get("field") or "form"
        return _form_page(request, "ui/setup.html", exc.status, values=values,
                          errors={field: error_text(exc)})  # fmt: skip
    raise _signed_in_redirect(resp, "/monitors/new?first=1")


@routes.get("/login", name="ui.login")
async def login_page(request: web.Request) -> web.StreamResponse:
    if not await users_exist(request):
        raise web.HTTPSeeOther("/setup")
    if await current_viewer(request) is not None:
        raise web.HTTPSeeOther(_safe_next(request.query.get("next")))
    return _form_page(request, "ui/login.html", values={}, errors={},
                      next=_safe_next(request.query.get("next")), totp=False)  # fmt: skip


@routes.post("/login", name="ui.login_post")
async def login_post(request: web.Request) -> web.StreamResponse:
    form = await _checked_form(request)
    nxt = _safe_next((form or {}).get("next"))
    if form is None:
        return _form_page(request, "ui/login.html", 403, values={}, errors={"form": _EXPIRED},
                          next=nxt, totp=False)  # fmt: skip
    body = {"email": form.get("email", ""), "password": form.get("password", "")}
    if form.get("totp"):
        body["totp"] = form["totp"]
    try:
        resp = await call_api(request, None, "POST", "/auth/login", body=body)
    except ApiError as exc:
        totp = "two-factor" in exc.message
        return _form_page(request, "ui/login.html", exc.status, values={"email": body["email"]},
                          errors={"form": error_text(exc)}, next=nxt, totp=totp)  # fmt: skip
    raise _signed_in_redirect(resp, nxt)


@routes.post("/logout", name="ui.logout")
@page("read")
async def logout(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    resp = await call_api(request, viewer.caller, "POST", "/auth/logout")
    out = redirect("/login", "You are signed out.")
    for name, morsel in resp.cookies.items():
        out.cookies[name] = morsel
    raise out


@routes.get("/invite/{token}", name="ui.invite")
async def invite_page(request: web.Request) -> web.StreamResponse:
    viewer = await current_viewer(request)
    return _form_page(request, "ui/invite.html", token=request.match_info["token"],
                      signed_in=viewer, values={}, errors={})  # fmt: skip


@routes.post("/invite/{token}", name="ui.invite_post")
async def invite_post(request: web.Request) -> web.StreamResponse:
    token = request.match_info["token"]
    viewer = await current_viewer(request)
    form = await _checked_form(request)
    if form is None:
        return _form_page(request, "ui/invite.html", 403, token=token, signed_in=viewer,
                          values={}, errors={"form": _EXPIRED})  # fmt: skip
    body: dict[str, Any] = {"token": token}
    if viewer is None:
        body["name"] = form.get("name", "").strip()
        body["password"] = form.get("password", "")
    else:
        # Joining as the signed-in user: the API checks the session's CSRF header.
        request = request.clone(headers={**request.headers, "X-CSRF-Token": viewer.csrf})
    try:
        resp = await call_api(request, None, "POST", "/auth/invitations/accept", body=body)
    except ApiError as exc:
        field = exc.detail.get("field") or "form"
        return _form_page(request, "ui/invite.html", exc.status, token=token, signed_in=viewer,
                          values={"name": form.get("name", "")},
                          errors={field: error_text(exc)})  # fmt: skip
    if isinstance(resp, web.StreamResponse):
        raise _signed_in_redirect(resp, "/")
    raise redirect("/", "You joined the organisation.")
