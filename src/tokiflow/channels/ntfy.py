"""ntfy: a server (https://ntfy.sh or your own) and a topic; published with ntfy's JSON API.

The JSON form (`POST` to the server's root URL with `topic` in the body) is used rather than the
`Title`/`Priority`/`Tags`/`Click`/`Actions` headers because HTTP headers cannot carry non-ASCII
text such as a monitor named "Sauvegarde née". Access control: an access token (`Authorization:
Bearer tk_...`) or a username and password (Basic auth).
"""

from __future__ import annotations

import base64
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

SERVER = "https://ntfy.sh"
# ntfy priorities: 1 min, 2 low, 3 default, 4 high, 5 max (urgent).
# An acknowledgement is news, not an emergency: default priority.
PRIORITY = {"critical": 5, "warning": 4, "info": 3, "ack": 3, "test": 3}
# Tags that match an emoji short code are shown as that emoji before the title.
TAGS = {
    "critical": "rotating_light",
    "warning": "warning",
    "info": "white_check_mark",
    "ack": "eyes",
    "test": "test_tube",
}
MAX_MESSAGE = 4096  # longer messages would be turned into an attachment
_TOPIC = re.compile(r"^[-_A-Za-z0-9]{1,64}$")


def publication(topic: str, alert: Alert) -> dict[str, Any]:
    """The JSON body of one publish request."""
    level = {"test": "test", "acknowledged": "ack"}.get(alert.event, alert.severity)
    text = alert.text()
    if len(text.encode()) > MAX_MESSAGE:
        text = text.encode()[: MAX_MESSAGE - 4].decode(errors="ignore") + "…"
    body: dict[str, Any] = {
        "topic": topic,
        "title": alert.title,
        "message": text,
        "priority": PRIORITY[level],
        "tags": [TAGS[level], "tokiflow"],
    }
    actions = []
    if alert.view_url:
        body["click"] = alert.view_url
        actions.append({"action": "view", "label": "View incident", "url": alert.view_url})
    if alert.ack_url and alert.event in ("open", "renotify"):
        actions.append({"action": "view", "label": "Acknowledge", "url": alert.ack_url})
    if actions:
        body["actions"] = actions
    return body


class NtfyChannel(Channel):
    kind = "ntfy"
    label = "ntfy"
    secret_fields = ("token", "password")

    @classmethod
    def validate(cls, config: dict[str, Any]) -> dict[str, Any]:
        check_unknown(config, {"server", "topic", "token", "username", "password"})
        server = require_url(config, "server", optional=True) or SERVER
        topic = require_str(config, "topic")
        if not _TOPIC.match(topic):
            raise ChannelConfigError("topic", "use 1 to 64 letters, digits, - or _")
        token = require_str(config, "token", optional=True)
        username = require_str(config, "username", optional=True)
        password = require_str(config, "password", optional=True)
        if token and (username or password):
            raise ChannelConfigError("token", "give either a token or a username and password")
        if bool(username) != bool(password):
            field = "password" if username else "username"
            raise ChannelConfigError(field, "give both a username and a password")
        return {
            "server": server.rstrip("/"),
            "topic": topic,
            "token": token,
            "username": username,
            "password": password,
        }

    def _headers(self) -> dict[str, str]:
        if self.config.get("token"):
            return {"Authorization": f"Bearer {self.config['token']}"}
        if self.config.get("username"):
            pair = f"{self.config['username']}:{self.config['password']}".encode()
            return {"Authorization": f"Basic {base64.b64encode(pair).decode()}"}
        return {}

    async def send(self, alert: Alert) -> str:
        url = f"{self.config.get('server') or SERVER}/"
        body = publication(self.config["topic"], alert)
        status, _ = await self.ctx.http.request(
            "POST", url, json_body=body, headers=self._headers()
        )
        return f"HTTP {status}"
