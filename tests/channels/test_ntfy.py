"""ntfy: JSON publishing to a topic, with priority, tags, click and view actions."""

from __future__ import annotations

import base64
from dataclasses import replace
from typing import Any

import pytest

from tests.channels.conftest import Serve
from tokiflow.channels.base import Alert, ChannelConfigError, ChannelError, SendContext
from tokiflow.channels.ntfy import NtfyChannel
from tokiflow.engine.channel_setup import validate


async def test_it_publishes_json_to_the_server_root_with_a_bearer_token(
    serve: Serve, ctx: SendContext, open_alert: Alert
) -> None:
    ntfy = await serve(body={"id": "abc", "event": "message"})
    config = validate(
        "ntfy", "ops", {"server": ntfy.url, "topic": "tokiflow-ops", "token": "tk_0123456789"}
    )
    assert await NtfyChannel(config, ctx).send(open_alert) == "HTTP 200"
    seen = ntfy.only
    assert (seen.method, seen.path) == ("POST", "/")
    assert seen.headers["Authorization"] == "Bearer tk_0123456789"
    assert seen.json() == {
        "topic": "tokiflow-ops",
        "title": "[DOWN] backup: the job failed",
        "message": open_alert.text(),
        "priority": 5,
        "tags": ["rotating_light", "tokiflow"],
        "click": "https://toki.example/incidents/7",
        "actions": [
            {"action": "view", "label": "View incident", "url": "https://toki.example/incidents/7"},
            {
                "action": "view",
                "label": "Acknowledge",
                "url": "https://toki.example/incidents/7/ack",
            },
        ],
    }


async def test_a_resolution_has_default_priority_a_check_mark_and_no_acknowledge_action(
    serve: Serve, ctx: SendContext, resolved_alert: Alert
) -> None:
    ntfy = await serve(body={"id": "abc"})
    await NtfyChannel(validate("ntfy", "n", {"server": ntfy.url, "topic": "t"}), ctx).send(
        resolved_alert
    )
    body = ntfy.only.json()
    assert (body["title"], body["priority"]) == ("[RESOLVED] backup is up again", 3)
    assert body["tags"] == ["white_check_mark", "tokiflow"]
    assert [a["label"] for a in body["actions"]] == ["View incident"]
    assert "Authorization" not in ntfy.only.headers


async def test_a_late_job_is_high_priority_and_a_server_under_a_path_keeps_its_path(
    serve: Serve, ctx: SendContext, open_alert: Alert
) -> None:
    ntfy = await serve(body={"id": "abc"})
    config = validate(
        "ntfy",
        "n",
        {"server": ntfy.url + "/ntfy/", "topic": "t", "username": "alice", "password": "pw:1"},
    )
    await NtfyChannel(config, ctx).send(replace(open_alert, incident_kind="LATE"))
    seen = ntfy.only
    assert seen.path == "/ntfy/"
    assert seen.headers["Authorization"] == "Basic " + base64.b64encode(b"alice:pw:1").decode()
    assert seen.json()["priority"] == 4 and seen.json()["tags"][0] == "warning"


@pytest.mark.parametrize(
    ("status", "permanent"), [(400, True), (403, True), (429, False), (507, False)]
)
async def test_ntfy_errors_are_permanent_or_retried(
    serve: Serve, ctx: SendContext, open_alert: Alert, status: int, permanent: bool
) -> None:
    ntfy = await serve(status=status, body={"code": 40301, "error": "forbidden"})
    with pytest.raises(ChannelError) as caught:
        await NtfyChannel({"server": ntfy.url, "topic": "t"}, ctx).send(open_alert)
    assert caught.value.permanent is permanent


def test_the_default_server_is_ntfy_sh_and_secrets_are_masked() -> None:
    clean = validate("ntfy", "n", {"topic": "ops", "username": "a", "password": "b"})
    assert clean["server"] == "https://ntfy.sh"
    assert NtfyChannel.masked(clean)["password"] == "***"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "topic: is required"),
        ({"topic": "ops alerts"}, "topic: use 1 to 64"),
        ({"topic": "t", "server": "ntfy.example"}, "server: must be an http"),
        ({"topic": "t", "token": "tk_x", "username": "a", "password": "b"}, "token: give either"),
        ({"topic": "t", "username": "a"}, "password: give both"),
        ({"topic": "t", "priority": 5}, "priority: unknown"),
    ],
)
def test_ntfy_configs_are_validated_on_save(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ChannelConfigError, match=message):
        validate("ntfy", "n", config)


async def test_an_acknowledgement_is_news_at_default_priority(
    serve: Serve, ctx: SendContext, open_alert: Alert
) -> None:
    ntfy = await serve(body={"id": "abc"})
    ack = replace(open_alert, event="acknowledged", title="[ACKNOWLEDGED] backup: the job failed")
    await NtfyChannel({"server": ntfy.url, "topic": "t"}, ctx).send(ack)
    body = ntfy.only.json()
    assert (body["priority"], body["tags"]) == (3, ["eyes", "tokiflow"])
    assert [a["label"] for a in body["actions"]] == ["View incident"]
