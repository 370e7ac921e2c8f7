"""Offline licences: signing, verification against trusted keys, expiry and grace, plan limits."""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.cli_helpers import assert_one_clear_line, run
from tokiflow import cli_license, licensing
from tokiflow.cli import CliError
from tokiflow.clock import FakeClock
from tokiflow.config import load_settings
from tokiflow.engine.monitors import MonitorLimitError, build_spec, create_monitor
from tokiflow.licensing import Licence, LicenceError, LicenceLimitError
from tokiflow.storage import orgs
from tokiflow.storage.db import connect
from tokiflow.storage.migrations import migrate

NOW = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)
ISSUED = dt.date(2026, 1, 1)
EXPIRES = dt.date(2026, 12, 31)


@pytest.fixture
def vendor_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def keys(vendor_key: Ed25519PrivateKey) -> dict:
    return licensing.keys_of(vendor_key.public_key())


def _issue(key: Ed25519PrivateKey, plan: str = "PRO", **kw: object) -> str:
    args: dict = {"licensee": "Acme Ltd", "plan": plan, "issued": ISSUED, "expires": EXPIRES}
    args.update(kw)
    return licensing.issue(key, **args)


def _blob(text: str) -> tuple[str, str]:
    inner = "".join(text.split(licensing.BEGIN)[1].split(licensing.END)[0].split())
    payload, signature = inner.split(".")
    return payload, signature


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# -- verification -------------------------------------------------------------------------------


def test_a_valid_licence_verifies_and_carries_its_plan_limits_and_dates(
    vendor_key: Ed25519PrivateKey, keys: dict
) -> None:
    text = _issue(vendor_key, "PRO", email="ops@acme.test")
    lic = licensing.verify(text, keys)
    assert (lic.licensee, lic.email, lic.plan) == ("Acme Ltd", "ops@acme.test", "PRO")
    assert (lic.monitors, lic.users, lic.retention_days) == (100, 10, 90)
    assert lic.features == {"anomaly_detection", "output_viewer", "advanced_analytics",
                            "discord_teams"}  # fmt: skip
    assert (lic.issued, lic.expires) == (ISSUED, EXPIRES)
    assert lic.key_id == licensing.key_id(vendor_key.public_key())
    assert all(len(line) <= 64 for line in text.splitlines())


@pytest.mark.parametrize(
    ("plan", "monitors", "users", "retention", "has", "lacks"),
    [
        ("FREE", 5, 3, 30, set(), {"anomaly_detection"}),
        ("PRO", 100, 10, 90, {"anomaly_detection", "discord_teams"}, {"sso", "on_call"}),
        ("BUSINESS", 500, None, 365, {"on_call", "sso", "advanced_roles", "output_viewer"}, set()),
        ("ENTERPRISE", None, None, None, set(licensing.FEATURES), set()),
    ],
)
def test_each_plan_gives_its_documented_limits_and_features(
    vendor_key: Ed25519PrivateKey,
    keys: dict,
    plan: str,
    monitors: int | None,
    users: int | None,
    retention: int | None,
    has: set,
    lacks: set,
) -> None:
    limits = licensing.limits_for(licensing.verify(_issue(vendor_key, plan), keys), NOW)
    assert (limits.plan, limits.monitors, limits.users, limits.retention_days) == (
        plan, monitors, users, retention,
    )  # fmt: skip
    assert has <= limits.features and not (lacks & limits.features)


def test_limits_and_features_can_be_set_beyond_the_plan_when_issuing(
    vendor_key: Ed25519PrivateKey, keys: dict
) -> None:
    text = _issue(vendor_key, "PRO", monitors=250, users=None, features=["sso"])
    lic = licensing.verify(text, keys)
    assert (lic.monitors, lic.users) == (250, None)
    assert "sso" in lic.features and "anomaly_detection" in lic.features


def test_issuing_refuses_an_unknown_plan_or_feature_or_a_backwards_date(
    vendor_key: Ed25519PrivateKey,
) -> None:
    with pytest.raises(LicenceError, match="unknown plan 'GOLD'"):
        _issue(vendor_key, "GOLD")
    with pytest.raises(LicenceError, match="unknown feature"):
        _issue(vendor_key, features=["teleport"])
    with pytest.raises(LicenceError, match="before the issue date"):
        _issue(vendor_key, expires=dt.date(2025, 1, 1))


def test_a_licence_pasted_from_an_email_with_text_around_and_rewrapped_lines_verifies(
    vendor_key: Ed25519PrivateKey, keys: dict
) -> None:
    payload, signature = _blob(_issue(vendor_key))
    blob = payload + "." + signature
    rewrapped = "\n   ".join(blob[i : i + 40] for i in range(0, len(blob), 40))
    mail = (
        f"Hello,\r\nhere it is:\r\n\r\n{licensing.BEGIN}\r\n   {rewrapped}\r\n{licensing.END}\r\n"
    )
    assert licensing.verify(mail + "\nRegards\n", keys).licensee == "Acme Ltd"


def test_a_tampered_payload_is_refused_because_the_signature_no_longer_matches(
    vendor_key: Ed25519PrivateKey, keys: dict
) -> None:
    payload, signature = _blob(_issue(vendor_key, "FREE"))
    data = json.loads(_unb64(payload))
    data["plan"] = "ENTERPRISE"
    data["limits"]["monitors"] = None
    forged = licensing.armour(json.dumps(data).encode(), _unb64(signature))
    with pytest.raises(LicenceError, match="signature does not match its contents") as err:
        licensing.verify(forged, keys)
    assert "\n" not in str(err.value)


def test_a_tampered_signature_is_refused(vendor_key: Ed25519PrivateKey, keys: dict) -> None:
    payload, signature = _blob(_issue(vendor_key))
    sig = bytearray(_unb64(signature))
    sig[10] ^= 0x01
    with pytest.raises(LicenceError, match="signature does not match its contents"):
        licensing.verify(licensing.armour(_unb64(payload), bytes(sig)), keys)


def test_a_licence_signed_with_another_key_is_refused_naming_that_key(keys: dict) -> None:
    other = Ed25519PrivateKey.generate()
    with pytest.raises(LicenceError, match="key this Tokiflow does not trust") as err:
        licensing.verify(_issue(other, "ENTERPRISE"), keys)
    assert licensing.key_id(other.public_key()) in str(err.value)


def test_another_key_claiming_our_key_id_is_refused_by_the_signature(
    vendor_key: Ed25519PrivateKey, keys: dict
) -> None:
    other = Ed25519PrivateKey.generate()
    payload, _ = _blob(_issue(other, "ENTERPRISE"))
    data = json.loads(_unb64(payload))
    data["key_id"] = licensing.key_id(vendor_key.public_key())
    body = json.dumps(data).encode()
    with pytest.raises(LicenceError, match="signature does not match"):
        licensing.verify(licensing.armour(body, other.sign(body)), keys)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "not a Tokiflow licence"),
        ("hello world, this is not a licence", "not a Tokiflow licence"),
        ("\x00\xff\xfe garbage \x89PNG", "not a Tokiflow licence"),
        (f"{licensing.BEGIN}\n{licensing.END}", "damaged .expected payload.signature"),
        (f"{licensing.END}\nabc.def\n{licensing.BEGIN}", "END line comes before"),
        (f"{licensing.BEGIN}\nabcdef\n{licensing.END}", "expected payload.signature"),
        (f"{licensing.BEGIN}\n@@@@.####\n{licensing.END}", "not valid base64"),
        (f"{licensing.BEGIN}\nYWJj.YWJj\n{licensing.END}", "signature is not 64 bytes"),
    ],
)
def test_garbage_and_malformed_files_are_refused_with_one_clear_line(
    keys: dict, text: str, reason: str
) -> None:
    with pytest.raises(LicenceError, match=reason) as err:
        licensing.verify(text, keys)
    assert "\n" not in str(err.value)


def test_a_signed_document_that_is_not_a_valid_licence_is_refused(
    vendor_key: Ed25519PrivateKey, keys: dict
) -> None:
    kid = licensing.key_id(vendor_key.public_key())
    for body, reason in (
        (json.dumps({"format": 99, "key_id": kid}).encode(), "format 99"),
        (json.dumps({"format": 1, "key_id": kid, "plan": "PRO"}).encode(), "not valid"),
        (b"[1, 2, 3]", "not valid"),
    ):
        with pytest.raises(LicenceError, match=reason):
            licensing.verify(licensing.armour(body, vendor_key.sign(body)), keys)


def test_the_built_in_public_keys_parse_and_are_filed_under_their_own_key_id() -> None:
    trusted = licensing.trusted_keys()
    assert trusted and set(trusted) == set(licensing.BUILT_IN_PUBLIC_KEYS)


def test_a_throwaway_key_is_not_trusted_by_the_built_in_keys(
    vendor_key: Ed25519PrivateKey,
) -> None:
    with pytest.raises(LicenceError, match="does not trust"):
        licensing.verify(_issue(vendor_key))


# -- expiry and grace ---------------------------------------------------------------------------


def _at(day: dt.date, hour: int = 12) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour), dt.UTC)


@pytest.mark.parametrize(
    ("when", "state", "plan", "banner"),
    [
        (_at(dt.date(2026, 6, 1)), "valid", "PRO", None),
        (_at(dt.date(2026, 12, 20)), "valid", "PRO", "expires on 2026-12-31 (12 days left)"),
        (_at(dt.date(2026, 12, 31), 23), "valid", "PRO", "(1 day left)"),
        (_at(dt.date(2027, 1, 1), 0), "grace", "PRO", "stay for 14 days more"),
        (_at(dt.date(2027, 1, 14)), "grace", "PRO", "stay for 1 day more"),
        (_at(dt.date(2027, 1, 15), 0), "expired", "FREE", "FREE plan's limits apply"),
        (_at(dt.date(2028, 1, 1)), "expired", "FREE", "grace period is over"),
    ],
)
def test_a_licence_is_valid_through_its_expiry_date_then_14_days_of_grace_then_free(
    vendor_key: Ed25519PrivateKey,
    keys: dict,
    when: dt.datetime,
    state: str,
    plan: str,
    banner: str | None,
) -> None:
    lic = licensing.verify(_issue(vendor_key, "PRO"), keys)
    st = licensing.status(lic, when)
    assert (st.state, st.limits.plan, licensing.limits_for(lic, when).plan) == (state, plan, plan)
    if banner is None:
        assert st.banner is None
    else:
        assert st.banner is not None and banner in st.banner
    assert st.as_json()["licensed_plan"] == "PRO"


def test_no_licence_means_the_free_plan_and_no_banner() -> None:
    st = licensing.status(None, NOW)
    assert (st.state, st.limits.plan, st.limits.monitors, st.limits.users) == (
        "none", "FREE", 5, 3,
    )  # fmt: skip
    assert st.banner is None


def test_a_licence_that_never_expires_stays_valid(
    vendor_key: Ed25519PrivateKey, keys: dict
) -> None:
    lic = licensing.verify(_issue(vendor_key, "ENTERPRISE", expires=None), keys)
    assert licensing.status(lic, _at(dt.date(2099, 1, 1))).state == "valid"


# -- enforcement --------------------------------------------------------------------------------


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    path = tmp_path / "tokiflow.db"
    migrate(path)
    c = connect(path)
    yield c
    c.close()


def _add_monitors(
    conn: sqlite3.Connection,
    org_id: int,
    n: int,
    prefix: str = "m",
    limits: licensing.Limits = licensing.UNLIMITED,
) -> None:
    for i in range(n):
        spec = build_spec(org_id=org_id, name=f"{prefix}{i}", period="1h")
        create_monitor(conn, spec, NOW, limits=limits)


def _count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT count(*) FROM monitors").fetchone()[0])


def test_the_free_plan_refuses_the_sixth_monitor_with_the_limit_in_words(
    conn: sqlite3.Connection,
) -> None:
    org = orgs.ensure_default(conn, NOW)
    free = licensing.limits_for(None, NOW)
    _add_monitors(conn, org.id, 5, limits=free)
    with pytest.raises(MonitorLimitError) as err:
        _add_monitors(conn, org.id, 1, prefix="sixth", limits=free)
    assert "limit of 5 monitors on the FREE plan" in str(err.value)
    assert "tokiflow license install" in str(err.value)
    assert _count(conn) == 5


def test_monitors_of_every_organisation_count_towards_the_limit(
    conn: sqlite3.Connection,
) -> None:
    first = orgs.ensure_default(conn, NOW)
    second = orgs.create(conn, "second", "Second", NOW)
    _add_monitors(conn, first.id, 3, limits=licensing.FREE)
    _add_monitors(conn, second.id, 2, limits=licensing.FREE)
    with pytest.raises(MonitorLimitError):
        _add_monitors(conn, second.id, 1, prefix="x", limits=licensing.FREE)


def test_after_grace_the_free_limit_stops_new_monitors_but_keeps_every_existing_one(
    conn: sqlite3.Connection, vendor_key: Ed25519PrivateKey, keys: dict
) -> None:
    org = orgs.ensure_default(conn, NOW)
    lic = licensing.verify(_issue(vendor_key, "PRO"), keys)
    _add_monitors(conn, org.id, 8, limits=licensing.limits_for(lic, NOW))
    grace = licensing.limits_for(lic, _at(dt.date(2027, 1, 10)))
    _add_monitors(conn, org.id, 1, prefix="in-grace", limits=grace)
    after = licensing.limits_for(lic, _at(dt.date(2027, 2, 1)))
    with pytest.raises(MonitorLimitError, match="limit of 5 monitors on the FREE plan"):
        _add_monitors(conn, org.id, 1, prefix="late", limits=after)
    assert _count(conn) == 9


def test_pro_allows_100_monitors_and_enterprise_has_no_limit(
    conn: sqlite3.Connection, vendor_key: Ed25519PrivateKey, keys: dict
) -> None:
    org = orgs.ensure_default(conn, NOW)
    pro = licensing.limits_for(licensing.verify(_issue(vendor_key, "PRO"), keys), NOW)
    ent = licensing.limits_for(licensing.verify(_issue(vendor_key, "ENTERPRISE"), keys), NOW)
    _add_monitors(conn, org.id, 100, limits=pro)
    with pytest.raises(MonitorLimitError, match="limit of 100 monitors on the PRO plan"):
        _add_monitors(conn, org.id, 1, prefix="x", limits=pro)
    _add_monitors(conn, org.id, 1, prefix="x", limits=ent)
    assert _count(conn) == 101


def test_the_user_limit_counts_users_against_the_plan(
    vendor_key: Ed25519PrivateKey, keys: dict
) -> None:
    licensing.check_can_add_user(2, licensing.FREE)
    with pytest.raises(LicenceLimitError, match="limit of 3 users on the FREE plan"):
        licensing.check_can_add_user(3, licensing.limits_for(None, NOW))
    business = licensing.verify(_issue(vendor_key, "BUSINESS"), keys)
    licensing.check_can_add_user(10_000, licensing.limits_for(business, NOW))


# -- the commands -------------------------------------------------------------------------------


def _ns(**kw: object) -> argparse.Namespace:
    return argparse.Namespace(**kw)


def test_license_install_copies_a_verified_licence_0600_and_show_reports_it(
    tmp_path: Path, vendor_key: Ed25519PrivateKey, keys: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = load_settings({"data_dir": str(tmp_path / "data")}, env={})
    source = tmp_path / "acme.lic"
    source.write_text(_issue(vendor_key, "BUSINESS"))
    clock = FakeClock(NOW)
    cli_license.cmd_install(settings, _ns(file=str(source)), keys=keys, clock=clock)
    installed = tmp_path / "data" / licensing.LICENCE_FILE
    assert installed.read_text() == source.read_text()
    assert stat.S_IMODE(installed.stat().st_mode) == 0o600
    assert "installed the BUSINESS licence for Acme Ltd" in capsys.readouterr().out
    cli_license.cmd_show(settings, _ns(json=True), keys=keys, clock=clock)
    shown = json.loads(capsys.readouterr().out)
    assert (shown["plan"], shown["state"], shown["licensee"], shown["expires"]) == (
        "BUSINESS", "valid", "Acme Ltd", "2026-12-31",
    )  # fmt: skip
    assert shown["limits"] == {"monitors": 500, "users": None, "retention_days": 365}


def test_license_show_warns_during_grace_and_shows_free_limits_after_it(
    tmp_path: Path, vendor_key: Ed25519PrivateKey, keys: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = load_settings({"data_dir": str(tmp_path / "data")}, env={})
    source = tmp_path / "acme.lic"
    source.write_text(_issue(vendor_key, "PRO"))
    cli_license.cmd_install(settings, _ns(file=str(source)), keys=keys, clock=FakeClock(NOW))
    capsys.readouterr()
    cli_license.cmd_show(settings, _ns(json=False), keys=keys,
                         clock=FakeClock(_at(dt.date(2027, 1, 5))))  # fmt: skip
    grace = capsys.readouterr().out
    assert "state          grace" in grace and "monitors       100" in grace
    assert "WARNING: Your Tokiflow PRO licence expired on 2026-12-31" in grace
    cli_license.cmd_show(settings, _ns(json=False), keys=keys,
                         clock=FakeClock(_at(dt.date(2027, 3, 1))))  # fmt: skip
    after = capsys.readouterr().out
    assert "plan in force  FREE" in after and "monitors       5" in after


def test_license_install_refuses_a_licence_whose_grace_is_over_and_installs_nothing(
    tmp_path: Path, vendor_key: Ed25519PrivateKey, keys: dict
) -> None:
    settings = load_settings({"data_dir": str(tmp_path / "data")}, env={})
    source = tmp_path / "old.lic"
    source.write_text(_issue(vendor_key, "PRO", expires=dt.date(2026, 1, 31)))
    with pytest.raises(CliError, match="expired on 2026-01-31 and its 14-day grace"):
        cli_license.cmd_install(settings, _ns(file=str(source)), keys=keys, clock=FakeClock(NOW))
    assert not (tmp_path / "data" / licensing.LICENCE_FILE).exists()


def test_license_show_without_a_licence_reports_the_free_plan(tmp_path: Path) -> None:
    result = run("license", "show", "--json", data_dir=tmp_path / "data")
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert (shown["plan"], shown["state"], shown["limits"]["monitors"]) == ("FREE", "none", 5)


def test_license_install_refuses_garbage_with_one_line_and_installs_nothing(
    tmp_path: Path,
) -> None:
    junk = tmp_path / "junk.lic"
    junk.write_bytes(b"\x89PNG\r\n\x1a\n not a licence")
    result = run("license", "install", str(junk), data_dir=tmp_path / "data")
    assert_one_clear_line(result, "not a Tokiflow licence")
    missing = run("license", "install", str(tmp_path / "nope.lic"), data_dir=tmp_path / "data")
    assert_one_clear_line(missing, "cannot read")
    assert not (tmp_path / "data" / licensing.LICENCE_FILE).exists()


def test_a_licence_issued_with_a_new_vendor_key_is_refused_by_the_real_binary_keys(
    tmp_path: Path,
) -> None:
    key = tmp_path / "vendor.pem"
    made = run("license", "keygen", "--out", str(key))
    assert made.returncode == 0, made.stderr
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert "BUILT_IN_PUBLIC_KEYS" in made.stdout
    again = run("license", "keygen", "--out", str(key))
    assert_one_clear_line(again, "already exists")
    out = tmp_path / "acme.lic"
    issued = run("license", "issue", "--key", str(key), "--licensee", "Acme", "--plan", "pro",
                 "--expires", "2099-01-01", "--monitors", "150", "--out", str(out))  # fmt: skip
    assert issued.returncode == 0, issued.stderr
    assert "not built into this Tokiflow" in issued.stderr
    payload, _ = _blob(out.read_text())
    assert json.loads(_unb64(payload))["limits"]["monitors"] == 150
    refused = run("license", "install", str(out), data_dir=tmp_path / "data")
    assert_one_clear_line(refused, "does not trust")
    show = run("license", "show", data_dir=tmp_path / "data")
    assert "FREE (no licence installed)" in show.stdout


def test_license_issue_refuses_a_key_file_that_is_not_an_ed25519_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n")
    result = run("license", "issue", "--key", str(bad), "--licensee", "A", "--plan", "PRO",
                 "--expires", "2099-01-01")  # fmt: skip
    assert_one_clear_line(result, "is not an unencrypted PEM private key")


def test_an_installed_licence_that_was_altered_makes_show_fail_with_one_line(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    (data / licensing.LICENCE_FILE).write_text("tampered")
    result = run("license", "show", data_dir=data)
    assert_one_clear_line(result, "is not valid: not a Tokiflow licence")


def test_licence_fields_round_trip_through_the_status_json(
    vendor_key: Ed25519PrivateKey, keys: dict
) -> None:
    lic: Licence = licensing.verify(_issue(vendor_key, "ENTERPRISE", expires=None), keys)
    shown = licensing.status(lic, NOW).as_json()
    assert shown["expires"] is None and shown["limits"]["monitors"] is None
    assert shown["features"] == sorted(licensing.FEATURES)
