"""The frozen binary, built once per test session the way a release is built."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli_helpers import ROOT

BUILD_TIMEOUT = 600
# What a fresh clone must provide to build the binary (the same list docker/Dockerfile copies).
SOURCES = ("pyproject.toml", "README.md", "tokiflow.spec", "packaging", "src")


@pytest.fixture(scope="session")
def binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build dist/tokiflow with packaging/build-binary from a copy of only the sources a clone
    has (so nothing local leaks in), reusing the build environment in build/binary-venv."""
    tree = tmp_path_factory.mktemp("clone")
    for name in SOURCES:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(
                src, tree / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
            )
        else:
            shutil.copy2(src, tree / name)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKIFLOW_")}
    env["TOKIFLOW_BUILD_VENV"] = str(ROOT / "build" / "binary-venv")
    env["TOKIFLOW_PYTHON"] = sys.executable
    result = subprocess.run(
        [str(tree / "packaging" / "build-binary")],
        capture_output=True, text=True, env=env, timeout=BUILD_TIMEOUT,
    )  # fmt: skip
    if result.returncode == 3:
        pytest.skip(f"PyInstaller cannot be installed here: {result.stderr.strip()[-300:]}")
    assert result.returncode == 0, result.stderr[-3000:]
    built = tree / "dist" / "tokiflow"
    assert built.is_file()
    return built
