"""Email over SMTP (aiosmtplib): STARTTLS, TLS or plain, optional auth, HTML and text bodies."""

from __future__ import annotations

import re
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

import aiosmtplib
import jinja2

from tokiflow.channels.base import (
    Alert,
    Channel,
    ChannelConfigError,
    ChannelError,
    check_unknown,
)
from tokiflow.config import Settings

ADDRESS_RE = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$|^[^@\s,;<>]+@localhost$")
_COLOURS = {"critical": "#c81e1e", "warning": "#b25e09", "info": "#0e7c3a"}


def _templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("tokiflow", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
    )


def render(alert: Alert) -> tuple[str, str]:
    """(plain text, HTML) bodies of an alert email."""
    env = _templates()
    facts = [("Monitor", alert.monitor_name), *alert.facts()]
    text = env.get_template("email/alert.txt").render(alert=alert)
    html = env.get_template("email/alert.html").render(
        alert=alert, facts=facts, colour=_COLOURS[alert.severity]
    )
    return text, html


class EmailChannel(Channel):
    kind = "email"
    label = "Email"

    @classmethod
    def validate(cls, config: dict[str, Any]) -> dict[str, Any]:
        check_unknown(config, {"to"})
        raw = config.get("to")
        items = raw if isinstance(raw, list) else str(raw or "").replace(";", ",").split(",")
        to = [str(a).strip() for a in items if str(a).strip()]
        if not to:
            raise ChannelConfigError("to", "give at least one email address")
        for address in to:
            if not ADDRESS_RE.match(address):
                raise ChannelConfigError("to", f"{address!r} is not an email address")
        return {"to": to}

    async def send(self, alert: Alert) -> str:
        text, html = render(alert)
        return await send_email(
            self.ctx.settings, to=self.config["to"], subject=alert.title, text=text, html=html,
            idempotency_key=alert.idempotency_key,
        )  # fmt: skip


def smtp_port(s: Settings) -> int:
    """The SMTP port of the smtp_* settings (the usual one for smtp_tls when not given)."""
    return s.smtp_port or {"tls": 465, "starttls": 587, "none": 25}[s.smtp_tls]


async def smtp_send(s: Settings, msg: EmailMessage) -> tuple[dict[str, Any], str]:
    """Hand `msg` to the SMTP server of the smtp_* settings: (refused recipients, the server's
    reply). aiosmtplib's exceptions and OSError pass through, for the caller to word."""
    return await aiosmtplib.send(
        msg,
        hostname=s.smtp_host,
        port=smtp_port(s),
        username=s.smtp_user or None,
        password=s.smtp_password or None,
        use_tls=s.smtp_tls == "tls",
        start_tls=s.smtp_tls == "starttls",
        timeout=s.outbound_timeout,
    )


async def send_email(
    s: Settings, *, to: list[str], subject: str, text: str, html: str, idempotency_key: str
) -> str:
    """Hand one text + HTML email to the SMTP server of the smtp_* settings; returns the SMTP
    status, raises ChannelError (permanent for a refusal that a retry would not change)."""
    if not s.smtp_host:
        raise ChannelError("no SMTP server is configured (setting smtp_host)", permanent=True)
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = s.smtp_from
    msg["To"] = ", ".join(to)
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain="tokiflow")
    # Lets mail tools thread every message of one incident, and spot repeats.
    msg["X-Tokiflow-Idempotency-Key"] = idempotency_key
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    port = smtp_port(s)
    try:
        errors, reply = await smtp_send(s, msg)
    except aiosmtplib.SMTPAuthenticationError as exc:
        raise ChannelError(
            f"SMTP login refused: {exc.code} {exc.message}", permanent=True
        ) from None
    except aiosmtplib.SMTPResponseException as exc:
        permanent = 500 <= exc.code < 600
        raise ChannelError(f"SMTP {exc.code} {exc.message}", permanent=permanent,
                           status=f"SMTP {exc.code}") from None  # fmt: skip
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise ChannelError(f"SMTP server {s.smtp_host}:{port}: {exc}") from None
    if errors:
        refused = ", ".join(f"{addr} ({code})" for addr, (code, _) in errors.items())
        raise ChannelError(f"recipients refused: {refused}", permanent=True)
    return f"SMTP {reply.split()[0] if reply else 'ok'}"
