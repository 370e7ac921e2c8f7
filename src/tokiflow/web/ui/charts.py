"""Charts drawn on the server as inline SVG (no script, nothing fetched)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from markupsafe import Markup, escape

from tokiflow.engine.schedules import format_duration
from tokiflow.storage.runs import Run

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
