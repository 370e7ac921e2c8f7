"""Monitor definitions: validating what a user asks for and creating monitors from it."""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
import uuid as uuidlib
from dataclasses import dataclass, field
from typing import Any

from tokiflow import licensing
from tokiflow.engine.schedules import (
    Schedule,
    ScheduleError,
    cron_schedule,
    parse_duration,
    period_schedule,
)
from tokiflow.storage import channels
from tokiflow.storage import monitors as store
from tokiflow.storage.monitors import Monitor

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")
DEFAULT_PERIOD = 86400
DEFAULT_GRACE = 3600


class MonitorError(ValueError):
    """A monitor definition is invalid; `field` names the offending field for forms and APIs."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name
        self.message = message


class MonitorLimitError(MonitorError):
    """The plan in force allows no more monitors (a 403 where the caller can say so, else 400)."""

    def __init__(self, message: str) -> None:
        super().__init__("monitors", message)
        self.args = (message,)

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class MonitorSpec:
    """A validated monitor definition, ready to insert."""

    org_id: int
    name: str
    slug: str
    schedule: Schedule
    grace: int = DEFAULT_GRACE
    description: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)
    max_runtime: int | None = None
    min_runtime: int | None = None
    methods: str = "any"
    manual_resume: bool = False
    failure_tolerance: int = 0
    late_incidents: bool = False
    uuid: str | None = None
    renotify_every: int | None = None
    notify_resolve: bool = True


def slugify(name: str) -> str:
    """A URL slug from a name: lower case, words joined by dashes."""
    slug = re.sub(r"[^a-z0-9_]+", "-", name.lower()).strip("-_")
    return slug[:100] or "monitor"


def _duration(name: str, value: Any, *, optional: bool = False) -> int | None:
    if value is None or value == "":
        if optional:
            return None
        raise MonitorError(name, "is required")
    try:
        return parse_duration(value)
    except ScheduleError as exc:
        raise MonitorError(name, str(exc)) from None


def build_spec(
    *,
    org_id: int,
    name: str,
    slug: str | None = None,
    period: Any = None,
    cron: str | None = None,
    tz: str = "UTC",
    grace: Any = DEFAULT_GRACE,
    description: str = "",
    tags: str | list[str] | tuple[str, ...] = (),
    max_runtime: Any = None,
    min_runtime: Any = None,
    methods: str = "any",
    manual_resume: bool = False,
    failure_tolerance: int = 0,
    late_incidents: bool = False,
    uuid: str | None = None,
    renotify_every: Any = None,
    notify_resolve: bool = True,
) -> MonitorSpec:
    """Validate user input into a MonitorSpec; raises MonitorError naming the field."""
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise MonitorError("name", "must be 1 to 200 characters")
    slug = slug if slug is not None else slugify(name)
    if not SLUG_RE.match(slug):
        raise MonitorError("slug", "use lower-case letters, digits, '-' and '_' (at most 100)")
    if period is not None and cron:
        raise MonitorError("schedule", "give either a period or a cron expression, not both")
    try:
        if cron:
            schedule = cron_schedule(cron, tz or "UTC")
        else:
            seconds = _duration("period", period if period is not None else DEFAULT_PERIOD)
            assert seconds is not None
            schedule = period_schedule(seconds)
    except ScheduleError as exc:
        raise MonitorError("schedule", str(exc)) from None
    grace_s = _duration("grace", grace)
    max_rt = _duration("max_runtime", max_runtime, optional=True)
    min_rt = _duration("min_runtime", min_runtime, optional=True)
    if max_rt is not None and min_rt is not None and min_rt >= max_rt:
        raise MonitorError("min_runtime", "must be shorter than max_runtime")
    if methods not in ("any", "post"):
        raise MonitorError("methods", "must be 'any' or 'post'")
    if not isinstance(failure_tolerance, int) or not 0 <= failure_tolerance <= 100:
        raise MonitorError("failure_tolerance", "must be a whole number from 0 to 100")
    renotify = _duration("renotify_every", renotify_every, optional=True)
    if renotify is not None and renotify < 60:
        raise MonitorError("renotify_every", "must be at least one minute")
    tag_list = tags.split() if isinstance(tags, str) else list(tags)
    if uuid is not None:
        try:
            uuid = str(uuidlib.UUID(uuid))
        except ValueError:
            raise MonitorError("uuid", "is not a valid UUID") from None
    return MonitorSpec(
        org_id=org_id, name=name, slug=slug, schedule=schedule, grace=grace_s or 0,
        description=description, tags=tuple(tag_list), max_runtime=max_rt, min_runtime=min_rt,
        methods=methods, manual_resume=manual_resume, failure_tolerance=failure_tolerance,
        late_incidents=late_incidents, uuid=uuid, renotify_every=renotify,
        notify_resolve=notify_resolve,
    )  # fmt: skip


def auto_created(org_id: int, slug: str) -> MonitorSpec:
    """The monitor a `?create=1` slug ping makes: named after the slug, default schedule."""
    return build_spec(org_id=org_id, name=slug, slug=slug)


def insert_monitor(
    conn: sqlite3.Connection, spec: MonitorSpec, now: dt.datetime, *, limits: licensing.Limits
) -> Monitor:
    """Insert a monitor (status new: no deadline until its first ping), subscribed to every
    default channel of its organisation; MonitorLimitError when `limits` (the plan in force)
    allows no more monitors. Every way of adding a monitor comes through here."""
    if limits.monitors is not None:
        try:
            licensing.check_can_create_monitor(store.count_all(conn), limits)
        except licensing.LicenceLimitError as exc:
            raise MonitorLimitError(str(exc)) from None
    s = spec.schedule
    monitor = store.insert(
        conn,
        {
            "uuid": spec.uuid or str(uuidlib.uuid4()),
            "org_id": spec.org_id,
            "name": spec.name,
            "slug": spec.slug,
            "description": spec.description,
            "tags": " ".join(spec.tags),
            "schedule_kind": s.kind,
            "period": s.period,
            "cron": s.cron,
            "tz": s.tz,
            "grace": spec.grace,
            "max_runtime": spec.max_runtime,
            "min_runtime": spec.min_runtime,
            "methods": spec.methods,
            "manual_resume": spec.manual_resume,
            "failure_tolerance": spec.failure_tolerance,
            "late_incidents": spec.late_incidents,
            "renotify_every": spec.renotify_every,
            "notify_resolve": spec.notify_resolve,
            "status": "new",
            "created_at": now,
            "updated_at": now,
        },
    )
    channels.link_defaults(conn, monitor.id, monitor.org_id)
    return monitor


def create_monitor(
    conn: sqlite3.Connection, spec: MonitorSpec, now: dt.datetime, *, limits: licensing.Limits
) -> Monitor:
    """Create a monitor, refusing a slug its organisation already uses (and one more monitor
    than `limits` allows)."""
    if store.slug_taken(conn, spec.org_id, spec.slug):
        raise MonitorError("slug", f"'{spec.slug}' is already used in this organisation")
    if spec.uuid is not None and store.by_uuid(conn, spec.uuid) is not None:
        raise MonitorError("uuid", f"{spec.uuid} is already used")
    return insert_monitor(conn, spec, now, limits=limits)
