"""Slack: Block Kit messages posted to an incoming webhook."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from tests.channels.conftest import Serve
from tokiflow.channels.base import Alert, ChannelConfigError, ChannelError, SendContext
from tokiflow.channels.slack import SlackChannel
from tokiflow.engine.channel_setup import validate


async def test_it_posts_a_block_kit_message_with_a_fallback_text(
    serve: Serve, ctx: SendContext, open_alert: Alert
) -> None:
    slack = await serve(body="ok")
    channel = SlackChannel(validate("slack", "ops", {"url": slack.url + "/services/T0/B0/x"}), ctx)
    assert await channel.send(open_alert) == "HTTP 200"
    seen = slack.only
    assert (seen.method, seen.path) == ("POST", "/services/T0/B0/x")
    assert seen.json() == {
        "text": "[DOWN] backup: the job failed",
        "blocks": [
            {
                "type": "header",
                "text": {
                    "type": "plain_text",
                    "text": ":red_circle: [DOWN] backup: the job failed",
                    "emoji": True,
                },
            },
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": "backup: the job exited with status 2."},
            },
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": "*Reason*\nthe job exited with status 2"},
                    {"type": "mrkdwn", "text": "*Schedule*\nevery 1 hour, grace 5 minutes"},
                    {"type": "mrkdwn", "text": "*Last ping*\n2026-03-02 11:59:58 UTC"},
                    {"type": "mrkdwn", "text": "*Last run took*\n2 minutes"},
                    {"type": "mrkdwn", "text": "*Opened*\n2026-03-02 12:00:00 UTC"},
                ],
            },
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "*Last output*\n```rsync: &lt;error&gt; &amp; warning\nexit 2```",
                },
            },
            {
                "type": "context",
                "elements": [
                    {"type": "mrkdwn", "text": "Tokiflow · 2026-03-02 12:00:00 UTC"},
                    {"type": "mrkdwn", "text": "<https://toki.example/incidents/7|View incident>"},
                    {
                        "type": "mrkdwn",
                        "text": "<https://toki.example/incidents/7/ack|Acknowledge>",
                    },
                ],
            },
        ],
    }


async def test_a_resolution_is_green_and_offers_no_acknowledge_link(
    serve: Serve, ctx: SendContext, resolved_alert: Alert
) -> None:
    slack = await serve()
    await SlackChannel({"url": slack.url + "/hook"}, ctx).send(resolved_alert)
    blocks = slack.only.json()["blocks"]
    assert blocks[0]["text"]["text"] == ":white_check_mark: [RESOLVED] backup is up again"
    links = [e["text"] for e in blocks[-1]["elements"]]
    assert links == [
        "Tokiflow · 2026-03-02 13:00:00 UTC",
        "<https://toki.example/incidents/7|View incident>",
    ]
    assert not any("Last output" in str(b) for b in blocks)


async def test_long_titles_are_cut_to_the_header_limit(
    serve: Serve, ctx: SendContext, open_alert: Alert
) -> None:
    slack = await serve()
    await SlackChannel({"url": slack.url + "/hook"}, ctx).send(replace(open_alert, title="x" * 400))
    header = slack.only.json()["blocks"][0]["text"]["text"]
    assert len(header) == 150 and header.endswith("…")


@pytest.mark.parametrize(
    ("status", "permanent"), [(400, True), (403, True), (404, True), (429, False), (503, False)]
)
async def test_slack_refusals_are_permanent_and_outages_are_retried(
    serve: Serve, ctx: SendContext, open_alert: Alert, status: int, permanent: bool
) -> None:
    slack = await serve(status=status, body="invalid_payload")
    with pytest.raises(ChannelError) as caught:
        await SlackChannel({"url": slack.url + "/hook"}, ctx).send(open_alert)
    assert caught.value.permanent is permanent
    assert caught.value.status == f"HTTP {status}"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "url: is required"),
        ({"url": "hooks.slack.com/services/x"}, "url: must be an http"),
        ({"url": "https://hooks.slack.com/services/x", "channel": "#ops"}, "channel: unknown"),
    ],
)
def test_slack_configs_are_validated_on_save(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ChannelConfigError, match=message):
        validate("slack", "ops", config)


def test_the_webhook_url_is_a_secret() -> None:
    assert SlackChannel.masked({"url": "https://hooks.slack.com/services/T/B/s"}) == {"url": "***"}
