"""The pages before a session: first-run setup, sign in (with a second step for two-factor
codes), sign out, accepting an invitation, and resetting a forgotten password."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

from aiohttp import web

from tokiflow.engine import auth, login_steps, org_admin
from tokiflow.web import appkeys
from tokiflow.web.api.framework import SESSION_COOKIE, ApiError
from tokiflow.web.api.routes_auth import with_cookie
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
    raise _signed_in_redirect(resp, "/welcome")


@routes.get("/login", name="ui.login")
async def login_page(request: web.Request) -> web.StreamResponse:
    if not await users_exist(request):
        raise web.HTTPSeeOther("/setup")
    if await current_viewer(request) is not None:
        raise web.HTTPSeeOther(_safe_next(request.query.get("next")))
    return _form_page(request, "ui/login.html", values={}, errors={},
                      next=_safe_next(request.query.get("next")))  # fmt: skip


def _login_page(
    request: web.Request, status: int, nxt: str, error: str, email: str = ""
) -> web.Response:
    return _form_page(request, "ui/login.html", status, values={"email": email},
                      errors={"form": error}, next=nxt)  # fmt: skip


def _limited(request: web.Request, what: str) -> str | None:
    """The sign-in rate limit per client address (shared with the API's sign-in)."""
    wait = request.app[appkeys.LOGIN_LIMITER].check(f"{what}:{request.remote or ''}")
    return f"too many attempts from your address: wait {int(wait) + 1} s" if wait > 0 else None


@routes.post("/login", name="ui.login_post")
async def login_post(request: web.Request) -> web.StreamResponse:
    form = await _checked_form(request)
    nxt = _safe_next((form or {}).get("next"))
    if form is None:
        return _login_page(request, 403, nxt, _EXPIRED)
    email, password = form.get("email", ""), form.get("password", "")
    app = request.app
    two_step = await app[appkeys.DB].read(lambda c: login_steps.needs_code(c, email))
    if two_step is None:
        try:
            resp = await call_api(request, None, "POST", "/auth/login",
                                  body={"email": email, "password": password})  # fmt: skip
        except ApiError as exc:
            return _login_page(request, exc.status, nxt, error_text(exc), email)
        raise _signed_in_redirect(resp, nxt)
    # Two-factor sign-in is on: the code is asked for whether or not the password was right,
    # and the answer comes only with a code (engine.login_steps).
    busy = _limited(request, "login")
    if busy:
        return _login_page(request, 429, nxt, busy, email)
    now = app[appkeys.CLOCK].now()
    if login_steps.is_locked(two_step, now):
        return _login_page(request, 401, nxt, login_steps.LOCKED, email)
    ok = await asyncio.to_thread(auth.verify_password, password, two_step.password_hash)
    ticket = login_steps.issue(app[appkeys.SEALER], two_step, ok, now)
    return _form_page(request, "ui/login_code.html", ticket=ticket, email=email, next=nxt,
                      errors={})  # fmt: skip


@routes.get("/login/code", name="ui.login_code")
async def login_code_page(request: web.Request) -> web.StreamResponse:
    raise web.HTTPSeeOther("/login")  # the code step follows the password form only


@routes.post("/login/code", name="ui.login_code_post")
async def login_code_post(request: web.Request) -> web.StreamResponse:
    form = await _checked_form(request)
    nxt = _safe_next((form or {}).get("next"))
    if form is None:
        return _login_page(request, 403, nxt, _EXPIRED)
    email = form.get("email", "")
    busy = _limited(request, "login-code")
    if busy:
        return _login_page(request, 429, nxt, busy, email)
    app = request.app
    now, sealer = app[appkeys.CLOCK].now(), app[appkeys.SEALER]
    ticket = login_steps.read_ticket(sealer, form.get("ticket", ""), now)
    if ticket is None:
        return _login_page(request, 400, nxt, "The sign-in took too long: please sign in again.",
                           email)  # fmt: skip
    ip, ua = request.remote or "", request.headers.get("User-Agent", "")
    code = form.get("code", "")

    def write(conn: sqlite3.Connection) -> auth.NewSession | str:
        outcome = login_steps.finish(conn, sealer, ticket, code, now)
        if isinstance(outcome, str):
            return outcome  # the failure count must commit: report it outside
        return auth.start_session(conn, outcome, now, ip=ip, user_agent=ua)

    session = await app[appkeys.DB].write(write)
    if isinstance(session, str):
        return _login_page(request, 401, nxt, session, email)
    resp = with_cookie(request, {}, session.token, auth.SESSION_DAYS * 86400)
    raise _signed_in_redirect(resp, nxt)


@routes.post("/logout", name="ui.logout")
@page("member")
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


# -- forgotten password --------------------------------------------------------------------------


@routes.get("/password/forgot", name="ui.password_forgot")
async def forgot_page(request: web.Request) -> web.StreamResponse:
    return _form_page(request, "ui/password_forgot.html", values={}, errors={}, sent=False)


@routes.post("/password/forgot", name="ui.password_forgot_post")
async def forgot_post(request: web.Request) -> web.StreamResponse:
    form = await _checked_form(request)
    if form is None:
        return _form_page(request, "ui/password_forgot.html", 403, values={},
                          errors={"form": _EXPIRED}, sent=False)  # fmt: skip
    email = form.get("email", "").strip()
    if "@" not in email or len(email) > 254:
        return _form_page(request, "ui/password_forgot.html", 400, values={"email": email},
                          errors={"email": "enter the email address of your account"},
                          sent=False)  # fmt: skip
    try:
        await call_api(request, None, "POST", "/auth/password-reset", body={"email": email})
    except ApiError as exc:
        return _form_page(request, "ui/password_forgot.html", exc.status, values={"email": email},
                          errors={"form": error_text(exc)}, sent=False)  # fmt: skip
    # The same page whether or not the address has an account.
    return _form_page(request, "ui/password_forgot.html", values={"email": email}, errors={},
                      sent=True)  # fmt: skip


@routes.get("/reset/{token}", name="ui.reset_link")
async def reset_link(request: web.Request) -> web.StreamResponse:
    """The link in reset emails (`<base_url>/reset/<token>`)."""
    raise web.HTTPSeeOther(f"/password/reset/{request.match_info['token']}")


async def _reset_works(request: web.Request, token: str) -> bool:
    now = request.app[appkeys.CLOCK].now()
    works: bool = await request.app[appkeys.DB].read(
        lambda c: org_admin.reset_link_works(c, token, now)
    )
    return works


_BAD_RESET = "This reset link is invalid, was already used or has expired."


@routes.get("/password/reset/{token}", name="ui.password_reset")
async def reset_page(request: web.Request) -> web.StreamResponse:
    token = request.match_info["token"]
    works = len(token) <= 200 and await _reset_works(request, token)
    errors = {} if works else {"token": _BAD_RESET}
    return _form_page(request, "ui/password_reset.html", 200 if works else 400, token=token,
                      works=works, errors=errors)  # fmt: skip


@routes.post("/password/reset/{token}", name="ui.password_reset_post")
async def reset_post(request: web.Request) -> web.StreamResponse:
    token = request.match_info["token"]
    form = await _checked_form(request)
    if form is None:
        return _form_page(request, "ui/password_reset.html", 403, token=token, works=True,
                          errors={"form": _EXPIRED})  # fmt: skip
    if form.get("password", "") != form.get("password2", ""):
        return _form_page(request, "ui/password_reset.html", 400, token=token, works=True,
                          errors={"password2": "the two passwords differ"})  # fmt: skip
    body = {"token": token, "password": form.get("password", "")}
    try:
        await call_api(request, None, "POST", "/auth/password-reset/confirm", body=body)
    except ApiError as exc:
        field = exc.detail.get("field") or "form"
        works = field != "token"
        return _form_page(request, "ui/password_reset.html", exc.status, token=token,
                          works=works, errors={field: error_text(exc)})  # fmt: skip
    out = redirect("/login", "Your password was changed and every session signed out: sign in "
                   "with the new password.")  # fmt: skip
    out.del_cookie(SESSION_COOKIE, path="/")
    raise out
