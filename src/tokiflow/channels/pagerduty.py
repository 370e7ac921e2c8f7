"""PagerDuty: an Events API v2 routing (integration) key; `POST /v2/enqueue`.

Every event of one incident carries `dedup_key = tokiflow-<incident id>`: open and re-notify
`trigger` (PagerDuty folds repeats into the open alert), acknowledged `acknowledge`s and resolved
`resolve`s that same alert. PagerDuty answers 202 when it has queued the event, 400 for an
invalid one (permanent) and 429 when rate limited (retried). The "send test alert" button
triggers a low-severity test alert and resolves it straight away.
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

API_URL = "https://events.pagerduty.com"
ACTIONS = {
    "open": "trigger",
    "renotify": "trigger",
    "acknowledged": "acknowledge",
    "resolved": "resolve",
}
_KEY = re.compile(r"^[A-Za-z0-9]{32}$")


def dedup_key(alert: Alert) -> str:
    return f"tokiflow-{alert.incident_id}"


def trigger_payload(alert: Alert) -> dict[str, Any]:
    """The `payload` object of a trigger event."""
    details = {
        "monitor": alert.monitor_name,
        "incident": alert.incident_kind,
        "reason": alert.reason,
        "schedule": alert.schedule,
        "last_ping": alert.last_ping_at,
        "last_run_took": alert.last_duration,
        "opened": alert.opened_at,
        "output_tail": alert.output_tail,
    }
    payload: dict[str, Any] = {
        "summary": alert.title[:1024],
        "source": alert.monitor_name or "tokiflow",
        "severity": "info" if alert.event == "test" else alert.severity,
        "component": alert.monitor_name or "tokiflow",
        "class": alert.incident_kind or alert.event,
        "custom_details": {k: v for k, v in details.items() if v},
    }
    if alert.org_slug:
        payload["group"] = alert.org_slug
    when = alert.at_iso()
    if when:
        payload["timestamp"] = when
    return payload


class PagerDutyChannel(Channel):
    kind = "pagerduty"
    label = "PagerDuty"
    secret_fields = ("routing_key",)

    @classmethod
    def validate(cls, config: dict[str, Any]) -> dict[str, Any]:
        check_unknown(config, {"routing_key", "api_url"})
        key = require_str(config, "routing_key")
        if not _KEY.match(key):
            raise ChannelConfigError(
                "routing_key",
                "must be the 32-character integration key of an Events API v2 integration",
            )
        api_url = require_url(config, "api_url", optional=True) or API_URL
        return {"routing_key": key, "api_url": api_url.rstrip("/")}

    def event(self, alert: Alert, action: str, key: str) -> dict[str, Any]:
        """One Events API v2 request body."""
        body: dict[str, Any] = {
            "routing_key": self.config["routing_key"],
            "event_action": action,
            "dedup_key": key,
        }
        if action == "trigger":
            body["payload"] = trigger_payload(alert)
            body["client"] = "Tokiflow"
            if alert.view_url:
                body["client_url"] = alert.view_url
                body["links"] = [{"href": alert.view_url, "text": "Incident in Tokiflow"}]
        return body

    async def _enqueue(self, body: dict[str, Any]) -> int:
        url = f"{self.config.get('api_url') or API_URL}/v2/enqueue"
        status, _ = await self.ctx.http.request("POST", url, json_body=body)
        return status

    async def send(self, alert: Alert) -> str:
        if alert.event == "test" or alert.incident_id is None:
            # Nothing to keep open: trigger, then resolve, a one-off alert.
            key = f"tokiflow-test-{int(self.ctx.clock_now().timestamp())}"
            await self._enqueue(self.event(alert, "trigger", key))
            status = await self._enqueue(self.event(alert, "resolve", key))
            return f"HTTP {status}"
        action = ACTIONS.get(alert.event, "trigger")
        status = await self._enqueue(self.event(alert, action, dedup_key(alert)))
        return f"HTTP {status}"
