"""The command line's side of the HTTP API: a small stdlib client, and the stored login
(`~/.config/tokiflow/credentials`, or under `$XDG_CONFIG_HOME`)."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tokiflow import __version__
from tokiflow.ping_client import describe_error

API_PREFIX = "/api/v1"


class Unreachable(Exception):
    """No HTTP answer at all (refused, no such host, timed out); str() says why."""


class HttpFailure(Exception):
    """The server answered with an error status; `message` is its `error` text."""

    def __init__(self, status: int, message: str, detail: dict[str, Any]) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail


class CredentialsError(Exception):
    """The credentials file cannot be read or written."""


def normalise_server(url: str) -> str:
    """A server's base URL without a trailing slash; ValueError when it is not http(s)."""
    url = url.strip().rstrip("/")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"'{url}' is not a server URL (like https://tokiflow.example.com)")
    return url


@dataclass
class Client:
    """JSON calls to one server's /api/v1, authenticated with an API key (when given)."""

    server: str
    api_key: str | None = None
    timeout: float = 30.0
    headers: dict[str, str] = field(default_factory=dict)

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """The decoded JSON reply (None for 204); HttpFailure or Unreachable otherwise."""
        url = self.server + API_PREFIX + path
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        headers = {"Accept": "application/json", "User-Agent": f"tokiflow-cli/{__version__}",
                   **self.headers}  # fmt: skip
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.api_key:
            headers["X-Api-Key"] = self.api_key
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=timeout or self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            raise _failure(exc) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise Unreachable(describe_error(exc)) from None
        if not raw:
            return None
        try:
            return json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise HttpFailure(
                502, "the server's reply is not JSON (is this Tokiflow?)", {}
            ) from None


def _failure(exc: urllib.error.HTTPError) -> HttpFailure:
    try:
        raw = exc.read()
    except OSError:
        raw = b""
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        data = None
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        detail = data.get("detail") if isinstance(data.get("detail"), dict) else {}
        return HttpFailure(exc.code, data["error"], detail or {})
    return HttpFailure(exc.code, f"HTTP {exc.code} {exc.reason}", {})


# -- the stored login ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    server: str
    api_key: str


def credentials_path(env: Mapping[str, str]) -> Path:
    """`$XDG_CONFIG_HOME/tokiflow/credentials`, else `~/.config/tokiflow/credentials`."""
    xdg = env.get("XDG_CONFIG_HOME", "")
    if xdg and os.path.isabs(xdg):
        base = Path(xdg)
    else:
        home = env.get("HOME") or str(Path.home())
        base = Path(home) / ".config"
    return base / "tokiflow" / "credentials"


def load_credentials(env: Mapping[str, str]) -> Credentials | None:
    """The stored login, or None when there is none."""
    path = credentials_path(env)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CredentialsError(f"cannot read {path}: {exc.strerror}") from None
    try:
        data = json.loads(text)
        server, api_key = data["server"], data["api_key"]
        if not isinstance(server, str) or not isinstance(api_key, str) or not api_key:
            raise TypeError
        return Credentials(normalise_server(server), api_key)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError):
        raise CredentialsError(
            f"{path} is not a Tokiflow login: run 'tokiflow logout' and log in again"
        ) from None


def save_credentials(env: Mapping[str, str], creds: Credentials) -> Path:
    """Write the login readable by its owner only (file 0600 in a folder 0700), atomically."""
    path = credentials_path(env)
    try:
        path.parent.parent.mkdir(parents=True, exist_ok=True)
        path.parent.mkdir(mode=0o700, exist_ok=True)
        os.chmod(path.parent, 0o700)
        tmp = path.with_name(f".credentials.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, json.dumps({"server": creds.server, "api_key": creds.api_key}).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        raise CredentialsError(f"cannot write {path}: {exc.strerror}") from None
    return path


def delete_credentials(env: Mapping[str, str]) -> Path | None:
    """Remove the stored login; the path removed, or None when there was none."""
    path = credentials_path(env)
    try:
        path.unlink()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CredentialsError(f"cannot remove {path}: {exc.strerror}") from None
    return path


def stored_server(env: Mapping[str, str]) -> str | None:
    """The server of the stored login, if any (a broken file counts as none)."""
    try:
        creds = load_credentials(env)
    except CredentialsError:
        return None
    return creds.server if creds else None
