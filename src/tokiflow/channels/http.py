"""The one way out for alert HTTP: timeouts, a User-Agent, status mapping and an SSRF guard.

Link-local and cloud-metadata addresses are always refused (they expose the host's
credentials); private ranges are allowed unless `outbound_block_private` is set, because alert
targets are often on the same network. The check runs on the addresses the name resolves to,
at connect time, so DNS rebinding cannot get around it.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import aiohttp
import yarl
from aiohttp.abc import AbstractResolver, ResolveResult

from tokiflow import __version__

USER_AGENT = f"Tokiflow/{__version__} (+alerts)"
METADATA_HOSTS = {"metadata.google.internal", "metadata", "instance-data"}
_METADATA_IPS = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


class OutboundRefused(Exception):
    """The target address is not allowed."""


def address_refused(ip: str, *, block_private: bool) -> str | None:
    """Why this address may not be contacted, or None if it may."""
    addr = ipaddress.ip_address(ip)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if addr in _METADATA_IPS:
        return "a cloud metadata address"
    if addr.is_link_local:
        return "a link-local address"
    if addr.is_multicast or addr.is_unspecified or addr.is_reserved:
        return "not a unicast address"
    if block_private and (addr.is_private or addr.is_loopback):
        return "a private address (outbound_block_private is on)"
    return None


class GuardedResolver(AbstractResolver):
    """Resolves names and drops addresses that may not be contacted."""

    def __init__(self, *, block_private: bool) -> None:
        self._inner = aiohttp.ThreadedResolver()
        self._block_private = block_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host.lower().rstrip(".") in METADATA_HOSTS:
            raise OutboundRefused(f"{host} is a cloud metadata host")
        results = await self._inner.resolve(host, port, family)
        allowed = [
            r for r in results if not address_refused(r["host"], block_private=self._block_private)
        ]
        if not allowed:
            reason = address_refused(results[0]["host"], block_private=self._block_private)
            raise OutboundRefused(f"{host} resolves to {results[0]['host']}, {reason}")
        return allowed

    async def close(self) -> None:
        await self._inner.close()


class Outbound:
    """A shared client session for channels, built on the guarded resolver."""

    def __init__(self, *, timeout: float, block_private: bool) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._block_private = block_private
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                resolver=GuardedResolver(block_private=self._block_private), limit=200
            )
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=self._timeout, headers={"User-Agent": USER_AGENT}
            )
        return self._session

    async def request(
        self,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        data: bytes | str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, str]:
        """Send a request; returns (status, body text). Raises the channel errors below."""
        from tokiflow.channels.base import ChannelError

        refused = self.refused(url)
        if refused:
            raise ChannelError(f"refused: {refused}", permanent=True)
        try:
            async with self._client().request(
                method, url, json=json_body, data=data, headers=headers, allow_redirects=False
            ) as resp:
                text = await resp.text(errors="replace")
                status = resp.status
        except OutboundRefused as exc:
            raise ChannelError(f"refused: {exc}", permanent=True) from None
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, OutboundRefused):
                raise ChannelError(f"refused: {exc.os_error}", permanent=True) from None
            raise ChannelError(f"cannot connect to {exc.host}:{exc.port}") from None
        except aiohttp.InvalidURL:
            raise ChannelError(f"invalid URL {url!r}", permanent=True) from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise ChannelError(
                f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            ) from None
        check_status(status, text)
        return status, text

    def refused(self, url: str) -> str | None:
        """Why a URL whose host is an address literal may not be contacted (names are checked
        by the resolver, which aiohttp skips for literals)."""
        try:
            host = yarl.URL(url).host or ""
        except ValueError:
            return f"{url!r} is not a valid URL"
        if host.lower().rstrip(".") in METADATA_HOSTS:
            return f"{host} is a cloud metadata host"
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return None
        reason = address_refused(host, block_private=self._block_private)
        return f"{host} is {reason}" if reason else None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def check_status(status: int, body: str) -> None:
    """2xx is delivered; 408, 429 and 5xx are worth retrying; any other status is permanent."""
    from tokiflow.channels.base import ChannelError

    if 200 <= status < 300:
        return
    snippet = " ".join(body.split())[:200]
    message = f"HTTP {status}" + (f": {snippet}" if snippet else "")
    retry = status in (408, 425, 429) or status >= 500
    raise ChannelError(message, permanent=not retry, status=f"HTTP {status}")
