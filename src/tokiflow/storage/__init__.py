"""SQLite storage: connections, migrations, the group-commit writer and queries per area."""
