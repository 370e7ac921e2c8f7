"""Schedule maths as tables of (schedule, after, expected) rows, DST gaps and overlaps included.

Zone facts the DST rows rely on (2025):
* Europe/London springs forward on 30 March at 01:00 UTC (wall 01:00-01:59 does not exist) and
  falls back on 26 October at 01:00 UTC (wall 01:00-01:59 happens at 00:xx and again at 01:xx UTC).
* America/New_York springs forward on 9 March at 07:00 UTC (wall 02:00-02:59 does not exist) and
  falls back on 2 November at 06:00 UTC (wall 01:00-01:59 happens at 05:xx and again at 06:xx UTC).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from tokiflow.engine.schedules import (
    Schedule,
    ScheduleError,
    cron_schedule,
    describe,
    format_duration,
    next_due,
    parse_duration,
    period_schedule,
    schedule_from_row,
    upcoming,
)

LONDON = "Europe/London"
NEW_YORK = "America/New_York"
DURATION_HINT = "use a number of seconds or forms like 90s, 5m, 1h, 2d"
FIELDS_HINT = "expected 5: minute hour day-of-month month day-of-week"
SHORTCUTS = "@hourly, @daily, @weekly, @monthly or @yearly"


def utc(text: str) -> datetime:
    """An aware UTC datetime from "YYYY-MM-DD HH:MM[:SS]", so rows stay short."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def local(text: str, tz: str, fold: int = 0) -> datetime:
    """An aware datetime on the wall clock of `tz`; fold=1 picks the second of a repeated hour."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz), fold=fold)


def cron(expr: str, tz: str = "UTC") -> Schedule:
    return cron_schedule(expr, tz)


# --- durations ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90),
        (90, 90),
        ("90s", 90),
        ("5m", 300),
        ("1h", 3600),
        ("2d", 172800),
        ("1w", 604800),
        ("1h30m", 5400),
        ("1h 30m", 5400),
        ("1 h", 3600),
        ("1.5h", 5400),
        ("1H30M", 5400),
        (" 45 ", 45),
        ("2.5s", 3),
        ("1d 2h 3m 4s", 93784),
    ],
)
def test_it_parses_durations(text: str | int, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text",
    ["", "   ", "abc", "-5m", "-5", "0", "0s", "0.4s", "5x", "1.5.5h", "m", "1h-30m", "5 mins"]
    + [0, -90, True, "٣m"],
)
def test_it_rejects_invalid_durations_with_a_readable_reason(text: str | int) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_duration(text)
    assert str(caught.value) == f"invalid duration '{text}': {DURATION_HINT}"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (5400, "1h 30m"),
        (45, "45s"),
        (86400, "1d"),
        (0.25, "0.25s"),
        (3.5, "3.5s"),
        (0, "0s"),
        (60, "1m"),
        (604800, "1w"),
        (694861, "1w 1d 1h 1m 1s"),
        (90.5, "1m 30.5s"),
        (-90, "-1m 30s"),
    ],
)
def test_it_formats_durations(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("seconds", [1, 59, 60, 61, 3599, 5400, 86399, 86400, 604801, 31536000])
def test_it_reads_back_every_duration_it_formats(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


@pytest.mark.parametrize(
    ("text", "canonical"),
    [("90", "1m 30s"), ("1h30m", "1h 30m"), ("1.5h", "1h 30m"), ("1 H", "1h"), ("7d", "1w")]
    + [("120m", "2h"), ("3600", "1h")],
)
def test_it_formats_parsed_durations_in_one_canonical_form(text: str, canonical: str) -> None:
    assert format_duration(parse_duration(text)) == canonical


# --- building schedules -------------------------------------------------------------------


def test_it_builds_period_schedules_in_utc() -> None:
    assert period_schedule(60) == Schedule(kind="period", period=60, cron=None, tz="UTC")
    assert period_schedule(365 * 86400).period == 365 * 86400


@pytest.mark.parametrize(
    ("seconds", "message"),
    [
        (59, "invalid period 59s: use between 1 minute and 365 days"),
        (0, "invalid period 0s: use between 1 minute and 365 days"),
        (365 * 86400 + 1, "invalid period 52w 1d 1s: use between 1 minute and 365 days"),
    ],
)
def test_it_refuses_periods_under_a_minute_or_over_a_year(seconds: int, message: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        period_schedule(seconds)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("expr", "normalised"),
    [
        (" 0  9 * *   mon-fri ", "0 9 * * MON-FRI"),
        ("0 0 1 jan *", "0 0 1 JAN *"),
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@WEEKLY", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
    ],
)
def test_it_normalises_cron_expressions(expr: str, normalised: str) -> None:
    assert cron_schedule(expr) == Schedule(kind="cron", period=None, cron=normalised, tz="UTC")


def test_it_keeps_the_time_zone_of_a_cron_schedule() -> None:
    assert cron_schedule("30 2 * * *", LONDON).tz == LONDON


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("0 0 30 2 *", "cron expression '0 0 30 2 *' never fires: no date matches it"),
        ("0 0 31 4,6 *", "cron expression '0 0 31 4,6 *' never fires: no date matches it"),
        ("@reboot", "@reboot runs once when a machine starts, so it has no next due time"),
        ("@every5m", f"unknown cron shortcut '@every5m': use {SHORTCUTS}"),
        ("* * * *", f"cron expression '* * * *' has 4 fields, {FIELDS_HINT}"),
        ("0 0 * * * *", f"cron expression '0 0 * * * *' has 6 fields, {FIELDS_HINT}"),
        ("", f"cron expression '' has 0 fields, {FIELDS_HINT}"),
    ],
)
def test_it_rejects_cron_expressions_of_the_wrong_shape(expr: str, message: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        cron_schedule(expr)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("expr", "field", "reason"),
    [
        ("60 * * * *", "minute '60'", "use 0-59"),
        ("-1 * * * *", "minute '-1'", "use 0-59"),
        ("H * * * *", "minute 'H'", "use 0-59"),
        ("*/0 * * * *", "minute '*/0'", "a step must be 1 or more"),
        ("0 24 * * *", "hour '24'", "use 0-23"),
        ("0 17-9 * * *", "hour '17-9'", "a range must go from low to high"),
        ("0 0 0 * *", "day-of-month '0'", "use 1-31 or L"),
        ("0 0 15W * *", "day-of-month '15W'", "use 1-31 or L"),
        ("0 0 ? * *", "day-of-month '?'", "use 1-31 or L"),
        ("0 0 1 13 *", "month '13'", "use 1-12 or JAN-DEC"),
        ("0 0 1 foo *", "month 'FOO'", "use 1-12 or JAN-DEC"),
        ("0 0 * * 8", "day-of-week '8'", "use 0-7, SUN-SAT or MON#1"),
        ("0 0 * * MON#6", "day-of-week 'MON#6'", "use 0-7, SUN-SAT or MON#1"),
        ("0 0 L * L", "day-of-week 'L'", "use 0-7, SUN-SAT or MON#1"),
        ("0 0 * * FRI-MON", "day-of-week 'FRI-MON'", "a range must go from low to high"),
    ],
)
def test_it_names_the_bad_field_of_a_cron_expression(expr: str, field: str, reason: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        cron_schedule(expr)
    normalised = expr.upper()
    assert str(caught.value) == f"invalid {field} in cron expression '{normalised}': {reason}"


@pytest.mark.parametrize(
    "tz", ["Mars/Olympus", "", "localtime", "../etc/passwd", "/etc/localtime", "Europe/London "]
)
def test_it_rejects_unknown_time_zones(tz: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        cron_schedule("0 0 * * *", tz)
    assert str(caught.value) == f"unknown time zone '{tz}'"


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: parse_duration("5m\nrm"), f"invalid duration '5m\\nrm': {DURATION_HINT}"),
        (
            lambda: cron_schedule("0 0 * *\n* *"),
            f"cron expression '0 0 * *\\n* *' has 6 fields, {FIELDS_HINT}",
        ),
        (lambda: cron_schedule("0 0 * * *", "UTC\x00"), "unknown time zone 'UTC\\x00'"),
        (
            lambda: cron_schedule("0 0\x00 * * *"),
            "invalid hour '0\\x00' in cron expression '0 0\\x00 * * *': use 0-23",
        ),
    ],
)
def test_it_keeps_error_messages_on_one_line(build: Callable[[], object], message: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        build()
    assert str(caught.value) == message


def test_it_rebuilds_rows_without_validating_them_again() -> None:
    row = schedule_from_row("cron", None, "0 0 30 2 *", "UTC")
    assert row == Schedule(kind="cron", period=None, cron="0 0 30 2 *", tz="UTC")
    with pytest.raises(ScheduleError) as caught:
        next_due(row, utc("2025-01-01 00:00"))
    assert str(caught.value) == "cron expression '0 0 30 2 *' never fires again"


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            ("period", None, None, "UTC"),
            "invalid schedule: kind 'period' without its period or cron",
        ),
        (("cron", None, None, "UTC"), "invalid schedule: kind 'cron' without its period or cron"),
        (("daily", 60, None, "UTC"), "invalid schedule: kind 'daily' without its period or cron"),
        (("cron", None, "0 0 * * *", "Nowhere/Land"), "unknown time zone 'Nowhere/Land'"),
        (
            ("cron", None, "61 0 * * *", "UTC"),
            "invalid minute '61' in cron expression '61 0 * * *': use 0-59",
        ),
    ],
)
def test_it_refuses_to_compute_a_due_time_for_a_broken_row(
    row: tuple[str, int | None, str | None, str], message: str
) -> None:
    with pytest.raises(ScheduleError) as caught:
        next_due(schedule_from_row(*row), utc("2025-01-01 00:00"))
    assert str(caught.value) == message


def test_it_refuses_a_naive_after() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next_due(period_schedule(60), datetime(2025, 1, 1))


# --- next due -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "after", "expected"),
    [
        # Periods are elapsed time, whatever the wall clock does.
        (period_schedule(3600), utc("2025-01-01 10:00"), utc("2025-01-01 11:00")),
        (period_schedule(60), utc("2025-01-01 10:00:00.5"), utc("2025-01-01 10:01:00.5")),
        (period_schedule(86400), local("2025-03-29 12:00", LONDON), utc("2025-03-30 12:00")),
        (period_schedule(300), local("2025-11-02 01:58", NEW_YORK), utc("2025-11-02 06:03")),
        # Every five minutes, strictly after `after`.
        (cron("*/5 * * * *"), utc("2025-01-01 10:02:30"), utc("2025-01-01 10:05")),
        (cron("*/5 * * * *"), utc("2025-01-01 10:05"), utc("2025-01-01 10:10")),
        (cron("*/5 * * * *"), utc("2025-12-31 23:58"), utc("2026-01-01 00:00")),
        (cron("@hourly"), utc("2025-01-01 10:15"), utc("2025-01-01 11:00")),
        # A daily fixed time.
        (cron("30 2 * * *"), utc("2025-01-01 02:29:59"), utc("2025-01-01 02:30")),
        (cron("30 2 * * *"), utc("2025-01-01 02:30"), utc("2025-01-02 02:30")),
        # Weekdays: 2025-01-03 is a Friday.
        (cron("0 9 * * MON-FRI"), utc("2025-01-03 09:00"), utc("2025-01-06 09:00")),
        (cron("0 9 * * MON-FRI"), utc("2025-01-04 12:00"), utc("2025-01-06 09:00")),
        (cron("0 9 * * 1-5"), utc("2025-01-01 08:00"), utc("2025-01-01 09:00")),
        (cron("0 0 * * 7"), utc("2025-06-02 00:00"), utc("2025-06-08 00:00")),
        (cron("0 12 * * MON-SUN"), utc("2025-06-02 13:00"), utc("2025-06-03 12:00")),
        # Month ends and rare days.
        (cron("0 0 L * *"), utc("2024-02-01 00:00"), utc("2024-02-29 00:00")),
        (cron("0 0 L * *"), utc("2025-02-01 00:00"), utc("2025-02-28 00:00")),
        (cron("0 0 L * *"), utc("2025-04-30 00:00"), utc("2025-05-31 00:00")),
        (cron("0 0 31 * *"), utc("2025-04-01 00:00"), utc("2025-05-31 00:00")),
        (cron("0 0 29 2 *"), utc("2025-01-01 00:00"), utc("2028-02-29 00:00")),
        (cron("0 0 1 1 *"), utc("2025-06-01 00:00"), utc("2026-01-01 00:00")),
        (cron("0 0 1 */3 *"), utc("2025-02-15 00:00"), utc("2025-04-01 00:00")),
        # Day-of-month OR day-of-week, unless one of them starts with "*" (then AND).
        (cron("0 0 10 * FRI"), utc("2025-06-07 00:00"), utc("2025-06-10 00:00")),
        (cron("0 0 */10 * FRI"), utc("2025-06-01 00:00"), utc("2025-07-11 00:00")),
        (cron("0 10 * * MON#1"), utc("2025-06-01 00:00"), utc("2025-06-02 10:00")),
        (cron("0 10 * * 1#2"), utc("2025-06-03 00:00"), utc("2025-06-09 10:00")),
        # London spring forward: a fixed time in the gap fires once at its end (02:00 BST).
        (cron("30 1 * * *", LONDON), utc("2025-03-30 00:00"), utc("2025-03-30 01:00")),
        (cron("30 1 * * *", LONDON), utc("2025-03-30 01:00"), utc("2025-03-31 00:30")),
        (cron("0 1 * * *", LONDON), utc("2025-03-30 00:00"), utc("2025-03-30 01:00")),
        (cron("30 2 * * *", LONDON), utc("2025-03-30 00:00"), utc("2025-03-30 01:30")),
        (cron("*/15 * * * *", LONDON), utc("2025-03-30 00:50"), utc("2025-03-30 01:00")),
        (cron("0 * * * *", LONDON), utc("2025-03-30 00:30"), utc("2025-03-30 01:00")),
        (cron("*/30 1 * * *", LONDON), utc("2025-03-29 23:00"), utc("2025-03-31 00:00")),
        # London fall back: a fixed time fires at its first occurrence only.
        (cron("30 1 * * *", LONDON), utc("2025-10-25 23:00"), utc("2025-10-26 00:30")),
        (cron("30 1 * * *", LONDON), utc("2025-10-26 00:30"), utc("2025-10-27 01:30")),
        (cron("30 1 * * *", LONDON), utc("2025-10-26 01:10"), utc("2025-10-27 01:30")),
        (cron("*/15 * * * *", LONDON), utc("2025-10-26 00:50"), utc("2025-10-26 01:00")),
        (cron("0 * * * *", LONDON), utc("2025-10-26 00:00"), utc("2025-10-26 01:00")),
        (cron("*/30 1 * * *", LONDON), utc("2025-10-26 00:30"), utc("2025-10-26 01:00")),
        # New York spring forward: 02:30 does not exist, so it fires at 03:00 EDT.
        (cron("30 2 * * *", NEW_YORK), utc("2025-03-09 06:00"), utc("2025-03-09 07:00")),
        (cron("30 2 * * *", NEW_YORK), utc("2025-03-09 07:00"), utc("2025-03-10 06:30")),
        (cron("0 3 * * *", NEW_YORK), utc("2025-03-09 06:00"), utc("2025-03-09 07:00")),
        (cron("*/15 * * * *", NEW_YORK), utc("2025-03-09 06:50"), utc("2025-03-09 07:00")),
        (cron("*/10 2 * * *", NEW_YORK), utc("2025-03-09 05:00"), utc("2025-03-10 06:00")),
        (cron("0 */2 * * *", NEW_YORK), utc("2025-03-09 06:30"), utc("2025-03-09 08:00")),
        # New York fall back.
        (cron("30 1 * * *", NEW_YORK), utc("2025-11-02 04:00"), utc("2025-11-02 05:30")),
        (cron("30 1 * * *", NEW_YORK), utc("2025-11-02 05:30"), utc("2025-11-03 06:30")),
        (cron("30 1 * * *", NEW_YORK), utc("2025-11-02 06:10"), utc("2025-11-03 06:30")),
        (cron("0 2 * * *", NEW_YORK), utc("2025-11-02 05:00"), utc("2025-11-02 07:00")),
        (cron("*/15 * * * *", NEW_YORK), utc("2025-11-02 05:50"), utc("2025-11-02 06:00")),
        (cron("*/15 * * * *", NEW_YORK), utc("2025-11-02 06:50"), utc("2025-11-02 07:00")),
        (cron("0 */2 * * *", NEW_YORK), utc("2025-11-02 04:30"), utc("2025-11-02 07:00")),
        # `after` in other zones, including the second pass of a repeated hour (fold=1).
        (cron("0 9 * * *"), local("2025-06-01 17:30", "Asia/Tokyo"), utc("2025-06-01 09:00")),
        (cron("0 9 * * *", LONDON), local("2025-06-01 03:30", NEW_YORK), utc("2025-06-01 08:00")),
        (
            cron("30 1 * * *", NEW_YORK),
            local("2025-11-02 01:10", NEW_YORK, fold=1),
            utc("2025-11-03 06:30"),
        ),
        (
            cron("*/15 * * * *", NEW_YORK),
            local("2025-11-02 01:50", NEW_YORK),
            utc("2025-11-02 06:00"),
        ),
        (
            cron("*/15 * * * *", NEW_YORK),
            local("2025-11-02 01:50", NEW_YORK, fold=1),
            utc("2025-11-02 07:00"),
        ),
        (
            cron("*/15 * * * *", LONDON),
            local("2025-10-26 02:50", "Europe/Paris"),
            utc("2025-10-26 01:00"),
        ),
        (
            period_schedule(3600),
            datetime(2025, 1, 1, 12, tzinfo=timezone(timedelta(hours=5.5))),
            utc("2025-01-01 07:30"),
        ),
    ],
)
def test_it_computes_the_next_due_time_in_utc(
    schedule: Schedule, after: datetime, expected: datetime
) -> None:
    due = next_due(schedule, after)
    assert due == expected
    assert due.tzinfo is UTC


@pytest.mark.parametrize(
    ("schedule", "after", "expected"),
    [
        (
            period_schedule(5400),
            utc("2025-01-01 10:00"),
            ["2025-01-01 11:30", "2025-01-01 13:00", "2025-01-01 14:30"],
        ),
        # Hourly jobs fire every real hour through the repeated hour.
        (
            cron("0 * * * *", LONDON),
            utc("2025-10-25 22:30"),
            ["2025-10-25 23:00", "2025-10-26 00:00", "2025-10-26 01:00", "2025-10-26 02:00"],
        ),
        # A minute wildcard makes a job fire in both passes of the repeated hour, as in cron.
        (
            cron("*/30 1 * * *", NEW_YORK),
            utc("2025-11-02 04:00"),
            [
                "2025-11-02 05:00",
                "2025-11-02 05:30",
                "2025-11-02 06:00",
                "2025-11-02 06:30",
                "2025-11-03 06:00",
            ],
        ),
        (
            cron("30 1 * * *", NEW_YORK),
            utc("2025-11-02 04:00"),
            ["2025-11-02 05:30", "2025-11-03 06:30", "2025-11-04 06:30"],
        ),
        # 02:00, 02:30 and 03:00 collapse into one firing at 03:00 EDT.
        (
            cron("0,30 2,3 * * *", NEW_YORK),
            utc("2025-03-09 06:00"),
            ["2025-03-09 07:00", "2025-03-09 07:30", "2025-03-10 06:00", "2025-03-10 06:30"],
        ),
        (
            cron("*/30 * * * *", NEW_YORK),
            utc("2025-03-09 06:00"),
            ["2025-03-09 06:30", "2025-03-09 07:00", "2025-03-09 07:30", "2025-03-09 08:00"],
        ),
        (
            cron("30 1 * * *", LONDON),
            utc("2025-03-29 00:00"),
            ["2025-03-29 01:30", "2025-03-30 01:00", "2025-03-31 00:30"],
        ),
    ],
)
def test_it_lists_upcoming_due_times(
    schedule: Schedule, after: datetime, expected: list[str]
) -> None:
    assert upcoming(schedule, after, count=len(expected)) == [utc(text) for text in expected]


def test_it_lists_five_upcoming_times_by_default_and_none_when_asked_for_none() -> None:
    assert len(upcoming(cron("@daily"), utc("2025-01-01 00:00"))) == 5
    assert upcoming(cron("@daily"), utc("2025-01-01 00:00"), count=0) == []


@pytest.mark.parametrize(
    ("tz", "start"),
    [
        (LONDON, "2025-03-29 22:00"),
        (LONDON, "2025-10-25 22:00"),
        (NEW_YORK, "2025-03-09 03:00"),
        (NEW_YORK, "2025-11-02 03:00"),
    ],
)
def test_it_fires_every_15_real_minutes_through_dst_changes(tz: str, start: str) -> None:
    times = upcoming(cron("*/15 * * * *", tz), utc(start), count=4 * 8)
    gaps = {later - earlier for earlier, later in zip(times, times[1:], strict=False)}
    assert gaps == {timedelta(minutes=15)}


@pytest.mark.parametrize("tz", [LONDON, NEW_YORK])
@pytest.mark.parametrize("expr", ["30 1 * * *", "30 2 * * *", "0 1 * * *", "59 1 * * *"])
def test_it_fires_a_daily_job_exactly_once_on_every_local_day_of_a_year(tz: str, expr: str) -> None:
    times = upcoming(cron(expr, tz), utc("2024-12-31 12:00"), count=365)
    days = [time.astimezone(ZoneInfo(tz)).date() for time in times]
    assert days == [date(2025, 1, 1) + timedelta(days=n) for n in range(365)]


@pytest.mark.parametrize(
    "expr",
    [
        "*/5 * * * *",
        "0 9 * * MON-FRI",
        "30 2 * * *",
        "0 0 L * *",
        "0 0 1,15 * *",
        "15 10 * * 1#2",
        "0 0 29 2 *",
        "5 4 * * SUN",
        "0 22 * * 1-5",
        "0 0 1 */3 *",
        "0-10/5 8-9 * * *",
        "0 0 10 * FRI",
        "45 23 31 * *",
        "0 12 * JAN,JUL MON",
    ],
)
@pytest.mark.parametrize("start", ["2024-02-27 13:07", "2025-12-31 23:59"])
def test_it_agrees_with_croniter_in_utc(expr: str, start: str) -> None:
    oracle = croniter(expr, utc(start))
    expected = [oracle.get_next(datetime) for _ in range(30)]
    assert upcoming(cron(expr), utc(start), count=30) == expected


# --- describe -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "text"),
    [
        (period_schedule(3600), "every 1h"),
        (period_schedule(5400), "every 1h 30m"),
        (cron("*/5 * * * *"), "every 5 minutes"),
        (cron("* * * * *"), "every minute"),
        (cron("*/1 * * * *"), "every minute"),
        (cron("30 2 * * *", LONDON), "at 02:30 every day (Europe/London)"),
        (cron("0 * * * *"), "at minute 0 past every hour"),
        (cron("@hourly"), "at minute 0 past every hour"),
        (cron("0 9 * * MON-FRI"), "at 09:00 on Monday through Friday"),
        (cron("0 9 * * SAT,SUN"), "at 09:00 on Saturday and Sunday"),
        (cron("0 9 * * MON,WED,FRI"), "at 09:00 on Monday, Wednesday and Friday"),
        (cron("@weekly"), "at 00:00 on Sunday"),
        (cron("0 0 L * *"), "at 00:00 on the last day of every month"),
        (cron("0 6 1 * *", NEW_YORK), "at 06:00 on day 1 of every month (America/New_York)"),
        (cron("*/7 * * * *"), "cron '*/7 * * * *' (UTC)"),
        (cron("0 9 * * MON#1"), "cron '0 9 * * MON#1' (UTC)"),
        (cron("15 10 * 6 *", LONDON), "cron '15 10 * 6 *' (Europe/London)"),
        (schedule_from_row("cron", None, "bogus", "UTC"), "cron 'bogus' (UTC)"),
        (schedule_from_row("cron", None, "@daily", "UTC"), "at 00:00 every day"),
        (
            schedule_from_row("cron", None, "0 9 * * mon-fri", NEW_YORK),
            "at 09:00 on Monday through Friday (America/New_York)",
        ),
    ],
)
def test_it_describes_schedules_in_short_english(schedule: Schedule, text: str) -> None:
    assert describe(schedule) == text
