"""What the organisation settings pages need beyond the API's routes: the audit log searched by
actor, action, target and time range; captured-output usage of one organisation; the extra
redaction patterns, changed with an audit entry; and whether a password-reset link still works.
"""

from __future__ import annotations

import datetime as dt
import sqlite3

from tokiflow.engine import accounts as account_ops
from tokiflow.engine import audit
from tokiflow.engine.audit import Actor
from tokiflow.storage import audit as audit_log
from tokiflow.storage import monitors, outputs
from tokiflow.storage.audit import AuditFilter
from tokiflow.storage.outputs import Pattern

__all__ = [
    "AuditFilter",
    "add_redaction",
    "org_has_monitors",
    "output_usage",
    "remove_redaction",
    "reset_link_works",
    "search_audit",
]

# -- the audit log -------------------------------------------------------------------------------


# The organisation's audit entries matching a filter, newest first; `before_id` pages back
# (keyset paging on the (org_id, id) index, so later pages cost the same as the first).
search_audit = audit_log.search


# -- captured output -----------------------------------------------------------------------------


def output_usage(conn: sqlite3.Connection, org_id: int) -> outputs.Usage:
    """Files and bytes of captured output of one organisation (through its index)."""
    return outputs.usage_of(conn, org_id)


# -- redaction patterns --------------------------------------------------------------------------


def add_redaction(
    conn: sqlite3.Connection, org_id: int, pattern: str, note: str, actor: Actor, now: dt.datetime
) -> Pattern:
    """Save an extra redaction pattern (ValueError says what is wrong with it) and audit it."""
    if len(pattern) > 500:
        raise ValueError("a pattern is at most 500 characters")
    if len(note) > 200:
        raise ValueError("a note is at most 200 characters")
    saved = outputs.add_pattern(conn, org_id, pattern, note.strip(), now)
    audit.record(conn, org_id=org_id, actor=actor, action="redaction.add",
                 target_kind="redaction", target_id=saved.id,
                 after={"pattern": pattern, "note": saved.note}, now=now)  # fmt: skip
    return saved


def remove_redaction(
    conn: sqlite3.Connection, org_id: int, pattern_id: int, actor: Actor, now: dt.datetime
) -> bool:
    """Remove one of the organisation's patterns (False when it has no such pattern)."""
    found = next((p for p in outputs.list_patterns(conn, org_id) if p.id == pattern_id), None)
    if found is None or not outputs.remove_pattern(conn, org_id, pattern_id):
        return False
    audit.record(conn, org_id=org_id, actor=actor, action="redaction.remove",
                 target_kind="redaction", target_id=pattern_id,
                 before={"pattern": found.pattern, "note": found.note}, now=now)  # fmt: skip
    return True


# -- password reset links ------------------------------------------------------------------------


# Whether a reset link's token was issued, is unused and has not expired (to say so before
# someone types a new password; the reset itself checks again).
reset_link_works = account_ops.reset_usable


# -- onboarding ----------------------------------------------------------------------------------


def org_has_monitors(conn: sqlite3.Connection, org_id: int) -> bool:
    """Whether the organisation has any monitor (one indexed lookup, not a count)."""
    return monitors.org_has_any(conn, org_id)
