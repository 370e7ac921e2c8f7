"""Discord: a channel webhook URL; one embed coloured by severity, with the facts as fields.

Mentions are switched off (`allowed_mentions.parse = []`) so that a job's output containing
"@everyone" cannot ping a whole server. Limits are Discord's documented embed limits (title 256,
description 4,096, 25 fields of 256/1,024, 6,000 characters in all).
"""

from __future__ import annotations

import re
from typing import Any

from tokiflow.channels.base import (
    Alert,
    Channel,
    ChannelConfigError,
    check_unknown,
    require_str,
    require_url,
)

COLOURS = {"critical": 0xC81E1E, "warning": 0xB25E09, "info": 0x0E7C3A, "test": 0x2563EB}
_MARKDOWN = re.compile(r"([\\*_~`|\[\]])")
_LINE_START = re.compile(r"^(\s*)([#>-])", re.M)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def escape(text: str) -> str:
    """Backslash-escape Discord markdown so names and reasons show as typed."""
    return _LINE_START.sub(r"\1\\\2", _MARKDOWN.sub(r"\\\1", text))


def embed(alert: Alert) -> dict[str, Any]:
    """The one embed of an alert message."""
    description = escape(alert.summary)
    if alert.output_tail:
        tail = alert.output_tail.replace("```", "'''")[-1500:]
        description += f"\n\n**Last output**\n```\n{tail}\n```"
    if alert.ack_url and alert.event in ("open", "renotify"):
        description += f"\n\n[Acknowledge]({alert.ack_url})"
    facts = alert.facts()
    out: dict[str, Any] = {
        "title": _cut(alert.title, 256),
        "description": _cut(description, 4096),
        "color": COLOURS["test" if alert.event == "test" else alert.severity],
        "fields": [
            {"name": name, "value": _cut(escape(value), 1024), "inline": name != "Reason"}
            for name, value in facts
            if value
        ],
        "footer": {"text": "Tokiflow"},
    }
    if alert.view_url:
        out["url"] = alert.view_url
    when = alert.at_iso()
    if when:
        out["timestamp"] = when
    return out


class DiscordChannel(Channel):
    kind = "discord"
    label = "Discord"
    secret_fields = ("url",)

    @classmethod
    def validate(cls, config: dict[str, Any]) -> dict[str, Any]:
        check_unknown(config, {"url", "username"})
        url = require_url(config, "url")
        username = require_str(config, "username", optional=True)
        if len(username) > 80:
            raise ChannelConfigError("username", "must be at most 80 characters")
        return {"url": url, "username": username}

    async def send(self, alert: Alert) -> str:
        payload: dict[str, Any] = {"embeds": [embed(alert)], "allowed_mentions": {"parse": []}}
        if self.config.get("username"):
            payload["username"] = self.config["username"]
        status, _ = await self.ctx.http.request("POST", self.config["url"], json_body=payload)
        return f"HTTP {status}"
