"""What the monitor and incident commands print, the same on the data folder and a server:
tables for people, one JSON document (the API's shapes) with `--json`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any


def print_json(value: Any) -> None:
    print(json.dumps(value))


def _cut(text: Any, width: int) -> str:
    text = "-" if text is None else str(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def _when(text: str | None) -> str:
    return (text or "never")[:19].replace("T", " ")


def monitor_table(rows: Sequence[dict[str, Any]], *, as_json: bool) -> None:
    if as_json:
        print_json(list(rows))
        return
    if not rows:
        print("no monitors yet: add one with 'tokiflow monitors create --name NAME --period 1h'")
        return
    print(f"{'STATUS':<8}  {'NAME':<30}  {'LAST PING':<19}  {'UUID':<36}  SCHEDULE")
    for r in rows:
        print(f"{r['status']:<8}  {_cut(r['name'], 30):<30}  {_when(r['last_ping']):<19}  "
              f"{r['uuid']:<36}  {r['schedule_words']}")  # fmt: skip


def monitor_details(data: dict[str, Any], *, as_json: bool, headline: str = "") -> None:
    if as_json:
        print_json(data)
        return
    if headline:
        print(headline)
    width = max(len(k) for k in data)
    for key, value in data.items():
        if isinstance(value, list):
            value = " ".join(map(str, value))
        print(f"{key:<{width}}  {value if value not in (None, '') else '-'}")


def monitor_created(data: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        print_json(data)
        return
    print(f"created monitor '{data['name']}' ({data['schedule_words']})")
    print(f"  ping URL:  {data['ping_url']}")
    if data.get("slug_url"):
        print(f"  slug URL:  {data['slug_url']}")


def monitor_changed(data: dict[str, Any], verb: str, *, as_json: bool) -> None:
    if as_json:
        print_json(data)
        return
    print(f"{verb} monitor '{data['name']}': now {data['status']} ({data['schedule_words']})")


def incident_table(rows: Sequence[dict[str, Any]], *, as_json: bool) -> None:
    if as_json:
        print_json(list(rows))
        return
    if not rows:
        print("no incidents")
        return
    print(f"{'ID':<6}  {'KIND':<8}  {'STATE':<12}  {'OPENED':<19}  {'MONITOR':<24}  REASON")
    for r in rows:
        print(f"#{r['id']:<5}  {r['kind']:<8}  {r['state']:<12}  {_when(r['opened_at']):<19}  "
              f"{_cut(r['monitor'], 24):<24}  {r['reason']}")  # fmt: skip


def incident_state(data: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        print_json(data)
        return
    print(f"incident #{data['id']} is now {data['state']}")
