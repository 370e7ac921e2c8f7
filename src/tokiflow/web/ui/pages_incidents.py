"""Incidents: the list with filters, one incident's timeline, acknowledge, resolve, comment."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from tokiflow.web.api.framework import ApiError
from tokiflow.web.ui.context import (
    Viewer,
    call_api,
    error_page,
    error_text,
    not_found,
    page,
    redirect,
    render,
)

routes = web.RouteTableDef()

STATES = ("open", "acknowledged", "resolved")
KINDS = ("FAIL", "MISSED", "LATE", "TIMEOUT", "ANOMALY", "OUTPUT")


@routes.get("/incidents", name="ui.incidents")
@page("read")
async def incident_list(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    q = request.query
    state = q.get("state", "unresolved")
    if state not in (*STATES, "unresolved", ""):
        state = "unresolved"
    filters = {
        "state": state,
        "kind": q.get("kind") if q.get("kind") in KINDS else "",
        "monitor": (q.get("monitor") or "").strip()[:36],
    }
    query: dict[str, Any] = {
        "state": state if state in STATES else None,
        "kind": filters["kind"] or None,
        "monitor": filters["monitor"] or None,
        "limit": 200,
    }
    try:
        found = await call_api(request, viewer.caller, "GET", "/incidents", query=query)
    except ApiError as exc:
        return error_page(request, viewer, exc.status, error_text(exc))
    rows = found["incidents"]
    if state == "unresolved":
        rows = [r for r in rows if r["state"] != "resolved"]
    context = {
        "rows": rows,
        "filters": filters,
        "states": STATES,
        "kinds": KINDS,
        "partial_src": "/incidents?" + urlencode({**filters, "partial": 1}),
    }
    template = "ui/_incidents_live.html" if q.get("partial") else "ui/incidents.html"
    return render(request, template, viewer, **context)


async def _incident(request: web.Request, viewer: Viewer) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = await call_api(
            request,
            viewer.caller,
            "GET",
            "/incidents/{id}",
            params={"id": request.match_info["id"]},
        )
    except ApiError as exc:
        if exc.status == 404:
            return None
        raise
    return found


@routes.get("/incidents/{id}", name="ui.incident")
@page("read")
async def incident_detail(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    inc = await _incident(request, viewer)
    if inc is None:
        return not_found(request, viewer, "incident")
    return render(request, "ui/incident.html", viewer, inc=inc, errors={})


def _action(action: str, done: str) -> Any:
    async def handler(request: web.Request, viewer: Viewer) -> web.StreamResponse:
        inc = await _incident(request, viewer)
        if inc is None:
            return not_found(request, viewer, "incident")
        try:
            await call_api(request, viewer.caller, "POST", f"/incidents/{{id}}/{action}",
                           params={"id": str(inc["id"])})  # fmt: skip
        except ApiError as exc:
            raise redirect(f"/incidents/{inc['id']}", error_text(exc)) from None
        back = (await request.post()).get("back")
        target = back if isinstance(back, str) and back.startswith("/") and not back.startswith(
            "//") else f"/incidents/{inc['id']}"  # fmt: skip
        raise redirect(target, f"Incident #{inc['id']} {done}.")

    handler.__name__ = f"incident_{action}"
    return handler


routes.post("/incidents/{id}/ack", name="ui.incident_ack")(
    page("write")(_action("ack", "acknowledged: no more reminders"))
)
routes.post("/incidents/{id}/resolve", name="ui.incident_resolve")(
    page("write")(_action("resolve", "resolved"))
)


@routes.post("/incidents/{id}/comment", name="ui.incident_comment")
@page("write")
async def incident_comment(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    inc = await _incident(request, viewer)
    if inc is None:
        return not_found(request, viewer, "incident")
    text = (await request.post()).get("body")
    body = {"body": text.strip() if isinstance(text, str) else ""}
    try:
        await call_api(request, viewer.caller, "POST", "/incidents/{id}/comments",
                       params={"id": str(inc["id"])}, body=body)  # fmt: skip
    except ApiError as exc:
        return render(request, "ui/incident.html", viewer, http_status=400, inc=inc,
                      errors={"body": error_text(exc)})  # fmt: skip
    raise redirect(f"/incidents/{inc['id']}", "Comment added.")
