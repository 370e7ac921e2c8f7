"""packaging/install.sh and the systemd unit, installed under a fake root (no systemctl)."""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from tests.cli_helpers import ROOT

INSTALL = ROOT / "packaging" / "install.sh"
UNIT = ROOT / "packaging" / "tokiflow.service"


def _stub(tmp_path: Path, version: str = "9.9.9") -> Path:
    """A stand-in binary that answers `version` (install.sh checks that the binary runs)."""
    stub = tmp_path / f"tokiflow-{version}"
    stub.write_text(f'#!/bin/sh\n[ "$1" = version ] && echo {version}\n')
    stub.chmod(0o755)
    return stub


def _install(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(INSTALL), *args], capture_output=True, text=True, timeout=60)


def test_install_puts_the_binary_unit_and_config_in_place_and_prints_the_url(
    tmp_path: Path,
) -> None:
    root = tmp_path / "root"
    result = _install("--binary", str(_stub(tmp_path)), "--destdir", str(root),
                      "--port", "8123", "--host", "0.0.0.0")  # fmt: skip
    assert result.returncode == 0, result.stderr
    binary = root / "usr/local/bin/tokiflow"
    assert stat.S_IMODE(binary.stat().st_mode) == 0o755
    unit = (root / "etc/systemd/system/tokiflow.service").read_text()
    assert "ExecStart=/usr/local/bin/tokiflow serve\n" in unit
    assert "User=tokiflow\n" in unit and "StateDirectory=tokiflow\n" in unit
    config = root / "etc/tokiflow/tokiflow.toml"
    assert stat.S_IMODE(config.stat().st_mode) == 0o640
    text = config.read_text()
    assert 'data_dir = "/var/lib/tokiflow"' in text and "port = 8123" in text
    assert 'base_url = "http://0.0.0.0:8123"' in text
    assert "installing Tokiflow 9.9.9" in result.stdout
    assert "first run: open http://0.0.0.0:8123/ in a browser" in result.stdout
    assert "not starting it (--no-systemctl)" in result.stdout


def test_installing_again_replaces_the_binary_and_keeps_the_config(tmp_path: Path) -> None:
    root = tmp_path / "root"
    assert _install("--binary", str(_stub(tmp_path, "1.0.0")), "--destdir", str(root),
                    "--base-url", "https://cron.example.com").returncode == 0  # fmt: skip
    config = root / "etc/tokiflow/tokiflow.toml"
    config.write_text(config.read_text() + 'smtp_host = "mail.example.com"\n')
    again = _install("--binary", str(_stub(tmp_path, "1.1.0")), "--destdir", str(root))
    assert again.returncode == 0, again.stderr
    assert "kept as it was" in again.stdout
    assert 'smtp_host = "mail.example.com"' in config.read_text()
    assert 'base_url = "https://cron.example.com"' in config.read_text()
    out = subprocess.run([str(root / "usr/local/bin/tokiflow"), "version"], capture_output=True,
                         text=True, timeout=10)  # fmt: skip
    assert out.stdout.strip() == "1.1.0"


def test_a_custom_prefix_and_user_go_into_the_unit(tmp_path: Path) -> None:
    root = tmp_path / "root"
    result = _install("--binary", str(_stub(tmp_path)), "--destdir", str(root),
                      "--prefix", "/opt/tokiflow", "--user", "monitor")  # fmt: skip
    assert result.returncode == 0, result.stderr
    unit = (root / "etc/systemd/system/tokiflow.service").read_text()
    assert "ExecStart=/opt/tokiflow/bin/tokiflow serve\n" in unit
    assert "User=monitor\nGroup=monitor\n" in unit
    assert (root / "opt/tokiflow/bin/tokiflow").is_file()


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--port", "http"], "--port must be a number"),
        (["--port", "70000"], "between 1 and 65535"),
        (["--user", "root; rm -rf /"], "--user must be a plain user name"),
        (["--frobnicate"], "unknown option --frobnicate"),
        (["--port"], "--port needs a value"),
    ],
)
def test_install_refuses_bad_options_with_one_line(
    tmp_path: Path, args: list[str], reason: str
) -> None:
    result = _install("--binary", str(_stub(tmp_path)), "--destdir", str(tmp_path / "r"), *args)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("install: error: ") and reason in lines[0]
    assert not (tmp_path / "r").exists()


def test_install_refuses_a_binary_that_does_not_run(tmp_path: Path) -> None:
    broken = tmp_path / "tokiflow"
    broken.write_text("#!/bin/sh\nexit 1\n")
    broken.chmod(0o755)
    result = _install("--binary", str(broken), "--destdir", str(tmp_path / "r"))
    assert result.returncode != 0 and "does not run" in result.stderr
    missing = _install("--binary", str(tmp_path / "nope"), "--destdir", str(tmp_path / "r"))
    assert missing.returncode != 0 and "is not an executable file" in missing.stderr


def test_the_unit_is_hardened() -> None:
    lines = set(UNIT.read_text().splitlines())
    for directive in (
        "ProtectSystem=strict", "ProtectHome=yes", "NoNewPrivileges=yes", "PrivateTmp=yes",
        "PrivateDevices=yes", "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
        "CapabilityBoundingSet=", "StateDirectoryMode=0700", "UMask=0077",
        "SystemCallFilter=@system-service", "KillSignal=SIGTERM",
    ):  # fmt: skip
        assert directive in lines, directive


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not here")
def test_the_installed_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    root = tmp_path / "root"
    assert _install("--binary", str(_stub(tmp_path)), "--destdir", str(root)).returncode == 0
    installed = root / "etc/systemd/system/tokiflow.service"
    # verify checks that ExecStart exists: point it at the binary inside the fake root.
    unit = tmp_path / "tokiflow.service"
    unit.write_text(
        installed.read_text().replace(
            "ExecStart=/usr/local/bin/tokiflow", f"ExecStart={root}/usr/local/bin/tokiflow"
        )
    )
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    complaints = [ln for ln in result.stderr.splitlines() if "tokiflow.service" in ln]
    assert result.returncode == 0, result.stderr
    assert complaints == []
