"""Uptime Kuma: its push tokens and its JSON backup (`monitorList`), of which push monitors are
imported; every other kind probes a target, which Tokiflow does not do, and is skipped.

A push monitor is found by its token: a Tokiflow monitor's own token is its uuid without dashes,
and an imported monitor's uuid is made from its Kuma token (uuid5), so that the Kuma push URLs
`/api/push/<token>` keep working unchanged after the import.
"""

from __future__ import annotations

import json
import sqlite3
import uuid as uuidlib
from typing import Any

from tokiflow.engine.schedules import MIN_PERIOD
from tokiflow.importers import Planner, SourceError

TOKEN_NAMESPACE = uuidlib.UUID("2c22b3ae-a411-4c11-b97c-0f541a075543")
MIN_GRACE = 60


def token_uuid(token: str) -> str:
    """The uuid of the monitor imported from a Kuma push monitor with this token."""
    return str(uuidlib.uuid5(TOKEN_NAMESPACE, token))


def push_token(monitor_uuid: str) -> str:
    """The push token of a Tokiflow monitor: its uuid without dashes."""
    return monitor_uuid.replace("-", "")


def candidate_uuids(token: str) -> list[str]:
    """The uuids a push token may name: the uuid it spells (a Tokiflow token), then the one
    made from it (an imported Kuma token)."""
    found = []
    if len(token) in (32, 36):
        try:
            found.append(str(uuidlib.UUID(token)))
        except ValueError:
            pass
    found.append(token_uuid(token))
    return found


def load(text: str) -> list[dict[str, Any]]:
    """The monitors of a Kuma JSON backup (`{"monitorList": [...]}`, or a list)."""
    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise SourceError(f"not a JSON file: {exc}") from None
    items = doc.get("monitorList") if isinstance(doc, dict) else doc
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise SourceError("no monitorList found: is this an Uptime Kuma JSON backup?")
    return items


def _int(data: dict[str, Any], name: str, default: int) -> int:
    value = data.get(name)
    try:
        return default if value is None else int(value)
    except (TypeError, ValueError):
        return default


def _tags(data: dict[str, Any]) -> list[str]:
    tags = []
    for tag in data.get("tags") or []:
        if not isinstance(tag, dict) or not tag.get("name"):
            continue
        text = str(tag["name"]) + (f":{tag['value']}" if tag.get("value") else "")
        tags.append("-".join(text.split()))
    return tags


def _skip_reason(data: dict[str, Any]) -> str | None:
    kind = str(data.get("type") or "")
    if kind != "push":
        return (
            f"a '{kind}' monitor, not a push monitor: Tokiflow watches jobs that push to it "
            "and does not probe targets"
        )
    if not data.get("pushToken"):
        return "a push monitor without a push token"
    if data.get("upsideDown"):
        return "upside-down mode (a push means down) is not supported"
    return None


def plan(conn: sqlite3.Connection, org_id: int, monitors: list[dict[str, Any]]) -> Planner:
    """What importing these Kuma monitors would do: the interval becomes the period, the
    retries the failure tolerance and (times the retry interval) the grace time."""
    planner = Planner(conn, org_id)
    for data in monitors:
        name = str(data.get("name") or data.get("pushToken") or "?")
        reason = _skip_reason(data)
        if reason is not None:
            planner.skip(name, reason)
            continue
        interval = _int(data, "interval", 60)
        retries = max(_int(data, "maxretries", 0), 0)
        notes = []
        if interval < MIN_PERIOD:
            notes.append(f"interval {interval}s raised to Tokiflow's minimum of 60s")
            interval = MIN_PERIOD
        args = {
            "name": name[:200],
            "uuid": token_uuid(str(data["pushToken"])),
            "period": interval,
            "grace": max(MIN_GRACE, retries * _int(data, "retryInterval", interval)),
            "failure_tolerance": min(retries, 100),
            "description": str(data.get("description") or ""),
            "tags": _tags(data),
        }
        planner.add(name, args, paused=not data.get("active", True), notes=tuple(notes))
    return planner
