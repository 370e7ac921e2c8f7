"""Every setting, command and HTTP route is documented; these fail when one is added without docs."""

import argparse
import re
from pathlib import Path

from tokiflow.app import create_app
from tokiflow.cli import build_parser
from tokiflow.config import SETTINGS, load_settings

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_every_setting_is_in_the_configuration_doc() -> None:
    text = (DOCS / "configuration.md").read_text()
    missing = [s.name for s in SETTINGS if f"`{s.name}`" not in text or f"`{s.env}`" not in text]
    assert missing == []


def _commands(parser: argparse.ArgumentParser, prefix: str = "tokiflow") -> list[str]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append(f"{prefix} {name}")
                found.extend(_commands(sub, f"{prefix} {name}"))
    return found


def test_every_command_is_in_the_cli_docs() -> None:
    text = "\n".join(p.read_text() for p in sorted(DOCS.glob("*.md")))
    headings = re.findall(r"^## `([^`]+)`", text, flags=re.M)
    documented = {" ".join(h.split()[:3]) for h in headings} | {
        " ".join(h.split()[:2]) for h in headings
    }
    commands = _commands(build_parser())
    assert len(commands) > 5
    assert [c for c in commands if c not in documented] == []


def test_the_api_doc_lists_every_api_route() -> None:
    import subprocess
    import sys

    tool = DOCS.parent / "tools" / "api_doc.py"
    result = subprocess.run([sys.executable, str(tool), "--check"], capture_output=True, timeout=60)
    assert result.returncode == 0, "docs/api.md is out of date: run tools/api_doc.py"


def test_every_http_route_is_in_the_http_doc(tmp_path: Path) -> None:
    text = "".join((DOCS / name).read_text() for name in ("http.md", "api.md", "ui.md"))
    app = create_app(load_settings({"data_dir": str(tmp_path)}, env={}))
    paths = {r.resource.canonical for r in app.router.routes() if r.resource is not None}

    def norm(path: str) -> str:
        return path.split("{")[0].split("<")[0].rstrip("/") or "/"

    documented = {norm(m) for m in re.findall(r"`(/[^`]*)", text)}
    missing = [p for p in paths if norm(p) not in documented]
    assert missing == []


def test_every_channel_kind_is_documented_with_an_example_that_validates() -> None:
    import json
    import shlex

    from tokiflow.channels.registry import CHANNELS
    from tokiflow.engine.channel_setup import validate

    text = (DOCS / "channels.md").read_text() + (DOCS / "alerts.md").read_text()
    examples: dict[str, list[dict]] = {}
    for line in text.splitlines():
        if "tokiflow channels add" in line and "--kind" in line and "KIND" not in line:
            words = shlex.split(line.strip().strip("`"))
            kind = words[words.index("--kind") + 1]
            examples.setdefault(kind, []).append(json.loads(words[words.index("--config") + 1]))
    for kind in CHANNELS:
        if kind in ("email", "webhook"):
            assert f"## {kind.capitalize()}" in text, kind
            continue
        assert examples.get(kind), f"no example for {kind}"
        for config in examples[kind]:
            validate(kind, "example", config)
