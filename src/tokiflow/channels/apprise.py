"""Apprise: one or more Apprise URLs (`tgram://`, `mailto://`, `json://`, ... 100+ services).

Apprise does its own HTTP with `requests`, in a worker thread: it does NOT go through Tokiflow's
outbound guard, so `outbound_timeout` and `outbound_block_private` do not apply and only hosts
written as a link-local or cloud-metadata address are refused here (a name that resolves to one
is not caught). Prefer a native channel when there is one. Apprise cannot tell a bad key from a
network error, so every failure is retried until the retry period ends.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from typing import Any

import yarl

from tokiflow.channels.base import Alert, Channel, ChannelConfigError, ChannelError, check_unknown
from tokiflow.channels.http import METADATA_HOSTS, address_refused

MAX_URLS = 20
_TYPES = {"critical": "failure", "warning": "warning", "info": "success", "test": "info"}


def _apprise() -> Any:
    try:
        import apprise
    except ImportError:  # pragma: no cover - apprise is a dependency; frozen builds may drop it
        return None
    return apprise


def _scheme(url: str) -> str:
    return url.split("://", 1)[0] if "://" in url else url[:10]


def _refused(url: str) -> str | None:
    """Why Tokiflow refuses this URL's host (only literal addresses can be checked here)."""
    try:
        host = (yarl.URL(url).host or "").lower().rstrip(".")
    except ValueError:
        return None
    if host in METADATA_HOSTS:
        return "a cloud metadata host"
    try:
        return address_refused(host, block_private=False)
    except ValueError:
        return None


def build(urls: list[str]) -> Any:
    """An Apprise object holding the URLs; ChannelConfigError names the first URL it rejects.

    Runs on the caller's thread: the first call imports Apprise's plugins (a fraction of a
    second, once per process), and warnings filters are not thread-safe."""
    apprise = _apprise()
    if apprise is None:
        raise ChannelConfigError("urls", "the apprise package is not installed")
    obj = apprise.Apprise()
    # Apprise imports its plugins on first use; some import deprecated modules.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for n, url in enumerate(urls, start=1):
            if not obj.add(url):
                raise ChannelConfigError(
                    "urls", f"URL {n} ({_scheme(url)}://...) is not a valid Apprise URL"
                )
    return obj


class AppriseChannel(Channel):
    kind = "apprise"
    label = "Apprise"
    secret_fields = ("urls",)

    @classmethod
    def validate(cls, config: dict[str, Any]) -> dict[str, Any]:
        check_unknown(config, {"urls"})
        raw = config.get("urls")
        items = raw if isinstance(raw, list) else str(raw or "").split()
        if not all(isinstance(u, str) for u in items):
            raise ChannelConfigError("urls", "must be a list of Apprise URLs")
        urls = [u.strip() for u in items if u.strip()]
        if not urls:
            raise ChannelConfigError("urls", "give at least one Apprise URL")
        if len(urls) > MAX_URLS:
            raise ChannelConfigError("urls", f"at most {MAX_URLS} URLs")
        for n, url in enumerate(urls, start=1):
            reason = _refused(url)
            if reason:
                raise ChannelConfigError("urls", f"URL {n} points at {reason}")
        build(urls)
        return {"urls": urls}

    async def send(self, alert: Alert) -> str:
        try:
            obj = build(self.config["urls"])
        except ChannelConfigError as exc:
            raise ChannelError(exc.message, permanent=True) from None
        apprise = _apprise()
        level = "test" if alert.event == "test" else alert.severity
        kind = apprise.NotifyType(_TYPES[level])

        def notify() -> tuple[bool, str]:
            with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as logs:
                result = obj.notify(
                    body=alert.text(), title=alert.title, notify_type=kind, body_format="text"
                )
                ok = bool(result)
                if hasattr(result, "close"):
                    result.close()
                return ok, logs.getvalue()

        ok, logged = await asyncio.to_thread(notify)
        if not ok:
            lines = dict.fromkeys(line.strip() for line in logged.splitlines() if line.strip())
            why = "; ".join(lines)[:300]
            raise ChannelError("Apprise could not notify" + (f": {why}" if why else ""))
        return f"Apprise: {len(obj)} sent"
