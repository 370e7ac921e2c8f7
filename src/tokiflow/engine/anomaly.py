"""Runtime statistics and anomaly rules, applied in the writer transaction of each finished run.

Per monitor the engine keeps Welford's running count, mean and M2 of successful run durations
(exact, numerically stable, O(1) per run, persisted in `monitor_stats`) and the sizes of the
last outputs. Each finished run is judged against the statistics as they were *before* it:

- ANOMALY: the run took more than `factor` x the median of the recent runs AND more than
  `z` standard deviations above the mean (the z-score, i.e. duration > mean + z sigma).
  Both must hold: a very steady job that is 2 % slower is not an anomaly (the median test), nor
  is an ordinary swing of a noisy job (the z test). Because the median is over the recent window
  only, a duration that grows steadily moves its own baseline and does not alert run after run.
- OUTPUT: the output is smaller than `output_drop` x the average of the previous 7 outputs.

Neither rule fires before 10 runs of history exist. An open ANOMALY (OUTPUT) incident is
resolved by the next run whose duration (output) is normal again, which takes more than being
just under the limit (hysteresis, so that runs hovering at the limit do not open and resolve
incident after incident): a duration under half the limits (1 + (factor - 1) / 2 times the
median, or within z / 2 sigma of the mean), an output back above halfway between the limit and
the average.
"""

from __future__ import annotations

import datetime as dt
import math
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, replace

from tokiflow.engine import states
from tokiflow.engine.schedules import format_duration
from tokiflow.storage import incidents, stats
from tokiflow.storage.monitors import Monitor
from tokiflow.storage.stats import RunStats

MIN_HISTORY = 10
OUTPUT_RUNS = 7


# -- pure statistics ------------------------------------------------------------------------------


def welford(n: int, mean: float, m2: float, x: float) -> tuple[int, float, float]:
    """Welford's update: (count, mean, M2) with one more value."""
    n += 1
    delta = x - mean
    mean += delta / n
    return n, mean, m2 + delta * (x - mean)


def welford_add(s: RunStats, x: float) -> RunStats:
    """The statistics with one more successful duration."""
    n, mean, m2 = welford(s.runs, s.mean, s.m2, x)
    low = x if s.min_duration is None else min(s.min_duration, x)
    high = x if s.max_duration is None else max(s.max_duration, x)
    return replace(s, runs=n, mean=mean, m2=m2, min_duration=low, max_duration=high)


def stdev(s: RunStats) -> float:
    """Sample standard deviation of the durations (0 with fewer than two)."""
    return math.sqrt(s.m2 / (s.runs - 1)) if s.runs > 1 and s.m2 > 0 else 0.0


def percentile(ordered: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) of sorted values, interpolating between closest ranks
    (numpy's default, `statistics.quantiles(method="inclusive")`)."""
    if not ordered:
        raise ValueError("no values")
    pos = (len(ordered) - 1) * q / 100
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def median(values: Sequence[float]) -> float:
    return percentile(sorted(values), 50)


def seconds_words(x: float) -> str:
    """A duration for people: "41 s", "0.25 s", "1.2 s", "12m 5s"."""
    if abs(x) < 60:
        return f"{x:.3g} s" if abs(x) >= 0.01 or x == 0 else f"{x * 1000:.3g} ms"
    return format_duration(round(x))


def size_words(n: float) -> str:
    """A byte count for people: "120 B", "4.1 KB", "3.2 MB"."""
    for unit, size in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if n >= size:
            return f"{n / size:.2g} {unit}" if n < 10 * size else f"{n / size:.0f} {unit}"
    return f"{n:.0f} B"


@dataclass(frozen=True)
class Finding:
    """A rule's verdict on one run, in words when anomalous. A run can be neither anomalous nor
    normal: close to the limit, it leaves an open incident open and opens none."""

    kind: str  # "ANOMALY" or "OUTPUT"
    anomalous: bool
    normal: bool
    reason: str = ""


def _slow(d: float, s: RunStats, center: float, factor: float, z: float) -> bool:
    sd = stdev(s)
    significant = d > s.mean + z * sd if sd > 0 else d > s.mean
    return significant and d > factor * center


def duration_finding(
    d: float, before: RunStats, recent_median: float | None, factor: float, z: float
) -> Finding | None:
    """Judge a successful run's duration against the statistics before it (None: too little
    history). Without a recent median (runs pruned) the long-run mean stands in for it."""
    if before.runs < MIN_HISTORY:
        return None
    center = before.mean if recent_median is None else recent_median
    if not _slow(d, before, center, factor, z):
        normal = not _slow(d, before, center, 1 + (factor - 1) / 2, z / 2)
        return Finding("ANOMALY", False, normal)
    sd = stdev(before)
    usual = (
        f"took {seconds_words(d)}; usual {seconds_words(before.mean)} +/- {seconds_words(sd)} "
        f"over {before.runs} runs"
    )
    if recent_median is not None:
        usual += f" (median {seconds_words(recent_median)})"
    if sd > 0:
        sigma = f"{(d - before.mean) / sd:.1f} sigma above the mean (limit {z:g} sigma)"
    else:
        sigma = "longer than the mean of runs that never varied"
    what = "median" if recent_median is not None else "mean"
    ratio = f"{d / center:.1f}x the {what} (limit {factor:g}x) and " if center > 0 else ""
    return Finding("ANOMALY", True, False, f"{usual}: {ratio}{sigma}")


def output_finding(size: int, before: RunStats, drop: float) -> Finding | None:
    """Judge an output size against the previous 7 (None: too little history or rule off)."""
    if before.outputs < MIN_HISTORY or len(before.recent_sizes) < OUTPUT_RUNS or drop <= 0:
        return None
    average = sum(before.recent_sizes) / len(before.recent_sizes)
    if average <= 0:
        return None
    if size >= drop * average:
        return Finding("OUTPUT", False, size >= (1 + drop) / 2 * average)
    return Finding(
        "OUTPUT",
        True,
        False,
        f"output was {size_words(size)}; the last {len(before.recent_sizes)} runs averaged "
        f"{size_words(average)} (alert below {drop:.0%} of that)",
    )


# -- applying the rules in the writer -------------------------------------------------------------


@dataclass(frozen=True)
class Finish:
    """What a finished run (or a finishing ping) brings to the statistics."""

    success: bool
    run_id: int | None = None
    duration: float | None = None
    output_size: int | None = None  # None: the monitor's output is not tracked


def _still_open(conn: sqlite3.Connection, incident_id: int | None) -> bool:
    if incident_id is None:
        return False
    inc = incidents.get(conn, incident_id)
    return inc is not None and inc.state in incidents.OPEN_STATES


def _act(
    conn: sqlite3.Connection,
    m: Monitor,
    finding: Finding | None,
    current: int | None,
    now: dt.datetime,
    run_id: int | None,
) -> tuple[int | None, int | None]:
    """Open or resolve the finding's incident; (incident id to remember, id newly opened)."""
    if finding is None:
        return current, None
    if finding.normal:
        if current is not None:
            states.resolve_incident(conn, current, now, "recovered")
        return None, None
    if not finding.anomalous:
        return current, None
    if _still_open(conn, current):
        return current, None  # one incident for a stretch of anomalous runs
    if not m.anomaly_alerts:
        return None, None
    opened = states.open_incident(conn, m, finding.kind, finding.reason, now, run_id)
    return opened, opened


def apply_finish(
    conn: sqlite3.Connection,
    m: Monitor,
    f: Finish,
    now: dt.datetime,
    *,
    window: int,
    judge: bool = True,
) -> tuple[int, str] | None:
    """Judge a finished run, open or resolve ANOMALY/OUTPUT incidents, and add the run to the
    statistics; returns (incident id, kind) of an incident it opened. With `judge` False (the
    plan in force has no anomaly detection) the run only feeds the statistics."""
    if not f.success or (f.duration is None and f.output_size is None):
        return None
    before = stats.get(conn, m.id)
    runs, mean, m2 = before.runs, before.mean, before.m2
    low, high = before.min_duration, before.max_duration
    anomaly_incident, output_incident = before.anomaly_incident, before.output_incident
    outputs, sizes = before.outputs, before.recent_sizes
    opened: tuple[int, str] | None = None
    if f.duration is not None:
        d = f.duration
        finding = None
        if judge and runs >= MIN_HISTORY:
            recent_median = None
            sd = stdev(before)
            # The median needs a read of recent runs: only worth it when the z test passes (at
            # half the limit when an open incident may resolve).
            z = m.anomaly_z if anomaly_incident is None else m.anomaly_z / 2
            if d > mean + z * sd:
                recent = stats.recent_durations(conn, m.id, max(window, 1), f.run_id)
                recent_median = median(recent) if recent else None
            finding = duration_finding(d, before, recent_median, m.anomaly_factor, m.anomaly_z)
        anomaly_incident, new = _act(conn, m, finding, anomaly_incident, now, f.run_id)
        if new is not None:
            opened = (new, "ANOMALY")
        runs, mean, m2 = welford(runs, mean, m2, d)
        low = d if low is None else min(low, d)
        high = d if high is None else max(high, d)
    if f.output_size is not None:
        finding = output_finding(f.output_size, before, m.output_drop) if judge else None
        output_incident, new = _act(conn, m, finding, output_incident, now, f.run_id)
        if new is not None and opened is None:
            opened = (new, "OUTPUT")
        outputs += 1
        sizes = (*sizes, f.output_size)[-OUTPUT_RUNS:]
    after = RunStats(m.id, runs, mean, m2, low, high, outputs, sizes, anomaly_incident,
                     output_incident, now)  # fmt: skip
    stats.put(conn, after)
    return opened
