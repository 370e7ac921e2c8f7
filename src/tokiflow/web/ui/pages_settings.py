"""Settings: alert channels (add, send a test alert, delivery log, delete), API keys (the new key
is shown once), members (roles, removal) and invitations."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from tokiflow.channels.registry import CHANNELS
from tokiflow.storage.accounts import ROLES
from tokiflow.web import appkeys
from tokiflow.web.api.framework import ApiError
from tokiflow.web.ping_sentry import dsn
from tokiflow.web.ui.context import (
    Viewer,
    call_api,
    error_text,
    not_found,
    page,
    redirect,
    render,
    send_test_alert,
)

routes = web.RouteTableDef()

EXAMPLES = {
    "webhook": {"url": "https://example.com/hooks/tokiflow"},
    "email": {"to": ["ops@example.com"]},
    "slack": {"url": "https://hooks.slack.com/services/T000/B000/XXXX"},
    "discord": {"url": "https://discord.com/api/webhooks/1/abc"},
    "ntfy": {"topic": "my-cron-jobs"},
}


def _kinds() -> list[tuple[str, str]]:
    first = ["webhook", "email", "slack"]
    ordered = first + sorted(k for k in CHANNELS if k not in first)
    return [(k, getattr(CHANNELS[k], "label", k)) for k in ordered if k in CHANNELS]


def _form(request_form: Any) -> dict[str, str]:
    return {k: v for k, v in request_form.items() if isinstance(v, str)}


# -- channels -----------------------------------------------------------------------------------


async def _channels_page(request: web.Request, viewer: Viewer, *, values: dict[str, str],
                         errors: dict[str, str], status: int = 200) -> web.Response:  # fmt: skip
    found = await call_api(request, viewer.caller, "GET", "/channels")
    return render(request, "ui/channels.html", viewer, http_status=status, channels=found["channels"],
                  kinds=_kinds(), values=values, errors=errors,
                  examples={k: json.dumps(v, indent=2) for k, v in EXAMPLES.items()})  # fmt: skip


@routes.get("/settings/channels", name="ui.channels")
@page("read")
async def channel_list(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    values = {"kind": "webhook", "config": json.dumps(EXAMPLES["webhook"], indent=2)}
    return await _channels_page(request, viewer, values=values, errors={})


@routes.post("/settings/channels", name="ui.channel_create")
@page("write")
async def channel_create(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    form = _form(await request.post())
    try:
        config = json.loads(form.get("config") or "{}")
    except json.JSONDecodeError as exc:
        errors = {"config": f"not valid JSON: {exc.msg} (line {exc.lineno})"}
        return await _channels_page(request, viewer, values=form, errors=errors, status=400)
    body = {"kind": form.get("kind", ""), "name": form.get("name", "").strip(), "config": config,
            "default": form.get("default") == "on"}  # fmt: skip
    try:
        created = await call_api(request, viewer.caller, "POST", "/channels", body=body)
    except ApiError as exc:
        field = str(exc.detail.get("field") or "form")
        field = "config" if field.startswith("config") else field
        field = field if field in ("kind", "name", "config") else "form"
        return await _channels_page(request, viewer, values=form,
                                    errors={field: error_text(exc)}, status=400)  # fmt: skip
    raise redirect(f"/settings/channels/{created['id']}",
                   f"Channel “{created['name']}” added. Send a test alert to check it.")  # fmt: skip


async def _channel(request: web.Request, viewer: Viewer) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = await call_api(
            request, viewer.caller, "GET", "/channels/{id}", params={"id": request.match_info["id"]}
        )
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise
    return found


@routes.get("/settings/channels/{id}", name="ui.channel")
@page("read")
async def channel_detail(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    channel = await _channel(request, viewer)
    if channel is None:
        return not_found(request, viewer, "channel")
    log = await call_api(request, viewer.caller, "GET", "/channels/{id}/deliveries",
                         params={"id": str(channel["id"])}, query={"limit": 50})  # fmt: skip
    return render(request, "ui/channel.html", viewer, channel=channel,
                  deliveries=log["deliveries"],
                  config=json.dumps(channel["config"], indent=2))  # fmt: skip


@routes.post("/settings/channels/{id}/test", name="ui.channel_test")
@page("write")
async def channel_test(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    channel = await _channel(request, viewer)
    if channel is None:
        return not_found(request, viewer, "channel")
    text = await send_test_alert(request, viewer, str(channel["id"]))
    raise redirect(f"/settings/channels/{channel['id']}", text)


@routes.post("/settings/channels/{id}/delete", name="ui.channel_delete")
@page("write")
async def channel_delete(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    channel = await _channel(request, viewer)
    if channel is None:
        return not_found(request, viewer, "channel")
    await call_api(request, viewer.caller, "DELETE", "/channels/{id}",
                   params={"id": str(channel["id"])})  # fmt: skip
    raise redirect("/settings/channels", f"Channel “{channel['name']}” deleted.")


# -- API keys -----------------------------------------------------------------------------------


async def _keys_page(request: web.Request, viewer: Viewer, *, new_key: dict[str, Any] | None,
                     errors: dict[str, str], status: int = 200) -> web.Response:  # fmt: skip
    found = await call_api(request, viewer.caller, "GET", "/keys")
    base = request.app[appkeys.SETTINGS].public_url
    return render(request, "ui/keys.html", viewer, http_status=status, keys=found["keys"],
                  new_key=new_key, errors=errors, ping_key=viewer.org.ping_key,
                  sentry_dsn=dsn(base, viewer.org),
                  slug_base=f"{base}/ping/{viewer.org.ping_key}/")  # fmt: skip


@routes.get("/settings/keys", name="ui.keys")
@page("admin")
async def key_list(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    return await _keys_page(request, viewer, new_key=None, errors={})


@routes.post("/settings/keys", name="ui.key_create")
@page("admin")
async def key_create(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    form = _form(await request.post())
    body = {"name": form.get("name", "").strip(), "read_only": form.get("read_only") == "on"}
    try:
        created = await call_api(request, viewer.caller, "POST", "/keys", body=body)
    except ApiError as exc:
        return await _keys_page(request, viewer, new_key=None,
                                errors={"name": error_text(exc)}, status=400)  # fmt: skip
    # Shown in this response only (never stored, never in a redirect or cache).
    return await _keys_page(request, viewer, new_key=created, errors={})


@routes.post("/settings/keys/{id}/revoke", name="ui.key_revoke")
@page("admin")
async def key_revoke(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    try:
        await call_api(request, viewer.caller, "DELETE", "/keys/{id}",
                       params={"id": request.match_info["id"]})  # fmt: skip
    except ApiError as exc:
        raise redirect("/settings/keys", error_text(exc)) from None
    raise redirect("/settings/keys", "The key was revoked: it stops working at once.")


# -- members ------------------------------------------------------------------------------------


async def _members_page(request: web.Request, viewer: Viewer, *, invited: dict[str, Any] | None,
                        values: dict[str, str], errors: dict[str, str],
                        status: int = 200) -> web.Response:  # fmt: skip
    members = await call_api(request, viewer.caller, "GET", "/members")
    invitations: list[dict[str, Any]] = []
    if viewer.can("admin"):
        invitations = (await call_api(request, viewer.caller, "GET", "/invitations"))["invitations"]
    return render(request, "ui/members.html", viewer, http_status=status, members=members["members"],
                  invitations=invitations, roles=ROLES, invited=invited, values=values,
                  errors=errors)  # fmt: skip


@routes.get("/settings/members", name="ui.members")
@page("read")
async def member_list(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    return await _members_page(request, viewer, invited=None, values={"role": "editor"}, errors={})


@routes.post("/settings/members/invite", name="ui.member_invite")
@page("admin")
async def member_invite(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    form = _form(await request.post())
    body = {"email": form.get("email", "").strip(), "role": form.get("role", "")}
    try:
        invited = await call_api(request, viewer.caller, "POST", "/invitations", body=body)
    except ApiError as exc:
        field = str(exc.detail.get("field") or "email")
        return await _members_page(request, viewer, invited=None, values=form,
                                   errors={field: error_text(exc)}, status=400)  # fmt: skip
    return await _members_page(request, viewer, invited=invited, values={"role": "editor"},
                               errors={})  # fmt: skip


@routes.post("/settings/invitations/{id}/revoke", name="ui.invitation_revoke")
@page("admin")
async def invitation_revoke(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    try:
        await call_api(request, viewer.caller, "DELETE", "/invitations/{id}",
                       params={"id": request.match_info["id"]})  # fmt: skip
    except ApiError as exc:
        raise redirect("/settings/members", error_text(exc)) from None
    raise redirect("/settings/members", "Invitation withdrawn.")


async def _member_action(request: web.Request, viewer: Viewer, method: str,
                         body: dict[str, str] | None) -> Any:  # fmt: skip
    """Run a member change; a missing member (or one of another organisation) is a 404 page,
    a refused change goes back to the list with the reason."""
    try:
        return await call_api(request, viewer.caller, method, "/members/{user_id}",
                              params={"user_id": request.match_info["user_id"]}, body=body)  # fmt: skip
    except ApiError as exc:
        if exc.status == 404:
            return not_found(request, viewer, "member")
        raise redirect("/settings/members", error_text(exc)) from None


@routes.post("/settings/members/{user_id}/role", name="ui.member_role")
@page("admin")
async def member_role(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    role = str((await request.post()).get("role", ""))
    done = await _member_action(request, viewer, "PATCH", {"role": role})
    if isinstance(done, web.Response):
        return done
    raise redirect("/settings/members", f"{done['email']} is now {done['role']}.")


@routes.post("/settings/members/{user_id}/remove", name="ui.member_remove")
@page("admin")
async def member_remove(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    done = await _member_action(request, viewer, "DELETE", None)
    if isinstance(done, web.Response):
        return done
    if str(viewer.user.id) == request.match_info["user_id"]:
        raise redirect("/", f"You left {viewer.org.name}.")
    raise redirect("/settings/members", "Member removed from the organisation.")
