"""Request bodies of the Healthchecks-compatible management API: validation with Healthchecks'
error messages, and the mapping of a check spec onto Tokiflow's monitor fields."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from tokiflow.engine.monitors import SLUG_RE
from tokiflow.engine.schedules import MAX_PERIOD, MIN_PERIOD, ScheduleError, cron_schedule
from tokiflow.storage import channels
from tokiflow.storage import monitors as store
from tokiflow.storage.monitors import Monitor

UNIQUE_FIELDS = ("name", "slug", "tags", "timeout", "grace")
# Email keyword fields Healthchecks has and Tokiflow does not use: accepted, checked, ignored.
KEYWORD_FIELDS = (
    "start_kw", "req_start_kw", "success_kw", "req_success_kw", "failure_kw", "req_failure_kw",
    "subject", "subject_fail",
)  # fmt: skip
_STRINGS = {"channels": None, "desc": None, "name": 200, "schedule": 100, "slug": 100,
            "tags": None, "tz": None, **dict.fromkeys(KEYWORD_FIELDS, 200)}  # fmt: skip
_BOOLS = ("filter_body", "filter_subject", "manual_resume")
_SECONDS = ("grace", "timeout")
_SLUG_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-_")


class HcError(Exception):
    """An error reply `{"error": message}` with an HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def invalid(message: str) -> HcError:
    return HcError(400, f"json validation error: {message}")


@dataclass(frozen=True)
class CheckSpec:
    """A validated create or update request; None means "not given"."""

    name: str | None = None
    slug: str | None = None
    tags: str | None = None
    desc: str | None = None
    timeout: int | None = None
    grace: int | None = None
    schedule: str | None = None
    tz: str | None = None
    manual_resume: bool | None = None
    methods: str | None = None
    channels: str | None = None
    unique: tuple[str, ...] = ()


def parse_spec(body: dict[str, Any]) -> CheckSpec:
    """Check every known field's type and range, as Healthchecks does (unknown fields, such as
    `api_key`, are ignored); raises HcError(400) with Healthchecks' message for the first bad
    one."""
    _check_types(body)
    _check_values(body)
    return CheckSpec(
        name=body.get("name"), slug=body.get("slug"), tags=body.get("tags"),
        desc=body.get("desc"), timeout=body.get("timeout"), grace=body.get("grace"),
        schedule=body.get("schedule"), tz=body.get("tz"),
        manual_resume=body.get("manual_resume"), methods=body.get("methods"),
        channels=body.get("channels"), unique=tuple(body.get("unique", [])),
    )  # fmt: skip


def _check_types(body: dict[str, Any]) -> None:
    for name, limit in _STRINGS.items():
        if name in body:
            _check_string(name, body[name], limit)
    for name in _BOOLS:
        if name in body and not isinstance(body[name], bool):
            raise invalid(f"{name} is not a boolean")
    for name in _SECONDS:
        if name in body:
            _check_seconds(name, body[name])


def _check_values(body: dict[str, Any]) -> None:
    if "methods" in body and body["methods"] not in ("", "POST"):
        raise invalid("methods has unexpected value")
    unique = body.get("unique", [])
    if not isinstance(unique, list):
        raise invalid("unique is not an array")
    if any(item not in UNIQUE_FIELDS for item in unique):
        raise invalid("an item in 'unique' has unexpected value")
    if "slug" in body and not set(body["slug"]) <= _SLUG_CHARS:
        raise invalid("slug does not match pattern")
    if "schedule" in body:
        _check_schedule(body["schedule"])
    if "tz" in body:
        _check_tz(body["tz"])


def _check_string(name: str, value: Any, limit: int | None) -> None:
    if not isinstance(value, str):
        raise invalid(f"{name} is not a string")
    if limit is not None and len(value) > limit:
        raise invalid(f"{name} is too long")


def _check_seconds(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(f"{name} is not a number")
    if value < MIN_PERIOD:
        raise invalid(f"{name} is too small")
    if value > MAX_PERIOD:
        raise invalid(f"{name} is too large")


def _check_schedule(expr: str) -> None:
    try:
        cron_schedule(expr)
    except ScheduleError:
        raise invalid("schedule is not a valid cron or OnCalendar expression") from None


def _check_tz(tz: str) -> None:
    try:
        cron_schedule("0 0 * * *", tz)
    except ScheduleError:
        raise invalid("tz is not a valid timezone") from None


# -- lookups and changes, run in the writer ---------------------------------------------------


def find_unique(conn: sqlite3.Connection, org_id: int, spec: CheckSpec) -> Monitor | None:
    """The check an upsert (`unique`) matches, if every field it names was given."""
    if not spec.unique or any(getattr(spec, f) is None for f in spec.unique):
        return None
    tags = " ".join((spec.tags or "").split())
    for m in store.list_for_org(conn, org_id):
        if (
            ("name" not in spec.unique or m.name == spec.name)
            and ("slug" not in spec.unique or m.slug == spec.slug)
            and ("tags" not in spec.unique or m.tags == tags)
            and ("timeout" not in spec.unique or _timeout(m) == spec.timeout)
            and ("grace" not in spec.unique or m.grace == spec.grace)
        ):
            return m
    return None


def _timeout(m: Monitor) -> int | None:
    return m.period if m.schedule_kind == "period" else None


def free_slug(conn: sqlite3.Connection, org_id: int, base: str, own: Monitor | None) -> str:
    """`base`, or `base-2`, `base-3` ... : the first slug no other check of the org uses (Tokiflow
    slugs are unique in an organisation, Healthchecks' are not)."""
    base = base[:90].strip("-_") or "check"
    candidate, n = base, 1
    while store.slug_taken(conn, org_id, candidate) and (own is None or own.slug != candidate):
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def explicit_slug(conn: sqlite3.Connection, org_id: int, slug: str, own: Monitor | None) -> str:
    if not SLUG_RE.match(slug):
        raise invalid("slug does not match pattern")
    if (own is None or own.slug != slug) and store.slug_taken(conn, org_id, slug):
        raise HcError(400, f"slug '{slug}' is already used by another check")
    return slug


def monitor_fields(spec: CheckSpec) -> dict[str, Any]:
    """Tokiflow monitor fields for what the spec gives, except name and slug (the caller decides
    those). A schedule wins over a timeout, as in Healthchecks."""
    out: dict[str, Any] = {}
    if spec.schedule is not None:
        out["cron"] = spec.schedule
    elif spec.timeout is not None:
        out["period"] = spec.timeout
    if spec.tz is not None:
        out["tz"] = spec.tz  # only kept with a cron schedule
    for ours, value in (("grace", spec.grace), ("description", spec.desc), ("tags", spec.tags),
                        ("manual_resume", spec.manual_resume)):  # fmt: skip
        if value is not None:
            out[ours] = value
    if spec.methods is not None:
        out["methods"] = "post" if spec.methods == "POST" else "any"
    return out


def resolve_channels(conn: sqlite3.Connection, org_id: int, value: str) -> list[int]:
    """Channel ids for Healthchecks' `channels` value: "*" (all), "" (none) or a comma-separated
    list of channel ids or exact names."""
    available = channels.list_for_org(conn, org_id)
    if value == "*":
        return [c.id for c in available]
    if value == "":
        return []
    chosen: list[int] = []
    for ident in value.split(","):
        if ident == "":
            raise HcError(400, "empty channel identifier")
        matches = [c for c in available if str(c.id) == ident or c.name == ident]
        if not matches:
            raise HcError(400, f"invalid channel identifier: {ident}")
        if len(matches) > 1:
            raise HcError(400, f"non-unique channel identifier: {ident}")
        if matches[0].id not in chosen:
            chosen.append(matches[0].id)
    return chosen
