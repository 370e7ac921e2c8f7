"""Slack: an incoming webhook URL; one Block Kit message (header, summary, facts, output, links).

The top-level `text` is the fallback Slack shows in notifications and on clients that cannot
draw blocks. Block limits (header 150 characters, section text 3,000, 10 fields, 10 context
elements) are Slack's documented ones; longer values are cut rather than rejected.
"""

from __future__ import annotations

from typing import Any

from tokiflow.channels.base import Alert, Channel, check_unknown, require_url

_EMOJI = {
    "critical": ":red_circle:",
    "warning": ":large_orange_circle:",
    "info": ":white_check_mark:",
}


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def escape(text: str) -> str:
    """Slack mrkdwn treats &, < and > as control characters; everything else is literal."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def blocks(alert: Alert) -> list[dict[str, Any]]:
    """The Block Kit blocks of one alert."""
    emoji = _EMOJI["info"] if alert.event == "test" else _EMOJI[alert.severity]
    out: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": _cut(f"{emoji} {alert.title}", 150),
                "emoji": True,
            },
        },
        {"type": "section", "text": {"type": "mrkdwn", "text": _cut(escape(alert.summary), 3000)}},
    ]
    fields = [
        {"type": "mrkdwn", "text": _cut(f"*{k}*\n{escape(v)}", 2000)} for k, v in alert.facts()
    ]
    if fields:
        out.append({"type": "section", "fields": fields[:10]})
    if alert.output_tail:
        tail = escape(alert.output_tail.replace("```", "'''"))[-2900:]
        out.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*Last output*\n```{tail}```"}}
        )
    links = [f"<{alert.view_url}|View incident>"] if alert.view_url else []
    if alert.ack_url and alert.event in ("open", "renotify"):
        links.append(f"<{alert.ack_url}|Acknowledge>")
    context = [f"Tokiflow · {alert.at}" if alert.at else "Tokiflow", *links]
    out.append({"type": "context", "elements": [{"type": "mrkdwn", "text": t} for t in context]})
    return out


class SlackChannel(Channel):
    kind = "slack"
    label = "Slack"
    secret_fields = ("url",)

    @classmethod
    def validate(cls, config: dict[str, Any]) -> dict[str, Any]:
        check_unknown(config, {"url"})
        return {"url": require_url(config, "url")}

    async def send(self, alert: Alert) -> str:
        payload = {"text": escape(alert.title), "blocks": blocks(alert)}
        status, _ = await self.ctx.http.request("POST", self.config["url"], json_body=payload)
        return f"HTTP {status}"
