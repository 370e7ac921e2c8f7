"""`/device`: approve or deny a command-line sign-in (`tokiflow login`) by its user code."""

from __future__ import annotations

from aiohttp import web

from tokiflow.engine import auth
from tokiflow.engine.device_login import format_user_code, normalise_user_code
from tokiflow.storage.orgs import Org
from tokiflow.web.api.framework import ApiError, Caller
from tokiflow.web.ui.context import Viewer, call_api, error_page, error_text, page, render

routes = web.RouteTableDef()


def _key_orgs(viewer: Viewer) -> list[tuple[Org, str]]:
    """The viewer's organisations where their role may create API keys (the ones a sign-in can
    be approved for): the current one first."""
    found = [(o, r) for o, r in viewer.orgs if "admin" in auth.ROLE_SCOPES.get(r, set())]
    return sorted(found, key=lambda item: item[0].id != viewer.org.id)


def _shown(code: str) -> str:
    letters = normalise_user_code(code)
    return format_user_code(letters) if letters else code.strip()[:40]


def _refuse(request: web.Request, viewer: Viewer) -> web.Response:
    return error_page(request, viewer, 403, f"Your role ({viewer.role}) may not create API keys, "
                      "so it cannot approve a command-line sign-in: ask an owner or admin.")  # fmt: skip


def _form(
    request: web.Request,
    viewer: Viewer,
    orgs: list[tuple[Org, str]],
    *,
    code: str,
    org: str = "",
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> web.Response:
    return render(request, "ui/device.html", viewer, http_status=status, code=code,
                  orgs=[o for o, _ in orgs], chosen=org or orgs[0][0].slug, errors=errors or {},
                  done=None)  # fmt: skip


@routes.get("/device", name="ui.device")
@page("read")
async def device_page(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    orgs = _key_orgs(viewer)
    if not orgs:
        return _refuse(request, viewer)
    return _form(request, viewer, orgs, code=_shown(request.query.get("code", "")))


@routes.post("/device", name="ui.device_decide")
@page("read")
async def device_decide(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    orgs = _key_orgs(viewer)
    if not orgs:
        return _refuse(request, viewer)
    form = await request.post()
    code = str(form.get("user_code", "")).strip()
    slug = str(form.get("org", "")) or orgs[0][0].slug
    approve = form.get("decision") != "deny"
    chosen = next(((o, r) for o, r in orgs if o.slug == slug), None)
    if chosen is None:
        return _form(request, viewer, orgs, code=_shown(code), status=400,
                     errors={"org": "pick one of your organisations"})  # fmt: skip
    org, role = chosen
    caller = Caller(org, frozenset(auth.ROLE_SCOPES[role]), viewer.caller.actor, viewer.user)
    try:
        await call_api(request, caller, "POST", "/auth/device/approve",
                       body={"user_code": code[:40], "approve": approve})  # fmt: skip
    except ApiError as exc:
        return _form(request, viewer, orgs, code=_shown(code), org=org.slug,
                     status=exc.status, errors={"user_code": error_text(exc)})  # fmt: skip
    return render(request, "ui/device.html", viewer, code=_shown(code), orgs=[], chosen="",
                  errors={}, done={"approved": approve, "org": org.name})  # fmt: skip
