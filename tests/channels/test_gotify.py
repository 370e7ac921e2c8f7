"""Gotify: POST /message with the app token in X-Gotify-Key."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from tests.channels.conftest import Serve
from tokiflow.channels.base import Alert, ChannelConfigError, ChannelError, SendContext
from tokiflow.channels.gotify import GotifyChannel
from tokiflow.engine.channel_setup import validate


async def test_it_posts_a_message_with_priority_and_a_click_url(
    serve: Serve, ctx: SendContext, open_alert: Alert
) -> None:
    gotify = await serve(body={"id": 1, "appid": 1})
    config = validate("gotify", "g", {"server": gotify.url + "/gotify/", "token": "AxYz.123-abc_9"})
    assert await GotifyChannel(config, ctx).send(open_alert) == "HTTP 200"
    seen = gotify.only
    assert (seen.method, seen.path, seen.query) == ("POST", "/gotify/message", {})
    assert seen.headers["X-Gotify-Key"] == "AxYz.123-abc_9"
    assert seen.json() == {
        "title": "[DOWN] backup: the job failed",
        "message": open_alert.text(),
        "priority": 8,
        "extras": {
            "client::display": {"contentType": "text/plain"},
            "client::notification": {"click": {"url": "https://toki.example/incidents/7"}},
        },
    }


async def test_resolutions_and_warnings_are_quieter_than_failures(
    serve: Serve, ctx: SendContext, open_alert: Alert, resolved_alert: Alert
) -> None:
    gotify = await serve(body={"id": 1})
    channel = GotifyChannel({"server": gotify.url, "token": "A"}, ctx)
    await channel.send(resolved_alert)
    await channel.send(replace(open_alert, incident_kind="ANOMALY", view_url=""))
    resolved, warning = (r.json() for r in gotify.requests)
    assert (resolved["title"], resolved["priority"]) == ("[RESOLVED] backup is up again", 4)
    assert warning["priority"] == 5 and "client::notification" not in warning["extras"]


@pytest.mark.parametrize(
    ("status", "permanent"), [(400, True), (401, True), (403, True), (500, False)]
)
async def test_gotify_errors_are_permanent_or_retried(
    serve: Serve, ctx: SendContext, open_alert: Alert, status: int, permanent: bool
) -> None:
    gotify = await serve(status=status, body={"error": "Unauthorized", "errorCode": status})
    with pytest.raises(ChannelError) as caught:
        await GotifyChannel({"server": gotify.url, "token": "A"}, ctx).send(open_alert)
    assert caught.value.permanent is permanent


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"token": "A"}, "server: is required"),
        ({"server": "https://push.example"}, "token: is required"),
        ({"server": "push.example", "token": "A"}, "server: must be an http"),
        ({"server": "https://push.example", "token": "A", "priority": 3}, "priority: unknown"),
    ],
)
def test_gotify_configs_are_validated_on_save(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ChannelConfigError, match=message):
        validate("gotify", "g", config)


async def test_an_acknowledgement_does_not_pop_up(
    serve: Serve, ctx: SendContext, open_alert: Alert
) -> None:
    gotify = await serve(body={"id": 1})
    await GotifyChannel({"server": gotify.url, "token": "A"}, ctx).send(
        replace(open_alert, event="acknowledged")
    )
    assert gotify.only.json()["priority"] == 4
