"""Offline licences: Ed25519-signed documents verified against public keys built into Tokiflow.

A licence file is an armoured block that survives email and copy-paste:

    -----BEGIN TOKIFLOW LICENCE-----
    <base64url(payload JSON)>.<base64url(64-byte Ed25519 signature of the payload bytes)>
    -----END TOKIFLOW LICENCE-----

(wrapped at 64 columns; whitespace inside the block and text around it are ignored). The payload
names the licensee, the plan, its limits and features, the issue and expiry dates and the id of
the signing key. Nothing in it is believed before the signature over its exact bytes checks out.

No licence means the FREE plan. A licence stays in force up to and including its expiry date,
then for GRACE_DAYS more with a warning; after that the FREE limits apply again. Limits only stop
new monitors and users from being added: nothing already monitored stops and no data is deleted.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import hashlib
import json
import os
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

FORMAT = 1
GRACE_DAYS = 14
LICENCE_FILE = "licence.txt"
BEGIN = "-----BEGIN TOKIFLOW LICENCE-----"
END = "-----END TOKIFLOW LICENCE-----"
PLANS = ("FREE", "PRO", "BUSINESS", "ENTERPRISE")

# The vendor's licence-signing public keys (raw Ed25519, base64), by key id. The private halves
# never ship; add a key here before signing with it, and keep old ones while their licences live.
BUILT_IN_PUBLIC_KEYS: dict[str, str] = {
    "369ea16a8ebe6dbc": "nzyAKk6+0MKeirVYo0uM77njru85EKwyXbORVDs14I0=",
}

_B64URL = re.compile(r"[A-Za-z0-9_-]+")

FEATURES = (
    "anomaly_detection",
    "output_viewer",
    "advanced_analytics",
    "discord_teams",
    "on_call",
    "sso",
    "advanced_roles",
)
_PRO_FEATURES = frozenset(FEATURES[:4])
_BUSINESS_FEATURES = _PRO_FEATURES | {"on_call", "sso", "advanced_roles"}


class LicenceError(ValueError):
    """A licence file that cannot be used; str() is one line saying why."""


class LicenceLimitError(RuntimeError):
    """The plan in force does not allow what was asked (one more monitor, user, ...)."""


@dataclasses.dataclass(frozen=True)
class Limits:
    """What the plan in force allows; None means unlimited."""

    plan: str
    monitors: int | None
    users: int | None
    features: frozenset[str]
    retention_days: int | None

    def allows(self, feature: str) -> bool:
        return feature in self.features


PLAN_LIMITS: dict[str, Limits] = {
    "FREE": Limits("FREE", 5, 3, frozenset(), 30),
    "PRO": Limits("PRO", 100, 10, _PRO_FEATURES, 90),
    "BUSINESS": Limits("BUSINESS", 500, None, _BUSINESS_FEATURES, 365),
    "ENTERPRISE": Limits("ENTERPRISE", None, None, frozenset(FEATURES), None),
}
FREE = PLAN_LIMITS["FREE"]
UNLIMITED = PLAN_LIMITS["ENTERPRISE"]


@dataclasses.dataclass(frozen=True)
class Licence:
    """A verified licence."""

    id: str
    licensee: str
    plan: str
    monitors: int | None
    users: int | None
    features: frozenset[str]
    retention_days: int | None
    issued: dt.date
    expires: dt.date | None
    key_id: str
    email: str = ""

    @property
    def limits(self) -> Limits:
        return Limits(self.plan, self.monitors, self.users, self.features, self.retention_days)

    def ends_at(self) -> dt.datetime | None:
        """The first instant the licence is no longer valid (the day after its expiry date)."""
        if self.expires is None:
            return None
        return dt.datetime.combine(self.expires + dt.timedelta(days=1), dt.time(), dt.UTC)

    def grace_ends_at(self) -> dt.datetime | None:
        end = self.ends_at()
        return None if end is None else end + dt.timedelta(days=GRACE_DAYS)


@dataclasses.dataclass(frozen=True)
class Status:
    """The licence situation at one instant, as `license show`, /metrics and the UI present it.

    state: "none" (no licence: FREE), "valid", "grace" (expired, limits still kept, warn),
    "expired" (grace over: FREE limits). `banner` is the warning to show, or None.
    """

    state: str
    limits: Limits
    licence: Licence | None
    days_left: int | None
    banner: str | None

    def as_json(self) -> dict[str, Any]:
        lic = self.licence
        return {
            "state": self.state,
            "plan": self.limits.plan,
            "licensed_plan": lic.plan if lic else None,
            "licensee": lic.licensee if lic else None,
            "email": lic.email if lic else None,
            "id": lic.id if lic else None,
            "issued": lic.issued.isoformat() if lic else None,
            "expires": lic.expires.isoformat() if lic and lic.expires else None,
            "days_left": self.days_left,
            "banner": self.banner,
            "limits": {
                "monitors": self.limits.monitors,
                "users": self.limits.users,
                "retention_days": self.limits.retention_days,
            },
            "features": sorted(self.limits.features),
        }


# -- keys ---------------------------------------------------------------------------------------


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short stable name for a public key: the first 16 hex digits of its SHA-256."""
    return hashlib.sha256(_raw_public(public_key)).hexdigest()[:16]


def _raw_public(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_text(public_key: Ed25519PublicKey) -> str:
    """The raw public key as base64, the form BUILT_IN_PUBLIC_KEYS holds."""
    return base64.b64encode(_raw_public(public_key)).decode()


def trusted_keys(
    texts: Mapping[str, str] = BUILT_IN_PUBLIC_KEYS,
) -> dict[str, Ed25519PublicKey]:
    """Public keys by key id from their base64 text (entries that do not parse are skipped)."""
    keys: dict[str, Ed25519PublicKey] = {}
    for text in texts.values():
        try:
            key = Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
        except (ValueError, binascii.Error):
            continue
        keys[key_id(key)] = key
    return keys


def keys_of(*public_keys: Ed25519PublicKey) -> dict[str, Ed25519PublicKey]:
    """A trusted-key mapping from key objects (what tests inject)."""
    return {key_id(k): k for k in public_keys}


def generate_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """The vendor's signing key from a PEM file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LicenceError(f"cannot read signing key {path}: {exc.strerror}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise LicenceError(f"{path} is not an unencrypted PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise LicenceError(f"{path} is not an Ed25519 private key")
    return key


# -- issuing (vendor side) ----------------------------------------------------------------------


def issue(
    private_key: Ed25519PrivateKey,
    *,
    licensee: str,
    plan: str,
    issued: dt.date,
    expires: dt.date | None,
    email: str = "",
    monitors: int | None | str = "plan",
    users: int | None | str = "plan",
    features: Iterable[str] = (),
    retention_days: int | None | str = "plan",
    licence_id: str | None = None,
) -> str:
    """Sign a licence and return the armoured text; limits default to the plan's ("plan")."""
    plan = plan.upper()
    if plan not in PLAN_LIMITS:
        raise LicenceError(f"unknown plan '{plan}' (expected one of {', '.join(PLANS)})")
    if not licensee.strip():
        raise LicenceError("the licensee must not be empty")
    if expires is not None and expires < issued:
        raise LicenceError(f"expiry date {expires} is before the issue date {issued}")
    unknown = sorted(set(features) - set(FEATURES))
    if unknown:
        raise LicenceError(
            f"unknown feature(s) {', '.join(unknown)} (known: {', '.join(FEATURES)})"
        )
    base = PLAN_LIMITS[plan]
    payload = {
        "format": FORMAT,
        "id": licence_id or "lic_" + secrets.token_hex(8),
        "key_id": key_id(private_key.public_key()),
        "licensee": licensee.strip(),
        "email": email.strip(),
        "plan": plan,
        "limits": {
            "monitors": base.monitors if monitors == "plan" else monitors,
            "users": base.users if users == "plan" else users,
            "retention_days": base.retention_days if retention_days == "plan" else retention_days,
        },
        "features": sorted(base.features | set(features)),
        "issued": issued.isoformat(),
        "expires": expires.isoformat() if expires else None,
    }
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    return armour(body, private_key.sign(body))


def armour(payload: bytes, signature: bytes) -> str:
    """The licence text for a payload and its signature."""
    blob = _b64(payload) + "." + _b64(signature)
    lines = [blob[i : i + 64] for i in range(0, len(blob), 64)]
    return "\n".join([BEGIN, *lines, END]) + "\n"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    if not _B64URL.fullmatch(text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# -- verifying ----------------------------------------------------------------------------------


def unarmour(text: str) -> tuple[bytes, bytes]:
    """(payload bytes, signature) from licence text, or LicenceError saying what is wrong."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < 0:
        raise LicenceError(f"not a Tokiflow licence (no '{BEGIN}' ... '{END}' block)")
    if end < start:
        raise LicenceError("the licence is damaged (its END line comes before its BEGIN line)")
    blob = re.sub(r"\s+", "", text[start + len(BEGIN) : end])
    parts = blob.split(".")
    if len(parts) != 2 or not all(parts):
        raise LicenceError("the licence is damaged (expected payload.signature inside the block)")
    try:
        payload, signature = _unb64(parts[0]), _unb64(parts[1])
    except (ValueError, binascii.Error):
        raise LicenceError("the licence is damaged (its block is not valid base64)") from None
    if len(signature) != 64:
        raise LicenceError("the licence is damaged (its signature is not 64 bytes)")
    return payload, signature


def verify(text: str, keys: Mapping[str, Ed25519PublicKey] | None = None) -> Licence:
    """Check the signature of licence text against trusted keys and return the licence.

    Raises LicenceError with a one-line reason: not a licence, damaged, signed by an unknown
    key, signature does not match (altered), or contents that are not a valid licence.
    """
    keys = trusted_keys() if keys is None else keys
    payload, signature = unarmour(text)
    claimed = _peek_key_id(payload)
    if claimed is not None and claimed not in keys:
        raise LicenceError(
            f"the licence was signed by a key this Tokiflow does not trust (key id {claimed}); "
            "it was not issued for this product, or this version is too old for it"
        )
    candidates = [keys[claimed]] if claimed is not None else list(keys.values())
    for key in candidates:
        try:
            key.verify(signature, payload)
        except InvalidSignature:
            continue
        break
    else:
        raise LicenceError(
            "the licence signature does not match its contents: the file was altered "
            "or it was not issued by the Tokiflow vendor"
        )
    return _parse(payload, claimed or "")


def _peek_key_id(payload: bytes) -> str | None:
    """The key id the (not yet trusted) payload names; only used to pick a key and to explain."""
    try:
        value = json.loads(payload).get("key_id")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def _parse(payload: bytes, kid: str) -> Licence:
    try:
        data = json.loads(payload)
        if not isinstance(data, dict):
            raise ValueError("not an object")
        if data.get("format") != FORMAT:
            raise LicenceError(
                f"the licence has format {data.get('format')!r}, which this version of "
                "Tokiflow does not read; upgrade Tokiflow"
            )
        plan = str(data["plan"]).upper()
        if plan not in PLAN_LIMITS:
            raise ValueError(f"unknown plan {plan}")
        limits = data["limits"]
        expires = data.get("expires")
        return Licence(
            id=str(data["id"]),
            licensee=str(data["licensee"]),
            plan=plan,
            monitors=_opt_int(limits.get("monitors")),
            users=_opt_int(limits.get("users")),
            features=frozenset(str(f) for f in data.get("features", [])),
            retention_days=_opt_int(limits.get("retention_days")),
            issued=dt.date.fromisoformat(data["issued"]),
            expires=dt.date.fromisoformat(expires) if expires else None,
            key_id=kid,
            email=str(data.get("email") or ""),
        )
    except LicenceError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise LicenceError(f"the licence contents are not valid ({exc})") from None


def _opt_int(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"limit {value!r} is not a whole number >= 0")
    return value


# -- in force -----------------------------------------------------------------------------------


def status(licence: Licence | None, now: dt.datetime) -> Status:
    """Where the licence stands at `now`: valid, in grace (with a banner) or expired (FREE)."""
    if licence is None:
        return Status("none", FREE, None, None, None)
    ends = licence.ends_at()
    if ends is None:
        return Status("valid", licence.limits, licence, None, None)
    if now < ends:
        days = (licence.expires - now.date()).days if licence.expires else None
        banner = None
        if days is not None and days < GRACE_DAYS:
            banner = (
                f"Your Tokiflow {licence.plan} licence expires on {licence.expires} "
                f"({_days(days + 1)} left); renew it to keep its limits."
            )
        return Status("valid", licence.limits, licence, days, banner)
    grace_end = licence.grace_ends_at()
    assert grace_end is not None
    if now < grace_end:
        left = (grace_end.date() - now.date()).days
        return Status(
            "grace",
            licence.limits,
            licence,
            -((now - ends).days + 1),
            f"Your Tokiflow {licence.plan} licence expired on {licence.expires}; its limits "
            f"stay for {_days(left)} more, then the FREE plan's apply. Renew it.",
        )
    return Status(
        "expired",
        FREE,
        licence,
        -((now - ends).days + 1),
        f"Your Tokiflow {licence.plan} licence expired on {licence.expires} and its grace "
        "period is over: the FREE plan's limits apply (nothing stops; adding monitors and "
        "users is limited). Install a renewed licence.",
    )


def _days(n: int) -> str:
    return f"{n} day" if n == 1 else f"{n} days"


def limits_for(licence: Licence | None, now: dt.datetime) -> Limits:
    """The limits in force at `now` (FREE with no licence or after the grace period)."""
    return status(licence, now).limits


def check_limit(what: str, current: int, limits: Limits) -> None:
    """Raise LicenceLimitError if one more `what` ("monitors", "users") would pass the limit."""
    limit = getattr(limits, what)
    if limit is not None and current >= limit:
        raise LicenceLimitError(
            f"cannot add more {what}: this installation has reached the limit of {limit} "
            f"{what} on the {limits.plan} plan; remove some or install a licence for a larger "
            "plan ('tokiflow license install FILE')"
        )


def check_can_create_monitor(current_monitors: int, limits: Limits) -> None:
    """Raise LicenceLimitError if the plan in force allows no more monitors.

    A licence covers the whole installation, so `current_monitors` counts every organisation's
    (otherwise a new organisation would be a way around the limit).
    """
    check_limit("monitors", current_monitors, limits)


def check_can_add_user(current_users: int, limits: Limits) -> None:
    """Raise LicenceLimitError if the plan in force allows no more users."""
    check_limit("users", current_users, limits)


# -- the installed licence ----------------------------------------------------------------------


def licence_path(data_dir: Path) -> Path:
    return data_dir / LICENCE_FILE


def load_installed(
    data_dir: Path, keys: Mapping[str, Ed25519PublicKey] | None = None
) -> Licence | None:
    """The licence installed in the data folder, None if there is none.

    An installed file that no longer verifies raises LicenceError (the caller decides whether to
    refuse or to fall back to FREE with a warning).
    """
    path = licence_path(data_dir)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LicenceError(f"cannot read {path}: {exc.strerror}") from None
    return verify(text, keys)


def limits_in_force(
    data_dir: Path,
    now: dt.datetime,
    keys: Mapping[str, Ed25519PublicKey] | None = None,
    *,
    warn: Callable[[str], None] | None = None,
) -> Limits:
    """The limits the licence installed in `data_dir` gives at `now` (what commands that add
    monitors or users on the data folder itself pass on). No licence, or one that no longer
    verifies (reported through `warn`), means FREE, as it does for the server."""
    try:
        licence = load_installed(data_dir, keys)
    except LicenceError as exc:
        if warn is not None:
            warn(f"the installed licence is not valid ({exc}); the FREE plan applies")
        licence = None
    return limits_for(licence, now)


def install(
    source: Path,
    data_dir: Path,
    now: dt.datetime,
    keys: Mapping[str, Ed25519PublicKey] | None = None,
) -> Licence:
    """Verify the licence in `source` and put it in the data folder (0600), replacing any other.

    A licence whose grace period is already over is refused: it would change nothing.
    """
    try:
        text = source.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise LicenceError(f"cannot read {source}: {exc.strerror}") from None
    licence = verify(text, keys)
    if status(licence, now).state == "expired":
        raise LicenceError(
            f"the licence expired on {licence.expires} and its {GRACE_DAYS}-day grace period is "
            "over; ask for a renewed licence"
        )
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = licence_path(data_dir)
    tmp = target.with_name(target.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, target)
    return licence
