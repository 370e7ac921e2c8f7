CREATE TRIGGER monitor_hours_delete AFTER DELETE ON monitor_hours BEGIN
            UPDATE monitor_days SET
            successes = successes - (OLD.s00 + OLD.s15 + OLD.s30 + OLD.s45), b0 = b0 - OLD.b0, b1 = b1 - OLD.b1, b2 = b2 - OLD.b2, b3 = b3 - OLD.b3, b4 = b4 - OLD.b4, b5 = b5 - OLD.b5, b6 = b6 - OLD.b6, b7 = b7 - OLD.b7, b8 = b8 - OLD.b8, b9 = b9 - OLD.b9, b10 = b10 - OLD.b10, b11 = b11 - OLD.b11, b12 = b12 - OLD.b12, b13 = b13 - OLD.b13, b14 = b14 - OLD.b14
            WHERE monitor_id = OLD.monitor_id AND day = substr(OLD.hour, 1, 10);
            UPDATE org_hours SET s00 = s00 - OLD.s00, s15 = s15 - OLD.s15, s30 = s30 - OLD.s30, s45 = s45 - OLD.s45, b0 = b0 - OLD.b0, b1 = b1 - OLD.b1, b2 = b2 - OLD.b2, b3 = b3 - OLD.b3, b4 = b4 - OLD.b4, b5 = b5 - OLD.b5, b6 = b6 - OLD.b6, b7 = b7 - OLD.b7, b8 = b8 - OLD.b8, b9 = b9 - OLD.b9, b10 = b10 - OLD.b10, b11 = b11 - OLD.b11, b12 = b12 - OLD.b12, b13 = b13 - OLD.b13, b14 = b14 - OLD.b14
            WHERE org_id = OLD.org_id AND hour = OLD.hour;
        END;
CREATE TRIGGER monitor_hours_insert AFTER INSERT ON monitor_hours BEGIN
            INSERT INTO monitor_days(monitor_id, day, successes, b0, b1, b2, b3, b4, b5, b6, b7, b8, b9, b10, b11, b12, b13, b14)
            VALUES (NEW.monitor_id, substr(NEW.hour, 1, 10), (NEW.s00) + (NEW.s15) + (NEW.s30) + (NEW.s45), NEW.b0, NEW.b1, NEW.b2, NEW.b3, NEW.b4, NEW.b5, NEW.b6, NEW.b7, NEW.b8, NEW.b9, NEW.b10, NEW.b11, NEW.b12, NEW.b13, NEW.b14)
            ON CONFLICT(monitor_id, day) DO UPDATE SET successes = successes + excluded.successes,
            b0 = b0 + excluded.b0, b1 = b1 + excluded.b1, b2 = b2 + excluded.b2, b3 = b3 + excluded.b3, b4 = b4 + excluded.b4, b5 = b5 + excluded.b5, b6 = b6 + excluded.b6, b7 = b7 + excluded.b7, b8 = b8 + excluded.b8, b9 = b9 + excluded.b9, b10 = b10 + excluded.b10, b11 = b11 + excluded.b11, b12 = b12 + excluded.b12, b13 = b13 + excluded.b13, b14 = b14 + excluded.b14;
            INSERT INTO org_hours(org_id, hour, s00, s15, s30, s45, b0, b1, b2, b3, b4, b5, b6, b7, b8, b9, b10, b11, b12, b13, b14)
            VALUES (NEW.org_id, NEW.hour, NEW.s00, NEW.s15, NEW.s30, NEW.s45, NEW.b0, NEW.b1, NEW.b2, NEW.b3, NEW.b4, NEW.b5, NEW.b6, NEW.b7, NEW.b8, NEW.b9, NEW.b10, NEW.b11, NEW.b12, NEW.b13, NEW.b14)
            ON CONFLICT(org_id, hour) DO UPDATE SET
            s00 = s00 + excluded.s00, s15 = s15 + excluded.s15, s30 = s30 + excluded.s30, s45 = s45 + excluded.s45, b0 = b0 + excluded.b0, b1 = b1 + excluded.b1, b2 = b2 + excluded.b2, b3 = b3 + excluded.b3, b4 = b4 + excluded.b4, b5 = b5 + excluded.b5, b6 = b6 + excluded.b6, b7 = b7 + excluded.b7, b8 = b8 + excluded.b8, b9 = b9 + excluded.b9, b10 = b10 + excluded.b10, b11 = b11 + excluded.b11, b12 = b12 + excluded.b12, b13 = b13 + excluded.b13, b14 = b14 + excluded.b14;
        END;
CREATE TRIGGER monitor_hours_update AFTER UPDATE ON monitor_hours BEGIN
            INSERT INTO monitor_days(monitor_id, day, successes, b0, b1, b2, b3, b4, b5, b6, b7, b8, b9, b10, b11, b12, b13, b14)
            VALUES (NEW.monitor_id, substr(NEW.hour, 1, 10), (NEW.s00 - OLD.s00) + (NEW.s15 - OLD.s15) + (NEW.s30 - OLD.s30) + (NEW.s45 - OLD.s45), NEW.b0 - OLD.b0, NEW.b1 - OLD.b1, NEW.b2 - OLD.b2, NEW.b3 - OLD.b3, NEW.b4 - OLD.b4, NEW.b5 - OLD.b5, NEW.b6 - OLD.b6, NEW.b7 - OLD.b7, NEW.b8 - OLD.b8, NEW.b9 - OLD.b9, NEW.b10 - OLD.b10, NEW.b11 - OLD.b11, NEW.b12 - OLD.b12, NEW.b13 - OLD.b13, NEW.b14 - OLD.b14)
            ON CONFLICT(monitor_id, day) DO UPDATE SET successes = successes + excluded.successes,
            b0 = b0 + excluded.b0, b1 = b1 + excluded.b1, b2 = b2 + excluded.b2, b3 = b3 + excluded.b3, b4 = b4 + excluded.b4, b5 = b5 + excluded.b5, b6 = b6 + excluded.b6, b7 = b7 + excluded.b7, b8 = b8 + excluded.b8, b9 = b9 + excluded.b9, b10 = b10 + excluded.b10, b11 = b11 + excluded.b11, b12 = b12 + excluded.b12, b13 = b13 + excluded.b13, b14 = b14 + excluded.b14;
            INSERT INTO org_hours(org_id, hour, s00, s15, s30, s45, b0, b1, b2, b3, b4, b5, b6, b7, b8, b9, b10, b11, b12, b13, b14)
            VALUES (NEW.org_id, NEW.hour, NEW.s00 - OLD.s00, NEW.s15 - OLD.s15, NEW.s30 - OLD.s30, NEW.s45 - OLD.s45, NEW.b0 - OLD.b0, NEW.b1 - OLD.b1, NEW.b2 - OLD.b2, NEW.b3 - OLD.b3, NEW.b4 - OLD.b4, NEW.b5 - OLD.b5, NEW.b6 - OLD.b6, NEW.b7 - OLD.b7, NEW.b8 - OLD.b8, NEW.b9 - OLD.b9, NEW.b10 - OLD.b10, NEW.b11 - OLD.b11, NEW.b12 - OLD.b12, NEW.b13 - OLD.b13, NEW.b14 - OLD.b14)
            ON CONFLICT(org_id, hour) DO UPDATE SET
            s00 = s00 + excluded.s00, s15 = s15 + excluded.s15, s30 = s30 + excluded.s30, s45 = s45 + excluded.s45, b0 = b0 + excluded.b0, b1 = b1 + excluded.b1, b2 = b2 + excluded.b2, b3 = b3 + excluded.b3, b4 = b4 + excluded.b4, b5 = b5 + excluded.b5, b6 = b6 + excluded.b6, b7 = b7 + excluded.b7, b8 = b8 + excluded.b8, b9 = b9 + excluded.b9, b10 = b10 + excluded.b10, b11 = b11 + excluded.b11, b12 = b12 + excluded.b12, b13 = b13 + excluded.b13, b14 = b14 + excluded.b14;
        END;
CREATE TABLE "_sqlite_migrations" (
   "id" INTEGER PRIMARY KEY,
   "migration_set" TEXT,
   "name" TEXT,
   "applied_at" TEXT
);
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
CREATE TABLE delivery_attempts (
            id INTEGER PRIMARY KEY,
            notification_id INTEGER NOT NULL REFERENCES notifications(id) ON DELETE CASCADE,
            at TEXT NOT NULL,
            ok INTEGER NOT NULL,
            status TEXT NOT NULL DEFAULT '',
            error TEXT NOT NULL DEFAULT '',
            latency_ms REAL NOT NULL
        );
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
CREATE TABLE flips (
            id INTEGER PRIMARY KEY,
            monitor_id INTEGER NOT NULL REFERENCES monitors(id) ON DELETE CASCADE,
            at TEXT NOT NULL,
            old_status TEXT NOT NULL,
            new_status TEXT NOT NULL,
            reason TEXT NOT NULL
        );
CREATE TABLE incident_comments (
            id INTEGER PRIMARY KEY,
            incident_id INTEGER NOT NULL REFERENCES incidents(id) ON DELETE CASCADE,
            author TEXT NOT NULL,
            body TEXT NOT NULL,
            at TEXT NOT NULL
        );
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
        , renotify_at TEXT);
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
CREATE TABLE memberships (
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
            role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'editor', 'viewer', 'billing')),
            created_at TEXT NOT NULL,
            PRIMARY KEY (user_id, org_id)
        ) WITHOUT ROWID;
CREATE TABLE monitor_channels (
            monitor_id INTEGER NOT NULL REFERENCES monitors(id) ON DELETE CASCADE,
            channel_id INTEGER NOT NULL REFERENCES channels(id) ON DELETE CASCADE,
            PRIMARY KEY (monitor_id, channel_id)
        ) WITHOUT ROWID;
CREATE TABLE monitor_days (
            monitor_id INTEGER NOT NULL REFERENCES monitors(id) ON DELETE CASCADE,
            day TEXT NOT NULL,
            successes INTEGER NOT NULL DEFAULT 0,
            b0 INTEGER NOT NULL DEFAULT 0,
            b1 INTEGER NOT NULL DEFAULT 0,
            b2 INTEGER NOT NULL DEFAULT 0,
            b3 INTEGER NOT NULL DEFAULT 0,
            b4 INTEGER NOT NULL DEFAULT 0,
            b5 INTEGER NOT NULL DEFAULT 0,
            b6 INTEGER NOT NULL DEFAULT 0,
            b7 INTEGER NOT NULL DEFAULT 0,
            b8 INTEGER NOT NULL DEFAULT 0,
            b9 INTEGER NOT NULL DEFAULT 0,
            b10 INTEGER NOT NULL DEFAULT 0,
            b11 INTEGER NOT NULL DEFAULT 0,
            b12 INTEGER NOT NULL DEFAULT 0,
            b13 INTEGER NOT NULL DEFAULT 0,
            b14 INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (monitor_id, day)
        ) WITHOUT ROWID;
CREATE TABLE monitor_hours (
            monitor_id INTEGER NOT NULL REFERENCES monitors(id) ON DELETE CASCADE,
            hour TEXT NOT NULL,
            org_id INTEGER NOT NULL,
            s00 INTEGER NOT NULL DEFAULT 0,
            s15 INTEGER NOT NULL DEFAULT 0,
            s30 INTEGER NOT NULL DEFAULT 0,
            s45 INTEGER NOT NULL DEFAULT 0,
            first_n INTEGER,
            last_n INTEGER,
            b0 INTEGER NOT NULL DEFAULT 0,
            b1 INTEGER NOT NULL DEFAULT 0,
            b2 INTEGER NOT NULL DEFAULT 0,
            b3 INTEGER NOT NULL DEFAULT 0,
            b4 INTEGER NOT NULL DEFAULT 0,
            b5 INTEGER NOT NULL DEFAULT 0,
            b6 INTEGER NOT NULL DEFAULT 0,
            b7 INTEGER NOT NULL DEFAULT 0,
            b8 INTEGER NOT NULL DEFAULT 0,
            b9 INTEGER NOT NULL DEFAULT 0,
            b10 INTEGER NOT NULL DEFAULT 0,
            b11 INTEGER NOT NULL DEFAULT 0,
            b12 INTEGER NOT NULL DEFAULT 0,
            b13 INTEGER NOT NULL DEFAULT 0,
            b14 INTEGER NOT NULL DEFAULT 0,
            first_run INTEGER,
            last_run INTEGER,
            PRIMARY KEY (monitor_id, hour)
        ) WITHOUT ROWID;
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
        , renotify_every INTEGER, notify_resolve INTEGER NOT NULL DEFAULT 1, anomaly_alerts INTEGER NOT NULL DEFAULT 1, anomaly_factor REAL NOT NULL DEFAULT 1.5, anomaly_z REAL NOT NULL DEFAULT 3.0, output_drop REAL NOT NULL DEFAULT 0.3, output_limit INTEGER, output_tracked INTEGER NOT NULL DEFAULT 0);
CREATE TABLE notification_prefs (
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
            mode TEXT NOT NULL DEFAULT 'immediate' CHECK (mode IN ('immediate', 'digest', 'off')),
            tags TEXT NOT NULL DEFAULT '',
            quiet_start TEXT,
            quiet_end TEXT,
            PRIMARY KEY (user_id, org_id)
        ) WITHOUT ROWID;
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
CREATE TABLE org_hours (
            org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
            hour TEXT NOT NULL,
            s00 INTEGER NOT NULL DEFAULT 0,
            s15 INTEGER NOT NULL DEFAULT 0,
            s30 INTEGER NOT NULL DEFAULT 0,
            s45 INTEGER NOT NULL DEFAULT 0,
            b0 INTEGER NOT NULL DEFAULT 0,
            b1 INTEGER NOT NULL DEFAULT 0,
            b2 INTEGER NOT NULL DEFAULT 0,
            b3 INTEGER NOT NULL DEFAULT 0,
            b4 INTEGER NOT NULL DEFAULT 0,
            b5 INTEGER NOT NULL DEFAULT 0,
            b6 INTEGER NOT NULL DEFAULT 0,
            b7 INTEGER NOT NULL DEFAULT 0,
            b8 INTEGER NOT NULL DEFAULT 0,
            b9 INTEGER NOT NULL DEFAULT 0,
            b10 INTEGER NOT NULL DEFAULT 0,
            b11 INTEGER NOT NULL DEFAULT 0,
            b12 INTEGER NOT NULL DEFAULT 0,
            b13 INTEGER NOT NULL DEFAULT 0,
            b14 INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (org_id, hour)
        ) WITHOUT ROWID;
CREATE TABLE orgs (
            id INTEGER PRIMARY KEY,
            slug TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            ping_key TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL
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
CREATE TABLE password_resets (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            token_hash TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            used_at TEXT
        );
CREATE TABLE ping_metrics (
            monitor_id INTEGER NOT NULL REFERENCES monitors(id) ON DELETE CASCADE,
            n INTEGER NOT NULL,
            name TEXT NOT NULL,
            value REAL NOT NULL,
            PRIMARY KEY (monitor_id, n, name)
        ) WITHOUT ROWID;
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
CREATE TABLE redaction_patterns (
            id INTEGER PRIMARY KEY,
            org_id INTEGER NOT NULL REFERENCES orgs(id) ON DELETE CASCADE,
            pattern TEXT NOT NULL,
            note TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            UNIQUE (org_id, pattern)
        );
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
        , output_size INTEGER);
CREATE TABLE server_meta (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
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
        , totp_last_step INTEGER);
CREATE INDEX api_keys_org ON api_keys(org_id);
CREATE INDEX audit_log_org ON audit_log(org_id, id);
CREATE INDEX channels_org ON channels(org_id);
CREATE INDEX delivery_attempts_notification ON delivery_attempts(notification_id);
CREATE INDEX digest_items_digest ON digest_items(digest_id);
CREATE INDEX digest_items_due ON digest_items(due_at, user_id) WHERE digest_id IS NULL;
CREATE INDEX digest_items_incident ON digest_items(incident_id);
CREATE INDEX flips_monitor ON flips(monitor_id, id);
CREATE UNIQUE INDEX "idx__sqlite_migrations_migration_set_name"
    ON "_sqlite_migrations" ("migration_set", "name");
CREATE INDEX incident_comments_incident ON incident_comments(incident_id);
CREATE INDEX incidents_monitor ON incidents(monitor_id, state);
CREATE INDEX incidents_org ON incidents(org_id, state, opened_at);
CREATE INDEX incidents_renotify ON incidents(renotify_at) WHERE renotify_at IS NOT NULL;
CREATE INDEX invitations_org ON invitations(org_id);
CREATE INDEX memberships_org ON memberships(org_id);
CREATE INDEX monitor_channels_channel ON monitor_channels(channel_id);
CREATE INDEX monitors_org_slug ON monitors(org_id, slug);
CREATE INDEX notification_prefs_org ON notification_prefs(org_id);
CREATE INDEX notifications_channel ON notifications(channel_id, id);
CREATE INDEX notifications_due ON notifications(next_attempt_at)
            WHERE state IN ('pending', 'sending');
CREATE INDEX notifications_incident ON notifications(incident_id);
CREATE INDEX outputs_age ON outputs(created_at);
CREATE INDEX outputs_org ON outputs(org_id, created_at);
CREATE INDEX pings_fail ON pings(kind, created_at) WHERE kind = 'fail';
CREATE INDEX runs_monitor ON runs(monitor_id, id);
CREATE INDEX runs_open ON runs(monitor_id, rid) WHERE status = 'running';
CREATE INDEX runs_timeout ON runs(status, finished_at) WHERE status = 'timeout';
CREATE INDEX sessions_user ON sessions(user_id);
CREATE INDEX user_notifications_due ON user_notifications(next_attempt_at)
            WHERE state IN ('pending', 'sending');
CREATE INDEX user_notifications_incident ON user_notifications(incident_id);
CREATE INDEX user_notifications_user ON user_notifications(user_id, id);
