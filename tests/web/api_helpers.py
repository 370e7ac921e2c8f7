"""Helpers for API tests: organisations, users and keys made straight in the database."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp.test_utils import TestClient

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
