"""Webhook: any method and URL, custom headers, a JSON body template, and an HMAC signature.

Signature: `X-Tokiflow-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`
when a secret is set; the receiver recomputes it over the raw body (docs/alerts.md).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import asdict
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from tokiflow.channels.base import (
    Alert,
    Channel,
    ChannelConfigError,
    ChannelError,
    check_unknown,
    require_str,
    require_url,
)

METHODS = ("POST", "PUT", "PATCH", "GET")
_HEADER_NAME_OK = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


def _env() -> SandboxedEnvironment:
    env = SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False)
    env.filters["json"] = lambda value: json.dumps(value)
    return env


def template_vars(alert: Alert) -> dict[str, Any]:
    """The variables a body template can use (documented in docs/alerts.md)."""
    data = asdict(alert)
    data["severity"] = alert.severity
    data["text"] = alert.text()
    return data


def default_body(alert: Alert) -> str:
    data = template_vars(alert)
    data.pop("extra", None)
    return json.dumps(data, sort_keys=True)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The X-Tokiflow-Signature header value for a body sent at `timestamp`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


class WebhookChannel(Channel):
    kind = "webhook"
    label = "Webhook"
    secret_fields = ("secret", "headers")

    @classmethod
    def validate(cls, config: dict[str, Any]) -> dict[str, Any]:
        check_unknown(config, {"url", "method", "headers", "body", "secret"})
        url = require_url(config, "url")
        method = (require_str(config, "method", optional=True) or "POST").upper()
        if method not in METHODS:
            raise ChannelConfigError("method", f"must be one of {', '.join(METHODS)}")
        headers = config.get("headers") or {}
        if not isinstance(headers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            raise ChannelConfigError("headers", "must be an object of header names to strings")
        for name, value in headers.items():
            if not name or not set(name) <= _HEADER_NAME_OK or "\n" in value or "\r" in value:
                raise ChannelConfigError("headers", f"invalid header {name!r}")
        body = config.get("body") or ""
        if not isinstance(body, str):
            raise ChannelConfigError("body", "must be a template string")
        if body:
            try:
                _env().from_string(body)
            except jinja2.TemplateSyntaxError as exc:
                raise ChannelConfigError(
                    "body", f"template error line {exc.lineno}: {exc.message}"
                ) from None
        secret = require_str(config, "secret", optional=True)
        return {"url": url, "method": method, "headers": headers, "body": body, "secret": secret}

    def render(self, alert: Alert) -> bytes:
        template = self.config.get("body") or ""
        if not template:
            return default_body(alert).encode()
        try:
            return _env().from_string(template).render(**template_vars(alert)).encode()
        except jinja2.TemplateError as exc:
            raise ChannelError(f"body template failed: {exc}", permanent=True) from None

    async def send(self, alert: Alert) -> str:
        body = self.render(alert)
        headers = {"Content-Type": "application/json", **self.config.get("headers", {})}
        headers["X-Tokiflow-Event"] = alert.event
        headers["X-Tokiflow-Idempotency-Key"] = alert.idempotency_key
        if self.config.get("secret"):
            timestamp = int(self.ctx.clock_now().timestamp())
            headers["X-Tokiflow-Signature"] = sign(self.config["secret"], timestamp, body)
        method = self.config.get("method", "POST")
        status, _ = await self.ctx.http.request(
            method, self.config["url"], data=None if method == "GET" else body, headers=headers
        )
        return f"HTTP {status}"
