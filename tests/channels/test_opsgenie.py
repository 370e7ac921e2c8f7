"""Opsgenie: create an alert with alias tokiflow-<incident>, then acknowledge and close it."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from tests.channels.conftest import Serve
from tests.engine.alert_env import AlertEnv
from tokiflow.channels.base import Alert, ChannelConfigError, ChannelError, SendContext
from tokiflow.channels.opsgenie import OpsgenieChannel
from tokiflow.engine import incidents as incident_actions
from tokiflow.engine.channel_setup import validate
from tokiflow.storage import incidents

KEY = "eb243592-faa2-4ba2-a551-1afdf565c889"
QUEUED = {"result": "Request will be processed", "took": 0.2, "requestId": "43a29c5c"}


async def test_an_open_incident_creates_an_alert_with_the_incident_alias(
    serve: Serve, ctx: SendContext, open_alert: Alert
) -> None:
    og = await serve(status=202, body=QUEUED)
    config = validate("opsgenie", "og", {"api_key": KEY, "api_url": og.url + "/"})
    assert await OpsgenieChannel(config, ctx).send(open_alert) == "HTTP 202"
    seen = og.only
    assert (seen.method, seen.path, seen.query) == ("POST", "/v2/alerts", {})
    assert seen.headers["Authorization"] == f"GenieKey {KEY}"
    assert seen.json() == {
        "message": "[DOWN] backup: the job failed",
        "alias": "tokiflow-7",
        "description": open_alert.text(),
        "priority": "P1",
        "source": "Tokiflow",
        "entity": "backup",
        "tags": ["tokiflow", "FAIL"],
        "details": {
            "monitor": "backup",
            "incident": "FAIL",
            "reason": "the job exited with status 2",
            "schedule": "every 1 hour, grace 5 minutes",
            "last_ping": "2026-03-02 11:59:58 UTC",
            "last_run_took": "2 minutes",
            "opened": "2026-03-02 12:00:00 UTC",
            "incident_url": "https://toki.example/incidents/7",
        },
    }


@pytest.mark.parametrize(
    ("event", "action"), [("acknowledged", "acknowledge"), ("resolved", "close")]
)
async def test_acknowledge_and_resolve_act_on_the_alias(
    serve: Serve, ctx: SendContext, open_alert: Alert, event: str, action: str
) -> None:
    og = await serve(status=202, body=QUEUED)
    await OpsgenieChannel({"api_key": KEY, "api_url": og.url}, ctx).send(
        replace(open_alert, event=event, summary="why")
    )
    seen = og.only
    assert (seen.method, seen.path) == ("POST", f"/v2/alerts/tokiflow-7/{action}")
    assert seen.query == {"identifierType": "alias"}
    assert seen.json() == {"source": "Tokiflow", "note": "why"}


async def test_messages_are_cut_to_130_characters_and_warnings_are_p3(
    serve: Serve, ctx: SendContext, open_alert: Alert
) -> None:
    og = await serve(status=202, body=QUEUED)
    alert = replace(open_alert, title="L" * 200, incident_kind="LATE")
    await OpsgenieChannel({"api_key": KEY, "api_url": og.url}, ctx).send(alert)
    body = og.only.json()
    assert len(body["message"]) == 130 and body["message"].endswith("…")
    assert body["priority"] == "P3"


@pytest.mark.parametrize(
    ("region", "host"), [("us", "https://api.opsgenie.com"), ("eu", "https://api.eu.opsgenie.com")]
)
def test_the_region_picks_the_api_host(ctx: SendContext, region: str, host: str) -> None:
    channel = OpsgenieChannel(validate("opsgenie", "og", {"api_key": KEY, "region": region}), ctx)
    assert channel.base == host


async def test_the_test_button_creates_a_p5_alert_and_closes_it(
    serve: Serve, ctx: SendContext
) -> None:
    og = await serve(status=202, body=QUEUED)
    await OpsgenieChannel({"api_key": KEY, "api_url": og.url}, ctx).test()
    create, close = og.requests
    alias = create.json()["alias"]
    assert alias.startswith("tokiflow-test-") and create.json()["priority"] == "P5"
    assert (close.path, close.query) == (f"/v2/alerts/{alias}/close", {"identifierType": "alias"})


@pytest.mark.parametrize(
    ("status", "permanent"), [(401, True), (403, True), (422, True), (429, False), (503, False)]
)
async def test_opsgenie_errors_are_permanent_or_retried(
    serve: Serve, ctx: SendContext, open_alert: Alert, status: int, permanent: bool
) -> None:
    og = await serve(status=status, body={"message": "Key format is not valid!", "took": 0.0})
    with pytest.raises(ChannelError) as caught:
        await OpsgenieChannel({"api_key": KEY, "api_url": og.url}, ctx).send(open_alert)
    assert caught.value.permanent is permanent


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "api_key: is required"),
        ({"api_key": KEY, "region": "asia"}, "region: must be us or eu"),
        ({"api_key": KEY, "api_url": "api.opsgenie.com"}, "api_url: must be"),
        ({"api_key": KEY, "team": "ops"}, "team: unknown"),
    ],
)
def test_opsgenie_configs_are_validated_on_save(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ChannelConfigError, match=message):
        validate("opsgenie", "og", config)


async def test_a_failure_creates_and_the_recovery_closes_the_same_opsgenie_alert(
    env: AlertEnv, serve: Serve
) -> None:
    og = await serve(status=202, body=QUEUED)
    await env.channel("opsgenie", {"api_key": KEY, "api_url": og.url})
    m = await env.monitor(name="invoices", period="1h", grace="5m")
    await env.ping(m)
    await env.ping(m, "fail", exit_status=1)
    await env.deliver()
    [inc] = await env.db.read(lambda c: incidents.current(c, m.id))
    await env.db.write(lambda c: incident_actions.acknowledge(c, inc.id, env.clock.now()))
    await env.deliver()
    await env.ping(m)
    await env.deliver()
    create, ack, close = og.requests
    alias = f"tokiflow-{inc.id}"
    assert (create.path, json.loads(create.body)["alias"]) == ("/v2/alerts", alias)
    assert json.loads(create.body)["message"] == "[DOWN] invoices: the job failed"
    assert (ack.path, ack.query) == (f"/v2/alerts/{alias}/acknowledge", {"identifierType": "alias"})
    assert (close.path, close.query) == (f"/v2/alerts/{alias}/close", {"identifierType": "alias"})
    assert "recovered" in json.loads(close.body)["note"]
    assert all(r.headers["Authorization"] == f"GenieKey {KEY}" for r in og.requests)
    assert all(n.state == "sent" for n in await env.outbox())
