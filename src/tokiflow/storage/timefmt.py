"""The one text format for timestamps in the database: fixed-width ISO 8601 in UTC."""

from __future__ import annotations

import datetime as dt

_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def to_db(when: dt.datetime) -> str:
    """An aware datetime as sortable UTC text, e.g. 2026-01-15T12:00:00.000000Z."""
    if when.tzinfo is None:
        raise ValueError("naive datetimes are not stored")
    if when.tzinfo is not dt.UTC:
        when = when.astimezone(dt.UTC)
    # Same text as strftime(_FORMAT), faster (several of these are written per ping).
    return when.isoformat(timespec="microseconds")[:26] + "Z"


def from_db(text: str) -> dt.datetime:
    """The aware UTC datetime of a stored timestamp."""
    # fromisoformat reads this fixed format ~40x faster than strptime (it is on every row read).
    return dt.datetime.fromisoformat(text)


def opt_from_db(text: str | None) -> dt.datetime | None:
    return None if text is None else from_db(text)
