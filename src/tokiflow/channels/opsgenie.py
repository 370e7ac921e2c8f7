"""Opsgenie: an API integration key and a region; the Alert API v2.

Open and re-notify create an alert with `alias = tokiflow-<incident id>` (Opsgenie folds a create
with the alias of an open alert into it); acknowledged and resolved act on that alias with
`POST /v2/alerts/<alias>/acknowledge|close?identifierType=alias`. Opsgenie answers 202 (queued),
401/403/422 for requests it will never accept (permanent) and 429 when rate limited (retried).
"""

from __future__ import annotations

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

REGIONS = {"us": "https://api.opsgenie.com", "eu": "https://api.eu.opsgenie.com"}
PRIORITY = {"critical": "P1", "warning": "P3", "info": "P5", "test": "P5"}
SOURCE = "Tokiflow"


def alias(alert: Alert) -> str:
    return f"tokiflow-{alert.incident_id}"


def create_body(alert: Alert, alias_: str) -> dict[str, Any]:
    """The body of a create-alert request."""
    level = "test" if alert.event == "test" else alert.severity
    details = {
        "monitor": alert.monitor_name,
        "incident": alert.incident_kind,
        "reason": alert.reason,
        "schedule": alert.schedule,
        "last_ping": alert.last_ping_at,
        "last_run_took": alert.last_duration,
        "opened": alert.opened_at,
        "incident_url": alert.view_url,
    }
    message = alert.title if len(alert.title) <= 130 else alert.title[:129] + "…"
    body: dict[str, Any] = {
        "message": message,
        "alias": alias_,
        "description": alert.text()[:15000],
        "priority": PRIORITY[level],
        "source": SOURCE,
        "details": {k: v[:500] for k, v in details.items() if v},
        "tags": ["tokiflow"] + ([alert.incident_kind] if alert.incident_kind else []),
    }
    if alert.monitor_name:
        body["entity"] = alert.monitor_name[:512]
    return body


class OpsgenieChannel(Channel):
    kind = "opsgenie"
    label = "Opsgenie"
    secret_fields = ("api_key",)

    @classmethod
    def validate(cls, config: dict[str, Any]) -> dict[str, Any]:
        check_unknown(config, {"api_key", "region", "api_url"})
        key = require_str(config, "api_key")
        region = (require_str(config, "region", optional=True) or "us").lower()
        if region not in REGIONS:
            raise ChannelConfigError("region", "must be us or eu")
        api_url = require_url(config, "api_url", optional=True)
        return {"api_key": key, "region": region, "api_url": api_url.rstrip("/")}

    @property
    def base(self) -> str:
        return self.config.get("api_url") or REGIONS[self.config.get("region") or "us"]

    async def _post(self, path: str, body: dict[str, Any]) -> int:
        status, _ = await self.ctx.http.request(
            "POST",
            f"{self.base}{path}",
            json_body=body,
            headers={"Authorization": f"GenieKey {self.config['api_key']}"},
        )
        return status

    async def _act(self, alias_: str, action: str, note: str) -> int:
        path = f"/v2/alerts/{quote(alias_, safe='')}/{action}?identifierType=alias"
        return await self._post(path, {"source": SOURCE, "note": note[:25000]})

    async def send(self, alert: Alert) -> str:
        if alert.event == "test" or alert.incident_id is None:
            # A one-off: create a P5 test alert and close it at once.
            key = f"tokiflow-test-{int(self.ctx.clock_now().timestamp())}"
            await self._post("/v2/alerts", create_body(alert, key))
            return f"HTTP {await self._act(key, 'close', 'Test alert closed by Tokiflow.')}"
        if alert.event == "resolved":
            status = await self._act(alias(alert), "close", alert.summary)
        elif alert.event == "acknowledged":
            status = await self._act(alias(alert), "acknowledge", alert.summary)
        else:
            status = await self._post("/v2/alerts", create_body(alert, alias(alert)))
        return f"HTTP {status}"
