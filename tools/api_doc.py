"""Regenerate the route table of docs/api.md from the declared API routes.

Run `.venv/bin/python tools/api_doc.py` after adding a route; tests/test_docs.py fails when the
table is out of date.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tokiflow.web.api.v1 import API

DOC = Path(__file__).resolve().parent.parent / "docs" / "api.md"
START, END = "<!-- routes:start -->", "<!-- routes:end -->"


def table() -> str:
    rows = ["| Method | Path | Access | What it does |", "| --- | --- | --- | --- |"]
    for ep in API.endpoints:
        rows.append(f"| `{ep.method}` | `{API.prefix}{ep.path}` | {ep.scope} | {ep.summary} |")
    return "\n".join(rows)


def render(text: str) -> str:
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table()}\n{END}{tail}"


if __name__ == "__main__":
    current = DOC.read_text()
    updated = render(current)
    if "--check" in sys.argv:
        sys.exit(0 if updated == current else 1)
    DOC.write_text(updated)
    print(f"wrote {DOC}")
