"""A failing ping through the running app reaches a webhook with the job's captured output."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tests.engine.alert_env import Receiver
from tests.web.api_helpers import make_org
from tokiflow.clock import FakeClock


async def test_a_failing_job_alerts_with_the_tail_of_its_output_and_secrets_redacted(
    client: TestClient,
    clock: FakeClock,
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]],
) -> None:
    receiver = Receiver()
    hook = str((await aiohttp_server(receiver.app())).make_url("/hook"))
    a = await make_org(client, clock, "acme")
    resp = await client.post("/api/v1/channels", json={"kind": "webhook", "name": "hook",
                                                       "config": {"url": hook}}, headers=a.rw())  # fmt: skip
    assert resp.status == 201, await resp.text()
    m = await (
        await client.post("/api/v1/monitors", json={"name": "backup"}, headers=a.rw())
    ).json()
    output = "starting backup\npassword=hunter2secret\nERROR: disk full\n"
    reply = await client.post(f"/ping/{m['uuid']}/1", data=output.encode())
    assert reply.status == 200
    await asyncio.wait_for(receiver.arrived.wait(), 10)
    alert = json.loads(receiver.requests[0][3])
    assert alert["event"] == "open" and "exit status 1" in alert["reason"]
    assert "ERROR: disk full" in alert["output_tail"]
    assert "hunter2secret" not in alert["output_tail"] and "[REDACTED]" in alert["output_tail"]
