"""Pushover: a form POST to /1/messages.json with HTML, priority and the incident URL."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from tests.channels.conftest import Serve
from tokiflow.channels.base import Alert, ChannelConfigError, ChannelError, SendContext
from tokiflow.channels.pushover import MAX_MESSAGE, PushoverChannel, message_html
from tokiflow.engine.channel_setup import validate

USER = "uQiRzpo4DXghDmr9QzzfQu27cmVRsG"
APP = "azGDORePK8gMaC0QOYAMyEEuzJnyUi"
ACCEPTED = {"status": 1, "request": "647d2300-702c-4b38-8b2f-d56326ae460b"}


async def test_it_posts_the_documented_form_fields(
    serve: Serve, ctx: SendContext, open_alert: Alert
) -> None:
    pushover = await serve(body=ACCEPTED)
    config = validate(
        "pushover",
        "p",
        {"user_key": USER, "app_token": APP, "device": "phone", "api_url": pushover.url},
    )
    assert await PushoverChannel(config, ctx).send(open_alert) == "HTTP 200"
    seen = pushover.only
    assert (seen.method, seen.path) == ("POST", "/1/messages.json")
    assert seen.form() == {
        "token": APP,
        "user": USER,
        "device": "phone",
        "title": "[DOWN] backup: the job failed",
        "html": "1",
        "priority": "1",
        "url": "https://toki.example/incidents/7",
        "url_title": "View incident",
        "message": (
            '<font color="#c81e1e">backup: the job exited with status 2.</font>\n'
            "<b>Reason:</b> the job exited with status 2\n"
            "<b>Schedule:</b> every 1 hour, grace 5 minutes\n"
            "<b>Last ping:</b> 2026-03-02 11:59:58 UTC\n"
            "<b>Last run took:</b> 2 minutes\n"
            '<a href="https://toki.example/incidents/7/ack">Acknowledge</a>\n\n'
            "<b>Last output:</b>\nrsync: &lt;error&gt; &amp; warning\nexit 2"
        ),
    }


async def test_a_resolution_is_green_and_normal_priority(
    serve: Serve, ctx: SendContext, resolved_alert: Alert
) -> None:
    pushover = await serve(body=ACCEPTED)
    config = {"user_key": USER, "app_token": APP, "api_url": pushover.url}
    await PushoverChannel(validate("pushover", "p", config), ctx).send(resolved_alert)
    form = pushover.only.form()
    assert form["title"] == "[RESOLVED] backup is up again" and form["priority"] == "0"
    assert form["message"].startswith('<font color="#0e7c3a">backup recovered')
    assert "Acknowledge" not in form["message"] and "device" not in form


def test_the_message_keeps_within_1024_characters_and_keeps_the_newest_output(
    open_alert: Alert,
) -> None:
    text = message_html(replace(open_alert, output_tail="<&>" * 2000 + "last line"))
    assert len(text) <= MAX_MESSAGE and text.endswith("last line")
    assert "<b>Last output:</b>" in text


@pytest.mark.parametrize(
    ("status", "permanent"), [(400, True), (401, True), (429, False), (500, False)]
)
async def test_a_refusal_with_status_0_is_permanent_and_an_outage_is_retried(
    serve: Serve, ctx: SendContext, open_alert: Alert, status: int, permanent: bool
) -> None:
    refusal = {"user": "invalid", "errors": ["user identifier is invalid"], "status": 0}
    pushover = await serve(status=status, body=refusal)
    channel = PushoverChannel({"user_key": USER, "app_token": APP, "api_url": pushover.url}, ctx)
    with pytest.raises(ChannelError) as caught:
        await channel.send(open_alert)
    assert caught.value.permanent is permanent
    assert "user identifier is invalid" in str(caught.value)


async def test_an_answer_without_status_1_is_a_permanent_error(
    serve: Serve, ctx: SendContext, open_alert: Alert
) -> None:
    pushover = await serve(body={"status": 0, "errors": ["application token is invalid"]})
    channel = PushoverChannel({"user_key": USER, "app_token": APP, "api_url": pushover.url}, ctx)
    with pytest.raises(ChannelError, match="application token is invalid") as caught:
        await channel.send(open_alert)
    assert caught.value.permanent


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"app_token": APP}, "user_key: is required"),
        ({"user_key": USER}, "app_token: is required"),
        ({"user_key": "me@example.com", "app_token": APP}, "user_key: must be the 30-character"),
        ({"user_key": USER, "app_token": APP, "api_url": "pushover"}, "api_url: must be"),
        ({"user_key": USER, "app_token": APP, "sound": "siren"}, "sound: unknown"),
    ],
)
def test_pushover_configs_are_validated_on_save(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ChannelConfigError, match=message):
        validate("pushover", "p", config)


def test_keys_are_secret_and_the_default_endpoint_is_pushovers() -> None:
    clean = validate("pushover", "p", {"user_key": USER, "app_token": APP})
    assert clean["api_url"] == "https://api.pushover.net"
    masked = PushoverChannel.masked(clean)
    assert (masked["user_key"], masked["app_token"]) == ("***", "***")


async def test_an_acknowledgement_is_normal_priority(
    serve: Serve, ctx: SendContext, open_alert: Alert
) -> None:
    pushover = await serve(body=ACCEPTED)
    channel = PushoverChannel({"user_key": USER, "app_token": APP, "api_url": pushover.url}, ctx)
    await channel.send(replace(open_alert, event="acknowledged"))
    form = pushover.only.form()
    assert form["priority"] == "0" and "Acknowledge</a>" not in form["message"]
