"""Telegram: sendMessage with HTML formatting through a bot."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from tests.channels.conftest import Serve
from tokiflow.channels.base import Alert, ChannelConfigError, ChannelError, SendContext
from tokiflow.channels.telegram import MAX_TEXT, TelegramChannel, message
from tokiflow.engine.channel_setup import validate

TOKEN = "123456789:AAEhBP0av28a7Hc0_dMbAb6z-dzrwX3pEQk"
SENT = {"ok": True, "result": {"message_id": 1}}


async def test_it_calls_send_message_with_escaped_html_and_no_link_preview(
    serve: Serve, ctx: SendContext, open_alert: Alert
) -> None:
    telegram = await serve(body=SENT)
    config = validate(
        "telegram",
        "ops",
        {"bot_token": TOKEN, "chat_id": "-1001234567890", "message_thread_id": 42,
         "api_url": telegram.url + "/"},
    )  # fmt: skip
    assert await TelegramChannel(config, ctx).send(open_alert) == "HTTP 200"
    seen = telegram.only
    assert (seen.method, seen.path) == ("POST", f"/bot{TOKEN}/sendMessage")
    assert seen.json() == {
        "chat_id": -1001234567890,
        "message_thread_id": 42,
        "parse_mode": "HTML",
        "link_preview_options": {"is_disabled": True},
        "text": (
            "🔴 <b>[DOWN] backup: the job failed</b>\n\n"
            "backup: the job exited with status 2.\n\n"
            "<b>Reason:</b> the job exited with status 2\n"
            "<b>Schedule:</b> every 1 hour, grace 5 minutes\n"
            "<b>Last ping:</b> 2026-03-02 11:59:58 UTC\n"
            "<b>Last run took:</b> 2 minutes\n"
            "<b>Opened:</b> 2026-03-02 12:00:00 UTC\n\n"
            "<b>Last output:</b>\n<pre>rsync: &lt;error&gt; &amp; warning\nexit 2</pre>\n\n"
            '<a href="https://toki.example/incidents/7">View incident</a> · '
            '<a href="https://toki.example/incidents/7/ack">Acknowledge</a>'
        ),
    }


async def test_a_resolution_says_resolved_and_a_channel_name_is_sent_as_given(
    serve: Serve, ctx: SendContext, resolved_alert: Alert
) -> None:
    telegram = await serve(body=SENT)
    config = validate(
        "telegram", "ops", {"bot_token": TOKEN, "chat_id": "@ops_alerts", "api_url": telegram.url}
    )
    await TelegramChannel(config, ctx).send(resolved_alert)
    payload = telegram.only.json()
    assert payload["chat_id"] == "@ops_alerts" and "message_thread_id" not in payload
    assert payload["text"].startswith("✅ <b>[RESOLVED] backup is up again</b>")
    assert "Acknowledge" not in payload["text"] and "Last output" not in payload["text"]


def test_a_huge_output_is_shortened_so_the_message_fits_and_the_markup_stays_whole(
    open_alert: Alert,
) -> None:
    text = message(replace(open_alert, output_tail="<x>" * 5000 + "THE END"))
    assert len(text) <= MAX_TEXT
    assert text.count("<pre>") == 1 and text.count("</pre>") == 1
    assert "THE END</pre>" in text and text.endswith("Acknowledge</a>")


@pytest.mark.parametrize(
    ("status", "permanent"),
    [(400, True), (401, True), (403, True), (404, True), (429, False), (502, False)],
)
async def test_telegram_refusals_are_permanent_and_flood_control_is_retried(
    serve: Serve, ctx: SendContext, open_alert: Alert, status: int, permanent: bool
) -> None:
    telegram = await serve(
        status=status,
        body={"ok": False, "error_code": status, "description": "Bad Request: chat not found"},
    )
    config = {"bot_token": TOKEN, "chat_id": 1, "api_url": telegram.url}
    with pytest.raises(ChannelError) as caught:
        await TelegramChannel(config, ctx).send(open_alert)
    assert caught.value.permanent is permanent
    assert "chat not found" in str(caught.value)


async def test_the_bot_token_never_appears_in_an_error(ctx: SendContext, open_alert: Alert) -> None:
    config = {"bot_token": TOKEN, "chat_id": 1, "api_url": "http://"}
    with pytest.raises(ChannelError) as caught:
        await TelegramChannel(config, ctx).send(open_alert)
    assert TOKEN not in str(caught.value) and "***" in str(caught.value)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"chat_id": 1}, "bot_token: is required"),
        ({"bot_token": "not-a-token", "chat_id": 1}, "bot_token: must look like"),
        ({"bot_token": TOKEN}, "chat_id: is required"),
        ({"bot_token": TOKEN, "chat_id": "ops team"}, "chat_id: must be"),
        ({"bot_token": TOKEN, "chat_id": 1, "message_thread_id": "x"}, "message_thread_id: must"),
        ({"bot_token": TOKEN, "chat_id": 1, "api_url": "api.telegram.org"}, "api_url: must be"),
        ({"bot_token": TOKEN, "chat_id": 1, "silent": True}, "silent: unknown"),
    ],
)
def test_telegram_configs_are_validated_on_save(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ChannelConfigError, match=message):
        validate("telegram", "ops", config)


def test_the_default_api_url_is_telegrams() -> None:
    clean = validate("telegram", "ops", {"bot_token": TOKEN, "chat_id": 5})
    assert clean == {
        "bot_token": TOKEN,
        "chat_id": 5,
        "message_thread_id": None,
        "api_url": "https://api.telegram.org",
    }
    assert TelegramChannel.masked(clean)["bot_token"] == "***"
