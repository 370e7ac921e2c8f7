"""Creating, listing and removing alert channels: configs validated by their kind and sealed."""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass
from typing import Any

from tokiflow import licensing
from tokiflow.channels.base import ChannelConfigError
from tokiflow.channels.registry import CHANNELS
from tokiflow.engine.dispatcher import open_config, seal_config
from tokiflow.storage import channels
from tokiflow.storage.channels import ChannelRow
from tokiflow.storage.crypto import CryptoError, Sealer


@dataclass(frozen=True)
class ChannelView:
    """A channel as users see it: config with secrets masked, and its last error."""

    id: int
    org_id: int
    kind: str
    name: str
    is_default: bool
    config: dict[str, Any]
    last_error: str | None
    last_error_at: dt.datetime | None
    created_at: dt.datetime


# Channel kinds that only some plans may add (the licence feature that allows them).
PLAN_FEATURES = {"discord": "discord_teams", "teams": "discord_teams"}


class ChannelPlanError(ChannelConfigError):
    """The plan in force does not include this kind of channel (a 403 where one can say so)."""


def check_plan(kind: str, limits: licensing.Limits) -> None:
    """ChannelPlanError if adding a `kind` channel needs a feature the plan in force lacks.
    Channels added earlier keep delivering whatever happens to the licence."""
    feature = PLAN_FEATURES.get(kind)
    if feature is None or limits.allows(feature):
        return
    cls = CHANNELS.get(kind)
    label = getattr(cls, "label", kind) if cls else kind
    raise ChannelPlanError(
        "kind",
        f"{label} channels are part of the PRO plan and above, and this installation is on the "
        f"{limits.plan} plan; install a licence that includes them ('tokiflow license install "
        "FILE') or pick another kind",
    )


def validate(kind: str, name: str, config: Any) -> dict[str, Any]:
    """Check kind, name and config; raises ChannelConfigError naming the field."""
    cls = CHANNELS.get(kind)
    if cls is None:
        raise ChannelConfigError(
            "kind", f"unknown kind {kind!r}; one of {', '.join(sorted(CHANNELS))}"
        )
    if not name or not name.strip() or len(name) > 200:
        raise ChannelConfigError("name", "must be 1 to 200 characters")
    if not isinstance(config, dict):
        raise ChannelConfigError("config", "must be a JSON object")
    return cls.validate(config)


def create(
    conn: sqlite3.Connection,
    sealer: Sealer,
    *,
    org_id: int,
    kind: str,
    name: str,
    config: Any,
    is_default: bool,
    now: dt.datetime,
    limits: licensing.Limits,
) -> ChannelRow:
    """Validate and store a channel (if the plan in force, `limits`, has its kind); a default
    one is linked to every monitor of the org."""
    clean = validate(kind, name, config)
    check_plan(kind, limits)
    return channels.insert(
        conn, org_id=org_id, kind=kind, name=name.strip(), sealed_config=seal_config(sealer, org_id, clean),
        is_default=is_default, now=now,
    )  # fmt: skip


def view(row: ChannelRow, sealer: Sealer) -> ChannelView:
    cls = CHANNELS.get(row.kind)
    try:
        config = open_config(sealer, row)
        shown = cls.masked(config) if cls else {}
    except CryptoError as exc:
        shown = {"error": f"config cannot be read: {exc}"}
    return ChannelView(
        row.id, row.org_id, row.kind, row.name, row.is_default, shown, row.last_error,
        row.last_error_at, row.created_at,
    )  # fmt: skip
