"""The run page: one run of a monitor with the output its pings brought (captured, redacted and
encrypted on disk), in a viewer with line numbers, JSON and log-level highlighting and visible
redaction markers; plus the raw output as a download.

A run is `runs.id`, shown under its monitor's URL (`/monitors/<uuid>/runs/<id>`): the run must
belong to that monitor and the monitor to the viewer's organisation, else 404. Its output is the
body of its finish ping (and of its start ping, when that one carried a body too).

Large output stays cheap to show: the lines are escaped and wrapped once in Python (no template
loop), line numbers are drawn by CSS from a data attribute, and only one page of lines (the last
by default, where a failing job says why) is sent unless the viewer asks for all of it.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
import sqlite3
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from markupsafe import Markup, escape

from tokiflow.redaction import REDACTED
from tokiflow.storage import monitors, outputs, pings, runs
from tokiflow.storage.monitors import Monitor
from tokiflow.storage.outputs import OutputError, OutputRef
from tokiflow.storage.runs import Run
from tokiflow.web import appkeys, operations
from tokiflow.web.ui.context import Viewer, error_page, not_found, page, render, row_id

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

LINES_PER_PAGE = 1000
MAX_ALL_LINES = 20_000  # "show all" above this would make a page the browser struggles with
JSON_PRETTY_LIMIT = 1024 * 1024  # bytes: larger JSON is shown as sent
OFF_LOOP_BYTES = 128 * 1024
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_LEVEL_KEY = r"\blevel\"?\s*[=:]\s*\"?"
_LEVELS = (
    ("lv-error", re.compile(r"\b(?:FATAL|CRITICAL|CRIT|ERROR|ERR|PANIC|EMERG|SEVERE|Traceback)\b|"
                            + _LEVEL_KEY + r"(?:error|fatal|critical|panic)\b")),
    ("lv-warn", re.compile(r"\b(?:WARN|WARNING)\b|" + _LEVEL_KEY + r"warn(?:ing)?\b")),
    ("lv-info", re.compile(r"\b(?:INFO|NOTICE)\b|" + _LEVEL_KEY + r"info\b")),
    ("lv-debug", re.compile(r"\b(?:DEBUG|TRACE)\b|" + _LEVEL_KEY + r"(?:debug|trace)\b")),
)  # fmt: skip
_JSON_TOKEN = re.compile(
    r'(?P<key>"(?:[^"\\]|\\.)*"(?=\s*:))|(?P<str>"(?:[^"\\]|\\.)*")'
    r"|(?P<num>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|(?P<lit>\btrue\b|\bfalse\b|\bnull\b)"
)
_JSON_CLASS = {"key": "j-k", "str": "j-s", "num": "j-n", "lit": "j-l"}
_MARK = Markup(
    '<mark class="redacted" title="A secret was removed here before the output was stored or sent">'
    f"{REDACTED}</mark>"
)


# -- turning output into HTML -------------------------------------------------------------------


@dataclass(frozen=True)
class Viewed:
    """One page of an output, ready for the template."""

    html: Markup
    total: int  # lines in the whole output
    first: int  # 1-based number of the first line shown (0 when empty)
    last: int
    pageno: int
    pages: int
    showing_all: bool
    is_json: bool  # pretty-printed JSON is shown
    json_available: bool  # the output is JSON (shown as sent on request)
    markers: int  # [REDACTED] markers in the whole output


def to_text(data: bytes) -> str:
    """Bytes as text for the viewer: UTF-8 (bad bytes shown as U+FFFD), terminal colour codes
    and other control characters dropped (tabs and newlines kept)."""
    text = data.decode("utf-8", errors="replace")
    return _CONTROL.sub("", _ANSI.sub("", text.replace("\r\n", "\n").replace("\r", "\n")))


def pretty_json(text: str) -> str | None:
    """The text re-indented when all of it is one JSON object or array, else None."""
    stripped = text.strip()
    if not stripped or stripped[0] not in "[{" or len(stripped) > JSON_PRETTY_LIMIT:
        return None
    try:
        value = json.loads(stripped)
    except ValueError:
        return None
    return json.dumps(value, indent=2, ensure_ascii=False)


def split_lines(text: str) -> list[str]:
    lines = text.split("\n")
    if len(lines) > 1 and lines[-1] == "":
        lines.pop()  # a final newline ends the last line; it does not start another
    return lines


def _marked(text: str) -> str:
    """Escaped text with the redaction markers styled."""
    return str(escape(text)).replace(REDACTED, _MARK)


def level_of(line: str) -> str:
    """The CSS class of a log line's level (error, warning, info, debug), or ''."""
    head = line[:300]  # the level sits near the start; long lines are not searched whole
    for css, pattern in _LEVELS:
        if pattern.search(head):
            return css
    return ""


def _json_line(line: str) -> str:
    out: list[str] = []
    pos = 0
    for match in _JSON_TOKEN.finditer(line):
        out.append(_marked(line[pos : match.start()]))
        kind = match.lastgroup or "str"
        out.append(f'<span class="{_JSON_CLASS[kind]}">{_marked(match.group())}</span>')
        pos = match.end()
    out.append(_marked(line[pos:]))
    return "".join(out)


def _looks_json(line: str) -> bool:
    s = line.strip()
    if not (s.startswith("{") and s.endswith("}")):
        return False
    try:
        json.loads(s)
    except ValueError:
        return False
    return True


def render_lines(lines: list[str], first_number: int, *, json_mode: bool) -> Markup:
    """Lines as `<span class="l ..." data-n="N">...</span>` joined by newlines (a <pre> body):
    the number is drawn by CSS, so copying the text copies the output alone."""
    out: list[str] = []
    for offset, line in enumerate(lines):
        level = "" if json_mode else level_of(line)
        body = _json_line(line) if json_mode or _looks_json(line) else _marked(line)
        css = f"l {level}" if level else "l"
        out.append(f'<span class="{css}" data-n="{first_number + offset}">{body}</span>')
    return Markup("\n".join(out))


def view_output(
    data: bytes, *, pageno: int | None, show_all: bool, as_sent: bool = False
) -> Viewed:
    """The page of the output to show: the last page unless another is asked for."""
    text = to_text(data)
    markers = text.count(REDACTED)
    parsed = pretty_json(text)
    pretty = None if as_sent else parsed
    lines = split_lines(pretty if pretty is not None else text)
    total = len(lines)
    pages = max((total + LINES_PER_PAGE - 1) // LINES_PER_PAGE, 1)
    if show_all and total <= MAX_ALL_LINES:
        shown, start, current = lines, 0, 1
    else:
        show_all = False
        current = pages if pageno is None else min(max(pageno, 1), pages)
        start = (current - 1) * LINES_PER_PAGE
        shown = lines[start : start + LINES_PER_PAGE]
    html = render_lines(shown, start + 1, json_mode=pretty is not None)
    return Viewed(html, total, start + 1 if shown else 0, start + len(shown), current, pages,
                  show_all, pretty is not None, parsed is not None, markers)  # fmt: skip


# -- the pages ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """A ping of the run that carried output."""

    n: int
    role: str  # "finish" or "start"
    ref: OutputRef | None  # None: the body is kept in the ping row (stored before capture)


async def _own_run(request: web.Request, viewer: Viewer) -> tuple[Monitor, Run] | None:
    uuid = request.match_info["uuid"].lower()
    run_id = row_id(request.match_info["run_id"])
    if run_id is None:
        return None

    def read(conn: sqlite3.Connection) -> tuple[Monitor, Run] | None:
        m = monitors.by_uuid(conn, uuid)
        if m is None or m.org_id != viewer.org.id:
            return None
        run = runs.get(conn, run_id)
        if run is None or run.monitor_id != m.id:
            return None
        return m, run

    found: tuple[Monitor, Run] | None = await request.app[appkeys.DB].read(read)
    return found


def _sources(conn: sqlite3.Connection, m: Monitor, run: Run) -> list[Source]:
    found: list[Source] = []
    for n, role in ((run.end_ping, "finish"), (run.start_ping, "start")):
        if n is None:
            continue
        ping = pings.get(conn, m.id, n)
        if ping is None:  # pruned: older than the pings kept per monitor
            continue
        ref = outputs.get(conn, m.id, n)
        if ref is not None or ping.body:
            found.append(Source(n, role, ref))
    return found


def _read_body(
    conn: sqlite3.Connection, store: outputs.OutputStore, m: Monitor, n: int
) -> bytes | None:
    ping = pings.get(conn, m.id, n)
    return None if ping is None else outputs.ping_body(conn, store, m, ping)


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text else None
    except ValueError:
        return None


UNREADABLE = (
    "This output cannot be shown: the stored file is missing, damaged, or was changed on disk "
    "after it was written, so it no longer matches what was captured. The run's record is kept; "
    "the server log names the file."
)


@routes.get("/monitors/{uuid}/runs/{run_id}", name="ui.run")
@page("read")
async def run_page(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    found = await _own_run(request, viewer)
    if found is None:
        return not_found(request, viewer, "run")
    m, run = found
    q = request.query
    store = request.app[appkeys.OUTPUTS]

    def read(conn: sqlite3.Connection) -> tuple[list[Source], Source | None, bytes | None, str]:
        sources = _sources(conn, m, run)
        wanted = _int(q.get("ping"))
        chosen = next((s for s in sources if s.n == wanted), sources[0] if sources else None)
        if chosen is None:
            return sources, None, None, ""
        try:
            return sources, chosen, _read_body(conn, store, m, chosen.n), ""
        except OutputError as exc:
            log.warning("run %d of monitor %s: %s", run.id, m.uuid, exc)
            return sources, chosen, None, UNREADABLE

    sources, chosen, body, problem = await request.app[appkeys.DB].read(read)
    viewed = None
    limits = operations.plan_limits(request.app)
    # The viewer is a PRO feature; without it the output stays one download away.
    plan_note = None
    if body is not None and not limits.allows("output_viewer"):
        plan_note = (
            f"The output viewer is part of the PRO plan and above; this installation is on the "
            f"{limits.plan} plan. The captured output ({len(body):,} bytes) can still be "
            "downloaded."
        )
    elif body is not None:
        make = functools.partial(view_output, body, pageno=_int(q.get("page")),
                                 show_all=q.get("all") == "1", as_sent=q.get("as_sent") == "1")  # fmt: skip
        # Megabytes of output (a raised capture limit) take a while to split and escape: not
        # on the event loop, which serves every other request meanwhile.
        viewed = make() if len(body) <= OFF_LOOP_BYTES else await asyncio.to_thread(make)
    base = f"/monitors/{m.uuid}/runs/{run.id}"
    context: dict[str, Any] = {
        "m": m,
        "run": run,
        "sources": sources,
        "chosen": chosen,
        "viewed": viewed,
        "problem": problem,
        "capture_limit": store.limit_for(m),
        "base": base,
        "link": _linker(base, chosen, q),
        "max_all": MAX_ALL_LINES,
        "plan_note": plan_note,
    }
    return render(request, "ui/run.html", viewer, **context)


def _linker(base: str, chosen: Source | None, q: Any) -> Any:
    """A function the template uses to build links to other views of this output."""

    def link(**changes: Any) -> str:
        params: dict[str, Any] = {}
        if chosen is not None and q.get("ping"):
            params["ping"] = chosen.n
        if q.get("as_sent") == "1":
            params["as_sent"] = "1"
        params.update(changes)
        clean = {k: v for k, v in params.items() if v not in (None, "", 0)}
        return base + ("?" + urlencode(clean) if clean else "")

    return link


@routes.get("/monitors/{uuid}/runs/{run_id}/output", name="ui.run_output")
@page("read")
async def run_output(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """The raw output as stored (already redacted), as a file download."""
    found = await _own_run(request, viewer)
    if found is None:
        return not_found(request, viewer, "run")
    m, run = found
    store = request.app[appkeys.OUTPUTS]
    wanted = _int(request.query.get("ping"))

    def read(conn: sqlite3.Connection) -> tuple[Source | None, bytes | None]:
        sources = _sources(conn, m, run)
        chosen = next((s for s in sources if s.n == wanted), sources[0] if sources else None)
        if chosen is None:
            return None, None
        return chosen, _read_body(conn, store, m, chosen.n)

    try:
        chosen, body = await request.app[appkeys.DB].read(read)
    except OutputError as exc:
        log.warning("run %d of monitor %s: %s", run.id, m.uuid, exc)
        return error_page(request, viewer, 409, UNREADABLE)
    if chosen is None or body is None:
        return not_found(request, viewer, "output for this run")
    name = f"{m.slug}-run-{run.id}" + ("" if chosen.role == "finish" else f"-ping-{chosen.n}")
    return web.Response(
        body=body,
        content_type="text/plain",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.log"'},
    )
