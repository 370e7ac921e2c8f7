"""The monitor workflows of the web UI on the server side: bulk actions on the list, the run page
with its output viewer and download, the uptime bar, the alert channels of a monitor and the
command palette's data, through the real app, SQLite and output store."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from multidict import MultiDict

from tests.conftest import MakeApp
from tests.web.api_helpers import make_org, make_user
from tests.web.test_ui import create_monitor, owner_of_new_org, page_token, sign_in, ui_app
from tokiflow.clock import FakeClock
from tokiflow.engine.analytics import Interval
from tokiflow.storage import channels, monitors
from tokiflow.web import appkeys
from tokiflow.web.ui import pages_runs, uptime

GITHUB_TOKEN = "ghp_" + "a1B2c3D4e5" * 4  # 40 characters after the prefix


@pytest.fixture
async def uic(
    aiohttp_client: Callable[[web.Application], Awaitable[TestClient]], make_app: MakeApp
) -> TestClient:
    return await aiohttp_client(ui_app(make_app))


async def signed_in_owner(client: TestClient, clock: FakeClock) -> int:
    org_id = await owner_of_new_org(client, clock, "acme", "ops@example.com")
    await sign_in(client, "ops@example.com")
    return org_id


async def monitor(client: TestClient, uuid: str) -> monitors.Monitor:
    m = await client.app[appkeys.DB].read(lambda c: monitors.by_uuid(c, uuid))
    assert m is not None
    return m


async def audit_actions(client: TestClient, action: str) -> list[str]:
    rows = await client.app[appkeys.DB].read(
        lambda c: c.execute(
            "SELECT target_id FROM audit_log WHERE action = ? ORDER BY id", (action,)
        ).fetchall()
    )
    return [r[0] for r in rows]


async def bulk(client: TestClient, token: str | None, uuids: list[str], action: str,
               **fields: str) -> Any:  # fmt: skip
    data: MultiDict[str] = MultiDict([("action", action), *(("uuid", u) for u in uuids)])
    if token is not None:
        data.add("csrf_token", token)
    for k, v in fields.items():
        data.add(k, v)
    return await client.post("/monitors/bulk", data=data, allow_redirects=False)


def flash_of(resp: Any) -> str:
    from urllib.parse import unquote

    cookie = resp.cookies.get("tokiflow_flash")
    return unquote(cookie.value) if cookie else ""


# -- bulk actions -------------------------------------------------------------------------------


async def test_bulk_pause_resume_and_tagging_change_only_the_ticked_monitors_with_audit(
    uic: TestClient, clock: FakeClock
) -> None:
    await signed_in_owner(uic, clock)
    a = await create_monitor(uic, name="Alpha job")
    b = await create_monitor(uic, name="Beta job")
    c = await create_monitor(uic, name="Gamma job")
    html = await (await uic.get("/monitors")).text()
    assert html.count("data-bulk-item") == 3 and 'action="/monitors/bulk"' in html
    assert "data-bulk-all" in html and 'name="page_uuid"' in html
    token = await page_token(uic, "/monitors")

    resp = await bulk(uic, token, [a, b], "pause", next="/monitors?q=job")
    assert (resp.status, resp.headers["Location"]) == (303, "/monitors?q=job")
    assert flash_of(resp) == "Paused 2 monitors."
    assert [(await monitor(uic, u)).status for u in (a, b, c)] == ["paused", "paused", "new"]
    assert sorted(await audit_actions(uic, "monitor.pause")) == sorted([a, b])

    resp = await bulk(uic, token, [a, b, c], "resume")
    assert flash_of(resp) == "Resumed 2 monitors. 1 already was that way."
    assert [(await monitor(uic, u)).status for u in (a, b, c)] == ["new", "new", "new"]
    assert sorted(await audit_actions(uic, "monitor.resume")) == sorted([a, b])

    resp = await bulk(uic, token, [a, c], "tag_add", tag="nightly")
    assert flash_of(resp) == "Tagged 2 monitors (added tag “nightly”)."
    assert [(await monitor(uic, u)).tags for u in (a, b, c)] == [
        "db prod nightly", "db prod", "db prod nightly"]  # fmt: skip
    resp = await bulk(uic, token, [a, b], "tag_remove", tag="db")
    assert [(await monitor(uic, u)).tags for u in (a, b, c)] == [
        "prod nightly", "prod", "db prod nightly"]  # fmt: skip
    assert len(await audit_actions(uic, "monitor.update")) == 4
    # The list filters by the new tag at once.
    listed = await (await uic.get("/monitors?tag=nightly")).text()
    assert "Alpha job" in listed and "Gamma job" in listed and "Beta job" not in listed


async def test_select_all_on_this_page_works_without_javascript(
    uic: TestClient, clock: FakeClock
) -> None:
    await signed_in_owner(uic, clock)
    uuids = [await create_monitor(uic, name=f"Job {i}") for i in range(3)]
    token = await page_token(uic, "/monitors")
    # A plain form post: the header box plus the page's hidden list, no row ticked by script.
    resp = await bulk(uic, token, [], "pause", all_on_page="1")
    assert resp.status == 303  # (no uuid field: only the page list below counts)
    data: MultiDict[str] = MultiDict([("csrf_token", token), ("action", "pause"),
                                      ("all_on_page", "1")])  # fmt: skip
    for u in uuids:
        data.add("page_uuid", u)
    resp = await uic.post("/monitors/bulk", data=data, allow_redirects=False)
    assert flash_of(resp) == "Paused 3 monitors."
    assert {(await monitor(uic, u)).status for u in uuids} == {"paused"}
    # Without the header box, the page list alone selects nothing.
    data = MultiDict([("csrf_token", token), ("action", "resume"), ("page_uuid", uuids[0])])
    resp = await uic.post("/monitors/bulk", data=data, allow_redirects=False)
    assert flash_of(resp) == "Select at least one monitor first."
    assert (await monitor(uic, uuids[0])).status == "paused"


async def test_bulk_delete_asks_for_confirmation_first(uic: TestClient, clock: FakeClock) -> None:
    await signed_in_owner(uic, clock)
    a = await create_monitor(uic, name="Alpha job")
    b = await create_monitor(uic, name="Beta job")
    keep = await create_monitor(uic, name="Keeper")
    token = await page_token(uic, "/monitors")
    resp = await bulk(uic, token, [a, b], "delete", next="/monitors?sort=name")
    html = await resp.text()
    assert resp.status == 200 and "Delete 2 monitors?" in html
    assert "Alpha job" in html and "Beta job" in html and "Keeper" not in html
    assert 'name="confirm" value="1"' in html and 'href="/monitors?sort=name"' in html
    assert len(await uic.app[appkeys.DB].read(lambda c: monitors.list_for_org(c))) == 3

    confirm = re.findall(r'name="uuid" value="([^"]+)"', html)
    resp = await bulk(uic, token_of_page(html), confirm, "delete", confirm="1",
                      next="/monitors?sort=name")  # fmt: skip
    assert (resp.status, resp.headers["Location"]) == (303, "/monitors?sort=name")
    assert flash_of(resp) == "Deleted 2 monitors."
    left = await uic.app[appkeys.DB].read(lambda c: monitors.list_for_org(c))
    assert [m.uuid for m in left] == [keep]
    assert sorted(await audit_actions(uic, "monitor.delete")) == sorted([a, b])
    # The scheduler no longer watches them.
    assert (await uic.get(f"/ping/{a}")).status == 404


def token_of_page(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found
    return found.group(1)


async def test_bulk_actions_refuse_a_form_without_the_sessions_token(
    uic: TestClient, clock: FakeClock
) -> None:
    await signed_in_owner(uic, clock)
    a = await create_monitor(uic, name="Alpha job")
    for token in (None, "", "forged-token"):
        for action, extra in (("pause", {}), ("delete", {"confirm": "1"}),
                              ("tag_add", {"tag": "x"})):  # fmt: skip
            resp = await bulk(uic, token, [a], action, **extra)
            assert resp.status == 403, (token, action)
    m = await monitor(uic, a)
    assert (m.status, m.tags) == ("new", "db prod")


async def test_a_viewer_sees_no_checkboxes_and_cannot_bulk_change(
    uic: TestClient, clock: FakeClock
) -> None:
    org_id = await signed_in_owner(uic, clock)
    a = await create_monitor(uic, name="Alpha job")
    await make_user(uic, clock, "look@example.com", org_id, "viewer")
    uic.session.cookie_jar.clear()
    await sign_in(uic, "look@example.com")
    html = await (await uic.get("/monitors")).text()
    assert "Alpha job" in html
    assert "data-bulk-item" not in html and "/monitors/bulk" not in html
    token = await page_token(uic, "/monitors")
    resp = await bulk(uic, token, [a], "pause")
    assert resp.status == 403 and "may not do this" in await resp.text()
    assert (await monitor(uic, a)).status == "new"


async def test_bulk_actions_never_touch_another_organisations_monitors(
    uic: TestClient, clock: FakeClock
) -> None:
    other = await make_org(uic, clock, "other")
    resp = await uic.post("/api/v1/monitors", json={"name": "Theirs", "period": "1h"},
                          headers=other.rw())  # fmt: skip
    theirs = (await resp.json())["uuid"]
    await signed_in_owner(uic, clock)
    mine = await create_monitor(uic, name="Mine")
    token = await page_token(uic, "/monitors")
    resp = await bulk(uic, token, [mine, theirs], "pause")
    assert flash_of(resp) == "Paused 1 monitor. 1 not found."
    resp = await bulk(uic, token, [theirs], "delete", confirm="1")
    assert resp.status == 404 and "Theirs" not in await resp.text()
    resp = await bulk(uic, token, [theirs.upper()], "tag_add", tag="pwned")
    assert resp.status == 404
    resp = await bulk(uic, token, [theirs], "delete")  # the confirmation page does not list it
    assert resp.status == 404 and "Theirs" not in await resp.text()
    m = await monitor(uic, theirs)
    assert (m.status, m.tags) == ("new", "")
    assert (await monitor(uic, mine)).status == "paused"


async def test_bulk_actions_explain_bad_input(uic: TestClient, clock: FakeClock) -> None:
    await signed_in_owner(uic, clock)
    a = await create_monitor(uic, name="Alpha job")
    token = await page_token(uic, "/monitors")
    resp = await bulk(uic, token, [a], "explode")
    assert resp.status == 400 and "Choose what to do" in await resp.text()
    resp = await bulk(uic, token, [], "pause")
    assert flash_of(resp) == "Select at least one monitor first."
    for tag in ("", "two words", "x" * 101):
        resp = await bulk(uic, token, [a], "tag_add", tag=tag)
        assert resp.status == 303 and "Type the tag" in flash_of(resp), tag
    resp = await bulk(uic, token, [f"{i:08d}-0000-4000-8000-000000000000" for i in range(501)],
                      "pause")  # fmt: skip
    assert resp.status == 400 and "At most 500" in await resp.text()
    for bad_next in ("//evil.example/x", "https://evil.example/", "/settings"):
        resp = await bulk(uic, token, [a], "pause", next=bad_next)
        assert resp.headers["Location"] == "/monitors", bad_next
    m = await monitor(uic, a)
    assert (m.status, m.tags) == ("paused", "db prod")


async def test_the_monitor_page_has_pause_and_resume_buttons(
    uic: TestClient, clock: FakeClock
) -> None:
    await signed_in_owner(uic, clock)
    a = await create_monitor(uic, name="Alpha job")
    html = await (await uic.get(f"/monitors/{a}")).text()
    assert f'action="/monitors/{a}/pause"' in html
    token = token_of_page(html)
    await uic.post(f"/monitors/{a}/pause", data={"csrf_token": token})
    html = await (await uic.get(f"/monitors/{a}")).text()
    assert f'action="/monitors/{a}/resume"' in html and f"/monitors/{a}/pause" not in html


# -- the run page -------------------------------------------------------------------------------


async def finished_run(client: TestClient, clock: FakeClock, uuid: str, body: bytes,
                       end: str = "") -> int:  # fmt: skip
    """Start a run, let 3 s pass, finish it with `body` (path suffix `end`); the run's id."""
    assert (await client.post(f"/ping/{uuid}/start")).status == 200
    await clock.advance(3)
    resp = await client.post(f"/ping/{uuid}{end}", data=body)
    assert resp.status == 200, await resp.text()
    run_id: int = await client.app[appkeys.DB].read(
        lambda c: c.execute(
            "SELECT r.id FROM runs r JOIN monitors m ON m.id = r.monitor_id WHERE m.uuid = ? "
            "ORDER BY r.id DESC LIMIT 1",
            (uuid,),
        ).fetchone()[0]
    )
    return run_id


async def test_a_runs_json_output_is_pretty_printed_highlighted_and_redacted(
    uic: TestClient, clock: FakeClock
) -> None:
    await signed_in_owner(uic, clock)
    uuid = await create_monitor(uic, name="Exporter")
    body = json.dumps({"rows": 42, "ok": True, "token": GITHUB_TOKEN, "note": None}).encode()
    run_id = await finished_run(uic, clock, uuid, body, "/0")
    detail = await (await uic.get(f"/monitors/{uuid}")).text()
    assert f'href="/monitors/{uuid}/runs/{run_id}"' in detail and "· output" in detail

    resp = await uic.get(f"/monitors/{uuid}/runs/{run_id}")
    html = await resp.text()
    assert resp.status == 200
    assert GITHUB_TOKEN not in html
    assert 'data-status="success"' in html and "3.00 s" in html
    assert re.search(r"<dt>Exit status</dt><dd[^>]*>0</dd>", html)
    # Pretty-printed, one key per numbered line, tokens classed for colour.
    assert '<span class="l" data-n="1">{</span>' in html
    assert '<span class="l" data-n="2">  <span class="j-k">&#34;rows&#34;</span>: ' \
           '<span class="j-n">42</span>,</span>' in html  # fmt: skip
    assert '<span class="j-l">true</span>' in html and '<span class="j-l">null</span>' in html
    assert '<span class="j-s">&#34;<mark class="redacted"' in html
    assert "1 secret redacted by the server" in html
    assert "JSON, pretty-printed" in html
    as_sent = await (await uic.get(f"/monitors/{uuid}/runs/{run_id}?as_sent=1")).text()
    assert 'data-n="2"' not in as_sent and "JSON, as sent" in as_sent
    assert 'data-copy="#output"' in html and f'href="/monitors/{uuid}/runs/{run_id}/output"' in html


async def test_log_output_is_highlighted_by_level_and_downloads_as_a_file(
    uic: TestClient, clock: FakeClock
) -> None:
    await signed_in_owner(uic, clock)
    uuid = await create_monitor(uic, name="Backup")
    log = (
        "2026-03-02 12:00:00 INFO starting backup\n"
        "2026-03-02 12:00:01 WARNING disk 91% full\n"
        f"2026-03-02 12:00:02 ERROR upload failed: token={GITHUB_TOKEN}\n"
        "plain line with <b>markup</b> & stuff\n"
        '{"level": "error", "msg": "structured"}\n'
        "\x1b[31mcoloured\x1b[0m\n"
    ).encode()
    run_id = await finished_run(uic, clock, uuid, log, "/1")
    html = await (await uic.get(f"/monitors/{uuid}/runs/{run_id}")).text()
    assert '<span class="l lv-info" data-n="1">' in html
    assert '<span class="l lv-warn" data-n="2">' in html
    assert re.search(
        r'<span class="l lv-error" data-n="3">[^\n]*token=<mark class="redacted"', html
    )
    assert "plain line with &lt;b&gt;markup&lt;/b&gt; &amp; stuff" in html
    assert '<span class="l lv-error" data-n="5">{<span class="j-k">&#34;level&#34;</span>' in html
    assert '<span class="l" data-n="6">coloured</span>' in html
    assert 'data-status="fail"' in html and "6 lines" in html
    assert "1 secret redacted by the server" in html and GITHUB_TOKEN not in html

    resp = await uic.get(f"/monitors/{uuid}/runs/{run_id}/output")
    assert resp.status == 200
    assert resp.headers["Content-Disposition"] == f'attachment; filename="backup-run-{run_id}.log"'
    assert resp.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    raw = await resp.read()
    assert raw.startswith(b"2026-03-02 12:00:00 INFO starting backup\n")
    assert b"token=[REDACTED]\n" in raw and GITHUB_TOKEN.encode() not in raw
    assert b"\x1b[31m" in raw  # the download is the output as stored, not as shown


async def test_without_a_plan_that_has_the_viewer_the_output_is_offered_as_a_download(
    aiohttp_client: Callable[[web.Application], Awaitable[TestClient]],
    make_app: MakeApp,
    clock: FakeClock,
) -> None:
    client = await aiohttp_client(ui_app(make_app, licence=None))  # FREE: no output viewer
    await signed_in_owner(client, clock)
    uuid = await create_monitor(client, name="Backup")
    run_id = await finished_run(client, clock, uuid, b"INFO all good\n")
    html = await (await client.get(f"/monitors/{uuid}/runs/{run_id}")).text()
    assert "The output viewer is part of the PRO plan" in html and "14 bytes" in html
    assert 'id="output"' not in html and "all good" not in html
    resp = await client.get(f"/monitors/{uuid}/runs/{run_id}/output")
    assert resp.status == 200 and await resp.read() == b"INFO all good\n"


async def test_a_damaged_output_file_is_explained_not_a_server_error(
    uic: TestClient, clock: FakeClock
) -> None:
    await signed_in_owner(uic, clock)
    uuid = await create_monitor(uic, name="Backup")
    run_id = await finished_run(uic, clock, uuid, b"all good\n")
    m = await monitor(uic, uuid)
    path = uic.app[appkeys.OUTPUTS].path(m.id, m.n_pings)
    blob = bytearray(path.read_bytes())
    blob[-1] ^= 0x01  # one bit flipped on disk: the seal no longer opens
    path.write_bytes(bytes(blob))
    resp = await uic.get(f"/monitors/{uuid}/runs/{run_id}")
    html = await resp.text()
    assert resp.status == 200 and "data-output-problem" in html
    assert "This output cannot be shown" in html and str(path) not in html
    download = await uic.get(f"/monitors/{uuid}/runs/{run_id}/output")
    assert download.status == 409 and "This output cannot be shown" in await download.text()
    path.unlink()
    resp = await uic.get(f"/monitors/{uuid}/runs/{run_id}")
    assert resp.status == 200 and "This output cannot be shown" in await resp.text()


async def test_large_output_is_shown_a_page_of_lines_at_a_time(
    aiohttp_client: Callable[[web.Application], Awaitable[TestClient]],
    make_app: MakeApp,
    clock: FakeClock,
) -> None:
    client = await aiohttp_client(
        ui_app(make_app, output_capture_limit=4 * 1024 * 1024, ping_body_limit=4 * 1024 * 1024)
    )
    await signed_in_owner(client, clock)
    uuid = await create_monitor(client, name="Big")
    body = "".join(f"line {i} of the output\n" for i in range(1, 25_001)).encode()
    run_id = await finished_run(client, clock, uuid, body)
    base = f"/monitors/{uuid}/runs/{run_id}"
    html = await (await client.get(base)).text()
    assert "25,000 lines" in html and "Lines 24,001–25,000 of 25,000" in html
    assert html.count('class="l"') == pages_runs.LINES_PER_PAGE
    assert 'data-n="25000">line 25000 of the output<' in html and 'data-n="24000"' not in html
    assert f'href="{base}?page=24"' in html and f'href="{base}?page=1"' in html
    assert "Show all" not in html  # more lines than a page may hold at once
    assert len(html) < 200_000
    first = await (await client.get(base + "?page=1")).text()
    assert 'data-n="1">line 1 of the output<' in first and 'data-n="1001"' not in first
    assert "Later lines" in first
    clamped = await (await client.get(base + "?page=999")).text()
    assert "Lines 24,001–25,000" in clamped
    assert (await client.get(base + "?page=abc")).status == 200
    download = await client.get(base + "/output")
    assert await download.read() == body


async def test_show_all_renders_every_line_up_to_the_cap(uic: TestClient, clock: FakeClock) -> None:
    await signed_in_owner(uic, clock)
    uuid = await create_monitor(uic, name="Medium")
    body = "".join(f"{i}\n" for i in range(1, 1_201)).encode()  # under the default limits
    run_id = await finished_run(uic, clock, uuid, body)
    base = f"/monitors/{uuid}/runs/{run_id}"
    html = await (await uic.get(base)).text()
    assert "Lines 1,001–1,200 of 1,200" in html and f'href="{base}?all=1"' in html
    everything = await (await uic.get(base + "?all=1")).text()
    assert everything.count('class="l"') == 1_200 and "All 1,200 lines" in everything
    assert f'href="{base}">Show the last lines only' in everything


async def test_a_run_without_output_and_runs_elsewhere_are_handled(
    uic: TestClient, clock: FakeClock
) -> None:
    await signed_in_owner(uic, clock)
    uuid = await create_monitor(uic, name="Quiet")
    other_uuid = await create_monitor(uic, name="Other")
    run_id = await finished_run(uic, clock, uuid, b"")
    html = await (await uic.get(f"/monitors/{uuid}/runs/{run_id}")).text()
    assert "No output was captured for this run" in html and "data-copy" not in html
    assert (await uic.get(f"/monitors/{uuid}/runs/{run_id}/output")).status == 404
    for path in (f"/monitors/{other_uuid}/runs/{run_id}", f"/monitors/{uuid}/runs/999",
                 f"/monitors/{uuid}/runs/abc", f"/monitors/{uuid}/runs/{'9' * 30}",
                 f"/monitors/{uuid}/runs/-1", f"/monitors/{uuid}/runs/²",
                 f"/monitors/{uuid}/runs/{2**63}/output",
                 f"/monitors/{other_uuid}/runs/{run_id}/output"):  # fmt: skip
        assert (await uic.get(path)).status == 404, path


async def test_another_organisations_run_is_not_found(uic: TestClient, clock: FakeClock) -> None:
    other = await make_org(uic, clock, "other")
    resp = await uic.post("/api/v1/monitors", json={"name": "Theirs", "period": "1h"},
                          headers=other.rw())  # fmt: skip
    theirs = (await resp.json())["uuid"]
    run_id = await finished_run(uic, clock, theirs, b"their secret output")
    await signed_in_owner(uic, clock)
    for path in (f"/monitors/{theirs}/runs/{run_id}", f"/monitors/{theirs}/runs/{run_id}/output"):
        resp = await uic.get(path)
        assert resp.status == 404 and "their secret output" not in await resp.text()


def test_the_output_viewer_splits_decodes_and_marks_lines() -> None:
    viewed = pages_runs.view_output(b"a\r\nb\xff\n\n", pageno=None, show_all=False)
    assert viewed.total == 3 and not viewed.is_json
    assert str(viewed.html) == (
        '<span class="l" data-n="1">a</span>\n<span class="l" data-n="2">b\ufffd</span>\n'
        '<span class="l" data-n="3"></span>'
    )
    assert pages_runs.pretty_json("[1, 2") is None and pages_runs.pretty_json("12") is None
    assert pages_runs.pretty_json('{"a": [1]}') == '{\n  "a": [\n    1\n  ]\n}'
    assert pages_runs.level_of("Traceback (most recent call last):") == "lv-error"
    assert pages_runs.level_of("level=warn msg=x") == "lv-warn"
    assert pages_runs.level_of("an error in lower case") == ""
    empty = pages_runs.view_output(b"", pageno=None, show_all=False)
    assert (empty.total, empty.first, empty.last) == (1, 1, 1)


# -- uptime bar ---------------------------------------------------------------------------------

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("spans", "expected"),
    [
        ([("up", 0, 48)], [(86400, 0), (86400, 0)]),
        ([("up", 6, 18), ("down", 18, 30), ("up", 30, 48)], [(43200, 21600), (64800, 21600)]),
        ([("new", 0, 12), ("paused", 12, 30), ("late", 30, 36)], [(0, 0), (21600, 0)]),
        ([("down", 23, 25)], [(0, 3600), (0, 3600)]),
    ],
)
def test_uptime_is_split_at_day_boundaries(
    spans: list[tuple[str, int, int]], expected: list[tuple[int, int]]
) -> None:
    hour = dt.timedelta(hours=1)
    intervals = [Interval(s, T0 + a * hour, T0 + b * hour, None) for s, a, b in spans]
    starts = [T0, T0 + 24 * hour, T0 + 48 * hour]
    assert uptime.split_by_day(intervals, starts) == [(float(u), float(d)) for u, d in expected]


def test_uptime_levels_and_percentages_never_round_downtime_to_100() -> None:
    assert uptime.level(100.0)[0] == "u-full" and uptime.level(99.5)[0] == "u-high"
    assert uptime.level(96)[0] == "u-mid" and uptime.level(3)[0] == "u-low"
    assert uptime.level(None)[0] == "u-none"
    assert uptime.show_percent(99.999) == "99.99%" and uptime.show_percent(50.0) == "50%"
    assert uptime.show_percent(None) == "no data"


async def test_the_monitor_page_draws_90_days_of_uptime(uic: TestClient, clock: FakeClock) -> None:
    await signed_in_owner(uic, clock)
    uuid = await create_monitor(uic, name="Daily", period="1d", grace="1h")
    assert (await uic.get(f"/ping/{uuid}")).status == 200  # up from 2026-03-02 12:00
    await clock.advance(86400 + 3600)  # missed: down from 2026-03-03 13:00
    assert (await monitor(uic, uuid)).status == "down"
    await clock.advance(3 * 3600)  # back up at 16:00 after 3 hours down
    assert (await uic.get(f"/ping/{uuid}")).status == 200
    await clock.advance(86400)  # 2026-03-04 16:00
    html = await (await uic.get(f"/monitors/{uuid}")).text()
    bar = re.search(r'<svg class="uptime"[^>]*role="img"[^>]*>.*?</svg>', html, re.S)
    assert bar, html
    cells = re.findall(r'<rect class="(u-[a-z]+)"[^>]*data-day="([\d-]+)"><title>([^<]+)</title>',
                       bar.group())  # fmt: skip
    assert len(cells) == 90
    by_day = {day: (css, title) for css, day, title in cells}
    assert cells[-1][1] == "2026-03-04"
    assert cells[0][1] == (dt.date(2026, 3, 4) - dt.timedelta(days=89)).isoformat()
    assert by_day["2026-03-01"] == ("u-none", "2026-03-01: no data")
    assert by_day["2026-03-02"] == ("u-full", "2026-03-02: 100% up")
    assert by_day["2026-03-03"] == ("u-low", "2026-03-03: 87.50% up (3.0 h down)")
    assert by_day["2026-03-04"] == ("u-full", "2026-03-04: 100% up")
    assert 'aria-label="Uptime per day over the last 90 days: ' in bar.group()
    assert "1 day with downtime" in bar.group()
    assert re.search(r"data-uptime-total>9\d\.\d+%<", html)


# -- alert channels of a monitor ----------------------------------------------------------------


async def test_the_form_offers_the_orgs_channels_and_the_choice_decides_who_is_alerted(
    uic: TestClient, clock: FakeClock
) -> None:
    org_id = await owner_of_new_org(uic, clock, "acme", "ops@example.com")
    acme = await make_org(uic, clock, "acme")
    ids = {}
    for name, default in (("ops", True), ("db-team", True), ("quiet", False)):
        resp = await uic.post("/api/v1/channels", headers=acme.rw(), json={
            "kind": "webhook", "name": name, "default": default,
            "config": {"url": f"https://hooks.example.com/{name}"}})  # fmt: skip
        assert resp.status == 201, await resp.text()
        ids[name] = int((await resp.json())["id"])
    other = await make_org(uic, clock, "other")
    resp = await uic.post("/api/v1/channels", headers=other.rw(), json={
        "kind": "webhook", "name": "theirs", "config": {"url": "https://hooks.example.com/x"}})  # fmt: skip
    theirs = int((await resp.json())["id"])
    assert org_id == acme.org_id
    await sign_in(uic, "ops@example.com")

    html = await (await uic.get("/monitors/new")).text()
    boxes = dict(re.findall(r'name="channel" value="(\d+)" ?(checked)?', html))
    assert boxes == {str(ids["ops"]): "checked", str(ids["db-team"]): "checked",
                     str(ids["quiet"]): ""}  # fmt: skip
    assert "theirs" not in html

    token = await page_token(uic, "/monitors/new")
    form = MultiDict([("csrf_token", token), ("name", "Nightly"), ("kind", "period"),
                      ("period", "1h"), ("grace", "5m"), ("channels_shown", "1"),
                      ("channel", str(ids["quiet"])), ("channel", str(ids["db-team"]))])  # fmt: skip
    resp = await uic.post("/monitors/new", data=form, allow_redirects=False)
    assert resp.status == 303, await resp.text()
    uuid = resp.headers["Location"].rsplit("/", 1)[1]
    m = await monitor(uic, uuid)
    bound = await uic.app[appkeys.DB].read(
        lambda c: [r.name for r in channels.for_monitor(c, m.id)]
    )
    assert bound == ["db-team", "quiet"]
    assert len(await audit_actions(uic, "monitor.channels")) == 1
    edit = await (await uic.get(f"/monitors/{uuid}/edit")).text()
    assert dict(re.findall(r'name="channel" value="(\d+)" ?(checked)?', edit)) == {
        str(ids["ops"]): "", str(ids["db-team"]): "checked", str(ids["quiet"]): "checked"}  # fmt: skip

    # Used: a failure alerts the chosen channels only.
    await clock.advance(1)
    assert (await uic.get(f"/ping/{uuid}/fail")).status == 200
    alerted = await uic.app[appkeys.DB].read(lambda c: sorted(r[0] for r in c.execute(
        "SELECT channel_id FROM notifications WHERE event = 'open'")))  # fmt: skip
    assert alerted == sorted([ids["db-team"], ids["quiet"]])

    # Saving the form unchanged changes (and audits) nothing; unticking all is allowed.
    form = MultiDict([("csrf_token", token), ("name", "Nightly"), ("kind", "period"),
                      ("period", "1h"), ("grace", "5m"), ("channels_shown", "1"),
                      ("channel", str(ids["quiet"])), ("channel", str(ids["db-team"]))])  # fmt: skip
    resp = await uic.post(f"/monitors/{uuid}/edit", data=form, allow_redirects=False)
    assert resp.status == 303 and len(await audit_actions(uic, "monitor.channels")) == 1
    form = MultiDict([("csrf_token", token), ("name", "Nightly"), ("kind", "period"),
                      ("period", "1h"), ("grace", "5m"), ("channels_shown", "1")])  # fmt: skip
    resp = await uic.post(f"/monitors/{uuid}/edit", data=form, allow_redirects=False)
    assert resp.status == 303
    assert await uic.app[appkeys.DB].read(lambda c: channels.for_monitor(c, m.id)) == []

    # Another organisation's channel is refused next to the field, and nothing changes.
    form.add("channel", str(theirs))
    form["name"] = "Renamed"
    resp = await uic.post(f"/monitors/{uuid}/edit", data=form)
    html = await resp.text()
    assert resp.status == 400
    assert re.search(rf'id="channels-error"[^>]*>no channel #{theirs} in this organisation<', html)
    assert await uic.app[appkeys.DB].read(lambda c: channels.for_monitor(c, m.id)) == []
    assert (await monitor(uic, uuid)).name == "Nightly"
    # So is a number no channel can have; a digit that is no number ("²") is left out.
    form["channel"] = "9" * 30
    resp = await uic.post(f"/monitors/{uuid}/edit", data=form)
    assert resp.status == 400 and f"no channel #{'9' * 30}" in await resp.text()
    form["channel"] = "²"
    resp = await uic.post(f"/monitors/{uuid}/edit", data=form, allow_redirects=False)
    assert resp.status == 303 and (await monitor(uic, uuid)).name == "Renamed"
    assert await uic.app[appkeys.DB].read(lambda c: channels.for_monitor(c, m.id)) == []
    form["name"] = "Nightly"
    resp = await uic.post(f"/monitors/{uuid}/edit", data=form, allow_redirects=False)
    assert resp.status == 303
    form["channel"] = str(theirs)
    form["name"] = "Renamed"
    form["csrf_token"] = token
    resp = await uic.post("/monitors/new", data=form)
    assert resp.status == 400 and "Renamed" not in [
        m.name for m in await uic.app[appkeys.DB].read(lambda c: monitors.list_for_org(c))
    ]

    # A form without the channel list (older page) leaves the binding alone.
    await uic.app[appkeys.DB].write(lambda c: channels.set_monitor_channels(c, m.id, [ids["ops"]]))
    form = MultiDict([("csrf_token", token), ("name", "Nightly 2"), ("kind", "period"),
                      ("period", "1h"), ("grace", "5m")])  # fmt: skip
    assert (
        await uic.post(f"/monitors/{uuid}/edit", data=form, allow_redirects=False)
    ).status == 303
    bound = await uic.app[appkeys.DB].read(
        lambda c: [r.name for r in channels.for_monitor(c, m.id)]
    )
    assert bound == ["ops"]


async def test_without_channels_the_form_points_to_the_channel_settings(
    uic: TestClient, clock: FakeClock
) -> None:
    await signed_in_owner(uic, clock)
    html = await (await uic.get("/monitors/new")).text()
    assert "No alert channels yet" in html and 'href="/settings/channels"' in html
    assert 'name="channels_shown"' not in html


# -- command palette ------------------------------------------------------------------------------


async def test_the_palette_lists_pages_actions_and_only_the_orgs_monitors(
    uic: TestClient, clock: FakeClock
) -> None:
    other = await make_org(uic, clock, "other")
    await uic.post("/api/v1/monitors", json={"name": "Nightly theirs", "period": "1h"},
                   headers=other.rw())  # fmt: skip
    org_id = await signed_in_owner(uic, clock)
    mine = await create_monitor(uic, name="Nightly backup")
    for i in range(24):
        await create_monitor(uic, name=f"Report {i:02d}")

    data = await (await uic.get("/ui/palette?q=night")).json()
    titles = [(i["kind"], i["title"]) for i in data["items"]]
    assert titles == [("monitor", "Nightly backup")]
    assert data["items"][0]["href"] == f"/monitors/{mine}"
    assert data["items"][0]["detail"] == "new · nightly-backup"

    everything = (await (await uic.get("/ui/palette")).json())["items"]
    pages = [i["href"] for i in everything if i["kind"] == "page"]
    assert pages[:3] == ["/", "/monitors", "/incidents"] and "/monitors/new" in pages
    assert all(p in {r.get_info().get("path") for r in uic.app.router.resources()} for p in pages)
    assert [i["action"] for i in everything if i["kind"] == "action"] == ["theme"]
    assert sum(1 for i in everything if i["kind"] == "monitor") == 20
    reports = (await (await uic.get("/ui/palette?q=report")).json())["items"]
    found = [i["title"] for i in reports if i["kind"] == "monitor"]
    assert found == [f"Report {i:02d}" for i in range(20)]
    assert [i["href"] for i in (await (await uic.get("/ui/palette?q=go+incid")).json())["items"]] \
        == ["/incidents"]  # fmt: skip
    theme = (await (await uic.get("/ui/palette?q=dark")).json())["items"]
    assert [i["kind"] for i in theme] == ["action"]
    # LIKE wildcards in the text are literal.
    assert (await (await uic.get("/ui/palette?q=%25")).json())["items"] == []

    # A viewer gets no "New monitor"; a signed-out visitor gets nothing.
    await make_user(uic, clock, "look@example.com", org_id, "viewer")
    uic.session.cookie_jar.clear()
    await sign_in(uic, "look@example.com")
    viewer_items = (await (await uic.get("/ui/palette?q=new")).json())["items"]
    assert "/monitors/new" not in [i.get("href") for i in viewer_items]
    uic.session.cookie_jar.clear()
    resp = await uic.get("/ui/palette?q=night", allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith("/login")


async def test_every_page_carries_the_palette_and_the_help_names_it(
    uic: TestClient, clock: FakeClock
) -> None:
    await signed_in_owner(uic, clock)
    html = await (await uic.get("/monitors")).text()
    assert '<dialog id="palette"' in html and 'role="combobox"' in html
    assert 'role="listbox"' in html and "Command palette" in html
    assert "<kbd>Ctrl</kbd> <kbd>K</kbd>" in html
