"""The plan's monitor limit on every way a monitor can be added, on a server with no licence
(FREE: 5 monitors) and after a larger licence is installed; existing monitors keep working."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.cli_helpers import run
from tests.conftest import MakeApp, install_test_licence
from tests.web.api_helpers import OrgAccess, make_org
from tests.web.test_api_org import Login, call, setup_org, sign_in
from tokiflow import licensing
from tokiflow.clock import FakeClock
from tokiflow.storage import accounts, monitors, orgs
from tokiflow.web import appkeys, operations
from tokiflow.web.api import routes_account

AiohttpClient = Callable[[web.Application], Awaitable[TestClient]]
LIMIT_WORDS = "limit of 5 monitors on the FREE plan"


async def _free_server(
    aiohttp_client: AiohttpClient, make_app: MakeApp, clock: FakeClock
) -> tuple[TestClient, OrgAccess]:
    client = await aiohttp_client(make_app(licence=None))
    return client, await make_org(client, clock, "acme")


def _trusting(make_app: MakeApp, key: Ed25519PrivateKey) -> web.Application:
    """An app with no licence of its own that trusts `key` (the test installs licences)."""
    app = make_app(licence=None)
    app[operations.LICENCE_KEYS] = licensing.keys_of(key.public_key())
    return app


def _expiring_pro(key: Ed25519PrivateKey, data_dir: Path, clock: FakeClock, days: int) -> None:
    """Install a PRO licence issued today that expires in `days` days."""
    today = clock.now().date()
    text = licensing.issue(key, licensee="Acme", plan="PRO", issued=today,
                           expires=today + dt.timedelta(days=days))  # fmt: skip
    data_dir.mkdir(parents=True, exist_ok=True)
    licensing.licence_path(data_dir).write_text(text)


async def _fill(client: TestClient, org: OrgAccess, n: int, prefix: str = "job") -> list[str]:
    made = []
    for i in range(n):
        body = {"name": f"{prefix} {i}"}
        resp = await client.post("/api/v1/monitors", json=body, headers=org.rw())
        assert resp.status == 201, await resp.text()
        made.append((await resp.json())["uuid"])
    return made


async def _count(client: TestClient) -> int:
    return int(await client.app[appkeys.DB].read(monitors.count_all))


async def test_the_native_api_refuses_the_sixth_monitor_with_403_and_the_reason(
    aiohttp_client: AiohttpClient, make_app: MakeApp, clock: FakeClock
) -> None:
    client, org = await _free_server(aiohttp_client, make_app, clock)
    await _fill(client, org, 5)
    resp = await client.post("/api/v1/monitors", json={"name": "sixth"}, headers=org.rw())
    assert resp.status == 403
    body = await resp.json()
    assert LIMIT_WORDS in body["error"] and "tokiflow license install" in body["error"]
    assert await _count(client) == 5


async def test_the_healthchecks_api_and_create_on_ping_refuse_past_the_limit(
    aiohttp_client: AiohttpClient, make_app: MakeApp, clock: FakeClock
) -> None:
    client, org = await _free_server(aiohttp_client, make_app, clock)
    await _fill(client, org, 5)
    resp = await client.post("/hc/api/v3/checks/", json={"name": "sixth"}, headers=org.rw())
    assert resp.status == 403
    assert LIMIT_WORDS in (await resp.json())["error"]
    ping_key = (await client.app[appkeys.DB].read(lambda c: orgs.by_slug(c, "acme"))).ping_key
    resp = await client.get(f"/ping/{ping_key}/brand-new?create=1")
    assert resp.status == 403
    assert "monitor limit reached" in await resp.text()
    assert await _count(client) == 5


async def test_cronitor_and_sentry_clients_cannot_create_past_the_limit_either(
    aiohttp_client: AiohttpClient, make_app: MakeApp, clock: FakeClock
) -> None:
    client, org = await _free_server(aiohttp_client, make_app, clock)
    await _fill(client, org, 5)
    resp = await client.put(
        "/api/monitors",
        json={"monitors": [{"key": "sixth", "type": "job", "schedule": "0 * * * *"}]},
        headers={"Authorization": "Basic " + base64.b64encode(f"{org.rw_key}:".encode()).decode()},
    )
    assert resp.status == 403, await resp.text()
    assert LIMIT_WORDS in await resp.text()
    assert await _count(client) == 5


async def test_existing_monitors_keep_taking_pings_at_the_limit(
    aiohttp_client: AiohttpClient, make_app: MakeApp, clock: FakeClock
) -> None:
    client, org = await _free_server(aiohttp_client, make_app, clock)
    uuids = await _fill(client, org, 5)
    for uuid in uuids:
        resp = await client.get(f"/ping/{uuid}")
        assert resp.status == 200
    m = await client.app[appkeys.DB].read(lambda c: monitors.by_uuid(c, uuids[-1]))
    assert m is not None and m.status == "up"


async def test_a_licence_installed_while_running_lifts_the_limit_without_a_restart(
    aiohttp_client: AiohttpClient,
    make_app: MakeApp,
    clock: FakeClock,
    data_dir: Path,
) -> None:
    key = Ed25519PrivateKey.generate()
    app = _trusting(make_app, key)
    client = await aiohttp_client(app)
    org = await make_org(client, clock, "acme")
    await _fill(client, org, 5)
    resp = await client.post("/api/v1/monitors", json={"name": "sixth"}, headers=org.rw())
    assert resp.status == 403
    install_test_licence(data_dir, key, "PRO")
    resp = await client.post("/api/v1/monitors", json={"name": "sixth"}, headers=org.rw())
    assert resp.status == 201
    assert await _count(client) == 6


async def test_after_the_grace_period_the_free_limit_is_back_but_nothing_is_removed(
    aiohttp_client: AiohttpClient,
    make_app: MakeApp,
    clock: FakeClock,
    data_dir: Path,
) -> None:
    key = Ed25519PrivateKey.generate()
    _expiring_pro(key, data_dir, clock, days=10)
    app = _trusting(make_app, key)
    client = await aiohttp_client(app)
    org = await make_org(client, clock, "acme")
    uuids = await _fill(client, org, 7)
    await clock.advance(20 * 86400)  # expired, in grace: PRO limits still apply
    await _fill(client, org, 1, prefix="in grace")
    await clock.advance(10 * 86400)  # grace over: FREE
    resp = await client.post("/api/v1/monitors", json={"name": "late"}, headers=org.rw())
    assert resp.status == 403 and LIMIT_WORDS in (await resp.json())["error"]
    assert await _count(client) == 8
    resp = await client.get(f"/ping/{uuids[0]}")
    assert resp.status == 200


def test_the_cli_refuses_the_sixth_monitor_with_a_clear_message(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for i in range(5):
        ok = run("monitors", "add", "--name", f"job {i}", "--period", "1h", data_dir=data)
        assert ok.returncode == 0, ok.stderr
    refused = run("monitors", "add", "--name", "sixth", "--period", "1h", data_dir=data)
    assert refused.returncode != 0
    assert LIMIT_WORDS in refused.stderr
    assert "Traceback" not in refused.stderr


# -- users ----------------------------------------------------------------------------------------

USER_LIMIT_WORDS = "limit of 3 users on the FREE plan"


async def _free_accounts_server(
    aiohttp_client: AiohttpClient, make_app: MakeApp, clock: FakeClock
) -> tuple[TestClient, Login]:
    app = make_app(licence=None)
    routes_account.setup(app)
    client = await aiohttp_client(app)
    _, owner = await setup_org(client, clock)
    return client, owner


async def test_inviting_a_fourth_user_is_refused_but_existing_users_can_join_more_orgs(
    aiohttp_client: AiohttpClient, make_app: MakeApp, clock: FakeClock
) -> None:
    client, owner = await _free_accounts_server(aiohttp_client, make_app, clock)
    org_id = (await client.app[appkeys.DB].read(lambda c: orgs.by_slug(c, "acme"))).id
    await sign_in(client, clock, "two@acme.example", org_id, "editor")
    other = await make_org(client, clock, "other")
    await sign_in(client, clock, "three@other.example", other.org_id, "viewer")
    refused = await call(client, "POST", "/invitations", owner.h(),
                         {"email": "four@acme.example", "role": "viewer"}, 403)  # fmt: skip
    assert USER_LIMIT_WORDS in refused["error"]
    # Someone who already has an account is no new user: inviting them is fine.
    await call(client, "POST", "/invitations", owner.h(),
               {"email": "three@other.example", "role": "viewer"}, 201)  # fmt: skip


async def test_an_invitation_sent_under_the_limit_cannot_create_a_user_past_it(
    aiohttp_client: AiohttpClient, make_app: MakeApp, clock: FakeClock
) -> None:
    client, owner = await _free_accounts_server(aiohttp_client, make_app, clock)
    org_id = (await client.app[appkeys.DB].read(lambda c: orgs.by_slug(c, "acme"))).id
    inv = await call(client, "POST", "/invitations", owner.h(),
                     {"email": "late@acme.example", "role": "viewer"}, 201)  # fmt: skip
    await sign_in(client, clock, "two@acme.example", org_id, "editor")
    await sign_in(client, clock, "three@acme.example", org_id, "editor")
    token = inv["link"].rsplit("/", 1)[1]
    resp = await client.post("/api/v1/auth/invitations/accept",
                             json={"token": token, "password": "a long password"})  # fmt: skip
    assert resp.status == 403
    assert USER_LIMIT_WORDS in (await resp.json())["error"]
    users = await client.app[appkeys.DB].read(accounts.count_users)
    assert users == 3


def test_the_cli_refuses_a_fourth_user(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for i in range(3):
        ok = run("user", "create", "--email", f"u{i}@example.com", "--password-stdin",
                 data_dir=data, input="a long password\n")  # fmt: skip
        assert ok.returncode == 0, ok.stderr
    refused = run("user", "create", "--email", "u3@example.com", "--password-stdin",
                  data_dir=data, input="a long password\n")  # fmt: skip
    assert refused.returncode != 0
    assert USER_LIMIT_WORDS in refused.stderr and "Traceback" not in refused.stderr


async def test_pages_warn_before_the_licence_expires_and_during_its_grace_period(
    aiohttp_client: AiohttpClient,
    make_app: MakeApp,
    clock: FakeClock,
    data_dir: Path,
) -> None:
    key = Ed25519PrivateKey.generate()
    _expiring_pro(key, data_dir, clock, days=2)
    app = _trusting(make_app, key)
    routes_account.setup(app)
    client = await aiohttp_client(app)
    _, owner = await setup_org(client, clock)
    cookie = {"Cookie": owner.h()["Cookie"]}
    html = await (await client.get("/incidents", headers=cookie)).text()
    assert "licence expires on 2026-03-04 (3 days left)" in html  # the warning before expiry
    await clock.advance(4 * 86400)
    html = await (await client.get("/incidents", headers=cookie)).text()
    assert "licence-banner" in html and "licence expired on" in html


# -- plan features ------------------------------------------------------------------------------

DISCORD = {"kind": "discord", "name": "ops chat",
           "config": {"url": "https://discord.example/api/webhooks/1/abc"}}  # fmt: skip


async def test_discord_and_teams_channels_need_pro_and_other_kinds_do_not(
    aiohttp_client: AiohttpClient, make_app: MakeApp, clock: FakeClock, data_dir: Path
) -> None:
    key = Ed25519PrivateKey.generate()
    app = _trusting(make_app, key)
    client = await aiohttp_client(app)
    org = await make_org(client, clock, "acme")
    for kind in ("discord", "teams"):
        resp = await client.post("/api/v1/channels", json={**DISCORD, "kind": kind},
                                 headers=org.rw())  # fmt: skip
        assert resp.status == 403
        error = (await resp.json())["error"]
        assert "part of the PRO plan" in error and "FREE plan" in error
    webhook = {"kind": "webhook", "name": "hook",
               "config": {"url": "https://hooks.example/x"}}  # fmt: skip
    assert (await client.post("/api/v1/channels", json=webhook, headers=org.rw())).status == 201
    install_test_licence(data_dir, key, "PRO")
    resp = await client.post("/api/v1/channels", json=DISCORD, headers=org.rw())
    assert resp.status == 201, await resp.text()


def test_the_cli_refuses_a_discord_channel_on_the_free_plan(tmp_path: Path) -> None:
    data = tmp_path / "data"
    refused = run("channels", "add", "--kind", "discord", "--name", "ops",
                  "--config", '{"url": "https://discord.example/api/webhooks/1/abc"}',
                  data_dir=data)  # fmt: skip
    assert refused.returncode != 0
    assert "part of the PRO plan" in refused.stderr and "Traceback" not in refused.stderr


@pytest.mark.parametrize("licence", [None, "PRO"])
async def test_analytics_charts_need_advanced_analytics_and_the_figures_do_not(
    aiohttp_client: AiohttpClient, make_app: MakeApp, clock: FakeClock, licence: str | None
) -> None:
    app = make_app(licence=licence)
    routes_account.setup(app)
    client = await aiohttp_client(app)
    org, owner = await setup_org(client, clock)
    await _fill(client, org, 1)
    resp = await client.get("/analytics", headers={"Cookie": owner.h()["Cookie"]})
    assert resp.status == 200
    main = (await resp.text()).split('id="main"', 1)[1]
    assert "Health" in main and "Uptime" in main  # the figures, on every plan
    if licence is None:
        assert "data-plan-note" in main and "advanced analytics" in main
        assert 'aria-labelledby="heatmap-title"' not in main
    else:
        assert "data-plan-note" not in main and 'aria-labelledby="heatmap-title"' in main
