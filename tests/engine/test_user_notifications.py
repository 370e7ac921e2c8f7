"""Personal incident emails from members' notification preferences: immediate, held through
quiet hours, or collected into a daily digest; sent through a real SMTP server (aiosmtpd), driven
by the fake clock, retried while the server is down and never lost or doubled by a restart."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.engine.alert_env import AlertEnv, Mailbox
from tests.web.api_helpers import make_org
from tokiflow.clock import FakeClock
from tokiflow.config import Settings
from tokiflow.engine import accounts as account_ops
from tokiflow.engine import alerts
from tokiflow.engine.monitors import build_spec, create_monitor
from tokiflow.licensing import UNLIMITED
from tokiflow.storage import accounts, incidents, orgs, user_notifications
from tokiflow.storage.accounts import NotificationPrefs
from tokiflow.storage.monitors import Monitor
from tokiflow.web import appkeys

UTC = dt.UTC


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox()
    yield box
    box.stop()


@pytest.fixture
async def env(
    tmp_path: Path, clock: FakeClock, settings: Settings, mailbox: Mailbox
) -> AsyncIterator[AlertEnv]:
    e = await AlertEnv.open(tmp_path / "d" / "tokiflow.db", clock,
                            settings.replace(**mailbox.settings()))  # fmt: skip
    yield e
    await e.close()


async def member(
    env: AlertEnv,
    email: str,
    *,
    tz: str = "UTC",
    role: str = "viewer",
    org_id: int | None = None,
    prefs: NotificationPrefs | None = None,
) -> int:
    """A user in the organisation (default: env's) with these preferences (None: never set)."""
    now = env.clock.now()
    org = org_id or env.org_id

    def write(conn: Any) -> int:
        user = accounts.user_by_email(conn, email) or accounts.create_user(
            conn, email=email, name="", password_hash="x", now=now
        )
        accounts.set_profile(conn, user.id, tz=tz)
        accounts.add_member(conn, user.id, org, role, now)
        if prefs is not None:
            accounts.save_prefs(conn, user.id, org, prefs)
        return user.id

    return await env.db.write(write)


async def monitor_in(env: AlertEnv, org_id: int, **kw: Any) -> Monitor:
    now = env.clock.now()
    spec = build_spec(org_id=org_id, **kw)
    return await env.db.write(lambda c: create_monitor(c, spec, now, limits=UNLIMITED))


def text_of(msg: Message) -> str:
    for part in msg.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode()
    raise AssertionError("no text part")


def html_of(msg: Message) -> str:
    for part in msg.walk():
        if part.get_content_type() == "text/html":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode()
    raise AssertionError("no HTML part")


async def outbox_of(env: AlertEnv, user_id: int) -> list[user_notifications.UserNotification]:
    return list(reversed(await env.db.read(lambda c: user_notifications.list_for_user(c, user_id))))


IMMEDIATE = NotificationPrefs("immediate")


# -- immediate --------------------------------------------------------------------------------


async def test_an_opted_in_member_gets_the_incident_by_email_with_times_in_their_zone(
    env: AlertEnv, mailbox: Mailbox
) -> None:
    mailbox.start()
    ada = await member(env, "ada@example.com", tz="Europe/Berlin", prefs=IMMEDIATE)
    await member(env, "bob@example.com")  # never opted in: channels only, as before
    m = await env.monitor(period="1h", grace="5m")
    await env.ping(m)
    await env.after(3600)
    assert await env.after(300) == 1  # 13:05 UTC: MISSED
    [opened] = mailbox.messages
    assert opened["To"] == "ada@example.com"
    assert opened["Subject"] == "[DOWN] backup: no ping arrived"
    assert opened["X-Tokiflow-Idempotency-Key"].endswith(f"-open-user{ada}")
    text = text_of(opened)
    # 13:00 UTC is 14:00 in Berlin (CET) on 2 March; no UTC time is left in the message.
    assert "expected a ping by 2026-03-02 14:00 CET" in text
    assert "last ping 2026-03-02 13:00 CET" in text
    assert "Opened: 2026-03-02 14:05:00 CET" in text
    assert "UTC" not in text.replace("UTC-", "")
    assert "because your notification preferences ask for it" in text
    assert "14:05:00 CET" in html_of(opened)
    # The same event queued again (a retried transaction, say) adds nothing.
    [inc] = await env.db.read(lambda c: incidents.list_recent(c))
    now = env.clock.now()
    assert await env.db.write(lambda c: alerts.notify(c, inc.id, "open", now)) == 0
    await env.ping(m)
    assert await env.deliver() == 1
    assert [msg["Subject"] for msg in mailbox.messages] == [
        "[DOWN] backup: no ping arrived", "[RESOLVED] backup is up again",
    ]  # fmt: skip
    assert "incident opened 2026-03-02 14:05:00 CET is resolved" in text_of(mailbox.messages[1])
    assert [(n.event, n.state, n.attempts) for n in await outbox_of(env, ada)] == [
        ("open", "sent", 1), ("resolved", "sent", 1),
    ]  # fmt: skip
    assert all(msg["To"] == "ada@example.com" for msg in mailbox.messages)


async def test_organisation_tag_and_role_decide_who_hears_of_which_incident(
    env: AlertEnv, mailbox: Mailbox
) -> None:
    mailbox.start()
    now = env.clock.now()
    other = await env.db.write(lambda c: orgs.create(c, "other", "Other", now))
    ada = await member(env, "ada@example.com", prefs=NotificationPrefs("immediate", ("prod",)))
    await member(env, "ada@example.com", org_id=other.id, role="editor")  # not opted in there
    await member(env, "carol@example.com", role="billing", prefs=IMMEDIATE)  # cannot see monitors
    await member(env, "dave@example.com", prefs=NotificationPrefs("off"))
    erin = await member(env, "erin@example.com", org_id=other.id, prefs=IMMEDIATE)
    db = await env.monitor(name="db", period="1d", tags="prod db")
    scratch = await env.monitor(name="scratch", period="1d", tags="dev")
    elsewhere = await monitor_in(env, other.id, name="elsewhere", period="1d", tags="prod")
    for m in (db, scratch, elsewhere):
        await env.ping(m, "fail")
    assert await env.deliver() == 2
    sent = sorted((msg["To"], msg["Subject"]) for msg in mailbox.messages)
    assert sent == [
        ("ada@example.com", "[DOWN] db: the job failed"),
        ("erin@example.com", "[DOWN] elsewhere: the job failed"),
    ]
    assert [n.org_id for n in await outbox_of(env, ada)] == [env.org_id]
    assert [n.org_id for n in await outbox_of(env, erin)] == [other.id]


# -- quiet hours ------------------------------------------------------------------------------


async def test_quiet_hours_hold_an_alert_until_they_end_then_send_it_once(
    env: AlertEnv, mailbox: Mailbox, clock: FakeClock
) -> None:
    mailbox.start()
    await clock.set(dt.datetime(2026, 3, 2, 22, 30, tzinfo=UTC))
    night = NotificationPrefs("immediate", (), "22:00", "07:00")
    london = await member(env, "ldn@example.com", tz="Europe/London", prefs=night)
    await member(env, "tyo@example.com", tz="Asia/Tokyo", prefs=night)  # 07:30 there: awake
    m = await env.monitor(period="7d", grace="1h")
    await env.ping(m, "fail")
    assert await env.deliver() == 1
    [tokyo] = mailbox.messages
    assert tokyo["To"] == "tyo@example.com"
    assert "Opened: 2026-03-03 07:30:00 JST" in text_of(tokyo)
    [held] = await outbox_of(env, london)
    assert (held.state, held.attempts) == ("pending", 0)
    assert held.next_attempt_at == dt.datetime(2026, 3, 3, 7, 0, tzinfo=UTC)
    # 06:59 in London (GMT): still quiet.
    assert await env.after(8 * 3600 + 29 * 60) == 0
    assert len(mailbox.messages) == 1
    assert await env.after(60) == 1
    morning = mailbox.messages[1]
    assert morning["To"] == "ldn@example.com"
    assert morning["Subject"] == "[DOWN] backup: the job failed"
    assert "Opened: 2026-03-02 22:30:00 GMT" in text_of(morning)
    for _ in range(3):
        assert await env.after(3600) == 0
    assert len(mailbox.messages) == 2
    [done] = await outbox_of(env, london)
    assert (done.state, done.attempts) == ("sent", 1)


# -- digest -----------------------------------------------------------------------------------


async def test_a_digest_collects_the_days_incidents_into_one_email_at_eight_local_time(
    env: AlertEnv, mailbox: Mailbox
) -> None:
    mailbox.start()
    nyc = await member(env, "nyc@example.com", tz="America/New_York",
                       prefs=NotificationPrefs("digest"))  # fmt: skip
    first = await env.monitor(name="first", period="7d")
    second = await env.monitor(name="second", period="7d")
    await env.ping(first, "fail")  # 12:00 UTC = 07:00 EST
    await env.after(600)
    await env.ping(first)  # resolved 07:10 EST
    await env.after(600)
    await env.ping(second, "fail")  # 07:20 EST
    assert await env.after(39 * 60 + 59) == 0  # 07:59:59 EST: not yet
    assert mailbox.messages == []
    assert await env.after(1) == 1  # 08:00 EST = 13:00 UTC
    [digest] = mailbox.messages
    assert digest["To"] == "nyc@example.com"
    assert digest["Subject"] == "Tokiflow digest: 2 incidents (until 2026-03-02 08:00:00 EST)"
    text = text_of(digest)
    assert "2 incidents since your last digest, 1 still open" in text
    assert "[default] [DOWN] first: the job failed" in text
    assert "Opened: 2026-03-02 07:00:00 EST" in text
    assert "Resolved: 2026-03-02 07:10:00 EST" in text
    assert "[default] [DOWN] second: the job failed" in text
    assert "Opened: 2026-03-02 07:20:00 EST" in text and "Not resolved yet" in text
    assert text.index("first") < text.index("second")
    assert "second: the job failed" in html_of(digest)
    # The next incident waits for the next day's digest; nothing is sent twice meanwhile.
    await env.after(1800)
    await env.ping(first, "fail")  # 08:30 EST
    assert await env.after(23 * 3600) == 0
    assert len(mailbox.messages) == 1
    assert await env.after(1800) == 1  # 08:00 EST on 3 March
    assert mailbox.messages[1]["Subject"] == (
        "Tokiflow digest: 1 incident (until 2026-03-03 08:00:00 EST)"
    )
    assert "Opened: 2026-03-02 08:30:00 EST" in text_of(mailbox.messages[1])
    sent = await outbox_of(env, nyc)
    assert [(n.kind, n.state, n.attempts) for n in sent] == [("digest", "sent", 1)] * 2
    assert await env.db.read(lambda c: user_notifications.pending_items(c, nyc)) == []


@pytest.mark.parametrize(
    ("prefs", "tz", "after", "expected"),
    [
        (NotificationPrefs("digest"), "UTC", "2026-03-02T07:59:00Z", "2026-03-02T08:00:00Z"),
        (NotificationPrefs("digest"), "UTC", "2026-03-02T08:00:00Z", "2026-03-03T08:00:00Z"),
        # New York changes to summer time on 8 March: 08:00 EDT is 12:00 UTC.
        (NotificationPrefs("digest"), "America/New_York", "2026-03-07T14:00:00Z",
         "2026-03-08T12:00:00Z"),
        (NotificationPrefs("digest"), "Europe/London", "2026-07-01T09:00:00Z",
         "2026-07-02T07:00:00Z"),
        # Quiet hours covering 08:00 move the digest to their end.
        (NotificationPrefs("digest", (), "22:00", "09:30"), "Europe/London",
         "2026-03-02T12:00:00Z", "2026-03-03T09:30:00Z"),
        (NotificationPrefs("digest", (), "12:00", "13:00"), "UTC", "2026-03-02T09:00:00Z",
         "2026-03-03T08:00:00Z"),
    ],
)  # fmt: skip
def test_the_digest_goes_out_at_eight_on_the_users_wall_clock_after_quiet_hours(
    prefs: NotificationPrefs, tz: str, after: str, expected: str
) -> None:
    when = account_ops.next_digest_at(prefs, dt.datetime.fromisoformat(after), tz)
    assert when == dt.datetime.fromisoformat(expected)


# -- faults -----------------------------------------------------------------------------------


async def test_an_email_waits_while_the_smtp_server_is_down_and_goes_once_it_is_back(
    env: AlertEnv, mailbox: Mailbox
) -> None:
    ada = await member(env, "ada@example.com", prefs=IMMEDIATE)
    m = await env.monitor(period="7d")
    await env.ping(m, "fail")
    assert await env.deliver() == 1  # tried, refused: nothing listens yet
    [n] = await outbox_of(env, ada)
    assert (n.state, n.attempts) == ("pending", 1)
    assert n.last_error is not None and "SMTP server 127.0.0.1" in n.last_error
    assert await env.after(10) == 0  # the retry is 30 s (+/- 20%) away
    assert await env.after(40) == 1  # still down: the second try fails too
    mailbox.start()
    assert await env.after(120) == 1
    [msg] = mailbox.messages
    assert msg["Subject"] == "[DOWN] backup: the job failed"
    assert await env.after(3600) == 0
    [n] = await outbox_of(env, ada)
    assert (n.state, n.attempts, n.last_error) == ("sent", 3, None)
    assert len(mailbox.messages) == 1


async def test_an_email_claimed_by_a_process_that_died_is_sent_once_after_the_restart(
    tmp_path: Path, clock: FakeClock, settings: Settings, mailbox: Mailbox
) -> None:
    path = tmp_path / "d" / "tokiflow.db"
    smtp = settings.replace(**mailbox.settings())
    first = await AlertEnv.open(path, clock, smtp)
    ada = await member(first, "ada@example.com", prefs=IMMEDIATE)
    m = await first.monitor(period="7d")
    await first.ping(m, "fail")
    now = clock.now()
    # The first process claims the email and dies before sending it.
    [claimed] = await first.db.write(lambda c: user_notifications.claim_due(c, now, 10))
    assert claimed.state == "sending"
    await first.close()
    mailbox.start()
    second = await AlertEnv.open(path, clock, smtp)  # start() puts the claim back
    try:
        assert await second.deliver() == 1
        assert await second.after(3600) == 0
        [msg] = mailbox.messages
        assert msg["X-Tokiflow-Idempotency-Key"] == claimed.idempotency_key
        [n] = await outbox_of(second, ada)
        assert (n.state, n.attempts) == ("sent", 2)
    finally:
        await second.close()


async def test_a_restarted_server_delivers_what_the_stopped_one_could_not_exactly_once(
    aiohttp_client: Callable[[web.Application], Awaitable[TestClient]],
    make_app: Callable[..., web.Application],
    clock: FakeClock,
    mailbox: Mailbox,
) -> None:
    client = await aiohttp_client(make_app(**mailbox.settings()))  # SMTP not started: down
    org = await make_org(client, clock, "acme")
    now = clock.now()

    def add_member(conn: Any) -> int:
        user = accounts.create_user(conn, email="ada@example.com", name="Ada",
                                    password_hash="x", now=now)  # fmt: skip
        accounts.add_member(conn, user.id, org.org_id, "editor", now)
        accounts.save_prefs(conn, user.id, org.org_id, IMMEDIATE)
        return user.id

    ada = await client.app[appkeys.DB].write(add_member)
    resp = await client.post("/api/v1/monitors", json={"name": "nightly"}, headers=org.rw())
    assert resp.status == 201, await resp.text()
    uuid = (await resp.json())["uuid"]
    assert (await client.get(f"/ping/{uuid}/fail")).status == 200

    async def attempts(c: TestClient) -> list[tuple[str, int]]:
        rows = await c.app[appkeys.DB].read(
            lambda conn: user_notifications.list_for_user(conn, ada)
        )
        return [(n.state, n.attempts) for n in rows]

    for _ in range(50):  # the dispatcher is woken by the ping and tries at once
        if await attempts(client) == [("pending", 1)]:
            break
        await clock.settle()
    assert await attempts(client) == [("pending", 1)]
    await client.close()

    mailbox.start()
    restarted = await aiohttp_client(make_app(**mailbox.settings()))
    await clock.advance(60)
    [msg] = await mailbox.wait_for(1)
    assert msg["To"] == "ada@example.com" and msg["Subject"] == "[DOWN] nightly: the job failed"
    for _ in range(3):
        await clock.advance(3600)
    assert len(mailbox.messages) == 1
    assert await attempts(restarted) == [("sent", 2)]
