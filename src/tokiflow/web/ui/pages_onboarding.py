"""Onboarding for a new organisation (`/welcome`): 1. the first monitor, 2. its ping URL and a
panel that turns green when the first ping arrives (live, over the page's event stream), 3. a
first alert channel and a test alert. Every step can be skipped; finishing or skipping the tour
is remembered per organisation in this browser."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tokiflow.engine import org_admin
from tokiflow.web import appkeys
from tokiflow.web.api.framework import ApiError
from tokiflow.web.ui.context import (
    Viewer,
    call_api,
    error_text,
    not_found,
    own_monitor,
    page,
    redirect,
    render,
    row_id,
    send_test_alert,
)
from tokiflow.web.ui.snippets import CURL, cron_line

routes = web.RouteTableDef()

DISMISSED_COOKIE = "tokiflow_welcome_done"
MAX_REMEMBERED = 50
PERIODS = (("5m", "every 5 minutes"), ("15m", "every 15 minutes"), ("1h", "every hour"),
           ("1d", "every day"), ("7d", "every week"))  # fmt: skip
GRACES = (("5m", "5 minutes"), ("15m", "15 minutes"), ("1h", "1 hour"), ("6h", "6 hours"))
CHANNEL_KINDS = {
    "email": ("Email", "Email address", "ops@example.com"),
    "slack": ("Slack", "Slack incoming-webhook URL", "https://hooks.slack.com/services/…"),
    "webhook": ("Webhook", "Webhook URL (gets a JSON POST)", "https://example.com/hooks/tokiflow"),
}


def _dismissed(request: web.Request) -> set[str]:
    return set(request.cookies.get(DISMISSED_COOKIE, "").split("."))


async def welcome_redirect(request: web.Request, viewer: Viewer) -> None:
    """Send someone who may add monitors to /welcome while their organisation has none (until
    they finish or skip the tour). The dashboard calls this first:
    `await pages_onboarding.welcome_redirect(request, viewer)`."""
    if request.query.get("partial") or not viewer.can("write"):
        return
    if str(viewer.org.id) in _dismissed(request):
        return
    org_id = viewer.org.id
    if not await request.app[appkeys.DB].read(lambda c: org_admin.org_has_monitors(c, org_id)):
        raise web.HTTPSeeOther("/welcome")


def _page(request: web.Request, viewer: Viewer, step: int, *, status: int = 200,
          **context: Any) -> web.Response:  # fmt: skip
    return render(request, "ui/welcome.html", viewer, http_status=status, step=step, **context)


# -- step 1: the first monitor ------------------------------------------------------------------


@routes.get("/welcome", name="ui.welcome")
@page("write")
async def welcome(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    values = {"name": "", "period": "1d", "grace": "1h"}
    return _page(request, viewer, 1, values=values, errors={}, periods=PERIODS, graces=GRACES)


@routes.post("/welcome", name="ui.welcome_monitor")
@page("write")
async def welcome_monitor(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    form = await request.post()
    values = {k: str(form.get(k, "")).strip() for k in ("name", "period", "grace")}
    if not values["name"]:
        errors = {"name": "give the job a name, such as “Nightly backup”"}
        return _page(request, viewer, 1, status=400, values=values, errors=errors,
                     periods=PERIODS, graces=GRACES)  # fmt: skip
    body = {"name": values["name"], "period": values["period"] or "1d",
            "grace": values["grace"] or "1h"}  # fmt: skip
    try:
        created = await call_api(request, viewer.caller, "POST", "/monitors", body=body)
    except ApiError as exc:
        field = str(exc.detail.get("field") or "name")
        field = field if field in values else "name"
        return _page(request, viewer, 1, status=exc.status, values=values,
                     errors={field: error_text(exc)}, periods=PERIODS, graces=GRACES)  # fmt: skip
    raise web.HTTPSeeOther(f"/welcome/ping/{created['uuid']}")


# -- step 2: the ping URL and the first ping ----------------------------------------------------


@routes.get("/welcome/ping/{uuid}", name="ui.welcome_ping")
@page("write")
async def welcome_ping(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    m = await own_monitor(request, viewer)
    if m is None:
        return not_found(request, viewer, "monitor")
    url = f"{request.app[appkeys.SETTINGS].public_url}/ping/{m.uuid}"
    return _page(request, viewer, 2, m=m, url=url, curl=f"{CURL} {url}",
                 crontab=f"{cron_line(m)}  /path/to/job.sh && {CURL} {url}")  # fmt: skip


@routes.get("/welcome/ping/{uuid}/status", name="ui.welcome_ping_status")
@page("write")
async def welcome_ping_status(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """The live panel alone: what the page fetches again when a monitor changes."""
    m = await own_monitor(request, viewer)
    if m is None:
        return not_found(request, viewer, "monitor")
    return render(request, "ui/_welcome_status.html", viewer, m=m)


# -- step 3: an alert channel and a test alert --------------------------------------------------


def _config(kind: str, target: str) -> dict[str, Any]:
    return {"to": [target]} if kind == "email" else {"url": target}


async def _alerts_page(request: web.Request, viewer: Viewer, *, values: dict[str, str],
                       errors: dict[str, str], status: int = 200) -> web.Response:  # fmt: skip
    channel = None
    wanted = request.query.get("channel", "")
    if row_id(wanted) is not None:
        try:
            channel = await call_api(request, viewer.caller, "GET", "/channels/{id}",
                                     params={"id": wanted})  # fmt: skip
        except ApiError as exc:
            if exc.status != 404:
                raise
    return _page(request, viewer, 3, status=status, values=values, errors=errors,
                 kinds=CHANNEL_KINDS, channel=channel)  # fmt: skip


@routes.get("/welcome/alerts", name="ui.welcome_alerts")
@page("write")
async def welcome_alerts(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    values = {"kind": "email", "target": viewer.user.email, "name": ""}
    return await _alerts_page(request, viewer, values=values, errors={})


@routes.post("/welcome/alerts", name="ui.welcome_channel")
@page("write")
async def welcome_channel(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    form = await request.post()
    values = {k: str(form.get(k, "")).strip() for k in ("kind", "target", "name")}
    kind = values["kind"]
    if kind not in CHANNEL_KINDS:
        return await _alerts_page(request, viewer, values=values, status=400,
                                  errors={"kind": "choose email, Slack or a webhook"})  # fmt: skip
    if not values["target"]:
        return await _alerts_page(request, viewer, values=values, status=400,
                                  errors={"target": "this is needed to send alerts"})  # fmt: skip
    body = {"kind": kind, "name": values["name"] or CHANNEL_KINDS[kind][0],
            "config": _config(kind, values["target"]), "default": True}  # fmt: skip
    try:
        created = await call_api(request, viewer.caller, "POST", "/channels", body=body)
    except ApiError as exc:
        field = str(exc.detail.get("field") or "target")
        field = "name" if field == "name" else "target"
        return await _alerts_page(request, viewer, values=values, status=exc.status,
                                  errors={field: error_text(exc)})  # fmt: skip
    raise redirect(f"/welcome/alerts?channel={created['id']}",
                   f"Channel “{created['name']}” added: it alerts for every monitor.")  # fmt: skip


@routes.post("/welcome/alerts/{id}/test", name="ui.welcome_channel_test")
@page("write")
async def welcome_channel_test(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    try:
        text = await send_test_alert(request, viewer, request.match_info["id"])
    except ApiError as exc:
        if exc.status == 404:
            return not_found(request, viewer, "channel")
        raise
    raise redirect(f"/welcome/alerts?channel={request.match_info['id']}", text)


# -- the end ------------------------------------------------------------------------------------


@routes.post("/welcome/done", name="ui.welcome_done")
@page("read")
async def welcome_done(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """Finish or skip the tour: the dashboard stops sending this organisation here."""
    seen = [s for s in request.cookies.get(DISMISSED_COOKIE, "").split(".") if s.isdigit()]
    seen = [s for s in seen if s != str(viewer.org.id)][-(MAX_REMEMBERED - 1) :]
    resp = redirect("/", "You are all set." if request.query.get("finished") else
                    "Tour skipped: come back to it any time at /welcome.")  # fmt: skip
    secure = request.app[appkeys.SETTINGS].public_url.startswith("https://")
    resp.set_cookie(DISMISSED_COOKIE, ".".join([*seen, str(viewer.org.id)]), path="/",
                    max_age=365 * 86400, httponly=True, samesite="Lax", secure=secure)  # fmt: skip
    raise resp
