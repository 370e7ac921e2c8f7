"""Microsoft Teams: a Workflows (Power Automate) webhook URL; one Adaptive Card per alert.

The "Send webhook alerts to a channel" workflow posts every card found in the message's
`attachments` list, so the body is a `message` with one attachment of content type
`application/vnd.microsoft.card.adaptive` holding an Adaptive Card 1.4 (the version Teams renders
on desktop, web and mobile). The legacy Office 365 connector cards (MessageCard) are not used:
Microsoft retires those connectors.
"""

from __future__ import annotations

from typing import Any

from tokiflow.channels.base import Alert, Channel, check_unknown, require_url

CARD_TYPE = "application/vnd.microsoft.card.adaptive"
CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
# Adaptive Card colour names; Teams maps them to its own theme.
COLOURS = {"critical": "Attention", "warning": "Warning", "info": "Good", "test": "Accent"}


def card(alert: Alert) -> dict[str, Any]:
    """The Adaptive Card of one alert."""
    facts = alert.facts()
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "text": alert.title,
            "size": "Large",
            "weight": "Bolder",
            "color": COLOURS["test" if alert.event == "test" else alert.severity],
            "wrap": True,
        },
        {"type": "TextBlock", "text": alert.summary, "wrap": True},
    ]
    shown = [{"title": k, "value": v} for k, v in facts if v]
    if shown:
        body.append({"type": "FactSet", "facts": shown})
    if alert.output_tail:
        body += [
            {"type": "TextBlock", "text": "Last output", "weight": "Bolder", "spacing": "Medium"},
            {
                "type": "TextBlock",
                "text": alert.output_tail[-2000:],
                "fontType": "Monospace",
                "size": "Small",
                "wrap": True,
            },
        ]
    actions = []
    if alert.view_url:
        actions.append({"type": "Action.OpenUrl", "title": "View incident", "url": alert.view_url})
    if alert.ack_url and alert.event in ("open", "renotify"):
        actions.append({"type": "Action.OpenUrl", "title": "Acknowledge", "url": alert.ack_url})
    out: dict[str, Any] = {
        "$schema": CARD_SCHEMA,
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
        "msteams": {"width": "Full"},
    }
    if actions:
        out["actions"] = actions
    return out


class TeamsChannel(Channel):
    kind = "teams"
    label = "Microsoft Teams"
    secret_fields = ("url",)

    @classmethod
    def validate(cls, config: dict[str, Any]) -> dict[str, Any]:
        check_unknown(config, {"url"})
        return {"url": require_url(config, "url")}

    async def send(self, alert: Alert) -> str:
        payload = {
            "type": "message",
            "attachments": [{"contentType": CARD_TYPE, "contentUrl": None, "content": card(alert)}],
        }
        status, _ = await self.ctx.http.request("POST", self.config["url"], json_body=payload)
        return f"HTTP {status}"
