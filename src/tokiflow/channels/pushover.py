"""Pushover: a user (or group) key and an application token; `POST /1/messages.json` (form).

The message uses Pushover's HTML subset (`html=1`: <b>, <a href>, <font color>); the incident
page is the supplementary URL. Limits are Pushover's: message 1,024 characters, title 250, url
512, url_title 100. A request Pushover refuses (bad token or user key, 4xx with `status: 0`) is
permanent; 429 (the application's monthly quota is used up) and 5xx are retried.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any
from urllib.parse import urlencode

from tokiflow.channels.base import (
    Alert,
    Channel,
    ChannelConfigError,
    ChannelError,
    check_unknown,
    require_str,
    require_url,
)

API_URL = "https://api.pushover.net"
# -1 quiet, 0 normal, 1 high (bypasses the user's quiet hours).
PRIORITY = {"critical": 1, "warning": 0, "info": 0, "ack": 0, "test": 0}
COLOURS = {"critical": "#c81e1e", "warning": "#b25e09", "info": "#0e7c3a", "test": "#2563eb"}
MAX_MESSAGE = 1024
_KEY = re.compile(r"^[A-Za-z0-9]{30}$")


def _e(text: str) -> str:
    return html.escape(text, quote=False)


def message_html(alert: Alert) -> str:
    """The HTML message body; the output tail is shortened to keep it within 1,024 characters."""
    level = "test" if alert.event == "test" else alert.severity
    parts = [f'<font color="{COLOURS[level]}">{_e(alert.summary[:300])}</font>']
    facts = [(k, v) for k, v in alert.facts() if k != "Opened"]  # keep messages short
    parts += [f"<b>{k}:</b> {_e(v[:120])}" for k, v in facts if v]
    if alert.ack_url and alert.event in ("open", "renotify"):
        parts.append(f'<a href="{html.escape(alert.ack_url)}">Acknowledge</a>')
    text = "\n".join(parts)
    tail = alert.output_tail
    while tail:
        block = f"\n\n<b>Last output:</b>\n{_e(tail)}"
        if len(text) + len(block) <= MAX_MESSAGE:
            return text + block
        # Escaping lengthens the text up to 5x: drop the oldest characters bit by bit.
        tail = tail[max(1, (len(text) + len(block) - MAX_MESSAGE) // 5) :]
    return text[:MAX_MESSAGE]


class PushoverChannel(Channel):
    kind = "pushover"
    label = "Pushover"
    secret_fields = ("app_token", "user_key")

    @classmethod
    def validate(cls, config: dict[str, Any]) -> dict[str, Any]:
        check_unknown(config, {"user_key", "app_token", "device", "api_url"})
        clean: dict[str, Any] = {}
        for name in ("user_key", "app_token"):
            clean[name] = require_str(config, name)
            if not _KEY.match(clean[name]):
                raise ChannelConfigError(name, "must be the 30-character key Pushover shows")
        clean["device"] = require_str(config, "device", optional=True)
        api_url = require_url(config, "api_url", optional=True) or API_URL
        clean["api_url"] = api_url.rstrip("/")
        return clean

    def form(self, alert: Alert) -> dict[str, str]:
        level = {"test": "test", "acknowledged": "ack"}.get(alert.event, alert.severity)
        fields = {
            "token": self.config["app_token"],
            "user": self.config["user_key"],
            "title": alert.title[:250],
            "message": message_html(alert),
            "html": "1",
            "priority": str(PRIORITY[level]),
        }
        if alert.view_url and len(alert.view_url) <= 512:
            fields.update(url=alert.view_url, url_title="View incident")
        if self.config.get("device"):
            fields["device"] = self.config["device"]
        return fields

    async def send(self, alert: Alert) -> str:
        url = f"{self.config.get('api_url') or API_URL}/1/messages.json"
        status, text = await self.ctx.http.request(
            "POST",
            url,
            data=urlencode(self.form(alert)),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        try:
            answer = json.loads(text)
        except ValueError:
            answer = {}
        if isinstance(answer, dict) and answer.get("status") not in (1, None):
            errors = "; ".join(str(e) for e in answer.get("errors") or []) or text[:200]
            raise ChannelError(f"Pushover refused the message: {errors}", permanent=True)
        return f"HTTP {status}"
