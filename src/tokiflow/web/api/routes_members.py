"""/api/v1 members of the caller's organisation and invitations to join it."""

from __future__ import annotations

import sqlite3
from typing import Any

from tokiflow.engine import account_mail, audit
from tokiflow.engine import accounts as account_ops
from tokiflow.engine.accounts import AccountError, Invitation
from tokiflow.engine.views import iso
from tokiflow.storage import accounts
from tokiflow.storage.accounts import ROLES, User
from tokiflow.web import appkeys, operations
from tokiflow.web.api.framework import ApiError, ApiRequest, not_found
from tokiflow.web.api.native import API
from tokiflow.web.api.routes_account import api_error
from tokiflow.web.api.routes_auth import valid_email
from tokiflow.web.api.schema import BOOL, INT, STR, TIME, nullable, obj

ROLE = {"type": "string", "enum": list(ROLES)}
MEMBER = obj(
    extra=True, user_id=INT, email=STR, name=STR, role=STR, two_factor=BOOL, last_login_at=TIME,
)  # fmt: skip
INVITATION = obj(
    extra=True, id=INT, email=STR, role=STR, created_at=TIME, expires_at=TIME, expired=BOOL,
)  # fmt: skip


def _member_view(user: User, role: str) -> dict[str, Any]:
    return {
        "user_id": user.id, "email": user.email, "name": user.name, "role": role,
        "two_factor": user.totp_secret is not None, "last_login_at": iso(user.last_login_at),
        "created_at": iso(user.created_at),
    }  # fmt: skip


def _invitation_view(inv: Invitation, now: Any) -> dict[str, Any]:
    return {
        "id": inv.id, "email": inv.email, "role": inv.role, "created_at": iso(inv.created_at),
        "expires_at": iso(inv.expires_at), "expired": inv.expires_at <= now,
    }  # fmt: skip


def _by_owner(conn: sqlite3.Connection, req: ApiRequest) -> bool:
    """Whether the caller is an owner of the organisation (only owners manage owners)."""
    user = req.caller.user
    if user is None:
        return False
    m = accounts.membership(conn, user.id, req.caller.org.id)
    return m is not None and m.role == "owner"


def _audit(req: ApiRequest, conn: sqlite3.Connection, action: str, kind: str, target: Any,
           before: Any, after: Any) -> None:  # fmt: skip
    audit.record(conn, org_id=req.caller.org.id, actor=req.caller.actor, action=action,
                 target_kind=kind, target_id=target, before=before, after=after,
                 now=req.app[appkeys.CLOCK].now())  # fmt: skip


@API.route(
    "GET", "/members", summary="Members of the organisation with their roles", scope="read",
    tag="members", response=obj(members={"type": "array", "items": MEMBER}),
)  # fmt: skip
async def list_members(req: ApiRequest) -> Any:
    org_id = req.caller.org.id
    rows = await req.app[appkeys.DB].read(lambda c: accounts.members(c, org_id))
    return {"members": [_member_view(u, role) for u, role in rows]}


@API.route(
    "PATCH", "/members/{user_id}", summary="Change a member's role (the last owner stays owner)",
    scope="admin", tag="members", body=obj(("role",), role=ROLE), response=MEMBER,
)  # fmt: skip
async def update_member(req: ApiRequest) -> Any:
    user_id, org_id = req.path_int("user_id", "member"), req.caller.org.id

    def write(conn: sqlite3.Connection) -> dict[str, Any]:
        user = accounts.get_user(conn, user_id)
        if user is None or accounts.membership(conn, user_id, org_id) is None:
            raise not_found("member")
        try:
            old, new = account_ops.change_role(conn, org_id, user_id, req.body["role"],
                                               by_owner=_by_owner(conn, req))  # fmt: skip
        except AccountError as exc:
            raise api_error(exc) from None
        if old != new:
            _audit(req, conn, "member.role", "user", user_id, {"role": old}, {"role": new})
        return _member_view(user, new)

    return await req.app[appkeys.DB].write(write)


@API.route(
    "DELETE", "/members/{user_id}", summary="Remove a member (not the last owner)", scope="admin",
    tag="members", status=204,
)  # fmt: skip
async def remove_member(req: ApiRequest) -> Any:
    user_id, org_id = req.path_int("user_id", "member"), req.caller.org.id

    def write(conn: sqlite3.Connection) -> None:
        user = accounts.get_user(conn, user_id)
        if user is None or accounts.membership(conn, user_id, org_id) is None:
            raise not_found("member")
        try:
            role = account_ops.remove_member(conn, org_id, user_id, by_owner=_by_owner(conn, req))
        except AccountError as exc:
            raise api_error(exc) from None
        _audit(req, conn, "member.remove", "user", user_id,
               {"email": user.email, "role": role}, None)  # fmt: skip

    await req.app[appkeys.DB].write(write)
    return None


# -- invitations -------------------------------------------------------------------------------


@API.route(
    "POST", "/invitations",
    summary="Invite someone by email with a role; the reply has the one-use link (valid 7 days)",
    scope="admin", tag="members",
    body=obj(("email", "role"), email={"type": "string", "minLength": 3, "maxLength": 254},
             role=ROLE),
    response=obj(extra=True, id=INT, email=STR, role=STR, link=STR, expires_at=TIME,
                 emailed=BOOL, email_error=nullable(STR)),
    status=201,
)  # fmt: skip
async def invite(req: ApiRequest) -> Any:
    email, role = valid_email(req.body["email"]), req.body["role"]
    settings, now, caller = req.app[appkeys.SETTINGS], req.app[appkeys.CLOCK].now(), req.caller
    limits = operations.plan_limits(req.app)

    def write(conn: sqlite3.Connection) -> tuple[str, Invitation]:
        if role == "owner" and not _by_owner(conn, req):
            raise ApiError(403, "only an owner may invite an owner")
        try:
            token, inv = account_ops.create_invitation(
                conn, org_id=caller.org.id, email=email, role=role,
                invited_by=caller.user.id if caller.user else None, now=now, limits=limits,
            )  # fmt: skip
        except AccountError as exc:
            raise api_error(exc) from None
        _audit(req, conn, "invitation.create", "invitation", inv.id, None,
               {"email": email, "role": role})  # fmt: skip
        return token, inv

    token, inv = await req.app[appkeys.DB].write(write)
    link = f"{settings.public_url}/invite/{token}"
    emailed, error = False, None
    if account_mail.configured(settings):
        msg = account_mail.invitation_email(
            settings, to=email, org_name=caller.org.name, inviter=caller.actor.label,
            role=role, link=link, expires_at=inv.expires_at, now=now,
        )  # fmt: skip
        try:
            await account_mail.send(settings, msg)
            emailed = True
        except account_mail.MailError as exc:
            error = str(exc)
    return {**_invitation_view(inv, now), "link": link, "emailed": emailed, "email_error": error}


@API.route(
    "GET", "/invitations", summary="Invitations not accepted yet (the links are not shown again)",
    scope="admin", tag="members", response=obj(invitations={"type": "array", "items": INVITATION}),
)  # fmt: skip
async def list_invitations(req: ApiRequest) -> Any:
    org_id, now = req.caller.org.id, req.app[appkeys.CLOCK].now()
    rows = await req.app[appkeys.DB].read(lambda c: account_ops.pending_invitations(c, org_id))
    return {"invitations": [_invitation_view(i, now) for i in rows]}


@API.route("DELETE", "/invitations/{id}", summary="Withdraw an invitation (its link stops working)",
           scope="admin", tag="members", status=204)  # fmt: skip
async def revoke_invitation(req: ApiRequest) -> Any:
    invitation_id, org_id = req.path_int("id", "invitation"), req.caller.org.id

    def write(conn: sqlite3.Connection) -> None:
        inv = account_ops.get_invitation(conn, invitation_id)
        if inv is None or inv.org_id != org_id or not account_ops.revoke_invitation(conn, inv.id):
            raise not_found("invitation")
        _audit(req, conn, "invitation.revoke", "invitation", inv.id,
               {"email": inv.email, "role": inv.role}, None)  # fmt: skip

    await req.app[appkeys.DB].write(write)
    return None
