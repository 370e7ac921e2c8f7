"""Declared API routes: each route says its method, path, scope, parameters and schemas once;
the same declarations register the aiohttp handlers, check who may call them, validate input,
and build the OpenAPI document (so the document cannot drift from the code)."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tokiflow import __version__
from tokiflow.engine import auth
from tokiflow.engine.audit import Actor
from tokiflow.storage import accounts, orgs
from tokiflow.storage.accounts import User
from tokiflow.storage.orgs import Org
from tokiflow.storage.writer import WriteFailed, WriterClosed
from tokiflow.web import appkeys
from tokiflow.web.api.schema import SchemaError, validate

log = logging.getLogger(__name__)

SESSION_COOKIE = "tokiflow_session"
CSRF_HEADER = "X-CSRF-Token"
ORG_HEADER = "X-Tokiflow-Org"
MAX_BODY = 256 * 1024


class ApiError(Exception):
    """An error reply: `{"error": message, "detail": {...}}` with a 4xx status."""

    def __init__(self, status: int, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail


def not_found(what: str) -> ApiError:
    return ApiError(404, f"{what} not found")


# The scope of routes about the caller themselves (their account, signing out): every
# signed-in member has it whatever their role, and so does every API key of the organisation.
MEMBER = "member"


@dataclass(frozen=True)
class Caller:
    """Who is calling and for which organisation, with what they may do (`scopes` always
    includes MEMBER)."""

    org: Org
    scopes: frozenset[str]
    actor: Actor
    user: User | None = None
    key_id: int | None = None
    read_only_key: bool = False

    def __post_init__(self) -> None:
        if MEMBER not in self.scopes:
            object.__setattr__(self, "scopes", self.scopes | {MEMBER})

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            who = "this API key" if self.key_id is not None else "your role"
            raise ApiError(403, f"{who} may not do this (needs {scope} access)")


@dataclass(frozen=True)
class Param:
    """A query parameter."""

    name: str
    schema: dict[str, Any]
    description: str = ""
    required: bool = False


@dataclass
class ApiRequest:
    """What a handler gets: the caller, path parameters, query values and the JSON body."""

    request: web.Request
    maybe_caller: Caller | None  # None only on public routes (sign-in, first-run setup)
    path: dict[str, str]
    query: dict[str, Any]
    body: Any

    @property
    def caller(self) -> Caller:
        if self.maybe_caller is None:
            raise ApiError(401, "sign in first")
        return self.maybe_caller

    @property
    def app(self) -> web.Application:
        return self.request.app

    def path_int(self, name: str, what: str) -> int:
        """A row id from the path; 404 for anything else (not digits, or past SQLite's range)."""
        text = self.path[name]
        value = int(text) if text.isascii() and text.isdigit() else -1
        if not 0 < value < 2**63:
            raise not_found(what)
        return value


Handler = Callable[[ApiRequest], Awaitable[Any]]


@dataclass
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    scope: str
    tag: str
    query: tuple[Param, ...] = ()
    body: dict[str, Any] | None = None
    response: dict[str, Any] | None = None
    status: int = 200
    content_type: str = "application/json"
    extra_responses: dict[int, str] = field(default_factory=dict)


class Api:
    """A set of declared routes under one prefix."""

    def __init__(self, prefix: str, title: str, description: str) -> None:
        self.prefix = prefix
        self.title = title
        self.description = description
        self.endpoints: list[Endpoint] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        scope: str,
        tag: str,
        query: tuple[Param, ...] = (),
        body: dict[str, Any] | None = None,
        response: dict[str, Any] | None = None,
        status: int = 200,
        content_type: str = "application/json",
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.endpoints.append(
                Endpoint(
                    method,
                    path,
                    handler,
                    summary,
                    scope,
                    tag,
                    query,
                    body,
                    response,
                    status,
                    content_type,
                )  # fmt: skip
            )
            return handler

        return register

    def add_to(self, app: web.Application) -> None:
        for ep in self.endpoints:
            app.router.add_route(ep.method, self.prefix + ep.path, _wrap(ep))

    def openapi(self, server_url: str) -> dict[str, Any]:
        return build_openapi(self, server_url)


# -- callers ------------------------------------------------------------------------------------


def _presented_key(request: web.Request) -> str | None:
    key = request.headers.get("X-Api-Key")
    if key:
        return key
    authz = request.headers.get("Authorization", "")
    if authz.lower().startswith("bearer "):
        return authz[7:].strip()
    return None


async def resolve_caller(request: web.Request, *, unsafe: bool) -> Caller:
    """Authenticate by API key (X-Api-Key or Bearer) or session cookie (+ CSRF for changes)."""
    app = request.app
    db, now = app[appkeys.DB], app[appkeys.CLOCK].now()
    ip, ua = request.remote or "", request.headers.get("User-Agent", "")
    key = _presented_key(request)
    if key is not None:
        try:
            row = await db.read(lambda c: auth.check_api_key(c, key, now))
        except auth.AuthError as exc:
            raise ApiError(401, str(exc)) from None
        org = await db.read(lambda c: orgs.get(c, row.org_id))
        if org is None:
            raise ApiError(401, "invalid API key")
        await db.write(lambda c: accounts.touch_key(c, row.id, now))
        scopes = frozenset({"read"} if row.read_only else {"read", "write"})
        actor = Actor("key", row.id, f"API key {row.prefix}… ({row.name})", ip, ua)
        return Caller(org, scopes, actor, None, row.id, row.read_only)
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise ApiError(401, "sign in or send an API key (X-Api-Key or Authorization: Bearer)")
    found = await db.read(lambda c: auth.session_user(c, token, now))
    if found is None:
        raise ApiError(401, "your session has expired: sign in again")
    user, session = found
    if unsafe and not auth.constant_equal(request.headers.get(CSRF_HEADER, ""), session.csrf_token):
        raise ApiError(403, f"missing or wrong {CSRF_HEADER} header")
    org, role = await _session_org(request, user)
    actor = Actor("user", user.id, user.email, ip, ua)
    return Caller(org, frozenset(auth.ROLE_SCOPES[role]), actor, user)


async def _session_org(request: web.Request, user: User) -> tuple[Org, str]:
    db = request.app[appkeys.DB]
    wanted = request.headers.get(ORG_HEADER) or request.query.get("org")

    def pick(conn: Any) -> tuple[Org, str] | None:
        for m in accounts.memberships_of(conn, user.id):
            org = orgs.get(conn, m.org_id)
            if org is not None and (wanted is None or org.slug == wanted):
                return org, m.role
        return None

    found = await db.read(pick)
    if found is None:
        raise (
            ApiError(404, "organisation not found")
            if wanted
            else ApiError(403, "you belong to no organisation")
        )
    return found


# -- handlers -----------------------------------------------------------------------------------


def error_response(status: int, message: str, detail: dict[str, Any] | None = None) -> web.Response:
    return web.json_response({"error": message, "detail": detail or {}}, status=status)


def _query(request: web.Request, params: tuple[Param, ...]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for p in params:
        raw = request.query.get(p.name)
        if raw is None:
            if p.required:
                raise ApiError(400, f"query.{p.name}: is required", field=p.name)
            values[p.name] = p.schema.get("default")
            continue
        value: Any = raw
        kind = p.schema.get("type")
        try:
            if kind == "integer":
                value = int(raw)
            elif kind == "boolean":
                if raw.lower() not in ("true", "false", "1", "0"):
                    raise ValueError
                value = raw.lower() in ("true", "1")
        except ValueError:
            raise ApiError(400, f"query.{p.name}: must be {kind}", field=p.name) from None
        try:
            validate(value, p.schema, f"query.{p.name}")
        except SchemaError as exc:
            raise ApiError(400, str(exc), field=p.name) from None
        values[p.name] = value
    return values


async def _body(request: web.Request, schema: dict[str, Any] | None) -> Any:
    if schema is None:
        return None
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise ApiError(413, f"request body is larger than {MAX_BODY} bytes")
    raw = await request.content.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise ApiError(413, f"request body is larger than {MAX_BODY} bytes")
    try:
        data = json.loads(raw or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "the request body is not valid JSON") from None
    try:
        validate(data, schema)
    except SchemaError as exc:
        raise ApiError(400, str(exc), field=exc.path.removeprefix("body.")) from None
    return data


def _wrap(ep: Endpoint) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    unsafe = ep.method not in ("GET", "HEAD")

    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            caller = None
            if ep.scope != "public":
                caller = await resolve_caller(request, unsafe=unsafe)
                caller.require(ep.scope)
            query = _query(request, ep.query)
            body = await _body(request, ep.body)
            result = await ep.handler(
                ApiRequest(request, caller, dict(request.match_info), query, body)
            )
        except ApiError as exc:
            return error_response(exc.status, exc.message, exc.detail)
        except (WriteFailed, WriterClosed) as exc:
            log.error("API write failed: %s", exc)
            return error_response(503, "storage unavailable, try again")
        if isinstance(result, web.StreamResponse):
            return result
        if ep.status == 204:
            return web.Response(status=204)
        return web.json_response(result, status=ep.status, dumps=_dumps)

    return handle


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str)


# -- OpenAPI ------------------------------------------------------------------------------------

_PATH_PARAM = re.compile(r"\{([a-z_]+)\}")
_ERROR = {
    "type": "object",
    "properties": {"error": {"type": "string"}, "detail": {"type": "object"}},
    "required": ["error", "detail"],
}


def build_openapi(api: Api, server_url: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of an Api, from its declared routes."""
    paths: dict[str, Any] = {}
    for ep in api.endpoints:
        op: dict[str, Any] = {
            "summary": ep.summary,
            "operationId": ep.handler.__name__,
            "tags": [ep.tag],
            "parameters": [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                for name in _PATH_PARAM.findall(ep.path)
            ]
            + [
                {
                    "name": p.name,
                    "in": "query",
                    "required": p.required,
                    "schema": p.schema,
                    "description": p.description,
                }  # fmt: skip
                for p in ep.query
            ],
            "responses": _responses(ep),
            "security": []
            if ep.scope == "public"
            else [{"apiKey": []}, {"bearer": []}, {"session": []}],
            "x-tokiflow-scope": ep.scope,
        }
        if ep.body is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": ep.body}},
            }
        paths.setdefault(api.prefix + ep.path, {})[ep.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": api.title, "version": __version__, "description": api.description},
        "servers": [{"url": server_url}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE},
            },
            "schemas": {"Error": _ERROR},
        },
    }


def _responses(ep: Endpoint) -> dict[str, Any]:
    err = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    out: dict[str, Any] = {}
    if ep.status == 204:
        out["204"] = {"description": "done"}
    elif ep.content_type != "application/json":
        out[str(ep.status)] = {
            "description": "ok",
            "content": {ep.content_type: {"schema": {"type": "string"}}},
        }
    else:
        schema = ep.response or {}
        out[str(ep.status)] = {
            "description": "ok",
            "content": {"application/json": {"schema": schema}},
        }
    for code, text in ((400, "invalid input"), (401, "not signed in / bad key"),
                       (403, "not allowed"), (404, "not found"), (409, "conflict"),
                       (413, "body too large"), (429, "too many attempts"),
                       (503, "storage unavailable")):  # fmt: skip
        out[str(code)] = {"description": text, **err}
    return out
