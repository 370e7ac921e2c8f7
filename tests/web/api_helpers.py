"""Helpers for API tests: organisations, users and keys made straight in the database."""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass
from email.message import Message

from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives.hashes import SHA1
from cryptography.hazmat.primitives.twofactor.totp import TOTP

from tokiflow.clock import FakeClock
from tokiflow.engine import auth
from tokiflow.storage import accounts, orgs
from tokiflow.web import appkeys


@dataclass
class OrgAccess:
    slug: str
    org_id: int
    rw_key: str
    ro_key: str

    def rw(self) -> dict[str, str]:
        return {"X-Api-Key": self.rw_key}

    def ro(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.ro_key}"}


async def make_org(client: TestClient, clock: FakeClock, slug: str) -> OrgAccess:
    db = client.app[appkeys.DB]
    now = clock.now()

    def write(conn: object) -> OrgAccess:
        org = orgs.by_slug(conn, slug) or orgs.create(conn, slug, slug.title(), now)  # type: ignore[arg-type]
        rw = auth.create_api_key(conn, org_id=org.id, name="rw", read_only=False, now=now)  # type: ignore[arg-type]
        ro = auth.create_api_key(conn, org_id=org.id, name="ro", read_only=True, now=now)  # type: ignore[arg-type]
        return OrgAccess(slug, org.id, rw.key, ro.key)

    return await db.write(write)


async def make_user(
    client: TestClient,
    clock: FakeClock,
    email: str,
    org_id: int,
    role: str,
    password: str = "a long password",
) -> None:
    db = client.app[appkeys.DB]
    now = clock.now()
    phc = auth.hash_password(password)

    def write(conn: object) -> None:
        user = accounts.create_user(conn, email=email, name="", password_hash=phc, now=now)  # type: ignore[arg-type]
        accounts.add_member(conn, user.id, org_id, role, now)  # type: ignore[arg-type]

    await db.write(write)


def body_of(msg: Message) -> str:
    """The decoded text of a (single-part) email."""
    payload = msg.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


def totp_code(secret_b32: str, at: dt.datetime) -> str:
    """The 6-digit TOTP code of a base32 secret at `at`, as an authenticator app shows it."""
    return TOTP(base64.b32decode(secret_b32), 6, SHA1(), 30).generate(int(at.timestamp())).decode()
