"""Crontab parsing and rewriting for `tokiflow crontab wrap|unwrap`: pure functions over text.

Each job line becomes `<tokiflow> run --url <ping url> -- <command>` with everything before the
command (schedule, user field, whitespace) kept byte for byte, and cron's own rules kept:

- the first unescaped `%` ends the command and starts its stdin, so only the part before it is
  wrapped and the stdin part stays where cron looks for it;
- a command that is not a plain list of words (pipes, `&&`, quotes, `$VAR`, redirections...) runs
  as `<SHELL> -c '<command>'`, with SHELL as the crontab sets it (default /bin/sh), exactly as
  cron would have run it; plain commands are wrapped as they are, which reads better.

Unwrapping reverses the rewrite exactly, so wrap then unwrap gives back the original bytes.
Crontab text is decoded with `surrogateescape`, so any bytes survive.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field

from tokiflow.engine.schedules import ScheduleError, cron_schedule
from tokiflow.redaction import redact

DEFAULT_SHELL = "/bin/sh"

# Up to the command: optional "-" (cronie: do not log), five fields or an @shortcut, maybe a user.
_FIVE = r"(?:\S+[ \t]+){4}\S+"
_JOB_RE = re.compile(rf"^(?P<lead>[ \t]*)(?P<sched>-?(?:@\S+|{_FIVE}))[ \t]+")
_USER_RE = re.compile(r"(?P<user>[^\s]+)[ \t]+")
_ENV_RE = re.compile(r"^[ \t]*(?P<name>[^\s=#]+)[ \t]*=[ \t]*(?P<value>.*?)[ \t]*$")
_PLAIN_WORD = r"[A-Za-z0-9_./:,+@=\-]+"
_PLAIN_RE = re.compile(rf"{_PLAIN_WORD}(?:[ \t]+{_PLAIN_WORD})*")
_SAFE_SHELL = re.compile(r"[A-Za-z0-9_./\-]+")
_WRAPPED_RE = re.compile(
    r"^(?P<bin>(?:'[^']*'|[^\s']+)(?: -m tokiflow)?) run --url (?P<url>[^\s']+) -- (?P<rest>.*)$",
    re.S,
)
_SH_C_RE = re.compile(r"^(?P<shell>[^\s']+) -c (?P<quoted>(?:'[^']*'|\\')+)$", re.S)
# Shell words a plain command must not start with: they are not programs one can exec.
_NOT_PROGRAMS = frozenset(
    "cd . : source eval exec export set unset alias ulimit umask wait trap read shift return "
    "break continue times type hash getopts command readonly local let declare typeset if then "
    "else elif fi for while until do done case esac function select time ! { } [[ ]]".split()
)


class CrontabError(ValueError):
    """A crontab cannot be wrapped as asked; str() is one line for the user."""


@dataclass(frozen=True)
class Line:
    """One crontab line: its text without the line ending, and the ending ("\\n", "\\r\\n", "")."""

    text: str
    ending: str


@dataclass(frozen=True)
class CronJob:
    """A job line, split where the command starts; `prefix + command == line.text`."""

    index: int
    prefix: str
    schedule: str  # "*/5 * * * *" or "@daily", as written (without cronie's "-" flag)
    user: str | None
    command: str
    tz: str | None  # CRON_TZ (or TZ) in effect for this line
    shell: str  # SHELL in effect for this line


def split_lines(text: str) -> list[Line]:
    """Lines with their endings; joining `text + ending` of each gives back `text`."""
    lines: list[Line] = []
    pieces = text.split("\n")
    for i, piece in enumerate(pieces):
        last = i == len(pieces) - 1
        if last and piece == "":
            break
        ending = "" if last else "\n"
        if piece.endswith("\r"):
            piece, ending = piece[:-1], "\r" + ending
        lines.append(Line(piece, ending))
    return lines


def join_lines(lines: Iterable[Line]) -> str:
    return "".join(line.text + line.ending for line in lines)


def env_assignment(text: str) -> tuple[str, str] | None:
    """(name, value) of a `NAME = value` line (quotes around the value removed), else None."""
    stripped = text.lstrip(" \t")
    if not stripped or stripped[0] in "#@*-0123456789":
        return None
    match = _ENV_RE.match(text)
    if match is None:
        return None
    value = match["value"]
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    return match["name"], value


def parse_jobs(lines: list[Line], *, system: bool) -> list[CronJob]:
    """Every job line (including @reboot), with the CRON_TZ/TZ and SHELL in effect for it."""
    env: dict[str, str] = {}
    jobs: list[CronJob] = []
    for index, line in enumerate(lines):
        stripped = line.text.lstrip(" \t")
        if not stripped or stripped.startswith("#"):
            continue
        assignment = env_assignment(line.text)
        if assignment is not None:
            env[assignment[0]] = assignment[1]
            continue
        match = _JOB_RE.match(line.text)
        if match is None:
            continue
        end = match.end()
        user = None
        if system:
            user_match = _USER_RE.match(line.text, end)
            if user_match is None:
                continue
            user, end = user_match["user"], user_match.end()
        jobs.append(
            CronJob(
                index=index,
                prefix=line.text[:end],
                schedule=match["sched"].removeprefix("-"),
                user=user,
                command=line.text[end:],
                tz=env.get("CRON_TZ") or env.get("TZ") or None,
                shell=env.get("SHELL") or DEFAULT_SHELL,
            )
        )
    return jobs


def split_stdin(command: str) -> tuple[str, str]:
    """(command, stdin part) split at the first `%` not escaped by a backslash, as cron does."""
    escaped = False
    for i, ch in enumerate(command):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "%":
            return command[:i], command[i:]
    return command, ""


def _split_trailing(command: str) -> tuple[str, str]:
    core = command.rstrip(" \t")
    return core, command[len(core) :]


def quote(text: str) -> str:
    """Single-quote for sh: every byte literal, `'` written as `'\\''`."""
    return "'" + text.replace("'", "'\\''") + "'"


def _unquote(quoted: str) -> str | None:
    parts = re.findall(r"'([^']*)'|(\\')", quoted)
    if "".join(f"'{a}'" if not b else b for a, b in parts) != quoted:
        return None
    return "".join(a if not b else "'" for a, b in parts)


def is_plain(command: str) -> bool:
    """A list of plain words naming a program: runs the same with or without a shell."""
    if not _PLAIN_RE.fullmatch(command):
        return False
    first = command.split()[0]
    return "=" not in first and first not in _NOT_PROGRAMS


def wrapped_form(command: str, *, tokiflow: str, url: str, shell: str) -> str:
    """The job command that runs `command` under `tokiflow run`, with cron's % rule kept."""
    head, stdin = split_stdin(command)
    core, trailing = _split_trailing(head)
    if not core:
        raise CrontabError("the line has no command")
    shell = shell if _SAFE_SHELL.fullmatch(shell) else DEFAULT_SHELL
    inner = core if is_plain(core) else f"{shell} -c {quote(core)}"
    return f"{tokiflow} run --url {url} -- {inner}{trailing}{stdin}"


@dataclass(frozen=True)
class Wrapped:
    """What a wrapped command is made of."""

    url: str
    original: str


def unwrapped_form(command: str) -> Wrapped | None:
    """The original command inside a `tokiflow run --url URL -- ...` command, else None."""
    match = _WRAPPED_RE.match(command)
    if match is None or "tokiflow" not in match["bin"]:
        return None
    head, stdin = split_stdin(match["rest"])
    core, trailing = _split_trailing(head)
    sh_c = _SH_C_RE.match(core)
    if sh_c is not None:
        original = _unquote(sh_c["quoted"])
        if original is None:
            return None
        return Wrapped(match["url"], original + trailing + stdin)
    if "'" in core:
        return None  # not a form `wrap` writes
    return Wrapped(match["url"], core + trailing + stdin)


def job_name(command: str) -> str:
    """A short monitor name from a job's command: the program's name and a hint of what it does.

    "cd / && run-parts --report /etc/cron.daily" -> "run-parts cron.daily"
    """
    core = split_stdin(command)[0].strip()
    try:
        words = shlex.split(core, comments=True)
    except ValueError:
        words = core.split()
    segments: list[list[str]] = [[]]
    for word in words:
        if word in _SEPARATORS:
            segments.append([])
            continue
        word = word.lstrip("(")
        closes = word.endswith((";", ")"))
        word = word.rstrip(";)")
        if word:
            segments[-1].append(word)
        if closes:
            segments.append([])
    for segment in segments:
        name = _name_from(_without_redirections(segment))
        if name:
            return redact(name)[0][:80]
    return "cron job"


_SEPARATORS = frozenset("&& || ; ;; | & ( ) { }".split())
_CONTROL = frozenset("if then else elif do while until ! time exec nohup chronic".split())
_SKIP = frozenset("cd test [ [[ true false : export set umask sleep fi done esac".split())
# Programs that run another program: (their options that take a value, positional arguments).
_RUNNERS: dict[str, tuple[frozenset[str], int]] = {
    "nice": (frozenset({"-n"}), 0),
    "ionice": (frozenset({"-c", "-n", "-p"}), 0),
    "timeout": (frozenset({"-s", "-k"}), 1),
    "flock": (frozenset({"-w", "-E", "-c"}), 1),
    "sudo": (frozenset({"-u", "-g", "-C", "-h", "-p"}), 0),
    "env": (frozenset({"-u", "-C", "-S"}), 0),
    "setlock": (frozenset(), 1),
    "run-one": (frozenset(), 0),
    "systemd-cat": (frozenset({"-t", "-p"}), 0),
}
_INTERPRETERS = frozenset("sh bash zsh dash php python python2 python3 perl ruby node".split())
_REDIRECT = re.compile(r"\d*(?:>>?|<<?|>&|<&|&>>?)")


def _without_redirections(words: list[str]) -> list[str]:
    kept: list[str] = []
    skip_next = False
    for word in words:
        if skip_next:
            skip_next = False
        elif _REDIRECT.fullmatch(word):
            skip_next = True  # the operator alone: its target is the next word
        elif not _REDIRECT.match(word):
            kept.append(word)
    return kept


def _name_from(words: list[str]) -> str:
    while words and (words[0] in _CONTROL or re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0])):
        words = words[1:]
    while words and os.path.basename(words[0]) in _RUNNERS:
        takes_value, positional = _RUNNERS[os.path.basename(words[0])]
        words = words[1:]
        while words and (words[0].startswith("-") or "=" in words[0]):
            words = words[2:] if words[0] in takes_value else words[1:]
        words = words[positional:]
    if not words or words[0] in _SKIP or words[0] in _CONTROL or words[0].startswith("-"):
        return ""
    program = os.path.basename(words[0].rstrip("/")) or words[0]
    want = 2 if program.rstrip("0123456789.") in _INTERPRETERS else 1
    hints = [
        os.path.basename(w.rstrip("/"))
        for w in words[1:]
        if not w.startswith("-") and not re.fullmatch(r"[\d.]+[smhd]?", w)
    ]
    return " ".join([program, *[h for h in hints if h][:want]])


@dataclass(frozen=True)
class PlannedJob:
    """A job `wrap` will monitor: the monitor to create and the line to write."""

    index: int
    name: str
    slug: str
    uuid: str
    url: str
    schedule: str
    tz: str
    original: str
    line: str


@dataclass(frozen=True)
class WrapPlan:
    """The rewritten crontab, the monitors to create, and notes on lines left alone."""

    text: str
    jobs: list[PlannedJob]
    notes: list[str] = field(default_factory=list)
    already: int = 0


def plan_wrap(
    text: str,
    *,
    system: bool,
    default_tz: str,
    tokiflow: str,
    base_url: str,
    slug_taken: Callable[[str], bool],
    new_uuid: Callable[[], str],
    slugify: Callable[[str], str],
) -> WrapPlan:
    """Work out how to wrap every job of a crontab; changes nothing (pure)."""
    lines = split_lines(text)
    used: set[str] = set()
    names: set[str] = set()
    planned: list[PlannedJob] = []
    notes: list[str] = []
    already = 0
    for job in parse_jobs(lines, system=system):
        where = f"line {job.index + 1}"
        if unwrapped_form(job.command) is not None:
            already += 1
            continue
        if job.schedule.lower() == "@reboot":
            notes.append(f"{where}: @reboot left as it is (no schedule to monitor)")
            continue
        tz = job.tz or default_tz
        try:
            schedule = cron_schedule(job.schedule, tz)
        except ScheduleError as exc:
            notes.append(f"{where}: left as it is: {exc}")
            continue
        if not split_stdin(job.command)[0].strip():
            notes.append(f"{where}: left as it is: no command")
            continue
        name = _unique(job_name(job.command), names.__contains__, lambda n, i: f"{n} ({i})")
        names.add(name)
        slug = _unique(
            slugify(name), lambda s: s in used or slug_taken(s), lambda s, i: f"{s[:95]}-{i}"
        )
        used.add(slug)
        uuid = new_uuid()
        url = f"{base_url}/ping/{uuid}"
        command = wrapped_form(job.command, tokiflow=tokiflow, url=url, shell=job.shell)
        planned.append(
            PlannedJob(
                index=job.index, name=name, slug=slug, uuid=uuid, url=url,
                schedule=schedule.cron or job.schedule, tz=tz, original=lines[job.index].text,
                line=job.prefix + command,
            )
        )  # fmt: skip
        lines[job.index] = Line(job.prefix + command, lines[job.index].ending)
    return WrapPlan(join_lines(lines), planned, notes, already)


def _unique(base: str, taken: Callable[[str], bool], variant: Callable[[str, int], str]) -> str:
    candidate, n = base, 1
    while taken(candidate):
        n += 1
        candidate = variant(base, n)
    return candidate


@dataclass(frozen=True)
class UnwrapPlan:
    """The crontab with wrapped lines restored, and what was done."""

    text: str
    restored: list[int]  # line indexes
    urls: list[str]
    notes: list[str] = field(default_factory=list)


def plan_unwrap(text: str, *, system: bool, known_urls: Collection[str] | None) -> UnwrapPlan:
    """Restore every line `wrap` rewrote. With `known_urls`, only lines pinging one of them are
    restored (a `tokiflow run` line written by hand is left alone)."""
    lines = split_lines(text)
    restored: list[int] = []
    urls: list[str] = []
    notes: list[str] = []
    for job in parse_jobs(lines, system=system):
        found = unwrapped_form(job.command)
        if found is None:
            continue
        if known_urls is not None and found.url not in known_urls:
            notes.append(
                f"line {job.index + 1}: left as it is: its ping URL was not set up by "
                "'tokiflow crontab wrap' with this data folder"
            )
            continue
        lines[job.index] = Line(job.prefix + found.original, lines[job.index].ending)
        restored.append(job.index)
        urls.append(found.url)
    return UnwrapPlan(join_lines(lines), restored, urls, notes)
