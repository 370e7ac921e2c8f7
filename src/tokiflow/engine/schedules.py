"""Schedule maths: durations, period and cron schedules, and when a check is next due.

Everything here is a pure function of its arguments (no clock, no I/O beyond loading time zone
data), so the scheduler, the web UI and the tests agree on every instant, DST edges included.

Cron semantics follow Debian/Vixie cron, as Healthchecks does:

* 5 fields; names (JAN, MON-FRI), ranges, steps, lists; ``L`` (last day) in day-of-month and
  ``DAY#n`` (n-th weekday of the month) in day-of-week. Day-of-month and day-of-week are ORed
  unless either field starts with ``*``, in which case both must match.
* A job is *fixed-time* when neither its minute nor its hour field starts with ``*``.
* Spring-forward gap: a fixed-time job whose wall time does not exist fires once, at the first
  instant after the gap (``30 2 * * *`` in America/New_York on 2025-03-09 fires at 03:00 EDT ==
  07:00 UTC); several such wall times collapse into that one firing. Other jobs skip wall times
  that do not exist and fire at every real instant whose wall time matches.
* Fall-back overlap: a fixed-time job fires once, at the first occurrence of the wall time;
  other jobs fire at both occurrences (``*/15 * * * *`` keeps firing every 15 real minutes).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MIN_PERIOD = 60
MAX_PERIOD = 365 * 86400
# Stop looking for a firing after this many years: enough for "Feb 29 that is a Monday".
_HORIZON_YEARS = 50
_ZERO = timedelta(0)

_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION_PART = r"(\d+(?:\.\d+)?)\s*([wdhms])"
_DURATION_RE = re.compile(rf"(?:{_DURATION_PART}\s*)+", re.ASCII)

_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split()
_DAYS = "SUN MON TUE WED THU FRI SAT".split()
_DAY_NAMES = "Sunday Monday Tuesday Wednesday Thursday Friday Saturday".split()
# (name, low, high, names, hint) for the minute, hour, day-of-month, month and day-of-week fields.
_FIELDS: tuple[tuple[str, int, int, dict[str, int], str], ...] = (
    ("minute", 0, 59, {}, "use 0-59"),
    ("hour", 0, 23, {}, "use 0-23"),
    ("day-of-month", 1, 31, {}, "use 1-31 or L"),
    ("month", 1, 12, {name: i + 1 for i, name in enumerate(_MONTHS)}, "use 1-12 or JAN-DEC"),
    ("day-of-week", 0, 7, {name: i for i, name in enumerate(_DAYS)}, "use 0-7, SUN-SAT or MON#1"),
)
_ITEM_RE = re.compile(r"(?:(\*)|(\w+)(?:-(\w+))?)(?:/(\d+))?", re.ASCII)
_NTH_RE = re.compile(r"(\w+)#([1-5])", re.ASCII)
# Zone files that exist on disk but describe the machine, not a place.
_NOT_ZONES = {"localtime", "posixrules"}


class ScheduleError(ValueError):
    """A schedule, time zone or duration the user gave is invalid; str() is a one-line reason."""


def parse_duration(text: str | int) -> int:
    """Seconds in "90", 90, "90s", "5m", "1h30m", "1.5h"; fractions round to the nearest second."""
    error = ScheduleError(
        f"invalid duration '{_shown(text)}': use a number of seconds or forms like 90s, 5m, 1h, 2d"
    )
    if isinstance(text, bool) or not isinstance(text, int | str):
        raise error
    if isinstance(text, int):
        if text <= 0:
            raise error
        return text
    cleaned = text.strip().lower()
    if re.fullmatch(r"\d+(?:\.\d+)?", cleaned, re.ASCII):
        seconds = float(cleaned)
    elif _DURATION_RE.fullmatch(cleaned):
        parts = re.findall(_DURATION_PART, cleaned)
        seconds = sum(float(number) * _UNITS[unit] for number, unit in parts)
    else:
        raise error
    if not 0.5 <= seconds < 1e15:  # rounds to zero, or too large to be meant
        raise error
    return int(seconds + 0.5)


def format_duration(seconds: float) -> str:
    """Short human form that parse_duration reads back: 5400 -> "1h 30m", 0.25 -> "0.25s"."""
    if seconds < 0:
        return "-" + format_duration(-seconds)
    whole = int(seconds)
    fraction = seconds - whole
    parts: list[str] = []
    for unit, size in _UNITS.items():
        count, whole = divmod(whole, size)
        if unit == "s" and fraction:
            parts.append(f"{count + fraction:g}s")
        elif count:
            parts.append(f"{count}{unit}")
    return " ".join(parts) or "0s"


@dataclass(frozen=True)
class Schedule:
    """When a check is expected: every `period` seconds, or on a cron expression in `tz`."""

    kind: str  # "period" or "cron"
    period: int | None  # seconds, for kind == "period"
    cron: str | None  # normalised expression, for kind == "cron"
    tz: str = "UTC"  # IANA name the cron expression is read in


def period_schedule(seconds: int) -> Schedule:
    """A schedule due `seconds` after the previous ping; 1 minute to 365 days."""
    if not MIN_PERIOD <= seconds <= MAX_PERIOD:
        raise ScheduleError(
            f"invalid period {format_duration(seconds)}: use between 1 minute and 365 days"
        )
    return Schedule(kind="period", period=seconds, cron=None, tz="UTC")


def cron_schedule(expr: str, tz: str = "UTC") -> Schedule:
    """A validated cron schedule; the expression is normalised (aliases expanded, upper case)."""
    _zone(tz)
    normalised = _normalise(expr)
    spec = _parse(normalised)
    if next(_walls(spec, datetime(1999, 12, 31)), None) is None:
        raise ScheduleError(
            f"cron expression '{_shown(expr.strip())}' never fires: no date matches it"
        )
    return Schedule(kind="cron", period=None, cron=normalised, tz=tz)


def schedule_from_row(kind: str, period: int | None, cron: str | None, tz: str) -> Schedule:
    """A schedule read back from the database, not validated again: it was when it was saved."""
    return Schedule(kind=kind, period=period, cron=cron, tz=tz)


def next_due(schedule: Schedule, after: datetime) -> datetime:
    """The first time (aware, UTC) strictly later than `after` at which the schedule is due."""
    if after.utcoffset() is None:
        raise ValueError("after must be a timezone-aware datetime")
    if schedule.kind == "period" and schedule.period:
        # In UTC: adding to a zoned datetime would add wall-clock time, not elapsed time.
        return after.astimezone(UTC) + timedelta(seconds=schedule.period)
    if schedule.kind == "cron" and schedule.cron:
        found = _next_cron(_parse(schedule.cron), _zone(schedule.tz), after)
        if found is None:
            raise ScheduleError(f"cron expression '{schedule.cron}' never fires again")
        return found
    raise ScheduleError(f"invalid schedule: kind '{schedule.kind}' without its period or cron")


def upcoming(schedule: Schedule, after: datetime, count: int = 5) -> list[datetime]:
    """The next `count` due times after `after`, for previews in the UI."""
    result: list[datetime] = []
    for _ in range(count):
        after = next_due(schedule, after)
        result.append(after)
    return result


def describe(schedule: Schedule) -> str:
    """Short English for a schedule, such as "every 1h" or "at 09:00 on Monday through Friday"."""
    if schedule.kind == "period" and schedule.period:
        return f"every {format_duration(schedule.period)}"
    expr = schedule.cron or ""
    try:
        text = _describe_cron(_normalise(expr).split(), _parse(expr))
    except ScheduleError:
        text = None
    if text is None:
        return f"cron '{expr}' ({schedule.tz})"
    return text if schedule.tz == "UTC" else f"{text} ({schedule.tz})"


# --- time zones and DST -------------------------------------------------------------------


def _shown(text: object) -> str:
    # The user's text in a message, kept on one line however odd it is.
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def _zone(tz: str) -> ZoneInfo:
    try:
        if tz in _NOT_ZONES:
            raise ValueError(tz)
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ScheduleError(f"unknown time zone '{_shown(tz)}'") from None


def _exists(wall: datetime, zone: ZoneInfo) -> bool:
    # A wall time in a spring-forward gap does not survive a round trip through UTC.
    there_and_back = wall.replace(tzinfo=zone).astimezone(UTC).astimezone(zone)
    return there_and_back.replace(tzinfo=None) == wall


def _instant(wall: datetime, zone: ZoneInfo, fold: int = 0) -> datetime:
    return wall.replace(tzinfo=zone, fold=fold).astimezone(UTC)


def _fixed_instant(wall: datetime, zone: ZoneInfo) -> datetime:
    # The first occurrence of an ambiguous wall time; for one in a gap, the first minute after it.
    probe = wall
    while not _exists(probe, zone) and probe - wall < timedelta(days=2):
        probe += timedelta(minutes=1)
    return _instant(probe, zone)


def _next_cron(spec: _Spec, zone: ZoneInfo, after: datetime) -> datetime | None:
    local = after.astimezone(zone)
    start = local.replace(tzinfo=None)
    if not spec.fixed:
        # Inside a fall-back overlap, the second pass of the hour has earlier wall times.
        start -= (local.utcoffset() or _ZERO) - (local.replace(fold=1).utcoffset() or _ZERO)
    best: datetime | None = None
    for wall in _walls(spec, start):
        if spec.fixed:
            instant = _fixed_instant(wall, zone)
            if instant > after:
                return instant
            continue
        if not _exists(wall, zone):
            continue
        first, second = _instant(wall, zone, fold=0), _instant(wall, zone, fold=1)
        for instant in (first, second):
            if instant > after and (best is None or instant < best):
                best = instant
        # Both occurrences grow with the wall time, so no later wall time can beat `best`.
        if first > after:
            return best
    return None


# --- cron parsing and wall-time iteration -------------------------------------------------


@dataclass(frozen=True)
class _Spec:
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    last_day: bool
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 is Sunday
    nth_weekdays: frozenset[tuple[int, int]]  # (weekday, n) for "the n-th such weekday"
    days_and: bool
    fixed: bool

    def matches(self, day: date) -> bool:
        weekday = (day.weekday() + 1) % 7
        by_week = weekday in self.weekdays or (weekday, (day.day + 6) // 7) in self.nth_weekdays
        last = calendar.monthrange(day.year, day.month)[1]
        by_month = day.day in self.days or (self.last_day and day.day == last)
        return by_month and by_week if self.days_and else by_month or by_week


def _normalise(expr: str) -> str:
    text = " ".join(expr.split()).upper()
    if text == "@REBOOT":
        raise ScheduleError("@reboot runs once when a machine starts, so it has no next due time")
    if text.startswith("@"):
        if text.lower() not in _ALIASES:
            raise ScheduleError(
                f"unknown cron shortcut '{_shown(expr.strip())}': "
                "use @hourly, @daily, @weekly, @monthly or @yearly"
            )
        return _ALIASES[text.lower()]
    count = len(text.split())
    if count != 5:
        raise ScheduleError(
            f"cron expression '{_shown(expr.strip())}' has {count} fields, expected 5: "
            "minute hour day-of-month month day-of-week"
        )
    return text


@lru_cache(maxsize=256)
def _parse(expr: str) -> _Spec:
    fields = _normalise(expr).split()
    values = [_parse_field(expr, index, field) for index, field in enumerate(fields)]

    def numbers(index: int) -> list[int]:
        return sorted(value for value in values[index] if isinstance(value, int))

    return _Spec(
        minutes=tuple(numbers(0)),
        hours=tuple(numbers(1)),
        days=frozenset(numbers(2)),
        last_day="L" in values[2],
        months=frozenset(numbers(3)),
        weekdays=frozenset(value % 7 for value in numbers(4)),
        nth_weekdays=frozenset(value for value in values[4] if isinstance(value, tuple)),
        days_and=fields[2].startswith("*") or fields[4].startswith("*"),
        fixed=not (fields[0].startswith("*") or fields[1].startswith("*")),
    )


def _parse_field(expr: str, index: int, field: str) -> set[int | str | tuple[int, int]]:
    name, low, high, names, hint = _FIELDS[index]

    def fail(reason: str) -> ScheduleError:
        shown = f"'{_shown(field)}' in cron expression '{_shown(expr)}'"
        return ScheduleError(f"invalid {name} {shown}: {reason}")

    def number(text: str) -> int:
        value = int(text) if text.isdigit() else names.get(text, -1)
        if not low <= value <= high:
            raise fail(hint)
        return value

    result: set[int | str | tuple[int, int]] = set()
    for item in field.split(","):
        nth = _NTH_RE.fullmatch(item) if index == 4 else None
        match = _ITEM_RE.fullmatch(item)
        if index == 2 and item == "L":
            result.add("L")
        elif nth:
            result.add((number(nth[1]) % 7, int(nth[2])))
        elif match:
            star, first, last, step = match.groups()
            top = 6 if index == 4 else high  # "*/2" in day-of-week counts Sunday once
            start = low if star else number(first)
            end = number(last) if last else top if star or step else start
            if index == 4 and last == "SUN" and start > 0:
                end = 7  # so that "MON-SUN" means what it says
            if step is not None and int(step) == 0:
                raise fail("a step must be 1 or more")
            if end < start:
                raise fail("a range must go from low to high")
            result.update(range(start, end + 1, int(step or 1)))
        else:
            raise fail(hint)
    return result


def _walls(spec: _Spec, start: datetime) -> Iterator[datetime]:
    """Naive wall times matching `spec`, in order, strictly after `start`."""
    day = start.date()
    limit = date(min(day.year + _HORIZON_YEARS, 9999), 1, 1)
    while day < limit:
        if day.month not in spec.months:
            day = (day.replace(day=1) + timedelta(days=32)).replace(day=1)
            continue
        if spec.matches(day):
            for hour in spec.hours:
                if day == start.date() and hour < start.hour:
                    continue
                for minute in spec.minutes:
                    wall = datetime(day.year, day.month, day.day, hour, minute)
                    if wall > start:
                        yield wall
        day += timedelta(days=1)


# --- describe -----------------------------------------------------------------------------


def _describe_cron(fields: list[str], spec: _Spec) -> str | None:
    minute, hour, dom, month, dow = fields
    if fields[1:] == ["*"] * 4:
        if minute == "*":
            return "every minute"
        if re.fullmatch(r"\*/\d+", minute) and 60 % int(minute[2:]) == 0:
            step = int(minute[2:])
            return "every minute" if step == 1 else f"every {step} minutes"
        return f"at minute {int(minute)} past every hour" if minute.isdigit() else None
    if not (minute.isdigit() and hour.isdigit()) or month != "*":
        return None
    at = f"at {int(hour):02}:{int(minute):02}"
    if dom == "*" and dow == "*":
        return f"{at} every day"
    if dom == "*" and not spec.nth_weekdays:
        return f"{at} on {_describe_weekdays(spec.weekdays)}"
    if dow == "*" and dom == "L":
        return f"{at} on the last day of every month"
    if dow == "*" and dom.isdigit():
        return f"{at} on day {int(dom)} of every month"
    return None


def _describe_weekdays(weekdays: frozenset[int]) -> str:
    order = [day for day in (1, 2, 3, 4, 5, 6, 0) if day in weekdays]
    names = [_DAY_NAMES[day] for day in order]
    positions = [(day - 1) % 7 for day in order]
    if len(names) >= 3 and positions == list(range(positions[0], positions[0] + len(names))):
        return f"{names[0]} through {names[-1]}"
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
