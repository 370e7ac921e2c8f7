"""Your account: name and time zone, notification preferences, password, two-factor sign-in;
and the header's organisation switcher."""

from __future__ import annotations

import zoneinfo
from functools import cache
from typing import Any

from aiohttp import web

from tokiflow.engine.accounts import MODES
from tokiflow.web.api.framework import ApiError
from tokiflow.web.ui.context import (
    Viewer,
    call_api,
    error_page,
    error_text,
    page,
    redirect,
    remember_org,
    render,
)

routes = web.RouteTableDef()

PROFILE_FIELDS = ("name", "tz")
PREFS_FIELDS = ("mode", "tags", "quiet_start", "quiet_end")
PASSWORD_FIELDS = ("current_password", "new_password", "new_password2")
TOTP_FIELDS = ("password", "code")


@cache
def _zones() -> tuple[str, ...]:
    return tuple(sorted(z for z in zoneinfo.available_timezones() if "/" in z or z == "UTC"))


def _form(raw: Any) -> dict[str, str]:
    return {k: v for k, v in raw.items() if isinstance(v, str)}


def _field(exc: ApiError, allowed: tuple[str, ...], default: str = "form") -> str:
    field = str(exc.detail.get("field") or default)
    return field if field in allowed else default


async def _account_page(request: web.Request, viewer: Viewer, *, status: int = 200,
                        values: dict[str, str] | None = None,
                        errors: dict[str, str] | None = None) -> web.Response:  # fmt: skip
    account = await call_api(request, viewer.caller, "GET", "/account")
    # Personal alert emails are about monitors: a role that may not read them (billing) has none.
    prefs: dict[str, Any] = {"mode": "off", "tags": [], "quiet_start": None, "quiet_end": None}
    if viewer.can("read"):
        prefs = await call_api(request, viewer.caller, "GET", "/account/notifications")
    shown = {
        "name": account["name"], "tz": account["tz"], "mode": prefs["mode"],
        "tags": " ".join(prefs["tags"]), "quiet_start": prefs["quiet_start"] or "",
        "quiet_end": prefs["quiet_end"] or "",
    }  # fmt: skip
    shown.update(values or {})
    return render(request, "ui/account.html", viewer, http_status=status, account=account,
                  values=shown, errors=errors or {}, zones=_zones(), modes=MODES,
                  show_prefs=viewer.can("read"))  # fmt: skip


@routes.get("/account", name="ui.account")
@page("member")
async def account_page(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    return await _account_page(request, viewer)


@routes.post("/account/profile", name="ui.account_profile")
@page("member")
async def account_profile(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    form = _form(await request.post())
    body = {"name": form.get("name", "").strip(), "tz": form.get("tz", "").strip() or "UTC"}
    try:
        await call_api(request, viewer.caller, "PATCH", "/account", body=body)
    except ApiError as exc:
        return await _account_page(request, viewer, status=exc.status, values=body,
                                   errors={_field(exc, PROFILE_FIELDS, "tz"): error_text(exc)})  # fmt: skip
    raise redirect("/account", "Profile saved.")


@routes.post("/account/notifications", name="ui.account_notifications")
@page("read")
async def account_notifications(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    form = _form(await request.post())
    values = {k: form.get(k, "").strip() for k in PREFS_FIELDS}
    body: dict[str, Any] = {
        "mode": values["mode"],
        "tags": values["tags"].replace(",", " ").split(),
        "quiet_start": values["quiet_start"] or None,
        "quiet_end": values["quiet_end"] or None,
    }
    try:
        await call_api(request, viewer.caller, "PUT", "/account/notifications", body=body)
    except ApiError as exc:
        field = _field(exc, PREFS_FIELDS, "mode")
        return await _account_page(request, viewer, status=exc.status, values=values,
                                   errors={field: error_text(exc)})  # fmt: skip
    raise redirect("/account", f"Notification preferences for {viewer.org.name} saved.")


@routes.post("/account/password", name="ui.account_password")
@page("member")
async def account_password(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    form = _form(await request.post())
    if form.get("new_password", "") != form.get("new_password2", ""):
        return await _account_page(request, viewer, status=400,
                                   errors={"new_password2": "the two passwords differ"})  # fmt: skip
    body = {"current_password": form.get("current_password", ""),
            "new_password": form.get("new_password", "")}  # fmt: skip
    try:
        await call_api(request, viewer.caller, "POST", "/account/password", body=body)
    except ApiError as exc:
        field = _field(exc, PASSWORD_FIELDS, "current_password")
        return await _account_page(request, viewer, status=exc.status,
                                   errors={field: error_text(exc)})  # fmt: skip
    raise redirect("/account", "Password changed. Your other sessions were signed out.")


# -- two-factor sign-in -------------------------------------------------------------------------


def _setup_page(request: web.Request, viewer: Viewer, setup: dict[str, str], *,
                errors: dict[str, str], status: int = 200) -> web.Response:  # fmt: skip
    return render(
        request, "ui/totp_setup.html", viewer, http_status=status, setup=setup, errors=errors
    )


@routes.post("/account/totp/setup", name="ui.totp_setup")
@page("member")
async def totp_setup(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    try:
        started = await call_api(request, viewer.caller, "POST", "/account/totp/setup")
    except ApiError as exc:
        raise redirect("/account", error_text(exc)) from None
    # The secret is in this response only (the page is never cached: Cache-Control no-store).
    setup = {k: started[k] for k in ("secret", "otpauth_uri", "setup_token", "expires_at")}
    return _setup_page(request, viewer, setup, errors={})


@routes.post("/account/totp/confirm", name="ui.totp_confirm")
@page("member")
async def totp_confirm(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    form = _form(await request.post())
    body = {"setup_token": form.get("setup_token", ""), "code": form.get("code", "").strip()}
    try:
        await call_api(request, viewer.caller, "POST", "/account/totp/confirm", body=body)
    except ApiError as exc:
        if exc.detail.get("field") == "setup_token":
            raise redirect("/account", f"Two-factor set-up failed: {error_text(exc)}") from None
        setup = {k: form.get(k, "") for k in ("secret", "otpauth_uri", "setup_token",
                                               "expires_at")}  # fmt: skip
        return _setup_page(request, viewer, setup, errors={"code": error_text(exc)},
                           status=exc.status)  # fmt: skip
    raise redirect("/account", "Two-factor sign-in is on: from now on, signing in asks for a code.")


@routes.post("/account/totp/disable", name="ui.totp_disable")
@page("member")
async def totp_disable(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    form = _form(await request.post())
    body = {"password": form.get("password", ""), "code": form.get("code", "").strip()}
    try:
        await call_api(request, viewer.caller, "DELETE", "/account/totp", body=body)
    except ApiError as exc:
        field = _field(exc, TOTP_FIELDS)
        return await _account_page(request, viewer, status=exc.status,
                                   errors={f"totp_{field}": error_text(exc)})  # fmt: skip
    raise redirect("/account", "Two-factor sign-in is off.")


# -- organisation switcher ----------------------------------------------------------------------


@routes.post("/account/org", name="ui.org_switch")
@page("member")  # any member, whatever their role in the organisation shown now
async def org_switch(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    slug = _form(await request.post()).get("org", "")
    chosen = next((o for o, _ in viewer.orgs if o.slug == slug), None)
    if chosen is None:
        return error_page(request, viewer, 404, "You are not a member of that organisation.")
    resp = redirect("/", f"Now showing {chosen.name}.")
    remember_org(request, resp, chosen.slug)
    raise resp
