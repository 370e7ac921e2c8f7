"""The JSON shapes of the Healthchecks-compatible management API: checks (per API version and
key kind), pings, flips, channels and badge URLs, built from Tokiflow's rows."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from tokiflow.storage.channels import ChannelRow
from tokiflow.storage.incidents import Flip
from tokiflow.storage.monitors import Monitor
from tokiflow.storage.orgs import Org
from tokiflow.storage.pings import Ping

PREFIX = "/hc/api/v"
VERSIONS = (1, 2, 3)
# Tokiflow's "late" is Healthchecks' "grace"; a ping Tokiflow ignored is Healthchecks' "ign".
_STATUS = {"late": "grace"}
_PING_TYPE = {"ignored": "ign"}
BADGE_FORMATS = ("svg", "json", "shields")


def isostring(value: dt.datetime | None) -> str | None:
    """ISO 8601 without microseconds, "+00:00" for UTC, as Healthchecks writes check times."""
    return None if value is None else value.replace(microsecond=0).isoformat()


def unique_key(uuid: str) -> str:
    """The stable identifier read-only keys see instead of the uuid (cannot be turned back)."""
    return hashlib.sha1(uuid.replace("-", "")[:16].encode()).hexdigest()


def check_url(base_url: str, v: int, uuid: str) -> str:
    return f"{base_url}{PREFIX}{v}/checks/{uuid}"


def status(m: Monitor, v: int) -> str:
    """Healthchecks' status word; API v1 reports a running check as "started"."""
    if v == 1 and running(m) and m.status != "paused":
        return "started"
    return _STATUS.get(m.status, m.status)


def running(m: Monitor) -> bool:
    return m.open_runs > 0 and m.status != "paused"


def check(
    m: Monitor, *, v: int, read_only: bool, base_url: str, channel_ids: Iterable[int] = ()
) -> dict[str, Any]:
    """A check as Healthchecks' API shows it; read-only keys get `unique_key` instead of the
    uuid, the URLs and the channels."""
    data: dict[str, Any] = {
        "name": m.name,
        "slug": m.slug,
        "tags": m.tags,
        "desc": m.description,
        "grace": m.grace,
        "n_pings": m.n_pings,
        "status": status(m, v),
        "started": running(m),
        "last_ping": isostring(m.last_ping_at),
        "next_ping": isostring(m.due_at) if m.status in ("up", "late") else None,
        "manual_resume": m.manual_resume,
        "methods": "POST" if m.methods == "post" else "",
        # Email keyword filtering is not a Tokiflow feature: always off.
        "subject": "",
        "subject_fail": "",
        "start_kw": "",
        "success_kw": "",
        "failure_kw": "",
        "filter_subject": False,
        "filter_body": False,
    }
    if m.last_duration:
        data["last_duration"] = int(m.last_duration)
    if read_only:
        data["unique_key"] = unique_key(m.uuid)
    else:
        url = check_url(base_url, v, m.uuid)
        data["uuid"] = m.uuid
        data["ping_url"] = f"{base_url}/ping/{m.uuid}"
        data["update_url"] = url
        data["pause_url"] = url + "/pause"
        data["resume_url"] = url + "/resume"
        data["channels"] = ",".join(str(i) for i in sorted(channel_ids))
    if m.schedule_kind == "cron":
        data["schedule"] = m.cron
        data["tz"] = m.tz
    else:
        data["timeout"] = m.period
    return data


def ping(p: Ping, *, v: int, base_url: str, uuid: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "type": _PING_TYPE.get(p.kind, p.kind),
        "date": p.created_at.isoformat(),
        "n": p.n,
        "scheme": p.scheme,
        "remote_addr": p.remote_addr,
        "method": p.method,
        "ua": p.user_agent,
        "rid": p.rid,
        "body_url": f"{check_url(base_url, v, uuid)}/pings/{p.n}/body" if p.body_size else None,
    }
    if p.duration is not None:
        data["duration"] = p.duration
    return data


def _two_state(s: str) -> str:
    # Healthchecks records no flip for the grace period: a late check is still up.
    return "up" if s == "late" else s


def flips(rows: Iterable[Flip]) -> list[dict[str, Any]]:
    """Status changes as {"timestamp", "up"}; Tokiflow's up <-> late changes are left out."""
    return [
        {"timestamp": isostring(f.at), "up": 1 if f.new_status == "up" else 0}
        for f in rows
        if _two_state(f.old_status) != _two_state(f.new_status)
    ]


def channel(row: ChannelRow) -> dict[str, Any]:
    return {"id": str(row.id), "name": row.name, "kind": row.kind}


def badge_signature(org: Org, tag: str) -> str:
    """8 characters that make a badge URL unguessable; keyed by the org's ping key, so badge
    URLs change when the ping key is rotated."""
    mac = hmac.new(org.ping_key.encode(), f"badge:{tag}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode()[:8]


def badge_urls(org: Org, tag: str, base_url: str) -> dict[str, str]:
    """The six badge URLs of a tag ("*" is every check): 2-state (`-2`) and 3-state variants."""
    sig = badge_signature(org, tag)
    name = "" if tag == "*" else "/" + quote(tag, safe="")
    urls: dict[str, str] = {}
    for fmt in BADGE_FORMATS:
        urls[fmt] = f"{base_url}/badge/{org.slug}/{sig}-2{name}.{fmt}"
        urls[f"{fmt}3"] = f"{base_url}/badge/{org.slug}/{sig}{name}.{fmt}"
    return urls


def badges(org: Org, tags: Iterable[str], base_url: str) -> dict[str, Any]:
    return {tag: badge_urls(org, tag, base_url) for tag in sorted({*tags, "*"})}
