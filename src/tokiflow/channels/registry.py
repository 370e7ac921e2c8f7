"""Every channel kind, listed explicitly (no plugin discovery: the frozen binary must see them)."""

from __future__ import annotations

from tokiflow.channels.apprise import AppriseChannel
from tokiflow.channels.base import Channel
from tokiflow.channels.discord import DiscordChannel
from tokiflow.channels.email import EmailChannel
from tokiflow.channels.gotify import GotifyChannel
from tokiflow.channels.matrix import MatrixChannel
from tokiflow.channels.ntfy import NtfyChannel
from tokiflow.channels.opsgenie import OpsgenieChannel
from tokiflow.channels.pagerduty import PagerDutyChannel
from tokiflow.channels.pushover import PushoverChannel
from tokiflow.channels.slack import SlackChannel
from tokiflow.channels.teams import TeamsChannel
from tokiflow.channels.telegram import TelegramChannel
from tokiflow.channels.webhook import WebhookChannel

CHANNELS: dict[str, type[Channel]] = {
    cls.kind: cls
    for cls in (
        EmailChannel,
        WebhookChannel,
        SlackChannel,
        DiscordChannel,
        TeamsChannel,
        TelegramChannel,
        NtfyChannel,
        GotifyChannel,
        PushoverChannel,
        MatrixChannel,
        PagerDutyChannel,
        OpsgenieChannel,
        AppriseChannel,
    )
}
