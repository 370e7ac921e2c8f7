"""Charts drawn on the server as inline SVG (no script, nothing fetched)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from markupsafe import Markup, escape

from tokiflow.engine.analytics import BUCKETS, Bucket, DayRate
from tokiflow.engine.anomaly import seconds_words
from tokiflow.engine.schedules import format_duration
from tokiflow.storage.runs import Run
from tokiflow.storage.stats import RunRow

WIDTH, HEIGHT, PAD = 600, 160, 28


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    ok: bool
    label: str


def _seconds(x: float) -> str:
    return f"{x:.2f} s" if x < 10 else format_duration(round(x))


def duration_chart(runs: list[Run], when: object = None) -> Markup:
    """Bars of recent finished runs' durations, oldest on the left; failed runs hatched."""
    done = [r for r in reversed(runs) if r.duration is not None][-60:]
    if not done:
        return Markup('<p class="muted">No finished runs with a duration yet.</p>')
    top = max(r.duration or 0.0 for r in done) or 1.0
    inner_w, inner_h = WIDTH - PAD - 8, HEIGHT - PAD - 8
    step = inner_w / max(len(done), 1)
    parts: list[str] = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="Durations of the last {len(done)} runs; longest {escape(_seconds(top))}">',
        '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="6" height="6" class="bar-fail"/>'
        '<line x1="0" y1="0" x2="0" y2="6" class="hatch-line" stroke-width="3"/></pattern></defs>',
        f'<line x1="{PAD}" y1="{8 + inner_h}" x2="{WIDTH - 8}" y2="{8 + inner_h}" class="axis"/>',
        f'<text x="{PAD - 4}" y="14" class="axis-label" text-anchor="end">'
        f"{escape(_seconds(top))}</text>",
        f'<text x="{PAD - 4}" y="{8 + inner_h}" class="axis-label" text-anchor="end">0</text>',
    ]
    for i, r in enumerate(done):
        d = r.duration or 0.0
        h = max(inner_h * d / top, 1.5)
        x = PAD + i * step + step * 0.15
        y = 8 + inner_h - h
        ok = r.status == "success"
        started = r.started_at.strftime("%Y-%m-%d %H:%M UTC") if r.started_at else ""
        label = f"{started}: {_seconds(d)} ({'ok' if ok else r.status})"
        fill = 'class="bar-ok"' if ok else 'fill="url(#hatch)" class="bar-fail-outline"'
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{step * 0.7:.1f}" height="{h:.1f}" {fill}>'
            f"<title>{escape(label)}</title></rect>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def metric_chart(name: str, points: list[tuple[dt.datetime, float]]) -> Markup:
    """A line of one reported metric's recent values, oldest on the left."""
    if not points:
        return Markup("")
    values = [v for _, v in points][-60:]
    low, high = min(values + [0.0]), max(values) if max(values) > 0 else 1.0
    span = (high - low) or 1.0
    inner_w, inner_h = WIDTH - PAD - 8, HEIGHT - PAD - 8
    step = inner_w / max(len(values) - 1, 1)
    coords = " ".join(
        f"{PAD + i * step:.1f},{8 + inner_h - inner_h * (v - low) / span:.1f}"
        for i, v in enumerate(values)
    )
    latest = f"{values[-1]:g}"
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(name)}: last {len(values)} values, latest {latest}">'
        f'<line x1="{PAD}" y1="{8 + inner_h}" x2="{WIDTH - 8}" y2="{8 + inner_h}" class="axis"/>'
        f'<text x="{PAD - 4}" y="14" class="axis-label" text-anchor="end">{high:g}</text>'
        f'<text x="{PAD - 4}" y="{8 + inner_h}" class="axis-label" text-anchor="end">{low:g}</text>'
        f'<polyline points="{coords}" fill="none" class="metric-line"/></svg>'
    )


# -- analytics charts -----------------------------------------------------------------------------
#
# Each chart is an <svg role="img"> whose aria-label (and <title>) sums it up in words; every bar,
# cell and point has its own <title> with its figures. Colours are never the only carrier: the
# heatmap prints its counts in the cells, failed runs are crosses rather than dots, thresholds are
# dashed lines with a text label. The pages add a data table under each chart.

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
HEAT_LEVELS = 5


def empty_state(text: str) -> Markup:
    """What a page shows instead of a chart with nothing to draw."""
    return Markup('<p class="muted chart-empty">{}</p>').format(text)


def _open(width: int, height: int, label: str, css: str = "") -> str:
    return (
        f'<svg class="chart {css}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(label)}"><title>{escape(label)}</title>'
    )


def percent_words(rate: float | None) -> str:
    """A rate (0-1) as a percentage for people: "0%", "0.4%", "12%"."""
    if rate is None:
        return "no runs"
    pct = 100 * rate
    if pct == 0 or pct >= 10:
        return f"{pct:.0f}%"
    return f"{pct:.1f}%".replace(".0%", "%")


def _nice_top(value: float, steps: tuple[float, ...]) -> float:
    return next((s for s in steps if s >= value), value)


def trend_chart(rates: list[DayRate], slope: float | None = None) -> Markup:
    """Bars of the daily failure rate, oldest day on the left; a day without finished runs has
    no bar (its title says so), a day with runs and no failure a thin baseline mark."""
    with_runs = [r for r in rates if r.rate is not None]
    if not with_runs:
        return empty_state("No finished runs in this period.")
    worst = max(with_runs, key=lambda r: (r.rate or 0.0, r.day))
    top = _nice_top(100 * (worst.rate or 0.0), (1, 2, 5, 10, 20, 25, 50, 100))
    top = max(top, 1.0)
    failing = sum(1 for r in with_runs if r.failures)
    label = (
        f"Failure rate per day from {rates[0].day} to {rates[-1].day}: {failing} of "
        f"{len(with_runs)} days with runs had failures"
    )
    if failing:
        label += f"; highest {percent_words(worst.rate)} on {worst.day}"
    if slope is not None:
        label += f"; {slope_words(slope)}"
    inner_w, inner_h = WIDTH - PAD - 8, HEIGHT - PAD - 8
    step = inner_w / len(rates)
    base = 8 + inner_h
    parts = [
        _open(WIDTH, HEIGHT, label, "trend"),
        f'<line x1="{PAD}" y1="8" x2="{WIDTH - 8}" y2="8" class="gridline"/>',
        f'<line x1="{PAD}" y1="{base}" x2="{WIDTH - 8}" y2="{base}" class="axis"/>',
        f'<text x="{PAD - 4}" y="14" class="axis-label" text-anchor="end">{top:g}%</text>',
        f'<text x="{PAD - 4}" y="{base}" class="axis-label" text-anchor="end">0%</text>',
    ]
    for i, r in enumerate(rates):
        x = PAD + i * step
        if r.rate is None:
            title = f"{r.day}: no finished runs"
        else:
            title = (
                f"{r.day}: {r.failures} of {r.successes + r.failures} runs failed "
                f"({percent_words(r.rate)})"
            )
        parts.append(
            f'<g data-day="{r.day}"><title>{escape(title)}</title>'
            f'<rect x="{x:.1f}" y="8" width="{step:.1f}" height="{inner_h}" class="hit"/>'
        )
        if r.rate is not None:
            h = max(inner_h * min(100 * r.rate / top, 1.0), 1.5)
            css = "bar-fail" if r.failures else "bar-zero"
            parts.append(
                f'<rect x="{x + step * 0.15:.1f}" y="{base - h:.1f}" width="{step * 0.7:.1f}" '
                f'height="{h:.1f}" class="{css}"/>'
            )
        parts.append("</g>")
    for i in sorted({0, len(rates) // 2, len(rates) - 1}):
        anchor = "start" if i == 0 else "end" if i == len(rates) - 1 else "middle"
        x = PAD + i * step + (0 if i == 0 else step if anchor == "end" else step / 2)
        parts.append(
            f'<text x="{x:.1f}" y="{HEIGHT - 6}" class="axis-label" text-anchor="{anchor}">'
            f"{rates[i].day:%b %d}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def slope_words(slope: float) -> str:
    """The trend's least-squares slope (rate per day) in words."""
    points = 100 * slope
    if abs(points) < 0.05:
        return "steady"
    way = "worsening" if points > 0 else "improving"
    return f"{way} by {abs(points):.1f} percentage points a day"


def _short_seconds(x: float) -> str:
    if x < 60:
        return f"{x:g}s"
    if x < 3600:
        return f"{x / 60:g}m"
    if x < 86400:
        return f"{x / 3600:g}h"
    return f"{x / 86400:g}d"


def bucket_labels(buckets: list[Bucket]) -> list[tuple[str, str]]:
    """(short axis label, range in words) of each histogram bucket."""
    out = []
    for b in buckets:
        if b.le is None:
            last = _short_seconds(BUCKETS[-1])
            out.append((f">{last}", f"longer than {last}"))
            continue
        i = BUCKETS.index(b.le)
        low = "0s" if i == 0 else _short_seconds(BUCKETS[i - 1])
        out.append((f"≤{_short_seconds(b.le)}", f"{low} to {_short_seconds(b.le)}"))
    return out


def histogram_chart(buckets: list[Bucket]) -> Markup:
    """Bars of how many successful runs took how long (1-2-5 buckets), with counts on top."""
    if not buckets:
        return empty_state("No successful runs with a duration in this period.")
    labels = bucket_labels(buckets)
    total = sum(b.count for b in buckets)
    top_i = max(range(len(buckets)), key=lambda i: buckets[i].count)
    top = buckets[top_i].count
    label = f"Durations of {total} successful runs: the most ({top}) took {labels[top_i][1]}"
    inner_w, inner_h = WIDTH - 16, HEIGHT - 44
    step = inner_w / len(buckets)
    base = 20 + inner_h
    parts = [
        _open(WIDTH, HEIGHT, label, "histogram"),
        f'<line x1="8" y1="{base}" x2="{WIDTH - 8}" y2="{base}" class="axis"/>',
    ]
    for i, (b, (short, words)) in enumerate(zip(buckets, labels, strict=True)):
        h = max(inner_h * b.count / top, 1.5) if b.count else 0
        x = 8 + i * step
        runs = "run" if b.count == 1 else "runs"
        parts.append(
            f"<g><title>{escape(f'{words}: {b.count} {runs}')}</title>"
            f'<rect x="{x:.1f}" y="20" width="{step:.1f}" height="{inner_h}" class="hit"/>'
            f'<rect x="{x + step * 0.12:.1f}" y="{base - h:.1f}" width="{step * 0.76:.1f}" '
            f'height="{h:.1f}" class="bar-ok"/>'
            f'<text x="{x + step / 2:.1f}" y="{base - h - 4:.1f}" class="value-label" '
            f'text-anchor="middle">{b.count}</text>'
            f'<text x="{x + step / 2:.1f}" y="{HEIGHT - 8}" class="axis-label" '
            f'text-anchor="middle">{escape(short)}</text></g>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def heat_level(count: int, top: int) -> int:
    """The colour step (0-5) of a heatmap cell: the count itself up to 5, else its fifth of the
    largest count, rounded up."""
    if count <= 0 or top <= 0:
        return 0
    if top <= HEAT_LEVELS:
        return count
    return min(HEAT_LEVELS, -(-HEAT_LEVELS * count // top))


def heat_legend(top: int) -> list[tuple[int, str]]:
    """(colour step, counts it stands for) for the legend, zero first."""
    out = [(0, "0")]
    if top <= HEAT_LEVELS:
        return out + [(n, str(n)) for n in range(1, top + 1)]
    for level in range(1, HEAT_LEVELS + 1):
        low = top * (level - 1) // HEAT_LEVELS + 1
        high = top * level // HEAT_LEVELS
        if high >= low:
            out.append((level, str(low) if low == high else f"{low}-{high}"))
    return out


def heatmap_chart(grid: list[list[int]], zone: str) -> Markup:
    """Failures by weekday (rows, Monday first) and hour (columns) in `zone`: a grid of cells
    shaded from light to dark by count (one hue, so the order survives colour-vision deficiency
    and greyscale), the count printed in each cell that has one."""
    total = sum(map(sum, grid))
    if total == 0:
        return empty_state("No failures in this period.")
    top = max(map(max, grid))
    day, hour = max(
        ((d, h) for d in range(7) for h in range(24)),
        key=lambda dh: (grid[dh[0]][dh[1]], -dh[0], -dh[1]),
    )
    label = (
        f"Failures by weekday and hour ({zone}): {total} in all; the most, {top}, on "
        f"{WEEKDAYS[day]}s from {hour:02d}:00"
    )
    left, head, cw, ch = 40, 18, 23, 22
    width, height = left + 24 * cw, head + 7 * ch
    parts = [_open(width, height, label, "heatmap")]
    for h in range(0, 24, 3):
        parts.append(
            f'<text x="{left + h * cw + cw / 2:.1f}" y="12" class="axis-label" '
            f'text-anchor="middle">{h:02d}</text>'
        )
    for d, row in enumerate(grid):
        y = head + d * ch
        parts.append(
            f'<text x="{left - 6}" y="{y + ch / 2 + 4:.1f}" class="axis-label" '
            f'text-anchor="end">{WEEKDAYS[d][:3]}</text>'
        )
        for h, count in enumerate(row):
            level = heat_level(count, top)
            x = left + h * cw
            what = "failure" if count == 1 else "failures"
            title = f"{WEEKDAYS[d]} {h:02d}:00-{(h + 1) % 24:02d}:00: {count} {what}"
            parts.append(
                f'<g data-cell="{d}-{h}" data-count="{count}"><title>{title}</title>'
                f'<rect x="{x + 1}" y="{y + 1}" width="{cw - 2}" height="{ch - 2}" rx="2" '
                f'class="heat-{level}"/>'
            )
            if count:
                parts.append(
                    f'<text x="{x + cw / 2:.1f}" y="{y + ch / 2 + 4:.1f}" '
                    f'class="heat-text heat-text-{level}" text-anchor="middle">{count}</text>'
                )
            parts.append("</g>")
    parts.append("</svg>")
    return Markup("".join(parts))


def duration_timeline(
    runs: list[RunRow],
    since: dt.datetime,
    until: dt.datetime,
    zone: dt.tzinfo,
    *,
    limit: float | None = None,
    median: float | None = None,
) -> Markup:
    """Each run of the period at its finish time (x) and duration (y): successful runs as dots,
    failed and timed-out ones as crosses on the baseline (or at their duration); the anomaly
    limit and the median as labelled dashed lines. Over `MAX_POINTS` runs the period is cut into
    columns, each drawn as its shortest-to-longest range with a dot at its median."""
    done = [r for r in runs if r.finished_at >= since]
    timed = [r.duration for r in done if r.duration is not None]
    if not done:
        return empty_state("No runs in this period.")
    ok_count = sum(1 for r in done if r.status == "success")
    longest = max(timed, default=0.0)
    top = max(longest, limit or 0.0, median or 0.0) * 1.08 or 1.0
    inner_w, inner_h = WIDTH - PAD - 8, HEIGHT - PAD - 8
    base = 8 + inner_h
    span = (until - since).total_seconds() or 1.0

    def x_of(t: dt.datetime) -> float:
        return PAD + inner_w * min(max((t - since).total_seconds() / span, 0.0), 1.0)

    def y_of(d: float) -> float:
        return base - inner_h * min(d / top, 1.0)

    label = (
        f"Durations of {len(done)} runs ({ok_count} successful) from "
        f"{since.astimezone(zone):%b %d} to {until.astimezone(zone):%b %d}"
    )
    if timed:
        label += f"; longest {seconds_words(longest)}"
    if median is not None:
        label += f"; median {seconds_words(median)}"
    if limit is not None:
        label += f"; anomaly alert above {seconds_words(limit)}"
    parts = [
        _open(WIDTH, HEIGHT, label, "timeline"),
        f'<line x1="{PAD}" y1="{base}" x2="{WIDTH - 8}" y2="{base}" class="axis"/>',
        f'<text x="{PAD - 4}" y="14" class="axis-label" text-anchor="end">'
        f"{escape(seconds_words(top))}</text>",
        f'<text x="{PAD - 4}" y="{base}" class="axis-label" text-anchor="end">0</text>',
    ]
    if len(done) > MAX_POINTS:
        parts.extend(_columns(done, since, span, x_of, y_of, zone))
    else:
        for r in done:
            parts.append(_point(r, x_of(r.finished_at), y_of, base, zone))
    for value, css, words in (
        (limit, "limit-line", "alert above"),
        (median, "median-line", "median"),
    ):
        if value is None:
            continue
        y = y_of(value)
        parts.append(
            f'<line x1="{PAD}" y1="{y:.1f}" x2="{WIDTH - 8}" y2="{y:.1f}" class="{css}"/>'
            f'<text x="{WIDTH - 10}" y="{y - 3:.1f}" class="axis-label line-label" '
            f'text-anchor="end">{words} {escape(seconds_words(value))}</text>'
        )
    for t, anchor in ((since, "start"), (until, "end")):
        parts.append(
            f'<text x="{x_of(t):.1f}" y="{HEIGHT - 6}" class="axis-label" text-anchor="{anchor}">'
            f"{t.astimezone(zone):%b %d %H:%M}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


MAX_POINTS = 300
COLUMNS = 120


def _run_title(r: RunRow, zone: dt.tzinfo) -> str:
    when = r.finished_at.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")
    took = "no duration" if r.duration is None else seconds_words(r.duration)
    return f"{when}: {took} ({'ok' if r.status == 'success' else r.status})"


def _point(
    r: RunRow, x: float, y_of: Callable[[float], float], base: float, zone: dt.tzinfo
) -> str:
    title = escape(_run_title(r, zone))
    if r.status == "success" and r.duration is not None:
        return (
            f'<circle cx="{x:.1f}" cy="{y_of(r.duration):.1f}" r="3" class="dot-ok">'
            f"<title>{title}</title></circle>"
        )
    y = base - 4 if r.duration is None else y_of(r.duration)
    return (
        f'<path d="M{x - 4:.1f},{y - 4:.1f}l8,8m0,-8l-8,8" class="dot-fail">'
        f"<title>{title}</title></path>"
    )


def _columns(
    done: list[RunRow], since: dt.datetime, span: float, x_of: Callable[[dt.datetime], float],
    y_of: Callable[[float], float], zone: dt.tzinfo,
) -> list[str]:  # fmt: skip
    width = span / COLUMNS
    cols: dict[int, list[RunRow]] = {}
    for r in done:
        i = min(int((r.finished_at - since).total_seconds() // width), COLUMNS - 1)
        cols.setdefault(i, []).append(r)
    parts = []
    for i, rows in sorted(cols.items()):
        start = since + dt.timedelta(seconds=i * width)
        x = x_of(start + dt.timedelta(seconds=width / 2))
        ok = sorted(r.duration for r in rows if r.status == "success" and r.duration is not None)
        failed = len(rows) - len([r for r in rows if r.status == "success"])
        when = start.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")
        title = f"from {when}: {len(rows)} runs, {failed} failed"
        if ok:
            mid = ok[len(ok) // 2]
            title += (
                f"; {seconds_words(ok[0])} to {seconds_words(ok[-1])}, median {seconds_words(mid)}"
            )
        parts.append(f"<g><title>{escape(title)}</title>")
        if ok:
            parts.append(
                f'<line x1="{x:.1f}" y1="{y_of(ok[0]):.1f}" x2="{x:.1f}" y2="{y_of(ok[-1]):.1f}" '
                f'class="range"/><circle cx="{x:.1f}" cy="{y_of(mid):.1f}" r="2.5" class="dot-ok"/>'
            )
        if failed:
            y = y_of(0) - 4
            parts.append(f'<path d="M{x - 3:.1f},{y - 3:.1f}l6,6m0,-6l-6,6" class="dot-fail"/>')
        parts.append("</g>")
    return parts
