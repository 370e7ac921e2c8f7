"""The dispatcher: claims due outbox rows, sends them through their channel, records every
attempt, and retries with exponential backoff and jitter until the retry period runs out.

A claimed row is marked `sending` in the database before it is sent, so two loops never send it;
rows left `sending` by a process that died are sent again at start-up with the same idempotency
key, which services that deduplicate (PagerDuty, Opsgenie, webhooks that check the key) use to
drop the repeat. Each send runs in its own task under a per-channel limit, so a slow channel
never holds up the others.

Personal incident emails (members' notification preferences) have their own outbox and go
through the same loop: due when queued, at the end of the user's quiet hours, or, for digests,
made by `account_mail.collect_digests` when each user's digest time comes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

from tokiflow.channels.base import Alert, Channel, ChannelError, SendContext
from tokiflow.channels.email import EmailChannel, send_email
from tokiflow.channels.http import Outbound
from tokiflow.channels.registry import CHANNELS
from tokiflow.clock import Clock
from tokiflow.config import Settings
from tokiflow.engine import account_mail, alerts
from tokiflow.storage import (
    accounts,
    channels,
    monitors,
    notifications,
    outputs,
    user_notifications,
)
from tokiflow.storage.channels import ChannelRow
from tokiflow.storage.crypto import CryptoError, Sealer
from tokiflow.storage.database import Database
from tokiflow.storage.notifications import Notification
from tokiflow.storage.user_notifications import UserNotification

log = logging.getLogger(__name__)

BATCH = 200
PER_CHANNEL = 32
PERSONAL = 8  # personal emails in flight at once (they all go to the one SMTP server)
IN_FLIGHT = 128
FIRST_RETRY = 30.0
MAX_RETRY = 3600.0
# Rows written by other processes (the CLI) are noticed within this many seconds.
MAX_SLEEP = 10.0


def seal_config(sealer: Sealer, org_id: int, config: dict[str, Any]) -> bytes:
    return sealer.seal(json.dumps(config).encode(), f"channel:{org_id}")


def open_config(sealer: Sealer, row: ChannelRow) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(sealer.open(row.config, f"channel:{row.org_id}"))
    return data


def make_channel(row: ChannelRow, sealer: Sealer, ctx: SendContext) -> Channel:
    """The channel object for a stored row (config unsealed)."""
    cls = CHANNELS.get(row.kind)
    if cls is None:
        raise ChannelError(f"unknown channel kind {row.kind!r}", permanent=True)
    try:
        config = open_config(sealer, row)
    except CryptoError as exc:
        raise ChannelError(f"channel config cannot be read: {exc}", permanent=True) from None
    return cls(config, ctx)


def retry_delay(attempts: int, rng: random.Random) -> float:
    """Exponential backoff (30 s, 60 s, ... capped at an hour) with +/-20% jitter."""
    base = min(FIRST_RETRY * 2 ** max(attempts - 1, 0), MAX_RETRY)
    return base * rng.uniform(0.8, 1.2)


async def _attempt(send: Callable[[], Awaitable[str]], what: str) -> tuple[bool, str, str, bool]:
    """Run one send: (ok, status, error, whether the error is permanent)."""
    try:
        return True, await send(), "", False
    except ChannelError as exc:
        return False, exc.status, str(exc), exc.permanent
    except TimeoutError:
        return False, "", "timed out", False
    except Exception as exc:  # a bug in a channel must not kill the dispatcher
        log.exception("%s failed unexpectedly", what)
        return False, "", f"internal error: {type(exc).__name__}", False


class Dispatcher:
    """Sends the outbox; `tick(now)` does one round, `run()` loops until cancelled."""

    def __init__(
        self,
        db: Database,
        clock: Clock,
        settings: Settings,
        sealer: Sealer,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._settings = settings
        self._sealer = sealer
        self._rng = rng or random.Random()
        self.http = Outbound(
            timeout=float(settings.outbound_timeout), block_private=settings.outbound_block_private
        )
        self._ctx = SendContext(settings=settings, http=self.http, clock=clock)
        self._outputs = outputs.OutputStore(
            settings.outputs_dir, sealer, limit=settings.output_capture_limit
        )
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._per_channel: dict[int, asyncio.Semaphore] = {}
        self._in_flight = asyncio.Semaphore(IN_FLIGHT)
        self._personal = asyncio.Semaphore(PERSONAL)
        self.last_batch = 0
        self.parked = asyncio.Event()

    def poke(self) -> None:
        """Something may be due now: wake the loop (call from the event loop's thread)."""
        self._wake.set()

    async def start(self) -> int:
        """Put back rows a stopped process left claimed; returns how many."""

        def release(conn: Any) -> int:
            return notifications.release_claims(conn) + user_notifications.release_claims(conn)

        released = await self._db.write(release)
        if released:
            log.info(
                "dispatcher: %d notifications from before the restart will be sent again", released
            )
        return released

    async def tick(self, now: dt.datetime) -> int:
        """Queue due re-notifications and digests, claim due rows and start sending them."""

        def claim(conn: Any) -> tuple[list[Notification], list[UserNotification]]:
            alerts.due_renotifies(conn, now)
            account_mail.collect_digests(conn, now)
            return (
                notifications.claim_due(conn, now, BATCH),
                user_notifications.claim_due(conn, now, BATCH),
            )

        claimed, personal = await self._db.write(claim)
        for n in claimed:
            self._spawn(self._deliver(n), f"notification-{n.id}")
        for p in personal:
            self._spawn(self._deliver_personal(p), f"personal-{p.id}")
        self.last_batch = max(len(claimed), len(personal))
        return len(claimed) + len(personal)

    def _spawn(self, work: Any, name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for every send in flight (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _next_wake(self) -> dt.datetime:
        def query(conn: Any) -> dt.datetime | None:
            times = [
                notifications.next_due(conn),
                alerts.next_renotify(conn),
                user_notifications.next_due(conn),
                user_notifications.next_digest_due(conn),
            ]
            found = [t for t in times if t is not None]
            return min(found) if found else None

        soonest = await self._db.read(query)
        cap = self._clock.now() + dt.timedelta(seconds=MAX_SLEEP)
        return cap if soonest is None else min(soonest, cap)

    async def run(self) -> None:
        await self.start()
        while True:
            self._wake.clear()
            await self.tick(self._clock.now())
            if self.last_batch >= BATCH:
                continue
            until = await self._next_wake()
            if until <= self._clock.now():
                continue
            sleeper = asyncio.ensure_future(self._clock.sleep_until(until))
            waker = asyncio.ensure_future(self._wake.wait())
            self.parked.set()
            try:
                await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                self.parked.clear()
                sleeper.cancel()
                waker.cancel()

    async def close(self, grace: float = 5.0) -> None:
        """Give sends in flight a moment to finish, then stop them and close the HTTP client."""
        if self._tasks:
            _, pending = await asyncio.wait(list(self._tasks), timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self.http.close()

    async def _deliver(self, n: Notification) -> None:
        sem = self._per_channel.setdefault(n.channel_id, asyncio.Semaphore(PER_CHANNEL))

        async def send() -> str:
            row = await self._db.read(lambda conn: channels.get(conn, n.channel_id))
            if row is None:
                raise ChannelError("the channel was deleted", permanent=True)
            channel = make_channel(row, self._sealer, self._ctx)
            alert = await self._complete(self._with_links(Alert.from_json(n.message)))
            return await asyncio.wait_for(
                channel.send(alert), timeout=self._settings.outbound_timeout * 3
            )

        async with sem, self._in_flight:
            started = self._clock.monotonic()
            ok, status, error, permanent = await _attempt(send, f"channel {n.channel_id}")
            latency = (self._clock.monotonic() - started) * 1000
        await self._record(
            n, ok=ok, status=status, error=error, permanent=permanent, latency=latency
        )

    async def _complete(self, alert: Alert) -> Alert:
        """Add the tail of the job's captured output (kept encrypted on disk, so it is read here
        rather than when the notification was queued)."""
        if alert.output_tail or alert.event == "resolved" or not alert.monitor_uuid:
            return alert

        def read(conn: Any) -> str:
            m = monitors.by_uuid(conn, alert.monitor_uuid)
            found = None if m is None else outputs.latest_output(conn, self._outputs, m)
            return "" if found is None else alerts.tail_of(found[1])

        return dataclasses.replace(alert, output_tail=await self._db.read(read))

    def _with_links(self, alert: Alert) -> Alert:
        if alert.incident_id is None:
            return alert
        base = self._settings.public_url
        return dataclasses.replace(
            alert,
            view_url=f"{base}/incidents/{alert.incident_id}",
            ack_url=f"{base}/incidents/{alert.incident_id}/ack",
        )

    def _outcome(
        self, attempts: int, since: dt.datetime, ok: bool, permanent: bool
    ) -> tuple[dt.datetime, float, bool]:
        """(now, retry delay, whether to give up) after an attempt: retried with backoff until
        `alert_retry_for` after `since`, never after a permanent error."""
        now = self._clock.now()
        deadline = since + dt.timedelta(seconds=self._settings.alert_retry_for)
        delay = retry_delay(attempts, self._rng)
        dead = not ok and (permanent or now + dt.timedelta(seconds=delay) > deadline)
        return now, delay, dead

    async def _record(
        self, n: Notification, *, ok: bool, status: str, error: str, permanent: bool, latency: float
    ) -> None:
        now, delay, dead = self._outcome(n.attempts, n.created_at, ok, permanent)
        retry_at = now + dt.timedelta(seconds=delay)

        def write(conn: Any) -> None:
            notifications.record_attempt(
                conn, n.id, at=now, ok=ok, status=status, error=error, latency_ms=latency
            )
            if ok:
                notifications.mark_sent(conn, n.id, now)
                channels.set_error(conn, n.channel_id, None, None)
            elif dead:
                why = error if permanent else f"gave up after {n.attempts} attempts: {error}"
                notifications.mark_dead(conn, n.id, why)
                channels.set_error(conn, n.channel_id, why, now)
            else:
                notifications.mark_retry(conn, n.id, error, retry_at)

        await self._db.write(write)
        if ok:
            log.info(
                "notification %s sent to channel %s (%s, %.0f ms)",
                n.id,
                n.channel_id,
                status,
                latency,
            )
        elif dead:
            log.warning(
                "notification %s to channel %s failed for good: %s", n.id, n.channel_id, error
            )
        else:
            log.info(
                "notification %s to channel %s failed (%s); retry in %.0f s",
                n.id,
                n.channel_id,
                error,
                delay,
            )
        self.poke()

    # -- personal emails ---------------------------------------------------------------------

    async def _deliver_personal(self, n: UserNotification) -> None:
        def send() -> Awaitable[str]:
            return asyncio.wait_for(
                self._send_personal(n), timeout=self._settings.outbound_timeout * 3
            )

        async with self._personal, self._in_flight:
            ok, status, error, permanent = await _attempt(send, f"personal email {n.id}")
        await self._record_personal(n, ok=ok, status=status, error=error, permanent=permanent)

    async def _send_personal(self, n: UserNotification) -> str:
        """Email one personal alert or digest to the user's own address (read now, so a
        changed address is used)."""
        user = await self._db.read(lambda conn: accounts.get_user(conn, n.user_id))
        if user is None:
            raise ChannelError("the user was deleted", permanent=True)
        if n.kind == "digest":
            items = await self._db.read(lambda conn: user_notifications.items_of(conn, n.id))
            subject, text, html = account_mail.render_digest(
                items, n.message, self._settings.public_url
            )
            return await send_email(
                self._settings, to=[user.email], subject=subject, text=text, html=html,
                idempotency_key=n.idempotency_key,
            )  # fmt: skip
        alert = await self._complete(self._with_links(Alert.from_json(n.message)))
        return await EmailChannel({"to": [user.email]}, self._ctx).send(alert)

    async def _record_personal(
        self, n: UserNotification, *, ok: bool, status: str, error: str, permanent: bool
    ) -> None:
        now, delay, dead = self._outcome(n.attempts, n.due_at, ok, permanent)

        def write(conn: Any) -> None:
            if ok:
                user_notifications.mark_sent(conn, n.id, now)
            elif dead:
                why = error if permanent else f"gave up after {n.attempts} attempts: {error}"
                user_notifications.mark_dead(conn, n.id, why)
            else:
                user_notifications.mark_retry(conn, n.id, error, now + dt.timedelta(seconds=delay))

        await self._db.write(write)
        if ok:
            log.info("personal %s email %s sent to user #%s (%s)", n.kind, n.id, n.user_id, status)
        elif dead:
            log.warning("personal %s email %s to user #%s failed for good: %s", n.kind, n.id,
                        n.user_id, error)  # fmt: skip
        else:
            log.info("personal %s email %s to user #%s failed (%s); retry in %.0f s", n.kind,
                     n.id, n.user_id, error, delay)  # fmt: skip
        self.poke()
