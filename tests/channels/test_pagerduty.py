"""PagerDuty: Events API v2, one dedup_key per Tokiflow incident from trigger to resolve."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from tests.channels.conftest import Serve
from tests.engine.alert_env import AlertEnv
from tokiflow.channels.base import Alert, ChannelConfigError, ChannelError, SendContext
from tokiflow.channels.pagerduty import PagerDutyChannel
from tokiflow.engine import incidents as incident_actions
from tokiflow.engine.channel_setup import validate
from tokiflow.storage import incidents

KEY = "R0123456789abcdefABCDEF012345678"
QUEUED = {"status": "success", "message": "Event processed", "dedup_key": "tokiflow-7"}


async def test_an_open_incident_triggers_with_the_documented_payload(
    serve: Serve, ctx: SendContext, open_alert: Alert
) -> None:
    pd = await serve(status=202, body=QUEUED)
    config = validate("pagerduty", "pd", {"routing_key": KEY, "api_url": pd.url + "/"})
    assert await PagerDutyChannel(config, ctx).send(open_alert) == "HTTP 202"
    seen = pd.only
    assert (seen.method, seen.path) == ("POST", "/v2/enqueue")
    assert seen.json() == {
        "routing_key": KEY,
        "event_action": "trigger",
        "dedup_key": "tokiflow-7",
        "client": "Tokiflow",
        "client_url": "https://toki.example/incidents/7",
        "links": [{"href": "https://toki.example/incidents/7", "text": "Incident in Tokiflow"}],
        "payload": {
            "summary": "[DOWN] backup: the job failed",
            "source": "backup",
            "severity": "critical",
            "component": "backup",
            "group": "acme",
            "class": "FAIL",
            "timestamp": "2026-03-02T12:00:00+00:00",
            "custom_details": {
                "monitor": "backup",
                "incident": "FAIL",
                "reason": "the job exited with status 2",
                "schedule": "every 1 hour, grace 5 minutes",
                "last_ping": "2026-03-02 11:59:58 UTC",
                "last_run_took": "2 minutes",
                "opened": "2026-03-02 12:00:00 UTC",
                "output_tail": "rsync: <error> & warning\nexit 2",
            },
        },
    }


@pytest.mark.parametrize(
    ("event", "action"),
    [("acknowledged", "acknowledge"), ("resolved", "resolve"), ("renotify", "trigger")],
)
async def test_later_events_act_on_the_same_dedup_key(
    serve: Serve, ctx: SendContext, open_alert: Alert, event: str, action: str
) -> None:
    pd = await serve(status=202, body=QUEUED)
    channel = PagerDutyChannel({"routing_key": KEY, "api_url": pd.url}, ctx)
    await channel.send(replace(open_alert, event=event))
    body = pd.only.json()
    assert (body["event_action"], body["dedup_key"]) == (action, "tokiflow-7")
    assert ("payload" in body) is (action == "trigger")


async def test_a_warning_has_warning_severity(
    serve: Serve, ctx: SendContext, open_alert: Alert
) -> None:
    pd = await serve(status=202, body=QUEUED)
    channel = PagerDutyChannel({"routing_key": KEY, "api_url": pd.url}, ctx)
    await channel.send(replace(open_alert, incident_kind="LATE"))
    assert pd.only.json()["payload"]["severity"] == "warning"


async def test_the_test_button_triggers_an_info_alert_and_resolves_it_at_once(
    serve: Serve, ctx: SendContext
) -> None:
    pd = await serve(status=202, body=QUEUED)
    assert await PagerDutyChannel({"routing_key": KEY, "api_url": pd.url}, ctx).test() == "HTTP 202"
    trigger, resolve = (r.json() for r in pd.requests)
    assert trigger["event_action"] == "trigger" and trigger["payload"]["severity"] == "info"
    assert resolve == {
        "routing_key": KEY,
        "event_action": "resolve",
        "dedup_key": trigger["dedup_key"],
    }
    assert trigger["dedup_key"].startswith("tokiflow-test-")


@pytest.mark.parametrize(
    ("status", "permanent"), [(400, True), (403, True), (429, False), (500, False)]
)
async def test_invalid_events_are_permanent_and_rate_limits_are_retried(
    serve: Serve, ctx: SendContext, open_alert: Alert, status: int, permanent: bool
) -> None:
    invalid = {"status": "invalid event", "message": "Event object is invalid", "errors": ["x"]}
    pd = await serve(status=status, body=invalid)
    with pytest.raises(ChannelError) as caught:
        await PagerDutyChannel({"routing_key": KEY, "api_url": pd.url}, ctx).send(open_alert)
    assert caught.value.permanent is permanent


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "routing_key: is required"),
        ({"routing_key": "short"}, "routing_key: must be the 32-character"),
        ({"routing_key": KEY, "api_url": "events.eu.pagerduty.com"}, "api_url: must be"),
        ({"routing_key": KEY, "severity": "error"}, "severity: unknown"),
    ],
)
def test_pagerduty_configs_are_validated_on_save(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ChannelConfigError, match=message):
        validate("pagerduty", "pd", config)


def test_the_default_endpoint_is_pagerdutys_and_the_key_is_secret() -> None:
    clean = validate("pagerduty", "pd", {"routing_key": KEY})
    assert clean == {"routing_key": KEY, "api_url": "https://events.pagerduty.com"}
    assert PagerDutyChannel.masked(clean)["routing_key"] == "***"


async def test_a_failure_triggers_and_the_recovery_resolves_the_same_pagerduty_alert(
    env: AlertEnv, serve: Serve
) -> None:
    pd = await serve(status=202, body=QUEUED)
    await env.channel("pagerduty", {"routing_key": KEY, "api_url": pd.url})
    m = await env.monitor(name="nightly-backup", period="1h", grace="5m")
    await env.ping(m)
    await env.ping(m, "fail", exit_status=3)
    await env.deliver()
    [inc] = await env.db.read(lambda c: incidents.current(c, m.id))
    await env.db.write(lambda c: incident_actions.acknowledge(c, inc.id, env.clock.now()))
    await env.deliver()
    await env.ping(m)
    await env.deliver()
    events = [json.loads(r.body) for r in pd.requests]
    assert [e["event_action"] for e in events] == ["trigger", "acknowledge", "resolve"]
    assert {e["dedup_key"] for e in events} == {f"tokiflow-{inc.id}"}
    trigger = events[0]["payload"]
    assert trigger["summary"] == "[DOWN] nightly-backup: the job failed"
    assert trigger["source"] == "nightly-backup" and trigger["severity"] == "critical"
    assert "exit status 3" in trigger["custom_details"]["reason"]
    assert events[0]["links"][0]["href"].endswith(f"/incidents/{inc.id}")
    assert all(n.state == "sent" for n in await env.outbox())
