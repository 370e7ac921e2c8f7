"""/api/v1/auth: first-run setup, sign in, sign out, and who am I."""

from __future__ import annotations

import sqlite3
from typing import Any

from aiohttp import web

from tokiflow.engine import accounts as account_ops
from tokiflow.engine import audit, auth
from tokiflow.storage import accounts, orgs
from tokiflow.storage.accounts import User
from tokiflow.web import appkeys
from tokiflow.web.api.framework import MEMBER, SESSION_COOKIE, ApiError, ApiRequest
from tokiflow.web.api.native import API
from tokiflow.web.api.schema import STR, obj

EMAIL = {"type": "string", "minLength": 3, "maxLength": 254}
PASSWORD = {"type": "string", "minLength": 1, "maxLength": 1024}
ME = obj(
    extra=True,
    user=obj(extra=True, id={"type": "integer"}, email=STR, name=STR),
    orgs={"type": "array", "items": obj(extra=True, slug=STR, name=STR, role=STR)},
    csrf_token=STR,
)  # fmt: skip


def valid_email(email: str) -> str:
    email = email.strip()
    local, _, domain = email.partition("@")
    if not local or not domain or " " in email or "." not in domain and domain != "localhost":
        raise ApiError(400, "body.email: is not an email address", field="email")
    return email


def me_view(conn: sqlite3.Connection, user: User, csrf: str) -> dict[str, Any]:
    memberships = []
    for m in accounts.memberships_of(conn, user.id):
        org = orgs.get(conn, m.org_id)
        if org is not None:
            memberships.append({"slug": org.slug, "name": org.name, "role": m.role})
    return {
        "user": {
            "id": user.id,
            "email": user.email,
            "name": user.name,
            "tz": user.tz,
            "two_factor": user.totp_secret is not None,
        },  # fmt: skip
        "orgs": memberships,
        "csrf_token": csrf,
    }


def with_cookie(
    request: web.Request, data: dict[str, Any], token: str, max_age: int
) -> web.Response:
    resp = web.json_response(data)
    secure = request.app[appkeys.SETTINGS].public_url.startswith("https://")
    resp.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age,
        httponly=True,
        samesite="Lax",
        secure=secure,
        path="/",
    )
    return resp


def rate_limit(req: ApiRequest, what: str) -> None:
    wait = req.app[appkeys.LOGIN_LIMITER].check(f"{what}:{req.request.remote or ''}")
    if wait > 0:
        raise ApiError(429, f"too many attempts from your address: wait {int(wait) + 1} s")


@API.route(
    "POST", "/auth/setup", summary="First run only: create the first user (owner) and sign in",
    scope="public", tag="auth",
    body=obj(("email", "password"), email=EMAIL, password=PASSWORD,
             name={"type": "string", "maxLength": 200}, org_name={"type": "string", "maxLength": 200}),
    response=ME,
)  # fmt: skip
async def setup(req: ApiRequest) -> Any:
    rate_limit(req, "setup")
    email = valid_email(req.body["email"])
    try:
        password_hash = auth.hash_password(req.body["password"])
    except auth.PasswordPolicyError as exc:
        raise ApiError(400, f"body.password: {exc}", field="password") from None
    now = req.app[appkeys.CLOCK].now()
    ip, ua = req.request.remote or "", req.request.headers.get("User-Agent", "")

    def write(conn: sqlite3.Connection) -> tuple[dict[str, Any], str]:
        if accounts.count_users(conn):
            raise ApiError(409, "set-up is already done: sign in instead")
        org = orgs.ensure_default(conn, now)
        if req.body.get("org_name"):
            orgs.rename(conn, org.id, req.body["org_name"].strip())
        user = accounts.create_user(conn, email=email, name=req.body.get("name", ""),
                                    password_hash=password_hash, now=now)  # fmt: skip
        accounts.add_member(conn, user.id, org.id, "owner", now)
        session = auth.start_session(conn, user, now, ip=ip, user_agent=ua)
        audit.record(conn, org_id=org.id, actor=audit.Actor("user", user.id, email, ip, ua),
                     action="setup", target_kind="user", target_id=user.id, now=now)  # fmt: skip
        return me_view(conn, user, session.csrf_token), session.token

    data, token = await req.app[appkeys.DB].write(write)
    return with_cookie(req.request, data, token, auth.SESSION_DAYS * 86400)


@API.route(
    "POST", "/auth/login", summary="Sign in with email and password; sets the session cookie",
    scope="public", tag="auth", body=obj(("email", "password"), email=EMAIL, password=PASSWORD,
                                         totp={"type": "string", "maxLength": 10}),
    response=ME,
)  # fmt: skip
async def login(req: ApiRequest) -> Any:
    rate_limit(req, "login")
    now = req.app[appkeys.CLOCK].now()
    ip, ua = req.request.remote or "", req.request.headers.get("User-Agent", "")
    sealer = req.app[appkeys.SEALER]

    def write(conn: sqlite3.Connection) -> tuple[dict[str, Any], str] | str:
        try:
            user = auth.login(conn, req.body["email"], req.body["password"], now)
        except auth.AuthError as exc:
            return str(exc)  # the failure count must commit: report it outside
        if user.totp_secret is not None:
            # A code counts once: a replayed one (seen over a shoulder, in a proxy log) fails.
            if not account_ops.use_code(conn, sealer, user, req.body.get("totp", ""), now):
                # Counted like a wrong password, on top of the count before this attempt (the
                # right password reset it).
                auth.record_failure(conn, user, now)
                return "a valid two-factor code is required"
        session = auth.start_session(conn, user, now, ip=ip, user_agent=ua)
        return me_view(conn, user, session.csrf_token), session.token

    outcome = await req.app[appkeys.DB].write(write)
    if isinstance(outcome, str):
        raise ApiError(401, outcome)
    data, token = outcome
    return with_cookie(req.request, data, token, auth.SESSION_DAYS * 86400)


@API.route("POST", "/auth/logout", summary="Sign out (ends this session)", scope=MEMBER,
           tag="auth", status=204)  # fmt: skip
async def logout(req: ApiRequest) -> Any:
    token = req.request.cookies.get(SESSION_COOKIE, "")
    if token:
        await req.app[appkeys.DB].write(
            lambda c: accounts.delete_session(c, auth.token_hash(token))
        )
    resp = web.Response(status=204)
    resp.del_cookie(SESSION_COOKIE, path="/")
    return resp


@API.route("GET", "/auth/me", summary="The signed-in user, their organisations and CSRF token",
           scope=MEMBER, tag="auth", response=ME)  # fmt: skip
async def me(req: ApiRequest) -> Any:
    caller = req.caller
    if caller.user is None:
        org = caller.org
        return {"user": None, "orgs": [{"slug": org.slug, "name": org.name, "role": "api-key"}],
                "csrf_token": ""}  # fmt: skip
    token = req.request.cookies.get(SESSION_COOKIE, "")
    now = req.app[appkeys.CLOCK].now()

    def read(conn: sqlite3.Connection) -> dict[str, Any]:
        found = auth.session_user(conn, token, now)
        assert found is not None and caller.user is not None
        return me_view(conn, caller.user, found[1].csrf_token)

    return await req.app[appkeys.DB].read(read)
