"""The client side of a ping: a monitor's ping URL and one HTTP POST to it.

Standard library only, and no asyncio: `tokiflow ping` (cli_ping) uses this alone, so that a job
pays little more than the interpreter's own start-up for it; the job wrapper (wrapper.py) adds
retries and runs the command.
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
import uuid as uuidlib
from dataclasses import dataclass
from email.message import Message

from tokiflow import __version__

REQUEST_TIMEOUT = 10.0
USER_AGENT = f"tokiflow-run/{__version__}"


class TargetError(ValueError):
    """Not a usable ping target (a bad URL or uuid, or no server or ping key): reported as one
    line before anything runs."""


@dataclass(frozen=True)
class Target:
    """Where a monitor's pings go: a ping URL (`.../ping/<uuid>` or `.../ping/<key>/<slug>`)."""

    url: str
    create: bool = False

    def for_action(self, action: str, rid: str | None = None) -> str:
        """The URL of one ping: action is "", "start", "fail", "log" or an exit status."""
        parts = urllib.parse.urlsplit(self.url)
        path = parts.path.rstrip("/") + (f"/{action}" if action else "")
        query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        if rid:
            query = [(k, v) for k, v in query if k != "rid"] + [("rid", rid)]
        if self.create and not any(k == "create" for k, _ in query):
            query.append(("create", "1"))
        return urllib.parse.urlunsplit(
            (parts.scheme, parts.netloc, path, urllib.parse.urlencode(query), "")
        )


def _check_base(url: str, what: str) -> str:
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:  # e.g. an unclosed IPv6 bracket: "http://[::1"
        parts = urllib.parse.SplitResult("", "", "", "", "")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise TargetError(f"{what} '{url}' is not an http:// or https:// URL")
    return url.rstrip("/")


def make_target(
    *,
    url: str | None = None,
    uuid: str | None = None,
    slug: str | None = None,
    ping_key: str | None = None,
    server: str | None = None,
    create: bool = False,
) -> Target:
    """A Target from a ping URL, or a uuid and a server, or a slug, a ping key and a server."""
    if url:
        return Target(_check_base(url, "ping URL"), create=create)
    if uuid:
        if create:
            raise TargetError("--create works with --slug (or a slug URL), not with --uuid")
        try:
            uuid = str(uuidlib.UUID(uuid))
        except ValueError:
            raise TargetError(f"'{uuid}' is not a valid uuid") from None
        if not server:
            raise TargetError("--uuid needs --server URL (or TOKIFLOW_SERVER)")
        return Target(f"{_check_base(server, 'server URL')}/ping/{uuid}")
    if slug:
        if not ping_key or not server:
            raise TargetError(
                "--slug needs --ping-key KEY and --server URL (or TOKIFLOW_PING_KEY and "
                "TOKIFLOW_SERVER)"
            )
        return Target(f"{_check_base(server, 'server URL')}/ping/{ping_key}/{slug}", create=create)
    raise TargetError(
        "say which monitor to ping: --url URL, --uuid UUID --server URL, or --slug SLUG "
        "--ping-key KEY --server URL (or the TOKIFLOW_URL ... environment variables)"
    )


@dataclass(frozen=True)
class Reply:
    """A server's answer to a ping."""

    status: int
    text: str
    body_limit: int | None = None
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def http_send(url: str, body: bytes, timeout: float) -> Reply:
    """POST one ping (POST is accepted by every monitor, even one that only takes POST).

    Raises OSError (or http.client.HTTPException) when the server cannot be reached.
    """
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"User-Agent": USER_AGENT, "Content-Type": "text/plain; charset=utf-8"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return _reply(resp.status, resp.read(4096), resp.headers)
    except urllib.error.HTTPError as exc:
        with exc:
            return _reply(exc.code, exc.read(4096), exc.headers)


def _reply(status: int, raw: bytes, headers: Message) -> Reply:
    def number(name: str) -> float | None:
        try:
            return float(headers.get(name, ""))
        except ValueError:
            return None

    limit = number("Ping-Body-Limit")
    return Reply(
        status=status,
        text=raw.decode("utf-8", "replace").strip(),
        body_limit=int(limit) if limit is not None and limit >= 0 else None,
        retry_after=number("Retry-After"),
    )


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc.reason, str):
        exc = exc.reason if isinstance(exc.reason, BaseException) else exc
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc.reason) if isinstance(exc, urllib.error.URLError) else str(exc)
    return text or type(exc).__name__


def shown_url(url: str) -> str:
    # Warnings show where a ping went, not its query string.
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def ping_once(url: str, body: bytes, *, timeout: float = REQUEST_TIMEOUT) -> Reply:
    """`tokiflow ping`: one attempt; raises OSError when the server cannot be reached."""
    return http_send(url, body, timeout)
