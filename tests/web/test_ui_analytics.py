"""The analytics pages of the web UI (`/analytics` and `/monitors/<uuid>/analytics`) through the
real app and SQLite: the figures shown are the engine's, the charts are accessible SVG with their
data, hours and days follow the viewer's time zone, the period switches, another organisation's
monitor is not found and a viewer can read."""

from __future__ import annotations

import datetime as dt
import html as htmllib
import re
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.conftest import START, MakeApp
from tests.web.api_helpers import OrgAccess, make_org, make_user
from tests.web.test_ui import sign_in, ui_app
from tokiflow.clock import FakeClock
from tokiflow.engine import analytics
from tokiflow.engine.anomaly import size_words
from tokiflow.storage import accounts, monitors, stats
from tokiflow.storage.stats import RunRow
from tokiflow.web import appkeys
from tokiflow.web.ui import charts
from tokiflow.web.ui.pages_analytics import percent, secs, span_words

ZONE = "Asia/Kolkata"  # UTC+05:30: hours in the heatmap are not UTC hours, nor whole-hour shifted
MIN = dt.timedelta(minutes=1)


@pytest.fixture
async def uic(
    aiohttp_client: Callable[[web.Application], Awaitable[TestClient]], make_app: MakeApp
) -> TestClient:
    return await aiohttp_client(ui_app(make_app))


async def owner(client: TestClient, clock: FakeClock, slug: str, email: str, tz: str) -> OrgAccess:
    org = await make_org(client, clock, slug)
    await make_user(client, clock, email, org.org_id, "owner")
    await set_tz(client, email, tz)
    return org


async def set_tz(client: TestClient, email: str, tz: str) -> None:
    def write(conn: object) -> None:
        user = accounts.user_by_email(conn, email)  # type: ignore[arg-type]
        assert user is not None
        accounts.set_profile(conn, user.id, tz=tz)  # type: ignore[arg-type]

    await client.app[appkeys.DB].write(write)


async def new_monitor(client: TestClient, org: OrgAccess, name: str, period: str = "1h") -> str:
    resp = await client.post("/api/v1/monitors", json={"name": name, "period": period,
                                                       "grace": "30m"}, headers=org.rw())  # fmt: skip
    assert resp.status == 201, await resp.text()
    return str((await resp.json())["uuid"])


async def ping_at(client: TestClient, clock: FakeClock, when: dt.datetime, path: str) -> None:
    await clock.set(when)
    assert (await client.get(path)).status == 200


async def seed(client: TestClient, clock: FakeClock, org: OrgAccess) -> dict[str, str]:
    """Three monitors (created Monday 2026-03-02 12:00 UTC):

    - etl: 12 timed runs of 10-21 s every 55 min from 12:30, plain successes to keep it up, one
      fail ping on Tuesday 02:30 UTC (08:00 in Kolkata), recovered at 03:00;
    - flaky: three fail pings on Monday 13:00, 13:10, 13:20 UTC (18:30-18:50 in Kolkata);
    - backup: daily, one success at 12:05, up since.
    """
    uuids = {name: await new_monitor(client, org, name) for name in ("etl", "flaky")}
    uuids["backup"] = await new_monitor(client, org, "backup", "1d")
    etl, first = uuids["etl"], START + 30 * MIN
    await ping_at(client, clock, START + 5 * MIN, f"/ping/{uuids['backup']}")
    for i in range(3):
        await ping_at(client, clock, START + (60 + 10 * i) * MIN, f"/ping/{uuids['flaky']}/fail")
    for i in range(12):
        finish = first + i * 55 * MIN
        await ping_at(client, clock, finish - dt.timedelta(seconds=10 + i), f"/ping/{etl}/start")
        await ping_at(client, clock, finish, f"/ping/{etl}")
    tuesday = dt.datetime(2026, 3, 3, tzinfo=dt.UTC)
    for when in (dt.time(23, 30), dt.time(0, 25), dt.time(1, 20), dt.time(2, 15)):
        day = START.date() if when.hour == 23 else tuesday.date()
        await ping_at(client, clock, dt.datetime.combine(day, when, dt.UTC), f"/ping/{etl}")
    await ping_at(client, clock, tuesday + dt.timedelta(hours=2, minutes=30), f"/ping/{etl}/fail")
    await ping_at(client, clock, tuesday + dt.timedelta(hours=3), f"/ping/{etl}")
    await clock.set(tuesday + dt.timedelta(hours=3, minutes=10))
    return uuids


async def page(client: TestClient, path: str, status: int = 200) -> str:
    resp = await client.get(path)
    text = await resp.text()
    assert resp.status == status, (path, text[:2000])
    return text


def figure(html: str, name: str) -> str:
    """The text of the element marked data-figure=name (tags dropped)."""
    found = re.search(rf'data-figure="{name}">(.*?)</(?:span|dd|strong)>', html, re.S)
    assert found, f"no figure {name}"
    return htmllib.unescape(re.sub(r"<[^>]+>", "", found.group(1))).strip()


def cell(html: str, day: int, hour: int) -> int:
    found = re.search(rf'data-cell="{day}-{hour}" data-count="(\d+)"', html)
    assert found, f"no heatmap cell {day}-{hour}"
    return int(found.group(1))


def every_chart_is_labelled(html: str) -> int:
    svgs = re.findall(r"<svg[^>]*>", html)
    for tag in svgs:
        assert 'role="img"' in tag and 'aria-label="' in tag, tag
    return len(svgs)


async def test_the_organisation_page_shows_the_engines_figures_in_the_viewers_time_zone(
    uic: TestClient, clock: FakeClock
) -> None:
    org = await owner(uic, clock, "acme", "ops@example.com", ZONE)
    await seed(uic, clock, org)
    await sign_in(uic, "ops@example.com")
    html = await page(uic, "/analytics")
    now = clock.now()
    report = await uic.app[appkeys.DB].read(
        lambda c: analytics.org_report(c, org.org_id, "acme", now, days=7, tz=ZONE)
    )
    assert report.monitors == 3 and report.reliability.outages >= 1
    assert figure(html, "health") == f"{report.health:.0f} / 100"
    assert figure(html, "uptime") == percent(report.uptime_percent)
    assert figure(html, "mtbf") == span_words(report.reliability.mtbf_seconds)
    assert figure(html, "mttr") == span_words(report.reliability.mttr_seconds) != "—"
    assert figure(html, "outages") == str(report.reliability.outages)
    # etl failed on Tuesday 02:30 UTC = 08:00 in Kolkata; flaky three times on Monday 18:30-18:50.
    assert cell(html, 1, 8) == report.failure_heatmap[1][8] == 1
    assert cell(html, 0, 18) == report.failure_heatmap[0][18] == 3
    assert cell(html, 1, 2) == 0  # not the UTC hour
    assert sum(map(sum, report.failure_heatmap)) == 4
    assert "Asia/Kolkata" in html and "Tuesdays from 08:00" not in html  # the busiest is Monday
    # The ranking tables link to each monitor's analytics; the flaky one is least reliable.
    least = html.split('data-ranking="least"')[1].split("</table>")[0]
    most = html.split('data-ranking="most"')[1].split("</table>")[0]
    assert re.findall(r">(\w+)</a>", least) == [r.name for r in report.least_reliable]
    assert re.findall(r">(\w+)</a>", most) == [r.name for r in report.most_reliable]
    assert report.least_reliable[0].name == "flaky" and report.most_reliable[0].name == "backup"
    flaky = report.least_reliable[0]
    assert f'href="/monitors/{flaky.uuid}/analytics?days=7">flaky</a>' in least
    # Every chart is an image with a summary, and its data is in a table too.
    assert every_chart_is_labelled(html) == 3
    assert "Failure rate as a table" in html and "Failures by weekday and hour as a table" in html
    days = re.findall(r'<tr><th scope="row">(\d{4}-\d\d-\d\d)</th>', html)
    assert days == [str(d.day) for d in report.failure_trend]
    trend = {str(d.day): d for d in report.failure_trend}
    assert trend["2026-03-03"].failures == 1 and trend["2026-03-02"].failures == 3
    assert '<a href="/analytics" aria-current="page">Analytics</a>' in html
    assert "No job output captured yet." in html


async def test_the_period_switches_between_7_30_and_90_days_and_refuses_others(
    uic: TestClient, clock: FakeClock
) -> None:
    org = await owner(uic, clock, "acme", "ops@example.com", ZONE)
    await seed(uic, clock, org)
    await sign_in(uic, "ops@example.com")
    now = clock.now()
    for days in (7, 30, 90):
        html = await page(uic, f"/analytics?days={days}")
        report = await uic.app[appkeys.DB].read(
            lambda c, d=days: analytics.org_report(c, org.org_id, "acme", now, days=d, tz=ZONE)
        )
        assert f"the last {days} days" in html
        assert f'<a href="?days={days}" aria-current="page">{days} days</a>' in html
        assert len(re.findall(r'aria-current="page">\d+ days<', html)) == 1
        rows = re.findall(r'<tr><th scope="row">(\d{4}-\d\d-\d\d)</th>', html)
        assert len(rows) == days == len(report.failure_trend)
        assert figure(html, "uptime") == percent(report.uptime_percent)
    for bad in ("8", "abc", "-7", "7.0", "", "9" * 5000, "%00"):
        text = await page(uic, f"/analytics?days={bad}", 400)
        assert "7, 30 or 90 days" in text
    await page(uic, "/monitors/00000000-0000-0000-0000-000000000000/analytics?days=1", 400)


async def test_the_monitor_page_shows_its_durations_thresholds_and_failures(
    uic: TestClient, clock: FakeClock
) -> None:
    org = await owner(uic, clock, "acme", "ops@example.com", ZONE)
    uuids = await seed(uic, clock, org)
    await sign_in(uic, "ops@example.com")
    html = await page(uic, f"/monitors/{uuids['etl']}/analytics")
    now = clock.now()

    def read(c: object) -> tuple[analytics.MonitorReport, analytics.Thresholds]:
        m = monitors.by_uuid(c, uuids["etl"])  # type: ignore[arg-type]
        assert m is not None
        return (
            analytics.monitor_report(c, m, now, days=7, window=100, tz=ZONE),  # type: ignore[arg-type]
            analytics.thresholds(c, m, window=100),  # type: ignore[arg-type]
        )

    report, limits = await uic.app[appkeys.DB].read(read)
    d = report.durations
    assert d.runs == 12 and d.p50 == pytest.approx(15.5)  # durations 10..21 s
    assert figure(html, "runs") == "12 (all time)"
    assert figure(html, "mean") == f"{secs(d.mean)} ± {secs(d.stdev)}" == "15.5 s ± 3.61 s"
    for q in ("p50", "p95", "p99"):
        assert figure(html, q) == secs(getattr(d, q))
    assert figure(html, "health") == f"{report.health.score} / 100"
    assert f"{report.health.failures} failed" in html and report.health.failures == 1
    assert figure(html, "uptime") == percent(report.uptime_percent) != "100%"
    assert figure(html, "outages") == "1"
    assert figure(html, "mttr") == span_words(report.reliability.mttr_seconds) == "30m"
    # Ten runs of history: the slow-run limit is in force, the larger of its two parts.
    assert limits.limit is not None and limits.median_limit is not None
    assert limits.limit == max(limits.median_limit, limits.sigma_limit or 0.0)
    assert figure(html, "limit") == secs(limits.limit)
    assert cell(html, 1, 8) == report.failure_heatmap[1][8] == 1
    assert every_chart_is_labelled(html) == 4
    timeline = html.split('class="chart timeline"')[1].split("</svg>")[0]
    # The 12 timed runs (a success or fail ping without a start is no run).
    assert timeline.count('class="dot-ok"') == 12 and 'class="dot-fail"' not in timeline
    assert 'class="limit-line"' in timeline and 'class="median-line"' in timeline
    assert "IST" in timeline  # point titles in the viewer's zone
    assert f'href="/monitors/{uuids["etl"]}">etl</a>' in html


async def test_empty_periods_say_so_instead_of_drawing_empty_charts(
    uic: TestClient, clock: FakeClock
) -> None:
    org = await owner(uic, clock, "acme", "ops@example.com", "UTC")
    await sign_in(uic, "ops@example.com")
    html = await page(uic, "/analytics")
    assert "No monitors yet" in html and "<svg" not in html
    uuid = await new_monitor(uic, org, "quiet")
    await clock.advance(600)
    for path in ("/analytics", f"/monitors/{uuid}/analytics?days=90"):
        html = await page(uic, path)
        assert "No finished runs in this period." in html
        assert "No successful runs with a duration in this period." in html
        assert "No failures in this period." in html
        assert "<svg" not in html and "as a table" not in html
    html = await page(uic, f"/monitors/{uuid}/analytics")
    assert "No runs in this period." in html and "No timed runs yet" in html
    assert "applies after 10 timed runs (0 so far)" in html
    assert figure(html, "uptime") == "—"


async def test_another_organisations_monitor_or_an_unknown_one_is_not_found(
    uic: TestClient, clock: FakeClock
) -> None:
    other = await make_org(uic, clock, "other")
    theirs = await new_monitor(uic, other, "Theirs")
    await ping_at(uic, clock, START + MIN, f"/ping/{theirs}/fail")
    org = await owner(uic, clock, "acme", "ops@example.com", "UTC")
    await new_monitor(uic, org, "mine")
    await sign_in(uic, "ops@example.com")
    for path in (f"/monitors/{theirs}/analytics", f"/monitors/{theirs.upper()}/analytics",
                 "/monitors/00000000-0000-0000-0000-000000000000/analytics",
                 "/monitors/not-a-uuid/analytics"):  # fmt: skip
        text = await page(uic, path, 404)
        assert "Theirs" not in text
    html = await page(uic, "/analytics")
    assert "Theirs" not in html and "No failures in this period." in html


async def test_a_viewer_can_read_both_pages_and_signed_out_visitors_sign_in_first(
    uic: TestClient, clock: FakeClock
) -> None:
    org = await owner(uic, clock, "acme", "ops@example.com", "UTC")
    uuid = await new_monitor(uic, org, "etl")
    await ping_at(uic, clock, START + MIN, f"/ping/{uuid}/fail")
    await clock.set(START + 20 * MIN)
    for path in ("/analytics", f"/monitors/{uuid}/analytics?days=30"):
        resp = await uic.get(path, allow_redirects=False)
        assert resp.status == 303 and resp.headers["Location"].startswith("/login?next=")
    await make_user(uic, clock, "look@example.com", org.org_id, "viewer")
    await sign_in(uic, "look@example.com")
    html = await page(uic, "/analytics")
    assert cell(html, 0, 12) == 1 and "(viewer)" in html
    html = await page(uic, f"/monitors/{uuid}/analytics?days=30")
    assert cell(html, 0, 12) == 1 and figure(html, "outages") == "1"
    assert figure(html, "uptime") == "0.00%" and figure(html, "mttr") == "—"  # still down


async def test_captured_output_kept_for_the_organisation_is_shown(
    uic: TestClient, clock: FakeClock
) -> None:
    org = await owner(uic, clock, "acme", "ops@example.com", "UTC")
    uuid = await new_monitor(uic, org, "etl")
    await ping_at(uic, clock, START + MIN, f"/ping/{uuid}/start")
    await clock.set(START + 2 * MIN)
    resp = await uic.post(f"/ping/{uuid}", data=b"copied 120 files\n" * 50)
    assert resp.status == 200
    await sign_in(uic, "ops@example.com")
    html = await page(uic, "/analytics")
    usage = await uic.app[appkeys.DB].read(lambda c: stats.output_usage(c, org.org_id))
    assert usage.files == 1 and usage.size == 17 * 50
    assert figure(html, "stored").startswith(f"{size_words(usage.stored)} of 1 GB")
    assert "No job output captured yet." not in html


def test_heatmap_steps_and_their_key_cover_every_count() -> None:
    assert [charts.heat_level(n, 3) for n in range(4)] == [0, 1, 2, 3]
    assert [charts.heat_level(n, 12) for n in (0, 1, 2, 3, 5, 7, 12)] == [0, 1, 1, 2, 3, 3, 5]
    assert charts.heat_legend(12) == [(0, "0"), (1, "1-2"), (2, "3-4"), (3, "5-7"), (4, "8-9"),
                                      (5, "10-12")]  # fmt: skip
    assert charts.heat_legend(2) == [(0, "0"), (1, "1"), (2, "2")]
    for top in range(1, 40):  # every count falls in the range its step's key gives
        key = dict(charts.heat_legend(top))
        for n in range(1, top + 1):
            words = key[charts.heat_level(n, top)]
            low, _, high = words.partition("-")
            assert int(low) <= n <= int(high or low), (top, n, words)


def test_a_long_period_of_runs_is_drawn_as_columns_with_failures_marked() -> None:
    since = START
    runs = [
        RunRow(
            1,
            "fail" if i % 50 == 0 else "success",
            since + dt.timedelta(minutes=10 * i),
            None if i % 50 == 0 else 5.0 + i % 7,
        )  # fmt: skip
        for i in range(1, 1000)
    ]
    until = since + dt.timedelta(days=7)
    svg = str(charts.duration_timeline(runs, since, until, dt.UTC, limit=14.0, median=8.0))
    assert 'aria-label="Durations of 999 runs (980 successful) from Mar 02 to Mar 09' in svg
    assert "anomaly alert above 14 s" in svg
    assert 0 < svg.count("<g>") <= charts.COLUMNS and svg.count('class="range"') > 100
    assert svg.count('class="dot-fail"') == 19  # every 50th run, each in a column of its own
    few = str(charts.duration_timeline(runs[40:60], since, until, dt.UTC))
    assert few.count('class="dot-ok"') == 19 and few.count('class="dot-fail"') == 1
    assert "limit-line" not in few
