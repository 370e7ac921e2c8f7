"""Apprise: any Apprise URL; tested against a local receiver through Apprise's json:// URL."""

from __future__ import annotations

from typing import Any

import pytest

from tests.channels.conftest import Serve, Service
from tokiflow.channels.apprise import AppriseChannel
from tokiflow.channels.base import Alert, ChannelConfigError, ChannelError, SendContext
from tokiflow.engine.channel_setup import validate


def json_url(service: Service, path: str) -> str:
    return service.url.replace("http://", "json://", 1) + path


async def test_it_notifies_every_url_with_title_body_and_type(
    serve: Serve, ctx: SendContext, open_alert: Alert
) -> None:
    first, second = await serve(), await serve()
    config = validate("apprise", "a", {"urls": [json_url(first, "/a"), json_url(second, "/b")]})
    assert await AppriseChannel(config, ctx).send(open_alert) == "Apprise: 2 sent"
    for service, path in ((first, "/a"), (second, "/b")):
        seen = service.only
        assert (seen.method, seen.path) == ("POST", path)
        assert seen.json() == {
            "version": "1.0",
            "title": "[DOWN] backup: the job failed",
            "message": open_alert.text(),
            "attachments": [],
            "type": "failure",
        }


async def test_a_resolution_is_a_success_notification(
    serve: Serve, ctx: SendContext, resolved_alert: Alert
) -> None:
    service = await serve()
    config = validate("apprise", "a", {"urls": json_url(service, "/hook")})
    await AppriseChannel(config, ctx).send(resolved_alert)
    body = service.only.json()
    assert (body["title"], body["type"]) == ("[RESOLVED] backup is up again", "success")


async def test_a_failed_notification_is_a_retryable_error_with_apprises_reason(
    serve: Serve, ctx: SendContext, open_alert: Alert
) -> None:
    service = await serve(status=503, body="down for maintenance")
    channel = AppriseChannel({"urls": [json_url(service, "/hook")]}, ctx)
    with pytest.raises(ChannelError, match="Apprise could not notify: .*503") as caught:
        await channel.send(open_alert)
    assert not caught.value.permanent
    assert len(service.requests) == 1


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "urls: give at least one"),
        ({"urls": []}, "urls: give at least one"),
        ({"urls": [42]}, "urls: must be a list"),
        ({"urls": ["json://localhost/x", "nosuchservice://token@x"]},
         r"URL 2 \(nosuchservice://...\) is not a valid Apprise URL"),
        ({"urls": ["json://169.254.169.254/latest"]}, "URL 1 points at a cloud metadata"),
        ({"urls": ["json://[fe80::1]/x"]}, "URL 1 points at a link-local"),
        ({"urls": ["json://localhost/x"], "title": "t"}, "title: unknown"),
    ],
)  # fmt: skip
def test_apprise_urls_are_checked_by_apprise_on_save(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ChannelConfigError, match=message):
        validate("apprise", "a", config)


def test_urls_may_be_one_string_and_are_secret() -> None:
    clean = validate("apprise", "a", {"urls": " json://localhost/a\n pover://user@token "})
    assert clean == {"urls": ["json://localhost/a", "pover://user@token"]}
    assert AppriseChannel.masked(clean) == {"urls": "***"}
