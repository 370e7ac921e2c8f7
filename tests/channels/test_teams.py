"""Microsoft Teams: an Adaptive Card posted to a Workflows webhook."""

from __future__ import annotations

from typing import Any

import pytest

from tests.channels.conftest import Serve
from tokiflow.channels.base import Alert, ChannelConfigError, ChannelError, SendContext
from tokiflow.channels.teams import TeamsChannel
from tokiflow.engine.channel_setup import validate

WORKFLOW_PATH = "/workflows/abc/triggers/manual/paths/invoke"


async def test_it_posts_a_message_with_one_adaptive_card_attachment(
    serve: Serve, ctx: SendContext, open_alert: Alert
) -> None:
    teams = await serve(status=202, body="")
    url = teams.url + WORKFLOW_PATH + "?api-version=2016-06-01&sig=s3cret"
    assert await TeamsChannel(validate("teams", "ops", {"url": url}), ctx).send(open_alert) == (
        "HTTP 202"
    )
    seen = teams.only
    assert (seen.method, seen.path) == ("POST", WORKFLOW_PATH)
    assert seen.query == {"api-version": "2016-06-01", "sig": "s3cret"}
    message = seen.json()
    assert message["type"] == "message"
    [attachment] = message["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert attachment["contentUrl"] is None
    assert attachment["content"] == {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "msteams": {"width": "Full"},
        "body": [
            {
                "type": "TextBlock",
                "text": "[DOWN] backup: the job failed",
                "size": "Large",
                "weight": "Bolder",
                "color": "Attention",
                "wrap": True,
            },
            {"type": "TextBlock", "text": "backup: the job exited with status 2.", "wrap": True},
            {
                "type": "FactSet",
                "facts": [
                    {"title": "Reason", "value": "the job exited with status 2"},
                    {"title": "Schedule", "value": "every 1 hour, grace 5 minutes"},
                    {"title": "Last ping", "value": "2026-03-02 11:59:58 UTC"},
                    {"title": "Last run took", "value": "2 minutes"},
                    {"title": "Opened", "value": "2026-03-02 12:00:00 UTC"},
                ],
            },
            {"type": "TextBlock", "text": "Last output", "weight": "Bolder", "spacing": "Medium"},
            {
                "type": "TextBlock",
                "text": "rsync: <error> & warning\nexit 2",
                "fontType": "Monospace",
                "size": "Small",
                "wrap": True,
            },
        ],
        "actions": [
            {
                "type": "Action.OpenUrl",
                "title": "View incident",
                "url": "https://toki.example/incidents/7",
            },
            {
                "type": "Action.OpenUrl",
                "title": "Acknowledge",
                "url": "https://toki.example/incidents/7/ack",
            },
        ],
    }


async def test_a_resolution_card_is_green_with_only_the_view_action(
    serve: Serve, ctx: SendContext, resolved_alert: Alert
) -> None:
    teams = await serve(status=202, body="")
    await TeamsChannel({"url": teams.url + WORKFLOW_PATH}, ctx).send(resolved_alert)
    card = teams.only.json()["attachments"][0]["content"]
    assert card["body"][0]["text"] == "[RESOLVED] backup is up again"
    assert card["body"][0]["color"] == "Good"
    assert [a["title"] for a in card["actions"]] == ["View incident"]


@pytest.mark.parametrize(
    ("status", "permanent"), [(400, True), (401, True), (429, False), (500, False)]
)
async def test_teams_errors_are_permanent_or_retried(
    serve: Serve, ctx: SendContext, open_alert: Alert, status: int, permanent: bool
) -> None:
    teams = await serve(status=status, body={"error": {"code": "TriggerInputSchemaMismatch"}})
    with pytest.raises(ChannelError) as caught:
        await TeamsChannel({"url": teams.url + WORKFLOW_PATH}, ctx).send(open_alert)
    assert caught.value.permanent is permanent
    assert "TriggerInputSchemaMismatch" in str(caught.value)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "url: is required"),
        ({"url": 42}, "url: must be a string"),
        ({"url": "x", "a": 1}, "a: unknown"),
    ],
)
def test_teams_configs_are_validated_on_save(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ChannelConfigError, match=message):
        validate("teams", "ops", config)
