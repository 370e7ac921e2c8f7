"""Telegram: a bot token and a chat id; `sendMessage` with HTML formatting.

Every piece of text is HTML-escaped (&, <, >; quotes too inside href) so a job's output cannot
break the markup. Telegram answers 400 (chat not found, bad markup), 401/403 (bad token, bot
blocked or removed) and 404 (malformed token) for requests that will never succeed: those are
permanent; 429 (flood control) and 5xx are retried. The token is part of the request URL, so it is
scrubbed from error messages before they are stored.
"""

from __future__ import annotations

import html
import re
from typing import Any

from tokiflow.channels.base import (
    Alert,
    Channel,
    ChannelConfigError,
    ChannelError,
    check_unknown,
    require_str,
    require_url,
)

API_URL = "https://api.telegram.org"
MAX_TEXT = 4096
_TOKEN = re.compile(r"^\d+:[A-Za-z0-9_-]{20,}$")
_CHAT = re.compile(r"^(-?\d+|@[A-Za-z][A-Za-z0-9_]{3,})$")
_ICON = {"critical": "🔴", "warning": "🟠", "info": "✅"}


def _e(text: str) -> str:
    return html.escape(text, quote=False)


def message(alert: Alert) -> str:
    """The HTML text of an alert, within Telegram's 4,096 characters (the output tail gives way).

    Each part is cut before it is escaped, so the markup itself is never cut."""
    icon = "ℹ️" if alert.event == "test" else _ICON[alert.severity]
    lines = [f"{icon} <b>{_e(alert.title[:256])}</b>", "", _e(alert.summary[:1500])]
    facts = alert.facts()
    shown = [f"<b>{k}:</b> {_e(v[:300])}" for k, v in facts if v]
    if shown:
        lines += ["", *shown]
    links = []
    if alert.view_url:
        links.append(f'<a href="{html.escape(alert.view_url)}">View incident</a>')
    if alert.ack_url and alert.event in ("open", "renotify"):
        links.append(f'<a href="{html.escape(alert.ack_url)}">Acknowledge</a>')
    head = "\n".join(lines)
    foot = "\n\n" + " · ".join(links) if links else ""
    block = ""
    budget = MAX_TEXT - len(head) - len(foot) - 40
    tail = alert.output_tail[-budget:] if budget > 0 else ""
    while len(_e(tail)) > budget:  # escaping lengthens (up to 5x): drop the oldest characters
        tail = tail[max(1, (len(_e(tail)) - budget) // 5) :]
    if tail:
        block = f"\n\n<b>Last output:</b>\n<pre>{_e(tail)}</pre>"
    return head + block + foot


class TelegramChannel(Channel):
    kind = "telegram"
    label = "Telegram"
    secret_fields = ("bot_token",)

    @classmethod
    def validate(cls, config: dict[str, Any]) -> dict[str, Any]:
        check_unknown(config, {"bot_token", "chat_id", "message_thread_id", "api_url"})
        token = require_str(config, "bot_token")
        if not _TOKEN.match(token):
            raise ChannelConfigError(
                "bot_token", "must look like 123456789:AAE... (from @BotFather)"
            )
        raw_chat = config.get("chat_id")
        chat = str(raw_chat).strip() if isinstance(raw_chat, (int, str)) else ""
        if not chat:
            raise ChannelConfigError("chat_id", "is required")
        if not _CHAT.match(chat):
            raise ChannelConfigError("chat_id", "must be a numeric chat id or @channelusername")
        thread = config.get("message_thread_id")
        if thread in (None, ""):
            thread = None
        elif isinstance(thread, bool) or not str(thread).isdigit():
            raise ChannelConfigError("message_thread_id", "must be a positive integer")
        api_url = require_url(config, "api_url", optional=True) or API_URL
        return {
            "bot_token": token,
            "chat_id": int(chat) if chat.lstrip("-").isdigit() else chat,
            "message_thread_id": int(thread) if thread is not None else None,
            "api_url": api_url.rstrip("/"),
        }

    async def send(self, alert: Alert) -> str:
        token = self.config["bot_token"]
        payload: dict[str, Any] = {
            "chat_id": self.config["chat_id"],
            "text": message(alert),
            "parse_mode": "HTML",
            "link_preview_options": {"is_disabled": True},
        }
        if self.config.get("message_thread_id"):
            payload["message_thread_id"] = self.config["message_thread_id"]
        url = f"{self.config.get('api_url') or API_URL}/bot{token}/sendMessage"
        try:
            status, _ = await self.ctx.http.request("POST", url, json_body=payload)
        except ChannelError as exc:
            raise ChannelError(
                str(exc).replace(token, "***"), permanent=exc.permanent, status=exc.status
            ) from None
        return f"HTTP {status}"
