"""Account emails over SMTP with the smtp_* settings: invitation and password-reset links, and
the digest of incidents a user asked for in their notification preferences.

The links carry secrets, so they are never logged. Reset emails are sent in the background
(`Mailer.send_soon`) so that the reply to "reset my password" takes as long whether or not the
address has an account. Digests go through the dispatcher's outbox like every alert (retried,
never sent twice); `collect_digests` makes them when each user's digest time comes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import sqlite3
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib
import jinja2

from tokiflow.channels.base import Alert
from tokiflow.channels.email import smtp_port, smtp_send
from tokiflow.config import Settings
from tokiflow.engine.alerts import local_time
from tokiflow.storage import accounts, user_notifications
from tokiflow.storage.user_notifications import DigestItem

log = logging.getLogger(__name__)


class MailError(Exception):
    """The email could not be handed to the SMTP server; str() is safe to show an admin."""


def configured(settings: Settings) -> bool:
    return bool(settings.smtp_host)


def _message(
    settings: Settings, to: str, subject: str, text: str, now: dt.datetime
) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = settings.smtp_from
    msg["To"] = to
    msg["Date"] = formatdate(now.timestamp(), usegmt=True)
    msg["Message-ID"] = make_msgid(domain="tokiflow")
    msg.set_content(text)
    return msg


def invitation_email(
    settings: Settings,
    *,
    to: str,
    org_name: str,
    inviter: str,
    role: str,
    link: str,
    expires_at: dt.datetime,
    now: dt.datetime,
) -> EmailMessage:
    """The invitation to join an organisation, with its one-use link."""
    text = (
        f"{inviter} invited you to join {org_name} on Tokiflow as {role}.\n\n"
        f"Accept the invitation here (the link works once, until "
        f"{expires_at:%Y-%m-%d %H:%M} UTC):\n\n{link}\n\n"
        "If you did not expect this email, you can ignore it.\n"
    )
    return _message(settings, to, f"You are invited to {org_name} on Tokiflow", text, now)


def reset_email(
    settings: Settings, *, to: str, link: str, expires_at: dt.datetime, now: dt.datetime
) -> EmailMessage:
    """The password-reset link (one use, one hour)."""
    text = (
        "Someone asked to reset the password of your Tokiflow account.\n\n"
        f"Choose a new password here (the link works once, until {expires_at:%H:%M} UTC):\n\n"
        f"{link}\n\nIf it was not you, ignore this email: your password stays as it is.\n"
    )
    return _message(settings, to, "Reset your Tokiflow password", text, now)


async def send(settings: Settings, msg: EmailMessage) -> None:
    """Hand one message to the SMTP server; MailError when it cannot be."""
    if not configured(settings):
        raise MailError("no SMTP server is configured (setting smtp_host)")
    port = smtp_port(settings)
    try:
        errors, _ = await smtp_send(settings, msg)
    except aiosmtplib.SMTPResponseException as exc:
        raise MailError(f"SMTP server said {exc.code} {exc.message}") from None
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise MailError(f"SMTP server {settings.smtp_host}:{port}: {exc}") from None
    if errors:
        raise MailError(f"recipient refused: {', '.join(errors)}")


class Mailer:
    """Sends account emails in the background; `close()` lets the ones in flight finish."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._tasks: set[asyncio.Task[None]] = set()

    def send_soon(self, msg: EmailMessage, what: str) -> None:
        task = asyncio.create_task(self._send(msg, what), name=f"mail-{what}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, msg: EmailMessage, what: str) -> None:
        try:
            await send(self._settings, msg)
        except MailError as exc:
            log.warning("could not send the %s email: %s", what, exc)
        else:
            log.info("sent the %s email", what)

    async def drain(self) -> None:
        """Wait for every email in flight (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self, grace: float = 5.0) -> None:
        if self._tasks:
            _, pending = await asyncio.wait(list(self._tasks), timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)


# -- personal incident digests ---------------------------------------------------------------------

DIGEST_LIMIT = 200  # incidents listed in one digest; the rest are counted


def collect_digests(conn: sqlite3.Connection, now: dt.datetime) -> int:
    """Turn each user's due digest items into one digest email in the outbox (same
    transaction, so an item is in exactly one digest); returns how many digests were made."""
    made = 0
    for user_id in user_notifications.users_with_due_digest(conn, now):
        items = user_notifications.due_items(conn, user_id, now)
        user = accounts.get_user(conn, user_id)
        if not items or user is None:
            continue
        message = json.dumps({"tz": user.tz, "at": local_time(now, user.tz)})
        digest_id = user_notifications.enqueue(
            conn, user_id=user_id, org_id=None, incident_id=None, kind="digest", event="digest",
            idempotency_key=f"tokiflow-digest-{user_id}-{items[0].id}", message=message, now=now,
            due=now,
        )  # fmt: skip
        if digest_id is None:  # cannot happen: an item is collected once, and keys name it
            log.error("digest of user #%s was already made", user_id)
            continue
        user_notifications.attach_items(conn, [i.id for i in items], digest_id)
        made += 1
    return made


@dataclass(frozen=True)
class DigestEntry:
    """One incident in a digest: what it was and when it opened and (maybe) resolved."""

    org_slug: str
    title: str
    monitor_name: str
    kind: str
    reason: str
    opened_at: str
    resolved_at: str
    view_url: str
    severity: str


def digest_entries(items: list[DigestItem], base_url: str) -> list[DigestEntry]:
    """The digest's incidents, one entry per incident (its opening and resolution merged), in
    the order they happened."""
    groups: dict[object, dict[str, Alert]] = {}
    for item in items:
        key: object = item.incident_id if item.incident_id is not None else f"item{item.id}"
        groups.setdefault(key, {})[item.event] = Alert.from_json(item.message)
    entries = []
    for events in groups.values():
        opened, resolved = events.get("open"), events.get("resolved")
        first = opened or resolved
        assert first is not None
        entries.append(
            DigestEntry(
                org_slug=first.org_slug,
                title=first.title,
                monitor_name=first.monitor_name,
                kind=first.incident_kind,
                reason=first.reason,
                opened_at=first.opened_at,
                resolved_at=resolved.at if resolved else "",
                view_url=f"{base_url}/incidents/{first.incident_id}" if first.incident_id else "",
                severity=first.severity if opened else "info",
            )
        )
    return entries


def render_digest(items: list[DigestItem], message: str, base_url: str) -> tuple[str, str, str]:
    """(subject, plain text, HTML) of a digest email; times as stored: on the user's clock."""
    info = json.loads(message)
    entries = digest_entries(items, base_url)
    shown, more = entries[:DIGEST_LIMIT], max(len(entries) - DIGEST_LIMIT, 0)
    count = len(entries)
    subject = f"Tokiflow digest: {count} incident{'' if count == 1 else 's'} (until {info['at']})"
    open_now = sum(1 for e in entries if not e.resolved_at)
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("tokiflow", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
    )
    context = {
        "entries": shown, "more": more, "count": count, "open_now": open_now, "at": info["at"],
        "tz": info["tz"], "prefs_url": f"{base_url}/api/v1/account/notifications", "subject": subject,
    }  # fmt: skip
    text = env.get_template("email/digest.txt").render(**context)
    html = env.get_template("email/digest.html").render(**context)
    return subject, text, html
