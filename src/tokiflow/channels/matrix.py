"""Matrix: a homeserver, an access token and a room id; one `m.room.message` per alert.

`PUT /_matrix/client/v3/rooms/{roomId}/send/m.room.message/{txnId}` with the transaction id taken
from the alert's idempotency key: a homeserver answers a repeated transaction id (from the same
access token) with the event it already sent, so a retry after a lost answer never posts twice.
The message has a plain `body` and an HTML `formatted_body` (format `org.matrix.custom.html`).
"""

from __future__ import annotations

import html
import re
from typing import Any
from urllib.parse import quote

from tokiflow.channels.base import (
    Alert,
    Channel,
    ChannelConfigError,
    check_unknown,
    require_str,
    require_url,
)

COLOURS = {"critical": "#c81e1e", "warning": "#b25e09", "info": "#0e7c3a", "test": "#2563eb"}
_TXN_SAFE = re.compile(r"[^A-Za-z0-9._~-]")


def formatted(alert: Alert) -> str:
    """The HTML body (the subset Matrix clients render: strong, font colour, ul, pre, a)."""
    level = "test" if alert.event == "test" else alert.severity
    e = html.escape
    out = [
        f'<p><strong><font color="{COLOURS[level]}">{e(alert.title)}</font></strong></p>',
        f"<p>{e(alert.summary)}</p>",
    ]
    facts = alert.facts()
    items = "".join(f"<li><strong>{k}:</strong> {e(v)}</li>" for k, v in facts if v)
    if items:
        out.append(f"<ul>{items}</ul>")
    if alert.output_tail:
        out.append(
            f"<p><strong>Last output:</strong></p><pre><code>{e(alert.output_tail)}</code></pre>"
        )
    links = [f'<a href="{e(alert.view_url)}">View incident</a>'] if alert.view_url else []
    if alert.ack_url and alert.event in ("open", "renotify"):
        links.append(f'<a href="{e(alert.ack_url)}">Acknowledge</a>')
    if links:
        out.append(f"<p>{' · '.join(links)}</p>")
    return "".join(out)


class MatrixChannel(Channel):
    kind = "matrix"
    label = "Matrix"
    secret_fields = ("access_token",)

    @classmethod
    def validate(cls, config: dict[str, Any]) -> dict[str, Any]:
        check_unknown(config, {"homeserver", "access_token", "room_id"})
        homeserver = require_url(config, "homeserver")
        token = require_str(config, "access_token")
        room = require_str(config, "room_id")
        # A room id, not an alias (#name:server): the send endpoint only takes ids. Since room
        # version 12 an id need not contain ":server", so only the sigil is checked.
        if not room.startswith("!") or len(room) < 2 or any(c.isspace() for c in room):
            raise ChannelConfigError("room_id", "must be a room id such as !abc123:example.org")
        return {"homeserver": homeserver.rstrip("/"), "access_token": token, "room_id": room}

    def txn_id(self, alert: Alert) -> str:
        """The transaction id: the idempotency key, plus the time for test messages (each press
        of "send test alert" must post again)."""
        key = alert.idempotency_key or "tokiflow"
        if alert.event == "test" or not alert.idempotency_key:
            key += f"-{int(self.ctx.clock_now().timestamp() * 1000)}"
        return _TXN_SAFE.sub("_", key)

    async def send(self, alert: Alert) -> str:
        url = (
            f"{self.config['homeserver']}/_matrix/client/v3/rooms/"
            f"{quote(self.config['room_id'], safe='')}/send/m.room.message/{self.txn_id(alert)}"
        )
        content = {
            "msgtype": "m.text",
            "body": alert.text(),
            "format": "org.matrix.custom.html",
            "formatted_body": formatted(alert),
        }
        status, _ = await self.ctx.http.request(
            "PUT",
            url,
            json_body=content,
            headers={"Authorization": f"Bearer {self.config['access_token']}"},
        )
        return f"HTTP {status}"
