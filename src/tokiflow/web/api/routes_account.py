"""/api/v1 for one's own account: profile, password, two-factor sign-in, notification
preferences; and the public account flows: accepting an invitation, resetting a password."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from typing import Any

from aiohttp import web

from tokiflow.engine import account_mail, audit, auth
from tokiflow.engine import accounts as account_ops
from tokiflow.engine.accounts import AccountError
from tokiflow.engine.views import iso
from tokiflow.storage import accounts
from tokiflow.storage.accounts import User
from tokiflow.web import appkeys, operations
from tokiflow.web.api.framework import CSRF_HEADER, MEMBER, SESSION_COOKIE, ApiError, ApiRequest
from tokiflow.web.api.native import API
from tokiflow.web.api.routes_auth import ME, PASSWORD, me_view, rate_limit, with_cookie
from tokiflow.web.api.schema import BOOL, INT, STR, TIME, nullable, obj

log = logging.getLogger(__name__)

# The background sender of account emails, set by `setup`.
MAILER = web.AppKey("account_mailer", account_mail.Mailer)

TOKEN = {"type": "string", "minLength": 1, "maxLength": 200}
CODE = {"type": "string", "minLength": 1, "maxLength": 10}
NAME = {"type": "string", "maxLength": 200}
STATUS = obj(status=STR)
ACCOUNT = obj(
    extra=True, id=INT, email=STR, name=STR, tz=STR, two_factor=BOOL, created_at=TIME,
    last_login_at=TIME,
)  # fmt: skip
HHMM = {"type": ["string", "null"], "maxLength": 5, "description": "HH:MM in your time zone"}
PREFS = obj(
    ("mode",),
    mode={"type": "string", "enum": list(account_ops.MODES)},
    tags={"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 100},
          "maxItems": 50},
    quiet_start=HHMM,
    quiet_end=HHMM,
)  # fmt: skip


def setup(app: web.Application) -> None:
    """Give the app its account mailer.

    Call from create_app (before the app starts); calling it twice does nothing more.
    """
    if MAILER in app:
        return
    mailer = account_mail.Mailer(app[appkeys.SETTINGS])
    app[MAILER] = mailer

    async def close(_: web.Application) -> None:
        await mailer.close()

    app.on_cleanup.append(close)


def api_error(exc: AccountError) -> ApiError:
    detail = {"field": exc.field} if exc.field else {}
    return ApiError(exc.status, f"body.{exc.field}: {exc}" if exc.field else str(exc), **detail)


async def hash_new_password(password: str, field: str = "password") -> str:
    """Argon2id off the event loop; 400 naming `field` when the password is too weak."""
    try:
        auth.check_password_policy(password)
    except auth.PasswordPolicyError as exc:
        raise ApiError(400, f"body.{field}: {exc}", field=field) from None
    return await asyncio.to_thread(auth.hash_password, password)


def record_for_user(
    conn: sqlite3.Connection,
    user_id: int,
    actor: audit.Actor,
    action: str,
    before: Any,
    after: Any,
    now: Any,
) -> None:
    """Audit a change to a user's own account in each organisation they belong to, so that
    every organisation's admins see it (one entry without organisation if they have none)."""
    org_ids: list[int | None] = [m.org_id for m in accounts.memberships_of(conn, user_id)]
    for org_id in org_ids or [None]:
        audit.record(conn, org_id=org_id, actor=actor, action=action, target_kind="user",
                     target_id=user_id, before=before, after=after, now=now)  # fmt: skip


def _user(req: ApiRequest) -> User:
    user = req.caller.user
    if user is None:
        raise ApiError(403, "API keys cannot use account routes: sign in as a user")
    return user


def _account_view(user: User) -> dict[str, Any]:
    return {
        "id": user.id, "email": user.email, "name": user.name, "tz": user.tz,
        "two_factor": user.totp_secret is not None, "created_at": iso(user.created_at),
        "last_login_at": iso(user.last_login_at),
    }  # fmt: skip


def _now(req: ApiRequest) -> Any:
    return req.app[appkeys.CLOCK].now()


# -- public flows ------------------------------------------------------------------------------


async def _signed_in(req: ApiRequest) -> User | None:
    """The user of a valid session cookie (CSRF checked), or None when not signed in."""
    token = req.request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    now = _now(req)
    found = await req.app[appkeys.DB].read(lambda c: auth.session_user(c, token, now))
    if found is None:
        return None
    user, session = found
    if not auth.constant_equal(req.request.headers.get(CSRF_HEADER, ""), session.csrf_token):
        raise ApiError(403, f"missing or wrong {CSRF_HEADER} header")
    return user


@API.route(
    "POST", "/auth/invitations/accept",
    summary="Accept an invitation: create the account (then signed in) or join as the signed-in user",
    scope="public", tag="account",
    body=obj(("token",), token=TOKEN, password=PASSWORD, name=NAME), response=ME,
)  # fmt: skip
async def accept_invitation(req: ApiRequest) -> Any:
    token, now = req.body["token"], _now(req)
    signed_in = await _signed_in(req)
    password_hash = None
    if signed_in is None:
        # Check the link before spending a password hash on it.
        usable = await req.app[appkeys.DB].read(lambda c: account_ops.invitation_usable(c, token))
        if usable and "password" in req.body:
            password_hash = await hash_new_password(req.body["password"])
    r = req.request
    ip, ua = r.remote or "", r.headers.get("User-Agent", "")
    limits = operations.plan_limits(req.app)

    def write(conn: sqlite3.Connection) -> tuple[dict[str, Any], str | None]:
        try:
            user, inv, created = account_ops.accept_invitation(
                conn, token, signed_in=signed_in, name=req.body.get("name", ""),
                password_hash=password_hash, now=now, limits=limits,
            )  # fmt: skip
        except AccountError as exc:
            raise api_error(exc) from None
        audit.record(conn, org_id=inv.org_id, actor=audit.Actor("user", user.id, user.email, ip, ua),
                     action="invitation.accept", target_kind="user", target_id=user.id,
                     after={"email": user.email, "role": inv.role, "new_user": created},
                     now=now)  # fmt: skip
        if not created:
            current = auth.session_user(conn, r.cookies.get(SESSION_COOKIE, ""), now)
            return me_view(conn, user, current[1].csrf_token if current else ""), None
        session = auth.start_session(conn, user, now, ip=ip, user_agent=ua)
        return me_view(conn, user, session.csrf_token), session.token

    data, new_session = await req.app[appkeys.DB].write(write)
    if new_session is None:
        return data
    return with_cookie(r, data, new_session, auth.SESSION_DAYS * 86400)


@API.route(
    "POST", "/auth/password-reset",
    summary="Email a password-reset link (the reply is the same whether or not the address has an account)",
    scope="public", tag="account", body=obj(("email",), email={"type": "string", "maxLength": 254}),
    response=STATUS, status=202,
)  # fmt: skip
async def request_reset(req: ApiRequest) -> Any:
    rate_limit(req, "reset")
    settings, now = req.app[appkeys.SETTINGS], _now(req)
    email = req.body["email"].strip()

    def write(conn: sqlite3.Connection) -> tuple[str, User] | None:
        found = account_ops.request_reset(conn, email, now)
        if found is not None:
            record_for_user(conn, found[1].id, audit.Actor("system", None, "password reset"),
                            "password.reset_requested", None, None, now)  # fmt: skip
        return found

    found = await req.app[appkeys.DB].write(write)
    if found is not None:
        token, user = found
        if account_mail.configured(settings):
            msg = account_mail.reset_email(
                settings, to=user.email, link=f"{settings.public_url}/reset/{token}",
                expires_at=now + account_ops.RESET_FOR, now=now,
            )  # fmt: skip
            mailer = req.app.get(MAILER)
            if mailer is not None:
                mailer.send_soon(msg, "password reset")
            else:  # not set up: send now (the reply then takes longer for known addresses)
                try:
                    await account_mail.send(settings, msg)
                except account_mail.MailError as exc:
                    log.warning("could not send the password reset email: %s", exc)
        else:
            log.warning(
                "a password reset was asked for user #%s but no SMTP server is configured "
                "(smtp_host): an admin can set a new password with the command line",
                user.id,
            )
    return {"status": "if the address has an account, a reset link is on its way"}


@API.route(
    "POST", "/auth/password-reset/confirm",
    summary="Set a new password with a reset link's token (once; signs out every session)",
    scope="public", tag="account", body=obj(("token", "password"), token=TOKEN, password=PASSWORD),
    response=STATUS,
)  # fmt: skip
async def confirm_reset(req: ApiRequest) -> Any:
    token, now = req.body["token"], _now(req)
    bad = ApiError(400, "body.token: this reset link is invalid, was already used or has expired",
                   field="token")  # fmt: skip
    if not await req.app[appkeys.DB].read(lambda c: account_ops.reset_usable(c, token, now)):
        raise bad
    password_hash = await hash_new_password(req.body["password"])
    r = req.request

    def write(conn: sqlite3.Connection) -> None:
        try:
            user = account_ops.confirm_reset(conn, token, password_hash, now)
        except AccountError as exc:
            raise api_error(exc) from None
        actor = audit.Actor("user", user.id, user.email, r.remote or "",
                            r.headers.get("User-Agent", ""))  # fmt: skip
        record_for_user(conn, user.id, actor, "password.reset", None, {"sessions": "ended"}, now)

    await req.app[appkeys.DB].write(write)
    return {"status": "password changed: sign in with the new password"}


# -- own account -------------------------------------------------------------------------------


@API.route("GET", "/account", summary="Your account: name, email, time zone, two-factor",
           scope=MEMBER, tag="account", response=ACCOUNT)  # fmt: skip
async def get_account(req: ApiRequest) -> Any:
    user = _user(req)
    fresh = await req.app[appkeys.DB].read(lambda c: accounts.get_user(c, user.id))
    return _account_view(fresh or user)


@API.route(
    "PATCH", "/account", summary="Change your name or time zone", scope=MEMBER, tag="account",
    body=obj(name=NAME, tz={"type": "string", "minLength": 1, "maxLength": 64}), response=ACCOUNT,
)  # fmt: skip
async def update_account(req: ApiRequest) -> Any:
    user, now = _user(req), _now(req)

    def write(conn: sqlite3.Connection) -> User:
        before = accounts.get_user(conn, user.id) or user
        try:
            after = account_ops.update_profile(
                conn, user.id, name=req.body.get("name"), tz=req.body.get("tz")
            )
        except AccountError as exc:
            raise api_error(exc) from None
        record_for_user(conn, user.id, req.caller.actor, "account.update",
                        {"name": before.name, "tz": before.tz}, {"name": after.name, "tz": after.tz},
                        now)  # fmt: skip
        return after

    return _account_view(await req.app[appkeys.DB].write(write))


async def _check_password(req: ApiRequest, user: User, password: str, field: str) -> None:
    rate_limit(req, f"password:{user.id}")
    current = await req.app[appkeys.DB].read(lambda c: accounts.get_user(c, user.id))
    ok = current is not None and await asyncio.to_thread(
        auth.verify_password, password, current.password_hash
    )
    if not ok:
        raise ApiError(400, f"body.{field}: is not your current password", field=field)


@API.route(
    "POST", "/account/password",
    summary="Change your password (signs out your other sessions)", scope=MEMBER, tag="account",
    body=obj(("current_password", "new_password"), current_password=PASSWORD,
             new_password=PASSWORD),
    status=204,
)  # fmt: skip
async def change_password(req: ApiRequest) -> Any:
    user, now = _user(req), _now(req)
    await _check_password(req, user, req.body["current_password"], "current_password")
    new_hash = await hash_new_password(req.body["new_password"], "new_password")
    keep = req.request.cookies.get(SESSION_COOKIE, "")

    def write(conn: sqlite3.Connection) -> None:
        accounts.set_password(conn, user.id, new_hash)
        ended = account_ops.end_other_sessions(conn, user.id, keep)
        record_for_user(conn, user.id, req.caller.actor, "password.change", None,
                        {"other_sessions_ended": ended}, now)  # fmt: skip

    await req.app[appkeys.DB].write(write)
    return None


@API.route(
    "POST", "/account/totp/setup",
    summary="Start two-factor set-up: a new secret and otpauth:// URI (on after confirm)",
    scope=MEMBER, tag="account",
    response=obj(secret=STR, otpauth_uri=STR, setup_token=STR, expires_at=TIME),
)  # fmt: skip
async def totp_setup(req: ApiRequest) -> Any:
    user = _user(req)
    fresh = await req.app[appkeys.DB].read(lambda c: accounts.get_user(c, user.id)) or user
    try:
        started = account_ops.start_totp(req.app[appkeys.SEALER], fresh, _now(req))
    except AccountError as exc:
        raise api_error(exc) from None
    return {"secret": started.secret, "otpauth_uri": started.uri,
            "setup_token": started.setup_token, "expires_at": iso(started.expires_at)}  # fmt: skip


@API.route(
    "POST", "/account/totp/confirm",
    summary="Turn two-factor sign-in on with a code from the new secret", scope=MEMBER,
    tag="account", body=obj(("setup_token", "code"), setup_token={"type": "string", "maxLength": 500},
                            code=CODE),
    response=ACCOUNT,
)  # fmt: skip
async def totp_confirm(req: ApiRequest) -> Any:
    user, now = _user(req), _now(req)
    rate_limit(req, f"totp:{user.id}")
    sealer = req.app[appkeys.SEALER]

    def write(conn: sqlite3.Connection) -> User:
        try:
            account_ops.confirm_totp(conn, sealer, user.id, req.body["setup_token"],
                                     req.body["code"], now)  # fmt: skip
        except AccountError as exc:
            raise api_error(exc) from None
        record_for_user(conn, user.id, req.caller.actor, "account.totp_on",
                        {"two_factor": False}, {"two_factor": True}, now)  # fmt: skip
        fresh = accounts.get_user(conn, user.id)
        assert fresh is not None
        return fresh

    return _account_view(await req.app[appkeys.DB].write(write))


@API.route(
    "DELETE", "/account/totp", summary="Turn two-factor sign-in off (password and a current code)",
    scope=MEMBER, tag="account", body=obj(("password", "code"), password=PASSWORD, code=CODE),
    response=ACCOUNT,
)  # fmt: skip
async def totp_disable(req: ApiRequest) -> Any:
    user, now = _user(req), _now(req)
    await _check_password(req, user, req.body["password"], "password")
    current = await req.app[appkeys.DB].read(lambda c: accounts.get_user(c, user.id)) or user
    if current.totp_secret is None:
        raise ApiError(409, "two-factor sign-in is already off")
    sealer = req.app[appkeys.SEALER]

    def write(conn: sqlite3.Connection) -> User:
        latest = accounts.get_user(conn, user.id) or current
        # The code counts as used (checked and spent in this transaction): no replays.
        if not account_ops.use_code(conn, sealer, latest, req.body["code"], now):
            raise ApiError(400, "body.code: that code is not right or was already used",
                           field="code")  # fmt: skip
        if account_ops.disable_totp(conn, user.id):
            record_for_user(conn, user.id, req.caller.actor, "account.totp_off",
                            {"two_factor": True}, {"two_factor": False}, now)  # fmt: skip
        fresh = accounts.get_user(conn, user.id)
        assert fresh is not None
        return fresh

    return _account_view(await req.app[appkeys.DB].write(write))


def _prefs_view(p: account_ops.NotificationPrefs) -> dict[str, Any]:
    return {"mode": p.mode, "tags": list(p.tags), "quiet_start": p.quiet_start,
            "quiet_end": p.quiet_end}  # fmt: skip


PREFS_REPLY = obj(
    extra=True, mode=STR, tags={"type": "array", "items": STR}, quiet_start=nullable(STR),
    quiet_end=nullable(STR), tz=STR,
)  # fmt: skip


@API.route("GET", "/account/notifications",
           summary="Your notification preferences in this organisation", scope="read",
           tag="account", response=PREFS_REPLY)  # fmt: skip
async def get_prefs(req: ApiRequest) -> Any:
    user, org_id = _user(req), req.caller.org.id
    prefs = await req.app[appkeys.DB].read(lambda c: account_ops.get_prefs(c, user.id, org_id))
    return {**_prefs_view(prefs), "tz": user.tz}


@API.route(
    "PUT", "/account/notifications",
    summary="Set your notification preferences in this organisation (mode, tags, quiet hours)",
    scope="read", tag="account", body=PREFS, response=PREFS_REPLY,
)  # fmt: skip
async def put_prefs(req: ApiRequest) -> Any:
    user, org_id, now = _user(req), req.caller.org.id, _now(req)
    try:
        prefs = account_ops.check_prefs(req.body["mode"], req.body.get("tags", []),
                                        req.body.get("quiet_start"), req.body.get("quiet_end"))  # fmt: skip
    except AccountError as exc:
        raise api_error(exc) from None

    def write(conn: sqlite3.Connection) -> None:
        before = account_ops.get_prefs(conn, user.id, org_id)
        account_ops.save_prefs(conn, user.id, org_id, prefs)
        audit.record(conn, org_id=org_id, actor=req.caller.actor, action="account.notifications",
                     target_kind="user", target_id=user.id, before=_prefs_view(before),
                     after=_prefs_view(prefs), now=now)  # fmt: skip

    await req.app[appkeys.DB].write(write)
    return {**_prefs_view(prefs), "tz": user.tz}
