"""The outbox and the dispatcher against real local receivers, driven by the fake clock."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.engine.alert_env import AlertEnv, Receiver
from tokiflow.clock import FakeClock
from tokiflow.config import Settings
from tokiflow.engine import incidents as incident_actions
from tokiflow.storage import channels, incidents

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]


@pytest.fixture
async def env(tmp_path: Path, clock: FakeClock, settings: Settings) -> AsyncIterator[AlertEnv]:
    e = await AlertEnv.open(tmp_path / "d" / "tokiflow.db", clock, settings)
    yield e
    await e.close()


async def hook(aiohttp_server: ServerFactory, receiver: Receiver) -> str:
    server = await aiohttp_server(receiver.app())
    return str(server.make_url("/hook"))


async def test_an_incident_reaches_the_webhook_once_with_a_verifiable_signature(
    env: AlertEnv, aiohttp_server: ServerFactory
) -> None:
    receiver = Receiver()
    url = await hook(aiohttp_server, receiver)
    await env.channel("webhook", {"url": url, "secret": "s3cret"})
    m = await env.monitor(period="1h", grace="5m")
    await env.ping(m)
    await env.ping(m, "fail", exit_status=2)
    assert await env.deliver() == 1
    assert await env.deliver() == 0
    [(method, path, headers, body)] = receiver.requests
    assert (method, path) == ("POST", "/hook")
    payload = json.loads(body)
    assert payload["event"] == "open" and payload["incident_kind"] == "FAIL"
    assert payload["monitor_name"] == "backup" and "exit status 2" in payload["reason"]
    assert payload["title"] == "[DOWN] backup: the job failed"
    assert payload["view_url"].endswith(f"/incidents/{payload['incident_id']}")
    assert headers["X-Tokiflow-Event"] == "open"
    assert headers["X-Tokiflow-Idempotency-Key"] == payload["idempotency_key"]
    timestamp, signature = (
        part.split("=", 1)[1] for part in headers["X-Tokiflow-Signature"].split(",")
    )
    expected = hmac.new(b"s3cret", timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(signature, expected)
    assert int(timestamp) == int(env.clock.now().timestamp())
    [n] = await env.outbox()
    assert n.state == "sent" and n.attempts == 1
    [attempt] = await env.attempts(n.id)
    assert attempt.ok and attempt.status == "HTTP 200"


async def test_recovery_sends_a_resolution_unless_the_monitor_turned_it_off(
    env: AlertEnv, aiohttp_server: ServerFactory
) -> None:
    receiver = Receiver()
    await env.channel("webhook", {"url": await hook(aiohttp_server, receiver)})
    noisy = await env.monitor(name="noisy", period="1h")
    quiet = await env.monitor(name="quiet", period="1h")
    await env.set(quiet, notify_resolve=False)
    for m in (noisy, quiet):
        await env.ping(m, "fail")
        await env.ping(m)
    await env.deliver()
    events = [
        (json.loads(b)["monitor_name"], json.loads(b)["event"]) for *_, b in receiver.requests
    ]
    assert sorted(events) == [("noisy", "open"), ("noisy", "resolved"), ("quiet", "open")]


async def test_a_receiver_that_is_down_gets_the_alert_once_when_it_comes_back(
    env: AlertEnv, aiohttp_server: ServerFactory
) -> None:
    receiver = Receiver(status=503)
    await env.channel("webhook", {"url": await hook(aiohttp_server, receiver)})
    m = await env.monitor(period="1h", grace="5m")
    await env.ping(m)
    await env.after(3600)
    assert await env.after(300) == 1  # MISSED: first attempt fails
    [n] = await env.outbox()
    assert (n.state, n.attempts, n.last_error) == ("pending", 1, "HTTP 503: ok")
    assert await env.after(10) == 0  # not due yet: backoff is ~30 s
    receiver.status = 200
    assert await env.after(40) == 1
    assert await env.after(3600) == 0
    [n] = await env.outbox()
    assert (n.state, n.attempts) == ("sent", 2)
    assert [a.ok for a in await env.attempts(n.id)] == [False, True]
    assert len(receiver.requests) == 2
    keys = {h["X-Tokiflow-Idempotency-Key"] for _, _, h, _ in receiver.requests}
    assert len(keys) == 1  # the retry carries the same key


async def test_a_permanent_error_is_shown_on_the_channel_and_not_retried(
    env: AlertEnv, aiohttp_server: ServerFactory
) -> None:
    receiver = Receiver(status=404)
    channel_id = await env.channel("webhook", {"url": await hook(aiohttp_server, receiver)})
    m = await env.monitor(period="1h")
    await env.ping(m, "fail")
    await env.deliver()
    for _ in range(5):
        await env.after(3600)
    assert len(receiver.requests) == 1
    [n] = await env.outbox()
    assert n.state == "dead" and n.last_error == "HTTP 404: ok"
    row = await env.db.read(lambda c: channels.get(c, channel_id))
    assert row is not None and row.last_error == "HTTP 404: ok"


async def test_retries_stop_after_the_retry_period_and_the_row_is_marked_dead(
    tmp_path: Path, clock: FakeClock, settings: Settings, aiohttp_server: ServerFactory
) -> None:
    env = await AlertEnv.open(tmp_path / "d" / "t.db", clock, settings.replace(alert_retry_for=600))
    try:
        receiver = Receiver(status=500)
        await env.channel("webhook", {"url": await hook(aiohttp_server, receiver)})
        m = await env.monitor(period="1h")
        await env.ping(m, "fail")
        await env.deliver()
        for _ in range(30):
            await env.after(120)
        [n] = await env.outbox()
        assert n.state == "dead" and n.last_error.startswith("gave up after")
        assert 2 <= len(receiver.requests) <= 6
    finally:
        await env.close()


async def test_pending_and_claimed_notifications_survive_a_restart_and_arrive_once(
    tmp_path: Path, clock: FakeClock, settings: Settings, aiohttp_server: ServerFactory
) -> None:
    path = tmp_path / "d" / "t.db"
    receiver = Receiver()
    url = await hook(aiohttp_server, receiver)
    first = await AlertEnv.open(path, clock, settings)
    await first.channel("webhook", {"url": url})
    a = await first.monitor(name="a", period="1h")
    b = await first.monitor(name="b", period="1h")
    await first.ping(a, "fail")
    await first.ping(b, "fail")
    # One row is claimed (as if a send was in progress) when the process stops; one is pending.
    claim_one = (
        "UPDATE notifications SET state = 'sending', attempts = 1 "
        "WHERE id = (SELECT min(id) FROM notifications)"
    )
    await first.db.write(lambda c: c.execute(claim_one))
    await first.db.close()
    assert receiver.requests == []
    second = await AlertEnv.open(path, clock, settings)
    try:
        await second.deliver()
        await second.after(3600)
        names = sorted(json.loads(body)["monitor_name"] for *_, body in receiver.requests)
        assert names == ["a", "b"]
        assert all(n.state == "sent" for n in await second.outbox())
    finally:
        await second.close()


async def test_re_notifies_while_open_and_unacknowledged_then_stops(
    env: AlertEnv, aiohttp_server: ServerFactory
) -> None:
    receiver = Receiver()
    await env.channel("webhook", {"url": await hook(aiohttp_server, receiver)})
    m = await env.monitor(period="1h")
    await env.set(m, renotify_every=600)
    await env.ping(m, "fail")
    await env.deliver()
    await env.after(599)
    await env.after(1)
    await env.after(600)
    events = [json.loads(b)["event"] for *_, b in receiver.requests]
    assert events == ["open", "renotify", "renotify"]
    titles = [json.loads(b)["title"] for *_, b in receiver.requests]
    assert titles[1] == "[STILL DOWN] backup: the job failed"
    [inc] = await env.db.read(lambda c: incidents.current(c, m.id))
    await env.db.write(lambda c: incident_actions.acknowledge(c, inc.id, env.clock.now()))
    await env.deliver()
    await env.after(3600)
    events = [json.loads(b)["event"] for *_, b in receiver.requests]
    assert events == ["open", "renotify", "renotify", "acknowledged"]
    keys = [json.loads(b)["idempotency_key"] for *_, b in receiver.requests]
    assert len(set(keys)) == 4


async def test_a_slow_channel_does_not_delay_the_others(
    env: AlertEnv, aiohttp_server: ServerFactory
) -> None:
    slow, fast = Receiver(), Receiver()
    slow.gate = asyncio.Event()
    await env.channel("webhook", {"url": await hook(aiohttp_server, slow)}, name="slow")
    await env.channel("webhook", {"url": await hook(aiohttp_server, fast)}, name="fast")
    m = await env.monitor(period="1h")
    await env.ping(m, "fail")
    await env.dispatcher.tick(env.clock.now())
    await asyncio.wait_for(fast.arrived.wait(), 5)
    await asyncio.wait_for(slow.arrived.wait(), 5)
    assert len(fast.requests) == 1 and len(slow.requests) == 1
    for _ in range(200):  # the fast send is recorded while the slow one still hangs
        states = sorted(n.state for n in await env.outbox())
        if states == ["sending", "sent"]:
            break
        await env.clock.settle(0.1)
    assert states == ["sending", "sent"]
    slow.gate.set()
    await env.dispatcher.drain()
    assert all(n.state == "sent" for n in await env.outbox())


async def test_a_monitor_only_alerts_the_channels_it_is_subscribed_to(
    env: AlertEnv, aiohttp_server: ServerFactory
) -> None:
    everyone, opt_in = Receiver(), Receiver()
    await env.channel("webhook", {"url": await hook(aiohttp_server, everyone)})
    extra = await env.channel("webhook", {"url": await hook(aiohttp_server, opt_in)}, default=False)
    plain = await env.monitor(name="plain", period="1h")
    special = await env.monitor(name="special", period="1h")
    await env.db.write(lambda c: channels.set_monitor_channels(c, special.id, [extra]))
    await env.ping(plain, "fail")
    await env.ping(special, "fail")
    await env.deliver()
    assert [json.loads(b)["monitor_name"] for *_, b in everyone.requests] == ["plain"]
    assert [json.loads(b)["monitor_name"] for *_, b in opt_in.requests] == ["special"]


async def test_the_real_loops_deliver_a_missed_run_without_any_tick_by_hand(
    env: AlertEnv, aiohttp_server: ServerFactory
) -> None:
    receiver = Receiver()
    await env.channel("webhook", {"url": await hook(aiohttp_server, receiver)})
    m = await env.monitor(period="1h", grace="1m")
    loops = [asyncio.create_task(env.scheduler.run()), asyncio.create_task(env.dispatcher.run())]
    try:
        await env.ping(m)
        await asyncio.wait_for(env.scheduler.parked.wait(), 5)
        await env.clock.advance(3600)
        await env.clock.advance(60)
        await asyncio.wait_for(receiver.arrived.wait(), 5)
        assert json.loads(receiver.requests[0][3])["incident_kind"] == "MISSED"
    finally:
        for task in loops:
            task.cancel()
        await asyncio.gather(*loops, return_exceptions=True)


@pytest.mark.parametrize(
    ("url", "setting", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/", False, "cloud metadata"),
        ("http://[fe80::1]/x", False, "link-local"),
        ("http://metadata.google.internal/computeMetadata/v1/", False, "cloud metadata host"),
        ("http://127.0.0.1:9/x", True, "private address"),
        ("http://10.1.2.3/x", True, "private address"),
    ],
)
async def test_outbound_requests_to_forbidden_addresses_are_refused_for_good(
    tmp_path: Path, clock: FakeClock, settings: Settings, url: str, setting: bool, reason: str
) -> None:
    env = await AlertEnv.open(
        tmp_path / "d" / "t.db", clock, settings.replace(outbound_block_private=setting)
    )
    try:
        await env.channel("webhook", {"url": url})
        m = await env.monitor(period="1h")
        await env.ping(m, "fail")
        await env.deliver()
        [n] = await env.outbox()
        assert n.state == "dead" and reason in (n.last_error or "")
    finally:
        await env.close()


async def test_a_webhook_body_template_renders_the_documented_variables(
    env: AlertEnv, aiohttp_server: ServerFactory
) -> None:
    receiver = Receiver()
    body = (
        '{"text": {{ title | json }}, "kind": {{ incident_kind | json }}, "sev": "{{ severity }}"}'
    )
    await env.channel("webhook", {"url": await hook(aiohttp_server, receiver), "method": "PUT",
                                  "headers": {"X-Team": "ops"}, "body": body})  # fmt: skip
    m = await env.monitor(name='say "hi"', period="1h")
    await env.ping(m, "fail")
    await env.deliver()
    [(method, _, headers, raw)] = receiver.requests
    assert method == "PUT" and headers["X-Team"] == "ops"
    assert json.loads(raw) == {
        "text": '[DOWN] say "hi": the job failed',
        "kind": "FAIL",
        "sev": "critical",
    }


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "url: is required"),
        ({"url": "ftp://x"}, "url: must be an http"),
        ({"url": "http://x", "method": "DELETE"}, "method: must be one of"),
        ({"url": "http://x", "body": "{{ unclosed"}, "body: template error"),
        ({"url": "http://x", "headers": {"Bad Header": "v"}}, "headers: invalid header"),
        ({"url": "http://x", "colour": "red"}, "colour: unknown setting"),
    ],
)
def test_webhook_configs_are_validated_on_save(config: dict[str, Any], message: str) -> None:
    from tokiflow.channels.base import ChannelConfigError
    from tokiflow.engine.channel_setup import validate

    with pytest.raises(ChannelConfigError, match=message):
        validate("webhook", "hook", config)


async def test_channel_secrets_are_encrypted_at_rest_and_masked_in_listings(env: AlertEnv) -> None:
    from tokiflow.engine.channel_setup import view

    channel_id = await env.channel(
        "webhook", {"url": "http://hooks.example/x", "secret": "hunter2-secret"}
    )
    raw = (env.db.path).read_bytes() + (env.db.path.with_name("tokiflow.db-wal")).read_bytes()
    assert b"hunter2-secret" not in raw and b"hooks.example" not in raw
    row = await env.db.read(lambda c: channels.get(c, channel_id))
    assert row is not None
    shown = view(row, env.sealer)
    assert shown.config["secret"] == "***" and shown.config["url"] == "http://hooks.example/x"


async def test_a_channel_hears_open_before_resolved_even_when_open_needed_retries(
    env: AlertEnv, aiohttp_server: ServerFactory
) -> None:
    receiver = Receiver(status=503)
    await env.channel("webhook", {"url": await hook(aiohttp_server, receiver)})
    m = await env.monitor(period="1h")
    await env.ping(m, "fail")
    await env.deliver()  # the open fails
    await env.ping(m)  # recovered: the resolution is queued behind the unsent open
    assert await env.deliver() == 0
    receiver.status = 200
    await env.after(60)
    events = [json.loads(b)["event"] for *_, b in receiver.requests]
    assert events == ["open", "open", "resolved"]
