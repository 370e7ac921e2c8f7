"""Account emails (invitation and password-reset links) over SMTP with the smtp_* settings.

The links carry secrets, so they are never logged. Reset emails are sent in the background
(`Mailer.send_soon`) so that the reply to "reset my password" takes as long whether or not the
address has an account.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import aiosmtplib

from tokiflow.config import Settings

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
    port = settings.smtp_port or {"tls": 465, "starttls": 587, "none": 25}[settings.smtp_tls]
    try:
        errors, _ = await aiosmtplib.send(
            msg,
            hostname=settings.smtp_host,
            port=port,
            username=settings.smtp_user or None,
            password=settings.smtp_password or None,
            use_tls=settings.smtp_tls == "tls",
            start_tls=settings.smtp_tls == "starttls",
            timeout=settings.outbound_timeout,
        )
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
