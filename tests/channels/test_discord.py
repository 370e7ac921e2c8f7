"""Discord: one embed per alert, posted to a channel webhook."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from tests.channels.conftest import Serve
from tokiflow.channels.base import Alert, ChannelConfigError, ChannelError, SendContext
from tokiflow.channels.discord import DiscordChannel
from tokiflow.engine.channel_setup import validate


async def test_it_posts_one_embed_coloured_by_severity_with_mentions_disabled(
    serve: Serve, ctx: SendContext, open_alert: Alert
) -> None:
    discord = await serve(status=204, body="")
    config = validate(
        "discord", "ops", {"url": discord.url + "/api/webhooks/1/tok", "username": "Toki"}
    )
    assert await DiscordChannel(config, ctx).send(open_alert) == "HTTP 204"
    seen = discord.only
    assert (seen.method, seen.path) == ("POST", "/api/webhooks/1/tok")
    assert seen.json() == {
        "username": "Toki",
        "allowed_mentions": {"parse": []},
        "embeds": [
            {
                "title": "[DOWN] backup: the job failed",
                "url": "https://toki.example/incidents/7",
                "description": (
                    "backup: the job exited with status 2.\n\n**Last output**\n"
                    "```\nrsync: <error> & warning\nexit 2\n```\n\n"
                    "[Acknowledge](https://toki.example/incidents/7/ack)"
                ),
                "color": 0xC81E1E,
                "fields": [
                    {"name": "Reason", "value": "the job exited with status 2", "inline": False},
                    {"name": "Schedule", "value": "every 1 hour, grace 5 minutes", "inline": True},
                    {"name": "Last ping", "value": "2026-03-02 11:59:58 UTC", "inline": True},
                    {"name": "Last run took", "value": "2 minutes", "inline": True},
                    {"name": "Opened", "value": "2026-03-02 12:00:00 UTC", "inline": True},
                ],
                "footer": {"text": "Tokiflow"},
                "timestamp": "2026-03-02T12:00:00+00:00",
            }
        ],
    }


async def test_a_resolution_is_green_without_an_acknowledge_link(
    serve: Serve, ctx: SendContext, resolved_alert: Alert
) -> None:
    discord = await serve(status=204, body="")
    await DiscordChannel({"url": discord.url + "/h"}, ctx).send(resolved_alert)
    payload = discord.only.json()
    assert "username" not in payload
    [embed] = payload["embeds"]
    assert embed["title"] == "[RESOLVED] backup is up again"
    assert embed["color"] == 0x0E7C3A
    assert "Acknowledge" not in embed["description"] and "Last output" not in embed["description"]


async def test_markdown_in_names_and_output_cannot_break_the_embed(
    serve: Serve, ctx: SendContext, open_alert: Alert
) -> None:
    discord = await serve(status=204, body="")
    alert = replace(
        open_alert, summary="db_dump *nightly*: [x](http://evil)", output_tail="```\n@everyone"
    )
    await DiscordChannel({"url": discord.url + "/h"}, ctx).send(alert)
    [embed] = discord.only.json()["embeds"]
    assert embed["description"].startswith("db\\_dump \\*nightly\\*: \\[x\\](http://evil)")
    assert "```\n'''\n@everyone\n```" in embed["description"]


@pytest.mark.parametrize(
    ("status", "permanent"), [(400, True), (404, True), (429, False), (502, False)]
)
async def test_discord_errors_are_permanent_or_retried(
    serve: Serve, ctx: SendContext, open_alert: Alert, status: int, permanent: bool
) -> None:
    discord = await serve(status=status, body={"message": "Unknown Webhook", "code": 10015})
    with pytest.raises(ChannelError) as caught:
        await DiscordChannel({"url": discord.url + "/h"}, ctx).send(open_alert)
    assert caught.value.permanent is permanent


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "url: is required"),
        ({"url": "discord.com/api/webhooks/1/x"}, "url: must be an http"),
        (
            {"url": "https://discord.com/api/webhooks/1/x", "username": "x" * 81},
            "username: must be",
        ),
        ({"url": "https://discord.com/api/webhooks/1/x", "avatar": "a"}, "avatar: unknown"),
    ],
)
def test_discord_configs_are_validated_on_save(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ChannelConfigError, match=message):
        validate("discord", "ops", config)
