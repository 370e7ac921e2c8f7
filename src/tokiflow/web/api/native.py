"""The native API object: every /api/v1 route module registers its routes on it."""

from __future__ import annotations

from tokiflow.web.api.framework import Api

API = Api(
    "/api/v1",
    "Tokiflow API",
    "Monitors, pings, runs, incidents, channels, members, API keys and the audit log of one "
    "organisation. Authenticate with an organisation API key (`X-Api-Key` or "
    "`Authorization: Bearer`) or a signed-in session (send `X-CSRF-Token` on changes). Errors are "
    '`{"error": "...", "detail": {...}}` with a 4xx status.',
)
