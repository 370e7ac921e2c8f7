"""The channel interface: what every alert channel receives, validates and raises."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from tokiflow.channels.http import Outbound
from tokiflow.clock import Clock
from tokiflow.config import Settings


class ChannelError(Exception):
    """Sending failed. `permanent` errors (bad credentials, 4xx) are not retried."""

    def __init__(self, message: str, *, permanent: bool = False, status: str = "") -> None:
        super().__init__(message)
        self.permanent = permanent
        self.status = status


class ChannelConfigError(ValueError):
    """A channel config is invalid; `field` names the offending key."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


@dataclass(frozen=True)
class Alert:
    """Everything a message says, frozen when the notification was queued."""

    idempotency_key: str
    event: str  # open, acknowledged, renotify, resolved, test
    title: str
    summary: str
    monitor_name: str = ""
    monitor_uuid: str = ""
    monitor_status: str = ""
    org_slug: str = ""
    incident_id: int | None = None
    incident_kind: str = ""
    reason: str = ""
    at: str = ""
    opened_at: str = ""
    last_ping_at: str = ""
    schedule: str = ""
    last_duration: str = ""
    output_tail: str = ""
    view_url: str = ""
    ack_url: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_resolution(self) -> bool:
        return self.event == "resolved"

    @property
    def severity(self) -> str:
        """critical for a job that did not run or failed, warning for late or anomalies."""
        if self.event == "resolved":
            return "info"
        if self.incident_kind in ("LATE", "ANOMALY", "OUTPUT"):
            return "warning"
        return "critical"

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Alert:
        return cls(**json.loads(text))

    def at_iso(self) -> str | None:
        """When the event happened as RFC 3339 (`at` is stored for people to read)."""
        try:
            when = dt.datetime.strptime(self.at, "%Y-%m-%d %H:%M:%S UTC").replace(tzinfo=dt.UTC)
        except ValueError:
            return None
        return when.isoformat()

    def facts(self) -> list[tuple[str, str]]:
        """The labelled facts a message lists, the empty ones left out."""
        facts = [
            ("Reason", self.reason),
            ("Schedule", self.schedule),
            ("Last ping", self.last_ping_at),
            ("Last run took", self.last_duration),
            ("Opened", self.opened_at),
        ]
        return [(k, v) for k, v in facts if v]

    def text(self) -> str:
        """A plain-text message: title, what happened, and the facts that explain it."""
        lines = [self.title, "", self.summary]
        lines += [f"{k}: {v}" for k, v in self.facts()]
        if self.output_tail:
            lines += ["", "Last output:", self.output_tail]
        if self.view_url:
            lines += ["", f"View: {self.view_url}"]
        if self.ack_url and self.event in ("open", "renotify"):
            lines.append(f"Acknowledge: {self.ack_url}")
        return "\n".join(lines)


@dataclass(frozen=True)
class SendContext:
    """What a channel may use to send: settings (SMTP), the guarded HTTP client and the clock."""

    settings: Settings
    http: Outbound
    clock: Clock

    def clock_now(self) -> dt.datetime:
        return self.clock.now()


class Channel:
    """Base class: subclasses set `kind`, `label`, `secret_fields` and implement the three
    methods. Configs are plain JSON objects; `validate` returns the cleaned copy."""

    kind: ClassVar[str] = ""
    label: ClassVar[str] = ""
    secret_fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: dict[str, Any], ctx: SendContext) -> None:
        self.config = config
        self.ctx = ctx

    @classmethod
    def validate(cls, config: dict[str, Any]) -> dict[str, Any]:
        """Check a config on save; raise ChannelConfigError naming the field."""
        raise NotImplementedError

    async def send(self, alert: Alert) -> str:
        """Deliver one alert; returns a short status (e.g. "HTTP 202"); raises ChannelError."""
        raise NotImplementedError

    async def test(self) -> str:
        """Send a test alert (the "send test alert" button)."""
        return await self.send(sample_alert(self.kind))

    @classmethod
    def masked(cls, config: dict[str, Any]) -> dict[str, Any]:
        """The config with its secrets hidden, for listings."""
        return {k: ("***" if k in cls.secret_fields and v else v) for k, v in config.items()}


def sample_alert(kind: str) -> Alert:
    return Alert(
        idempotency_key=f"test-{kind}",
        event="test",
        title="Tokiflow test alert",
        summary="This is a test alert from Tokiflow: this channel is set up correctly.",
    )


def require_str(config: dict[str, Any], name: str, *, optional: bool = False) -> str:
    """A non-empty string field (or "" when optional and absent)."""
    value = config.get(name, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ChannelConfigError(name, "must be a string")
    value = value.strip()
    if not value and not optional:
        raise ChannelConfigError(name, "is required")
    return value


def require_url(config: dict[str, Any], name: str, *, optional: bool = False) -> str:
    value = require_str(config, name, optional=optional)
    if value and not value.startswith(("http://", "https://")):
        raise ChannelConfigError(name, "must be an http:// or https:// URL")
    return value


def check_unknown(config: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(config) - allowed)
    if unknown:
        raise ChannelConfigError(
            unknown[0], f"unknown setting (allowed: {', '.join(sorted(allowed))})"
        )
