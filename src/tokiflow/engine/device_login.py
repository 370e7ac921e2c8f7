"""Device-code sign-in of the command line (the flow of RFC 8628): `tokiflow login` asks for a
code pair, shows the short user code, and polls with the long device code; a signed-in user who
may create API keys approves the user code in the browser for one of their organisations; the
next poll gets a new read-write API key of that organisation, once.

Codes are random and stored only as digests. Expiry, the polling pace and waiting for a decision
all follow the injected Clock.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import secrets
import sqlite3
from collections import OrderedDict
from dataclasses import dataclass

from tokiflow.clock import Clock
from tokiflow.engine import audit, auth
from tokiflow.storage import accounts, orgs
from tokiflow.storage import device_codes as store
from tokiflow.storage.device_codes import DeviceCode
from tokiflow.storage.orgs import Org

LIFETIME = dt.timedelta(minutes=15)
INTERVAL = 5  # seconds between polls
SLOW_DOWN_STEP = 5  # seconds added to the interval of a client that polls too fast
MAX_WAIT = 30  # seconds a poll may wait for a decision before it is answered "pending"
MAX_PENDING = 1000  # undecided codes at once: bounds what anonymous callers can store
KEEP_EXPIRED = dt.timedelta(days=1)
# 20 consonants, no vowels (no words) and none that look alike: 20^8 (about 2^34.6) codes.
ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
USER_CODE_LENGTH = 8
MAX_CLIENTS = 10_000


class DeviceLoginError(Exception):
    """A step of the flow cannot go ahead. `code` is the RFC 8628 error name (or `invalid_code`,
    `forbidden`, `busy`); str() is safe to show."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class NewCode:
    device_code: str  # for the polling client only; never stored
    user_code: str  # shown as ABCD-EFGH; never stored
    expires_in: int
    interval: int


@dataclass(frozen=True)
class IssuedKey:
    key: str  # shown once, to the polling client
    key_row: accounts.ApiKey
    org: Org


def device_code_hash(device_code: str) -> str:
    return auth.token_hash("device:" + device_code.strip())


def normalise_user_code(text: str) -> str | None:
    """The 8 letters of a user code as typed (any case, with or without the dash or spaces),
    or None when it cannot be one."""
    letters = "".join(ch for ch in text.upper() if not ch.isspace() and ch != "-")
    if len(letters) != USER_CODE_LENGTH or any(ch not in ALPHABET for ch in letters):
        return None
    return letters


def format_user_code(letters: str) -> str:
    half = len(letters) // 2
    return f"{letters[:half]}-{letters[half:]}"


def user_code_hash(letters: str) -> str:
    return hashlib.sha256(("user:" + letters).encode()).hexdigest()


def start(conn: sqlite3.Connection, now: dt.datetime) -> NewCode:
    """A new code pair, pending for LIFETIME; drops codes that expired long ago."""
    store.prune(conn, now - KEEP_EXPIRED)
    if store.count_pending(conn, now) >= MAX_PENDING:
        raise DeviceLoginError("busy", "too many sign-ins are waiting for approval: try later")
    device_code = secrets.token_urlsafe(32)
    for _ in range(10):
        letters = "".join(secrets.choice(ALPHABET) for _ in range(USER_CODE_LENGTH))
        row = store.create(
            conn, user_code_hash=user_code_hash(letters),
            device_code_hash=device_code_hash(device_code), now=now, expires_at=now + LIFETIME,
        )  # fmt: skip
        if row is not None:
            return NewCode(device_code, format_user_code(letters),
                           int(LIFETIME.total_seconds()), INTERVAL)  # fmt: skip
    raise DeviceLoginError("busy", "could not pick a free code: try again")


def may_create_keys(conn: sqlite3.Connection, user_id: int, org_id: int) -> bool:
    """Whether the user's role in the organisation allows creating API keys (admin access)."""
    member = accounts.membership(conn, user_id, org_id)
    return member is not None and "admin" in auth.ROLE_SCOPES.get(member.role, set())


def pending_code(conn: sqlite3.Connection, user_code: str, now: dt.datetime) -> DeviceCode:
    """The pending code a user typed; DeviceLoginError when it is malformed, unknown, expired or
    already decided (all told apart, since only someone who has the code can ask)."""
    letters = normalise_user_code(user_code)
    row = None if letters is None else store.by_user_code(conn, user_code_hash(letters))
    if row is None:
        raise DeviceLoginError("invalid_code", "no sign-in is waiting with this code: check it "
                               "against the one in your terminal")  # fmt: skip
    state = row.state(now)
    if state == "expired":
        raise DeviceLoginError("expired_token", "this code has expired: run tokiflow login again")
    if state != "pending":
        raise DeviceLoginError("invalid_code", "this code was already used")
    return row


def decide(
    conn: sqlite3.Connection,
    user_code: str,
    *,
    approve: bool,
    org: Org,
    actor: audit.Actor,
    now: dt.datetime,
) -> DeviceCode:
    """Approve the code for `org` (the actor must be allowed to create its API keys) or deny
    it; audited. The key itself is made when the command line collects it."""
    assert actor.id is not None
    row = pending_code(conn, user_code, now)
    if approve and not may_create_keys(conn, actor.id, org.id):
        raise DeviceLoginError("forbidden", f"your role in {org.name} may not create API keys")
    if not store.decide(conn, row.id, user_id=actor.id, org_id=org.id if approve else None,
                        now=now):  # fmt: skip
        raise DeviceLoginError("invalid_code", "this code was already used")
    audit.record(
        conn, org_id=org.id, actor=actor, action="device.approve" if approve else "device.deny",
        target_kind="device_code", target_id=row.id, after={"org": org.slug} if approve else None,
        now=now,
    )  # fmt: skip
    updated = store.get(conn, row.id)
    assert updated is not None
    return updated


def check_poll(row: DeviceCode | None, now: dt.datetime) -> str:
    """The state of a polled code, or DeviceLoginError for the answers that end the flow."""
    if row is None:
        raise DeviceLoginError("invalid_grant", "unknown device code: run tokiflow login again")
    state = row.state(now)
    if state == "expired":
        raise DeviceLoginError(
            "expired_token", "the code expired before it was approved: run tokiflow login again"
        )
    if state == "issued":
        raise DeviceLoginError("expired_token", "this code was already used: run tokiflow login "
                               "again")  # fmt: skip
    if state == "denied":
        raise DeviceLoginError("access_denied", "the sign-in was denied in the browser")
    return state


def clean_client_name(text: str | None) -> str:
    """A host name as sent by the client, cut to something safe to show."""
    name = "".join(ch for ch in (text or "") if ch.isprintable()).strip()
    return name[:60]


def redeem(
    conn: sqlite3.Connection,
    device_code: str,
    *,
    client_name: str,
    now: dt.datetime,
    ip: str = "",
    user_agent: str = "",
) -> IssuedKey:
    """Hand out the read-write API key of an approved code, once; made through the same key
    function as every other key and audited as created by the approving user."""
    row = store.by_device_code(conn, device_code_hash(device_code))
    state = check_poll(row, now)
    assert row is not None
    if state != "approved":
        raise DeviceLoginError("authorization_pending", "waiting for approval in the browser")
    assert row.approved_by is not None and row.org_id is not None
    user = accounts.get_user(conn, row.approved_by)
    org = orgs.get(conn, row.org_id)
    if user is None or org is None or not may_create_keys(conn, user.id, org.id):
        raise DeviceLoginError("access_denied", "the approving user may no longer create API keys")
    host = clean_client_name(client_name)
    name = f"CLI login on {host}" if host else "CLI login"
    new = auth.create_api_key(conn, org_id=org.id, name=name, read_only=False, now=now,
                              created_by=f"{user.email} (tokiflow login)")  # fmt: skip
    if not store.mark_issued(conn, row.id, new.row.prefix, now):
        raise DeviceLoginError("expired_token", "this code was already used")
    actor = audit.Actor("user", user.id, user.email, ip, user_agent)
    audit.record(
        conn, org_id=org.id, actor=actor, action="apikey.create", target_kind="apikey",
        target_id=new.row.id, now=now,
        after={"name": new.row.name, "prefix": new.row.prefix, "kind": "read-write",
               "via": "device login", "device_code": row.id},
    )  # fmt: skip
    return IssuedKey(new.key, new.row, org)


class DeviceLogins:
    """What one server remembers between polls (in memory, bounded): when each code was last
    polled and at what interval, and who is waiting for a decision on which code."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._polls: OrderedDict[str, tuple[float, int]] = OrderedDict()
        self._events: dict[int, tuple[asyncio.Event, int]] = {}

    def pace(self, code_hash: str) -> int | None:
        """Count a poll; the new, longer interval when it came too soon after the last one."""
        now = self._clock.monotonic()
        last, interval = self._polls.pop(code_hash, (None, INTERVAL))
        slow = last is not None and now - last + 0.5 < interval
        if slow:
            interval += SLOW_DOWN_STEP
        self._polls[code_hash] = (now, interval)
        if len(self._polls) > MAX_CLIENTS:
            self._polls.popitem(last=False)
        return interval if slow else None

    def interval(self, code_hash: str) -> int:
        return self._polls.get(code_hash, (0.0, INTERVAL))[1]

    async def wait(self, code_id: int, seconds: float) -> None:
        """Return after `seconds` of the clock, or sooner when the code is decided."""
        if seconds <= 0:
            return
        event, waiters = self._events.get(code_id, (asyncio.Event(), 0))
        self._events[code_id] = (event, waiters + 1)
        sleeper = asyncio.ensure_future(self._clock.sleep(seconds))
        decided = asyncio.ensure_future(event.wait())
        try:
            await asyncio.wait({sleeper, decided}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            decided.cancel()
            event, waiters = self._events[code_id]
            if waiters <= 1:
                del self._events[code_id]
            else:
                self._events[code_id] = (event, waiters - 1)

    def wake(self, code_id: int) -> None:
        """A code was decided: answer its waiting polls now."""
        found = self._events.get(code_id)
        if found is not None:
            found[0].set()
