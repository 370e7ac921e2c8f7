"""Analytics and captured output through the API."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from tests.web.api_helpers import make_org
from tokiflow.clock import FakeClock


async def test_monitor_stats_report_runs_durations_and_health(
    client: TestClient, clock: FakeClock
) -> None:
    a = await make_org(client, clock, "acme")
    m = await (
        await client.post("/api/v1/monitors", json={"name": "etl", "period": "1h"}, headers=a.rw())
    ).json()
    for seconds in (10, 20, 30):
        await client.get(f"/ping/{m['uuid']}/start")
        await clock.advance(seconds)
        await client.get(f"/ping/{m['uuid']}")
        await clock.advance(3600 - seconds)
    resp = await client.get(f"/api/v1/monitors/{m['uuid']}/stats?days=7", headers=a.ro())
    assert resp.status == 200, await resp.text()
    report = await resp.json()
    assert report["durations"]["runs"] == 3 and report["durations"]["p50"] == 20.0
    assert 0 <= report["health"]["score"] <= 100
    bad = await client.get(f"/api/v1/monitors/{m['uuid']}/stats?days=8", headers=a.ro())
    assert bad.status == 400
    org = await (await client.get("/api/v1/analytics?days=30", headers=a.ro())).json()
    assert "etl" in str(org)
    b = await make_org(client, clock, "other")
    assert (await client.get(f"/api/v1/monitors/{m['uuid']}/stats", headers=b.ro())).status == 404
    assert "etl" not in str(await (await client.get("/api/v1/analytics", headers=b.ro())).json())


async def test_a_runs_output_is_served_redacted_with_its_count_and_as_a_download(
    client: TestClient, clock: FakeClock
) -> None:
    a = await make_org(client, clock, "acme")
    m = await (await client.post("/api/v1/monitors", json={"name": "job"}, headers=a.rw())).json()
    await client.get(f"/ping/{m['uuid']}/start")
    await clock.advance(5)
    output = (
        b"copying files\nAWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\ndone\n"
    )
    await client.post(f"/ping/{m['uuid']}/0", data=output)
    [run] = (await (await client.get(f"/api/v1/monitors/{m['uuid']}/runs", headers=a.ro())).json())[
        "runs"
    ]
    got = await (await client.get(f"/api/v1/runs/{run['id']}/output", headers=a.ro())).json()
    assert got["redactions"] == 1 and "wJalrXUtnFEMI" not in got["text"] and "done" in got["text"]
    assert got["size"] == len(output)
    download = await client.get(got["download_url"], headers=a.ro())
    assert download.status == 200
    assert (
        download.headers["Content-Disposition"]
        == f'attachment; filename="run-{run["id"]}-output.txt"'
    )
    assert download.headers["X-Tokiflow-Redactions"] == "1"
    assert (await download.read()).decode() == got["text"]
    b = await make_org(client, clock, "other")
    assert (await client.get(f"/api/v1/runs/{run['id']}/output", headers=b.ro())).status == 404
    assert (await client.get("/api/v1/runs/999999/output", headers=a.ro())).status == 404
