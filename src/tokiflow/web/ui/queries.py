"""The monitor statuses the UI's lists show, and the counts per shown status. The reads behind
the pages' lists live in storage (`monitor_lists`, `incidents`); the names the live-update
stream uses are re-exported here under the names it knows."""

from __future__ import annotations

import sqlite3

from tokiflow.storage import monitor_lists
from tokiflow.storage.incidents import unresolved_signature as incident_signature
from tokiflow.storage.monitor_lists import Change, changes_since

__all__ = ["STATUSES", "Change", "changes_since", "incident_signature", "status_counts"]

STATUSES = ("down", "late", "running", "up", "new", "paused")


def status_counts(conn: sqlite3.Connection, org_id: int) -> dict[str, int]:
    """How many monitors are in each displayed status (`running` while a run is open)."""
    counts = dict.fromkeys(STATUSES, 0)
    for status, running, n in monitor_lists.status_counts(conn, org_id):
        shown = "running" if running else status  # as engine.views.display_status
        counts[shown] = counts.get(shown, 0) + n
    return counts
