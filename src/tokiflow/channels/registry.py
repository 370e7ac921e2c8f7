"""Every channel kind, listed explicitly (no plugin discovery: the frozen binary must see them)."""

from __future__ import annotations

from tokiflow.channels.base import Channel
from tokiflow.channels.email import EmailChannel
from tokiflow.channels.webhook import WebhookChannel

CHANNELS: dict[str, type[Channel]] = {cls.kind: cls for cls in (EmailChannel, WebhookChannel)}
