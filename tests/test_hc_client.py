"""A published Healthchecks API client (PyPI `healthchecks-io`, the py-healthchecks.io project),
unchanged, against a real `tokiflow serve` process: it creates, lists, pings, pauses, updates
and deletes checks through /hc/api/, with read-write and read-only keys."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli_helpers import Server, run

with warnings.catch_warnings():
    # The client declares pydantic fields the pydantic 1 way, which pydantic 2 warns about.
    warnings.simplefilter("ignore", DeprecationWarning)
    # run-tests installs it (see there); a missing client must fail, not skip.
    import healthchecks_io as hcio

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore:.*[Dd]eprecated.*:DeprecationWarning"),
]


def new_key(data_dir: Path, *extra: str) -> str:
    result = run("apikey", "create", "--name", "hc client", *extra, data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture
def served(tmp_path: Path, server_factory: type[Server]) -> Iterator[tuple[str, str, str]]:
    """(server URL, read-write key, read-only key) of a fresh server."""
    data_dir = tmp_path / "data"
    rw_key, ro_key = new_key(data_dir), new_key(data_dir, "--read-only")
    server = server_factory(data_dir)
    server.wait_ready()
    yield server.url, rw_key, ro_key
    server.stop()


def client(url: str, key: str, version: int = 3) -> Any:
    return hcio.Client(
        api_key=key, api_url=f"{url}/hc/api/", ping_url=f"{url}/ping/", api_version=version
    )


@pytest.mark.parametrize("version", [1, 3])
def test_the_published_client_creates_lists_pings_pauses_updates_and_deletes_checks(
    served: tuple[str, str, str], version: int
) -> None:
    url, rw_key, _ = served
    with client(url, rw_key, version) as hc:
        backups = hc.create_check(
            hcio.CheckCreate(name="Backups", tags="prod www", timeout=3600, grace=60)
        )
        assert (backups.name, backups.slug, backups.status, backups.timeout) == (
            "Backups", "backups", "new", 3600,
        )  # fmt: skip
        assert backups.ping_url == f"{url}/ping/{backups.uuid}"
        assert backups.update_url == f"{url}/hc/api/v{version}/checks/{backups.uuid}"
        nightly = hc.create_check(
            hcio.CheckCreate(name="Nightly", tags="prod", schedule="15 5 * * *", tz="Europe/Riga")
        )
        assert nightly.timeout is None and nightly.uuid != backups.uuid

        assert sorted(c.name for c in hc.get_checks()) == ["Backups", "Nightly"]
        assert [c.name for c in hc.get_checks(tags=["prod", "www"])] == ["Backups"]

        ok, text = hc.success_ping(uuid=backups.uuid, data="all good")
        assert (ok, text) == (True, "OK")
        got = hc.get_check(backups.uuid)
        assert (got.status, got.n_pings, got.last_ping is not None) == ("up", 1, True)
        [p] = hc.get_check_pings(backups.uuid)
        assert (p.type, p.number_of_pings, p.method) == ("success", 1, "POST")

        paused = hc.pause_check(backups.uuid)
        assert paused.status == "paused"
        updated = hc.update_check(backups.uuid, hcio.CheckUpdate(grace=120, desc="nightly dump"))
        assert (updated.grace, updated.desc, updated.status) == (120, "nightly dump", "paused")

        assert hc.get_integrations() == []
        badges = hc.get_badges()
        assert sorted(badges) == ["*", "prod", "www"] and badges["*"].svg.startswith(url)

        deleted = hc.delete_check(backups.uuid)
        assert deleted.uuid == backups.uuid
        with pytest.raises(hcio.CheckNotFoundError):
            hc.get_check(backups.uuid)
        assert [c.name for c in hc.get_checks()] == ["Nightly"]


def test_the_published_client_gets_the_read_only_view_and_auth_errors(
    served: tuple[str, str, str],
) -> None:
    url, rw_key, ro_key = served
    with client(url, rw_key) as hc:
        made = hc.create_check(hcio.CheckCreate(name="Reports", timeout=600))
    with client(url, ro_key) as ro:
        [seen] = ro.get_checks()
        assert seen.uuid is None and seen.ping_url is None and len(seen.unique_key) == 40
        assert ro.get_check(seen.unique_key).name == "Reports"
        with pytest.raises(hcio.HCAPIAuthError):
            ro.pause_check(made.uuid)
    with client(url, "tfk_rw_not-a-real-key") as wrong, pytest.raises(hcio.HCAPIAuthError):
        wrong.get_checks()


async def test_the_published_async_client_creates_and_deletes_a_check(
    served: tuple[str, str, str],
) -> None:
    url, rw_key, _ = served
    hc = hcio.AsyncClient(
        api_key=rw_key, api_url=f"{url}/hc/api/", ping_url=f"{url}/ping/", api_version=3
    )
    async with hc:
        made = await hc.create_check(hcio.CheckCreate(name="Async", timeout=300))
        assert [c.uuid for c in await hc.get_checks()] == [made.uuid]
        assert (await hc.pause_check(made.uuid)).status == "paused"
        assert (await hc.delete_check(made.uuid)).name == "Async"
        assert await hc.get_checks() == []
