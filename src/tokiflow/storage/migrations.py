"""Forward-only schema migrations (sqlite-utils `Migrations`), applied at start-up after a backup copy.

Never edit a migration that has shipped: add the next `m000N_...` function instead.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils
from sqlite_utils.migrations import Migrations

from tokiflow.storage.db import StorageError, check_integrity, connect, enable_wal

log = logging.getLogger(__name__)

MIGRATION_SET = "tokiflow"

migrations = Migrations(MIGRATION_SET)


def _run(db: sqlite_utils.Database, script: str) -> None:
    """Run DDL statement by statement: `executescript` would commit and break the migration's
    transaction."""
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


@migrations()
def m0001_initial(db: sqlite_utils.Database) -> None:
    _run(
        db,
        """
        CREATE TABLE orgs (
            id INTEGER PRIMARY KEY,
            slug TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            ping_key TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL
        );
        CREATE TABLE monitors (
            id INTEGER PRIMARY KEY,
            uuid TEXT NOT NULL UNIQUE,
            org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            slug TEXT NOT NULL,
            description TEXT NOT NULL DEFAULT '',
            tags TEXT NOT NULL DEFAULT '',
            schedule_kind TEXT NOT NULL CHECK (schedule_kind IN ('period', 'cron')),
            period INTEGER,
            cron TEXT,
            tz TEXT NOT NULL DEFAULT 'UTC',
            grace INTEGER NOT NULL,
            max_runtime INTEGER,
            min_runtime INTEGER,
            methods TEXT NOT NULL DEFAULT 'any' CHECK (methods IN ('any', 'post')),
            manual_resume INTEGER NOT NULL DEFAULT 0,
            failure_tolerance INTEGER NOT NULL DEFAULT 0,
            late_incidents INTEGER NOT NULL DEFAULT 0,
            status TEXT NOT NULL DEFAULT 'new'
                CHECK (status IN ('new', 'up', 'late', 'down', 'paused')),
            last_ping_at TEXT,
            last_success_at TEXT,
            last_start_at TEXT,
            last_duration REAL,
            running_since TEXT,
            due_at TEXT,
            next_check_at TEXT,
            consecutive_failures INTEGER NOT NULL DEFAULT 0,
            n_pings INTEGER NOT NULL DEFAULT 0,
            open_runs INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX monitors_org_slug ON monitors(org_id, slug);
        CREATE TABLE pings (
            monitor_id INTEGER NOT NULL REFERENCES monitors(id) ON DELETE CASCADE,
            n INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            kind TEXT NOT NULL,
            exit_status INTEGER,
            rid TEXT,
            method TEXT NOT NULL DEFAULT '',
            scheme TEXT NOT NULL DEFAULT '',
            remote_addr TEXT NOT NULL DEFAULT '',
            user_agent TEXT NOT NULL DEFAULT '',
            protocol TEXT NOT NULL DEFAULT 'hc',
            body BLOB,
            body_size INTEGER NOT NULL DEFAULT 0,
            duration REAL,
            PRIMARY KEY (monitor_id, n)
        ) WITHOUT ROWID;
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            monitor_id INTEGER NOT NULL REFERENCES monitors(id) ON DELETE CASCADE,
            rid TEXT,
            status TEXT NOT NULL CHECK (status IN ('running', 'success', 'fail', 'timeout')),
            started_at TEXT,
            finished_at TEXT,
            duration REAL,
            exit_status INTEGER,
            start_ping INTEGER,
            end_ping INTEGER,
            reason TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX runs_monitor ON runs(monitor_id, id);
        CREATE INDEX runs_open ON runs(monitor_id, rid) WHERE status = 'running';
        CREATE TABLE incidents (
            id INTEGER PRIMARY KEY,
            org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
            monitor_id INTEGER NOT NULL REFERENCES monitors(id) ON DELETE CASCADE,
            kind TEXT NOT NULL
                CHECK (kind IN ('FAIL', 'MISSED', 'LATE', 'TIMEOUT', 'ANOMALY', 'OUTPUT')),
            state TEXT NOT NULL CHECK (state IN ('open', 'acknowledged', 'resolved')),
            reason TEXT NOT NULL,
            opened_at TEXT NOT NULL,
            acknowledged_at TEXT,
            resolved_at TEXT,
            resolved_by TEXT,
            run_id INTEGER
        );
        CREATE INDEX incidents_monitor ON incidents(monitor_id, state);
        CREATE INDEX incidents_org ON incidents(org_id, state, opened_at);
        CREATE TABLE flips (
            id INTEGER PRIMARY KEY,
            monitor_id INTEGER NOT NULL REFERENCES monitors(id) ON DELETE CASCADE,
            at TEXT NOT NULL,
            old_status TEXT NOT NULL,
            new_status TEXT NOT NULL,
            reason TEXT NOT NULL
        );
        CREATE INDEX flips_monitor ON flips(monitor_id, id);
        CREATE TABLE server_meta (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        """,
    )


@migrations()
def m0002_alerts(db: sqlite_utils.Database) -> None:
    _run(
        db,
        """
        CREATE TABLE channels (
            id INTEGER PRIMARY KEY,
            org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
            kind TEXT NOT NULL,
            name TEXT NOT NULL,
            config BLOB NOT NULL,
            is_default INTEGER NOT NULL DEFAULT 1,
            created_at TEXT NOT NULL,
            last_error TEXT,
            last_error_at TEXT
        );
        CREATE INDEX channels_org ON channels(org_id);
        CREATE TABLE monitor_channels (
            monitor_id INTEGER NOT NULL REFERENCES monitors(id) ON DELETE CASCADE,
            channel_id INTEGER NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
            PRIMARY KEY (monitor_id, channel_id)
        ) WITHOUT ROWID;
        CREATE INDEX monitor_channels_channel ON monitor_channels(channel_id);
        ALTER TABLE monitors ADD COLUMN renotify_every INTEGER;
        ALTER TABLE monitors ADD COLUMN notify_resolve INTEGER NOT NULL DEFAULT 1;
        ALTER TABLE incidents ADD COLUMN renotify_at TEXT;
        CREATE INDEX incidents_renotify ON incidents(renotify_at) WHERE renotify_at IS NOT NULL;
        CREATE TABLE notifications (
            id INTEGER PRIMARY KEY,
            org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
            channel_id INTEGER NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
            incident_id INTEGER REFERENCES incidents(id) ON DELETE CASCADE,
            event TEXT NOT NULL
                CHECK (event IN ('open', 'acknowledged', 'renotify', 'resolved', 'test')),
            state TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'dead')),
            idempotency_key TEXT NOT NULL UNIQUE,
            message TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            next_attempt_at TEXT NOT NULL,
            sent_at TEXT,
            last_error TEXT
        );
        CREATE INDEX notifications_due ON notifications(next_attempt_at)
            WHERE state IN ('pending', 'sending');
        CREATE INDEX notifications_channel ON notifications(channel_id, id);
        CREATE INDEX notifications_incident ON notifications(incident_id);
        CREATE TABLE delivery_attempts (
            id INTEGER PRIMARY KEY,
            notification_id INTEGER NOT NULL REFERENCES notifications(id) ON DELETE CASCADE,
            at TEXT NOT NULL,
            ok INTEGER NOT NULL,
            status TEXT NOT NULL DEFAULT '',
            error TEXT NOT NULL DEFAULT '',
            latency_ms REAL NOT NULL
        );
        CREATE INDEX delivery_attempts_notification ON delivery_attempts(notification_id);
        """,
    )


@migrations()
def m0003_analytics(db: sqlite_utils.Database) -> None:
    _run(
        db,
        """
        ALTER TABLE monitors ADD COLUMN anomaly_alerts INTEGER NOT NULL DEFAULT 1;
        ALTER TABLE monitors ADD COLUMN anomaly_factor REAL NOT NULL DEFAULT 1.5;
        ALTER TABLE monitors ADD COLUMN anomaly_z REAL NOT NULL DEFAULT 3.0;
        ALTER TABLE monitors ADD COLUMN output_drop REAL NOT NULL DEFAULT 0.3;
        ALTER TABLE monitors ADD COLUMN output_limit INTEGER;
        ALTER TABLE monitors ADD COLUMN output_tracked INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE runs ADD COLUMN output_size INTEGER;
        CREATE TABLE monitor_stats (
            monitor_id INTEGER PRIMARY KEY REFERENCES monitors(id) ON DELETE CASCADE,
            runs INTEGER NOT NULL DEFAULT 0,
            mean REAL NOT NULL DEFAULT 0,
            m2 REAL NOT NULL DEFAULT 0,
            min_duration REAL,
            max_duration REAL,
            outputs INTEGER NOT NULL DEFAULT 0,
            recent_sizes TEXT NOT NULL DEFAULT '',
            anomaly_incident INTEGER,
            output_incident INTEGER,
            updated_at TEXT
        );
        CREATE TABLE outputs (
            monitor_id INTEGER NOT NULL REFERENCES monitors(id) ON DELETE CASCADE,
            n INTEGER NOT NULL,
            org_id INTEGER NOT NULL,
            run_id INTEGER,
            created_at TEXT NOT NULL,
            size INTEGER NOT NULL,
            kept INTEGER NOT NULL,
            stored INTEGER NOT NULL,
            redactions INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (monitor_id, n)
        ) WITHOUT ROWID;
        CREATE INDEX outputs_age ON outputs(created_at);
        CREATE INDEX outputs_org ON outputs(org_id, created_at);
        CREATE TABLE redaction_patterns (
            id INTEGER PRIMARY KEY,
            org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
            pattern TEXT NOT NULL,
            note TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            UNIQUE (org_id, pattern)
        );
        """,
    )


@migrations()
def m0004_accounts(db: sqlite_utils.Database) -> None:
    _run(
        db,
        """
        CREATE TABLE users (
            id INTEGER PRIMARY KEY,
            email TEXT NOT NULL UNIQUE COLLATE NOCASE,
            name TEXT NOT NULL DEFAULT '',
            password_hash TEXT NOT NULL,
            totp_secret BLOB,
            tz TEXT NOT NULL DEFAULT 'UTC',
            created_at TEXT NOT NULL,
            last_login_at TEXT,
            failed_logins INTEGER NOT NULL DEFAULT 0,
            locked_until TEXT
        );
        CREATE TABLE memberships (
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
            role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'editor', 'viewer', 'billing')),
            created_at TEXT NOT NULL,
            PRIMARY KEY (user_id, org_id)
        ) WITHOUT ROWID;
        CREATE INDEX memberships_org ON memberships(org_id);
        CREATE TABLE sessions (
            id INTEGER PRIMARY KEY,
            token_hash TEXT NOT NULL UNIQUE,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            csrf_token TEXT NOT NULL,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            last_seen_at TEXT NOT NULL,
            ip TEXT NOT NULL DEFAULT '',
            user_agent TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX sessions_user ON sessions(user_id);
        CREATE TABLE api_keys (
            id INTEGER PRIMARY KEY,
            org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            prefix TEXT NOT NULL,
            key_hash TEXT NOT NULL UNIQUE,
            read_only INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            expires_at TEXT,
            last_used_at TEXT,
            revoked_at TEXT,
            created_by TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX api_keys_org ON api_keys(org_id);
        CREATE TABLE invitations (
            id INTEGER PRIMARY KEY,
            org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
            email TEXT NOT NULL COLLATE NOCASE,
            role TEXT NOT NULL,
            token_hash TEXT NOT NULL UNIQUE,
            invited_by INTEGER REFERENCES users(id) ON DELETE SET NULL,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            accepted_at TEXT
        );
        CREATE INDEX invitations_org ON invitations(org_id);
        CREATE TABLE password_resets (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            token_hash TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            used_at TEXT
        );
        CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY,
            org_id INTEGER REFERENCES orgs(id) ON DELETE CASCADE,
            at TEXT NOT NULL,
            actor_kind TEXT NOT NULL CHECK (actor_kind IN ('user', 'key', 'cli', 'system')),
            actor_id INTEGER,
            actor_label TEXT NOT NULL DEFAULT '',
            action TEXT NOT NULL,
            target_kind TEXT NOT NULL DEFAULT '',
            target_id TEXT NOT NULL DEFAULT '',
            before TEXT,
            after TEXT,
            ip TEXT NOT NULL DEFAULT '',
            user_agent TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX audit_log_org ON audit_log(org_id, id);
        CREATE TABLE incident_comments (
            id INTEGER PRIMARY KEY,
            incident_id INTEGER NOT NULL REFERENCES incidents(id) ON DELETE CASCADE,
            author TEXT NOT NULL,
            body TEXT NOT NULL,
            at TEXT NOT NULL
        );
        CREATE INDEX incident_comments_incident ON incident_comments(incident_id);
        CREATE TABLE notification_prefs (
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
            mode TEXT NOT NULL DEFAULT 'immediate' CHECK (mode IN ('immediate', 'digest', 'off')),
            tags TEXT NOT NULL DEFAULT '',
            quiet_start TEXT,
            quiet_end TEXT,
            PRIMARY KEY (user_id, org_id)
        ) WITHOUT ROWID;
        CREATE TABLE device_codes (
            id INTEGER PRIMARY KEY,
            user_code TEXT NOT NULL UNIQUE,
            device_code_hash TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            approved_by INTEGER REFERENCES users(id) ON DELETE CASCADE,
            org_id INTEGER REFERENCES orgs(id) ON DELETE CASCADE,
            api_key TEXT
        );
        """,
    )


@migrations()
def m0005_ping_metrics(db: sqlite_utils.Database) -> None:
    _run(
        db,
        """
        CREATE TABLE ping_metrics (
            monitor_id INTEGER NOT NULL REFERENCES monitors(id) ON DELETE CASCADE,
            n INTEGER NOT NULL,
            name TEXT NOT NULL,
            value REAL NOT NULL,
            PRIMARY KEY (monitor_id, n, name)
        ) WITHOUT ROWID;
        """,
    )


@migrations()
def m0006_personal_alerts(db: sqlite_utils.Database) -> None:
    _run(
        db,
        """
        ALTER TABLE users ADD COLUMN totp_last_step INTEGER;
        CREATE INDEX notification_prefs_org ON notification_prefs(org_id);
        CREATE TABLE user_notifications (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            org_id INTEGER REFERENCES orgs(id) ON DELETE CASCADE,
            incident_id INTEGER REFERENCES incidents(id) ON DELETE SET NULL,
            kind TEXT NOT NULL CHECK (kind IN ('alert', 'digest')),
            event TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('pending', 'sending', 'sent', 'dead')),
            idempotency_key TEXT NOT NULL UNIQUE,
            message TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            due_at TEXT NOT NULL,
            next_attempt_at TEXT NOT NULL,
            sent_at TEXT,
            last_error TEXT
        );
        CREATE INDEX user_notifications_due ON user_notifications(next_attempt_at)
            WHERE state IN ('pending', 'sending');
        CREATE INDEX user_notifications_user ON user_notifications(user_id, id);
        CREATE INDEX user_notifications_incident ON user_notifications(incident_id);
        CREATE TABLE digest_items (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
            incident_id INTEGER REFERENCES incidents(id) ON DELETE SET NULL,
            event TEXT NOT NULL,
            idempotency_key TEXT NOT NULL UNIQUE,
            message TEXT NOT NULL,
            created_at TEXT NOT NULL,
            due_at TEXT NOT NULL,
            digest_id INTEGER REFERENCES user_notifications(id) ON DELETE CASCADE
        );
        CREATE INDEX digest_items_due ON digest_items(due_at, user_id) WHERE digest_id IS NULL;
        CREATE INDEX digest_items_digest ON digest_items(digest_id);
        CREATE INDEX digest_items_incident ON digest_items(incident_id);
        """,
    )


# The duration buckets of `monitor_hours` (upper bounds in seconds; the last column is longer),
# as m0007 made them: the backfill below must never change with a later edit.
M0007_EDGES = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400)
_QUARTERS = ("s00", "s15", "s30", "s45")
_BUCKETS = tuple(f"b{i}" for i in range(len(M0007_EDGES) + 1))


def backfill_monitor_hours(conn: sqlite3.Connection) -> None:
    """Compute the rollups (`monitor_hours`, and through its triggers `monitor_days` and
    `org_hours`) from scratch from the pings and runs kept: what m0007 runs, and the reference
    the rows kept by the writer are checked against."""
    conn.execute("DELETE FROM monitor_hours")
    conn.execute("DELETE FROM monitor_days")
    conn.execute("DELETE FROM org_hours")
    minute = "substr(p.created_at, 15, 2)"
    conn.execute(
        "INSERT INTO monitor_hours(monitor_id, hour, org_id, s00, s15, s30, s45, first_n, last_n) "
        f"SELECT p.monitor_id, substr(p.created_at, 1, 13), m.org_id, sum({minute} < '15'), "
        f"sum({minute} >= '15' AND {minute} < '30'), sum({minute} >= '30' AND {minute} < '45'), "
        f"sum({minute} >= '45'), min(p.n), max(p.n) FROM pings p "
        "JOIN monitors m ON m.id = p.monitor_id WHERE p.kind = 'success' GROUP BY 1, 2"
    )
    cases = " ".join(f"WHEN r.duration <= {e} THEN {i}" for i, e in enumerate(M0007_EDGES))
    rows = conn.execute(
        f"SELECT r.monitor_id, substr(r.finished_at, 1, 13), m.org_id, CASE {cases} ELSE "
        f"{len(M0007_EDGES)} END, count(*), min(r.id), max(r.id) FROM runs r "
        "JOIN monitors m ON m.id = r.monitor_id WHERE r.status = 'success' "
        "AND r.duration IS NOT NULL GROUP BY 1, 2, 4"
    ).fetchall()
    for mid, hour, org, bucket, count, first, last in rows:
        conn.execute(
            f"INSERT INTO monitor_hours(monitor_id, hour, org_id, b{bucket}, first_run, last_run) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(monitor_id, hour) DO UPDATE SET "
            f"b{bucket} = b{bucket} + excluded.b{bucket}, "
            "first_run = coalesce(min(first_run, excluded.first_run), excluded.first_run), "
            "last_run = coalesce(max(last_run, excluded.last_run), excluded.last_run)",
            (mid, hour, org, count, first, last),
        )


def _m0007_triggers() -> list[str]:
    """Triggers that keep `monitor_days` (per monitor and UTC day) and `org_hours` (per
    organisation and UTC hour) the sums of the `monitor_hours` rows, whatever changes them."""
    # A deleted row is taken out by UPDATEs (its sums exist): the monitor may be being deleted,
    # its day rows already gone, and an INSERT would name a monitor that no longer exists.
    less = ", ".join(f"{c} = {c} - OLD.{c}" for c in _BUCKETS)
    out = [
        f"""
        CREATE TRIGGER monitor_hours_delete AFTER DELETE ON monitor_hours BEGIN
            UPDATE monitor_days SET
            successes = successes - ({" + ".join(f"OLD.{c}" for c in _QUARTERS)}), {less}
            WHERE monitor_id = OLD.monitor_id AND day = substr(OLD.hour, 1, 10);
            UPDATE org_hours SET {", ".join(f"{c} = {c} - OLD.{c}" for c in _QUARTERS)}, {less}
            WHERE org_id = OLD.org_id AND hour = OLD.hour;
        END"""
    ]
    for event, sign, row in (("INSERT", "", "NEW"), ("UPDATE", "", "NEW")):
        if event == "UPDATE":
            q = [f"NEW.{c} - OLD.{c}" for c in _QUARTERS]
            b = [f"NEW.{c} - OLD.{c}" for c in _BUCKETS]
        else:
            q = [f"{sign}{row}.{c}" for c in _QUARTERS]
            b = [f"{sign}{row}.{c}" for c in _BUCKETS]
        successes = " + ".join(f"({x})" for x in q)
        out.append(
            f"""
        CREATE TRIGGER monitor_hours_{event.lower()} AFTER {event} ON monitor_hours BEGIN
            INSERT INTO monitor_days(monitor_id, day, successes, {", ".join(_BUCKETS)})
            VALUES ({row}.monitor_id, substr({row}.hour, 1, 10), {successes}, {", ".join(b)})
            ON CONFLICT(monitor_id, day) DO UPDATE SET successes = successes + excluded.successes,
            {", ".join(f"{c} = {c} + excluded.{c}" for c in _BUCKETS)};
            INSERT INTO org_hours(org_id, hour, {", ".join((*_QUARTERS, *_BUCKETS))})
            VALUES ({row}.org_id, {row}.hour, {", ".join((*q, *b))})
            ON CONFLICT(org_id, hour) DO UPDATE SET
            {", ".join(f"{c} = {c} + excluded.{c}" for c in (*_QUARTERS, *_BUCKETS))};
        END"""
        )
    return out


@migrations()
def m0007_monitor_hours(db: sqlite_utils.Database) -> None:
    """Rollups for the organisation's analytics, kept by the writer with each success ping:
    per monitor and UTC hour (success pings per quarter hour, successful run durations per
    bucket, the ping numbers and run ids they came from), and from it by triggers per monitor and
    UTC day and per organisation and UTC hour; fail pings and timed-out runs (few) get partial
    indexes of their times instead."""
    buckets = "".join(f"            {c} INTEGER NOT NULL DEFAULT 0,\n" for c in _BUCKETS)
    quarters = "".join(f"            {c} INTEGER NOT NULL DEFAULT 0,\n" for c in _QUARTERS)
    for statement in (
        f"""
        CREATE TABLE monitor_hours (
            monitor_id INTEGER NOT NULL REFERENCES monitors(id) ON DELETE CASCADE,
            hour TEXT NOT NULL,
            org_id INTEGER NOT NULL,
{quarters}            first_n INTEGER,
            last_n INTEGER,
{buckets}            first_run INTEGER,
            last_run INTEGER,
            PRIMARY KEY (monitor_id, hour)
        ) WITHOUT ROWID""",
        f"""
        CREATE TABLE monitor_days (
            monitor_id INTEGER NOT NULL REFERENCES monitors(id) ON DELETE CASCADE,
            day TEXT NOT NULL,
            successes INTEGER NOT NULL DEFAULT 0,
{buckets}            PRIMARY KEY (monitor_id, day)
        ) WITHOUT ROWID""",
        f"""
        CREATE TABLE org_hours (
            org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
            hour TEXT NOT NULL,
{quarters}{buckets}            PRIMARY KEY (org_id, hour)
        ) WITHOUT ROWID""",
        *_m0007_triggers(),  # one statement each: their bodies hold semicolons
    ):
        db.execute(statement)
    _run(
        db,
        """
        CREATE INDEX pings_fail ON pings(kind, created_at) WHERE kind = 'fail';
        CREATE INDEX runs_timeout ON runs(status, finished_at) WHERE status = 'timeout';
        """,
    )
    backfill_monitor_hours(db.conn)


@dataclass(frozen=True)
class MigrationStatus:
    """Which migrations a database has, and which the code would still apply."""

    applied: list[str]
    pending: list[str]
    unknown: list[str]


def known_names(mset: Migrations = migrations) -> list[str]:
    return [m.name for m in mset._migrations]  # noqa: SLF001 - the set keeps its order here


def _applied_names(conn: sqlite3.Connection) -> list[str]:
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
        (Migrations.migrations_table,),
    ).fetchone()
    if not exists:
        return []
    rows = conn.execute(
        f"SELECT name FROM {Migrations.migrations_table} WHERE migration_set = ? ORDER BY id",
        (MIGRATION_SET,),
    ).fetchall()
    return [r[0] for r in rows]


def status(path: Path, mset: Migrations = migrations) -> MigrationStatus:
    """Read-only: what is applied, what is pending, and what this code does not know."""
    if not path.exists():
        return MigrationStatus([], known_names(mset), [])
    conn = connect(path, readonly=True)
    try:
        check_integrity(conn, path)
        applied = _applied_names(conn)
    finally:
        conn.close()
    known = known_names(mset)
    return MigrationStatus(
        applied=applied,
        pending=[n for n in known if n not in applied],
        unknown=[n for n in applied if n not in known],
    )


def _backup(path: Path, names: list[str]) -> Path:
    """A consistent copy of the file before it is changed (SQLite's online backup)."""
    target = path.with_name(f"{path.name}.before-{names[0]}.bak")
    src = connect(path, readonly=True)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()
    return target


def migrate(path: Path, mset: Migrations = migrations) -> list[str]:
    """Bring the database at `path` up to date; returns the names applied (empty if none).

    A database written by a newer version (it has migrations this code does not know) is refused
    and left untouched. An existing file is copied aside before anything is applied.
    """
    current = status(path, mset)
    if current.unknown:
        raise StorageError(
            f"database {path} was written by a newer version of Tokiflow "
            f"(unknown migrations: {', '.join(current.unknown)}); upgrade Tokiflow or restore a backup"
        )
    conn = connect(path)
    try:
        enable_wal(conn)
        if not current.pending:
            return []
        if current.applied:
            copy = _backup(path, current.pending)
            log.info("backed up database to %s before migrating", copy)
        db = sqlite_utils.Database(conn)
        mset.apply(db)
        done = [n for n in _applied_names(conn) if n in current.pending]
    finally:
        conn.close()
    for name in done:
        log.info("applied migration %s", name)
    return done


def schema_sql(path: Path) -> str:
    """The schema of a database as sorted SQL text, for comparing with tests/schema.sql."""
    conn = connect(path, readonly=True)
    try:
        rows = conn.execute(
            "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' "
            "ORDER BY type DESC, name"
        ).fetchall()
    finally:
        conn.close()
    return "".join(r[0].strip() + ";\n" for r in rows)
