"""Gotify: a self-hosted server and an application token; `POST /message`.

The token goes in the `X-Gotify-Key` header (not the `?token=` query string, which ends up in
proxy logs). Priorities follow the Android client: 8 and up pop up, 4-7 make a sound, 1-3 only
show an icon. The click URL is set through the `client::notification` extra.
"""

from __future__ import annotations

from typing import Any

from tokiflow.channels.base import Alert, Channel, check_unknown, require_str, require_url

# An acknowledgement makes a sound but does not pop up.
PRIORITY = {"critical": 8, "warning": 5, "info": 4, "ack": 4, "test": 4}


def message(alert: Alert) -> dict[str, Any]:
    """The JSON body of one message."""
    level = {"test": "test", "acknowledged": "ack"}.get(alert.event, alert.severity)
    extras: dict[str, Any] = {"client::display": {"contentType": "text/plain"}}
    if alert.view_url:
        extras["client::notification"] = {"click": {"url": alert.view_url}}
    return {
        "title": alert.title,
        "message": alert.text(),
        "priority": PRIORITY[level],
        "extras": extras,
    }


class GotifyChannel(Channel):
    kind = "gotify"
    label = "Gotify"
    secret_fields = ("token",)

    @classmethod
    def validate(cls, config: dict[str, Any]) -> dict[str, Any]:
        check_unknown(config, {"server", "token"})
        server = require_url(config, "server")
        token = require_str(config, "token")
        return {"server": server.rstrip("/"), "token": token}

    async def send(self, alert: Alert) -> str:
        status, _ = await self.ctx.http.request(
            "POST",
            f"{self.config['server']}/message",
            json_body=message(alert),
            headers={"X-Gotify-Key": self.config["token"]},
        )
        return f"HTTP {status}"
