"""Monitors from other services: Healthchecks (API v3), Cronitor (YAML or JSON export) and Uptime
Kuma (JSON backup). Each importer turns the source's definitions into a plan (what would be
created, what is skipped and why), checked against the database; `create_all` then creates the
planned monitors in the caller's transaction. `upsert` creates or changes one monitor by slug,
for the front doors whose clients declare monitors as they ping (Cronitor API, Sentry Crons).
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass, replace
from typing import Any

from tokiflow import licensing
from tokiflow.engine import audit, monitor_ops, views
from tokiflow.engine.monitors import (
    SLUG_RE,
    MonitorError,
    MonitorSpec,
    build_spec,
    insert_monitor,
    slugify,
)
from tokiflow.storage import monitors as store
from tokiflow.storage.monitors import Monitor


def slug_for_key(key: str) -> str:
    """The slug of the monitor a foreign key (Cronitor key, Sentry slug) names: the key itself
    when it is a valid slug, else its slugified form (the same key always gives the same slug)."""
    key = key.strip()
    return key if SLUG_RE.match(key) else slugify(key)


class SourceError(ValueError):
    """The source cannot be read at all (bad file, unreachable API); str() is one line."""


@dataclass(frozen=True)
class Plan:
    """One source monitor: the spec to create, or the reason it is skipped."""

    source: str  # the monitor's name or key in the source service
    spec: MonitorSpec | None = None
    reason: str = ""
    paused: bool = False
    notes: tuple[str, ...] = ()


class Planner:
    """Validates source monitors into plans, refusing uuids already used and resolving slug
    clashes with the database and with each other."""

    def __init__(self, conn: sqlite3.Connection, org_id: int) -> None:
        self.conn = conn
        self.org_id = org_id
        self._slugs: set[str] = set()
        self._uuids: set[str] = set()
        self.plans: list[Plan] = []

    def skip(self, source: str, reason: str) -> Plan:
        plan = Plan(source, reason=reason)
        self.plans.append(plan)
        return plan

    def add(
        self,
        source: str,
        args: dict[str, Any],
        *,
        paused: bool = False,
        notes: tuple[str, ...] = (),
        rename_on_clash: bool = True,
    ) -> Plan:
        """Plan a monitor from build_spec arguments. A slug already used is suffixed (-2, -3,
        ...) when the monitor is found by uuid; refused when the slug is its identity."""
        try:
            spec = build_spec(org_id=self.org_id, **args)
        except MonitorError as exc:
            return self.skip(source, str(exc))
        if spec.uuid is not None and (
            spec.uuid in self._uuids or store.by_uuid(self.conn, spec.uuid) is not None
        ):
            return self.skip(source, f"a monitor with uuid {spec.uuid} already exists")
        if self._taken(spec.slug):
            if not rename_on_clash:
                return self.skip(source, f"a monitor with slug '{spec.slug}' already exists")
            new = self._free_slug(spec.slug)
            notes = (*notes, f"slug '{spec.slug}' is taken: using '{new}'")
            spec = replace(spec, slug=new)
        self._slugs.add(spec.slug)
        if spec.uuid is not None:
            self._uuids.add(spec.uuid)
        plan = Plan(source, spec, paused=paused, notes=notes)
        self.plans.append(plan)
        return plan

    def _taken(self, slug: str) -> bool:
        return slug in self._slugs or store.slug_taken(self.conn, self.org_id, slug)

    def _free_slug(self, slug: str) -> str:
        n = 2
        while True:
            suffix = f"-{n}"
            candidate = slug[: 100 - len(suffix)] + suffix
            if not self._taken(candidate):
                return candidate
            n += 1


def create_all(
    conn: sqlite3.Connection,
    plans: list[Plan],
    now: dt.datetime,
    actor: audit.Actor,
    *,
    limits: licensing.Limits,
) -> list[Monitor]:
    """Create every planned monitor (paused where the source had it paused), with an audit
    entry each; in the caller's transaction (MonitorLimitError past the plan's limit)."""
    created = []
    for plan in plans:
        if plan.spec is None:
            continue
        m = insert_monitor(conn, plan.spec, now, limits=limits)
        if plan.paused:
            m = monitor_ops.pause(conn, m, now, now)
        audit.record(
            conn, org_id=m.org_id, actor=actor, action="monitor.import", target_kind="monitor",
            target_id=m.uuid, after={**views.monitor_view(m, None, ""), "source": plan.source},
            now=now,
        )  # fmt: skip
        created.append(m)
    return created


def definition(m: Monitor) -> dict[str, Any]:
    """A stored monitor as build_spec arguments (to compare or merge a new definition)."""
    return {
        "name": m.name, "slug": m.slug, "description": m.description, "tags": m.tags,
        "period": m.period if m.schedule_kind == "period" else None,
        "cron": m.cron if m.schedule_kind == "cron" else None, "tz": m.tz, "grace": m.grace,
        "max_runtime": m.max_runtime, "min_runtime": m.min_runtime, "methods": m.methods,
        "manual_resume": m.manual_resume, "failure_tolerance": m.failure_tolerance,
        "late_incidents": m.late_incidents, "renotify_every": m.renotify_every,
        "notify_resolve": m.notify_resolve,
    }  # fmt: skip


def _merged(m: Monitor, changes: dict[str, Any]) -> dict[str, Any]:
    merged = {**definition(m), **changes}
    if changes.get("cron"):
        merged["period"] = None
    elif changes.get("period") is not None:
        merged["cron"] = None
    return merged


@dataclass(frozen=True)
class Upserted:
    monitor: Monitor
    action: str  # "created", "updated" or "unchanged"
    before: Monitor | None = None


def upsert(
    conn: sqlite3.Connection,
    org_id: int,
    slug: str,
    args: dict[str, Any],
    now: dt.datetime,
    started_at: dt.datetime,
    *,
    defaults: dict[str, Any] | None = None,
    limits: licensing.Limits,
) -> Upserted:
    """Create the organisation's monitor `slug` from `args` (build_spec arguments, over
    `defaults`), or apply the arguments that differ to the existing one; raises MonitorError for
    an invalid value (MonitorLimitError when creating would pass `limits`). A definition sent
    again unchanged writes nothing (clients resend it with every ping)."""
    found = store.by_slug(conn, org_id, slug)
    if not found:
        spec = build_spec(org_id=org_id, slug=slug, **{"name": slug, **(defaults or {}), **args})
        return Upserted(insert_monitor(conn, spec, now, limits=limits), "created")
    m = found[0]
    changes = dict(args)
    current = build_spec(org_id=org_id, **definition(m))
    wanted = build_spec(org_id=org_id, **_merged(m, changes))
    if wanted == current:
        return Upserted(m, "unchanged")
    return Upserted(monitor_ops.update(conn, m, changes, now, started_at), "updated", m)
