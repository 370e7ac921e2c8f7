"""Incident actions taken by people: acknowledge and resolve, each at most once."""

from __future__ import annotations

import datetime as dt
import sqlite3

from tokiflow.engine import alerts, states
from tokiflow.storage import incidents
from tokiflow.storage.incidents import Incident


class IncidentError(ValueError):
    """The incident does not exist or is not in a state that allows the action."""


def acknowledge(conn: sqlite3.Connection, incident_id: int, now: dt.datetime) -> Incident:
    """Mark an open incident acknowledged (it stops re-notifying, stays open until resolved)."""
    inc = incidents.get(conn, incident_id)
    if inc is None:
        raise IncidentError(f"no incident #{incident_id}")
    if not incidents.acknowledge(conn, incident_id, now):
        raise IncidentError(f"incident #{incident_id} is {inc.state}, not open")
    alerts.clear_renotify(conn, incident_id)
    alerts.notify(conn, incident_id, "acknowledged", now)
    updated = incidents.get(conn, incident_id)
    assert updated is not None
    return updated


def resolve(conn: sqlite3.Connection, incident_id: int, now: dt.datetime, by: str) -> Incident:
    """Resolve an open or acknowledged incident by hand."""
    inc = incidents.get(conn, incident_id)
    if inc is None:
        raise IncidentError(f"no incident #{incident_id}")
    if not states.resolve_incident(conn, incident_id, now, by):
        raise IncidentError(f"incident #{incident_id} is already resolved")
    updated = incidents.get(conn, incident_id)
    assert updated is not None
    return updated
