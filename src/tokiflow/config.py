"""Settings: one table of every setting, and how flags, environment, config file and defaults combine.

Precedence: command-line flags > `TOKIFLOW_<NAME>` (or `TOKIFLOW_<NAME>_FILE` for secrets) environment
variables > the TOML config file given with `--config` (or `TOKIFLOW_CONFIG`) > the defaults below.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tokiflow.engine.schedules import ScheduleError, parse_duration


class ConfigError(ValueError):
    """A setting has a value that cannot be used; str() names the setting and the reason."""


def _bool(text: str) -> bool:
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise ValueError("expected a port number between 0 and 65535")
    return value


def _positive_int(text: str) -> int:
    value = int(str(text).replace("_", ""))
    if value < 0:
        raise ValueError("expected a number >= 0")
    return value


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in choices:
            raise ValueError("expected one of " + ", ".join(choices))
        return text

    return parse


def _duration(text: str) -> int:
    try:
        return parse_duration(text)
    except ScheduleError as exc:
        raise ValueError(str(exc)) from None


def _str(text: str) -> str:
    return str(text)


def _size(text: str) -> int:
    """Bytes from "32768", "32k", "10M", "1G" (powers of 1024)."""
    raw = str(text).strip().lower().replace("_", "")
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    factor = 1
    if raw.endswith("b"):
        raw = raw[:-1]
    if raw and raw[-1] in units:
        factor = units[raw[-1]]
        raw = raw[:-1]
    try:
        value = int(float(raw) * factor)
    except ValueError:
        raise ValueError("expected a size such as 32k, 10M or 1G") from None
    if value < 0:
        raise ValueError("expected a size >= 0")
    return value


def _optional_port(text: str) -> int:
    return _port(text) if text else 0


def _list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in str(text).split(",") if part.strip())


@dataclasses.dataclass(frozen=True)
class Setting:
    """One setting: its name, default (as text, parsed like user input), help and parser."""

    name: str
    default: str
    help: str
    parse: Callable[[str], Any] = _str
    secret: bool = False

    @property
    def env(self) -> str:
        return "TOKIFLOW_" + self.name.upper()


SETTINGS: tuple[Setting, ...] = (
    Setting("data_dir", "./tokiflow-data", "Folder for the database, captured output and keys."),
    Setting(
        "host", "127.0.0.1", "Address the HTTP server listens on (0.0.0.0 for every interface)."
    ),
    Setting("port", "8000", "TCP port the HTTP server listens on.", _port),
    Setting(
        "base_url",
        "",
        "Public URL of this server, used in ping URLs, links and emails "
        "(default: http://<host>:<port>).",
    ),
    Setting("log_level", "info", "Log level.", _choice("debug", "info", "warning", "error")),
    Setting("log_format", "text", "Log line format.", _choice("text", "json")),
    Setting("access_log", "true", "Log one line per HTTP request with its latency.", _bool),
    Setting(
        "ping_body_limit",
        "10000",
        "Bytes of a ping's request body that are stored; the rest is cut (never rejected).",
        _positive_int,
    ),
    Setting(
        "ping_rate_limit",
        "100",
        "Pings per second allowed from one client address, on average (0 turns the limit off).",
        _positive_int,
    ),
    Setting(
        "ping_rate_burst",
        "2000",
        "Pings one client address may send at once before the rate limit applies.",
        _positive_int,
    ),
    Setting(
        "trusted_proxies",
        "",
        "Comma-separated proxy addresses whose X-Forwarded-For and X-Forwarded-Proto are believed.",
        _list,
    ),
    Setting(
        "pings_kept",
        "1000",
        "How many of the most recent pings are kept per monitor.",
        _positive_int,
    ),
    Setting(
        "retention",
        "90d",
        "How long finished runs and resolved incidents are kept (e.g. 90d).",
        _duration,
    ),
    Setting(
        "shutdown_timeout",
        "5",
        "Seconds that in-flight requests get to finish on SIGTERM or SIGINT.",
        _positive_int,
    ),
    Setting(
        "alert_retry_for",
        "24h",
        "How long a notification that fails to send is retried (with backoff) before it is "
        "marked dead.",
        _duration,
    ),
    Setting(
        "outbound_timeout",
        "10",
        "Seconds an outbound HTTP request (webhooks, chat and incident services) may take.",
        _positive_int,
    ),
    Setting(
        "outbound_block_private",
        "false",
        "Refuse outbound requests to private network ranges too (link-local and cloud "
        "metadata addresses are always refused).",
        _bool,
    ),
    Setting("smtp_host", "", "SMTP server for email alerts (empty: email channels cannot send)."),
    Setting(
        "smtp_port",
        "",
        "SMTP port (default: 465 for tls, 587 for starttls, 25 for none).",
        _optional_port,
    ),
    Setting("smtp_tls", "starttls", "SMTP transport security.", _choice("starttls", "tls", "none")),
    Setting("smtp_user", "", "SMTP user name (empty: no authentication)."),
    Setting("smtp_password", "", "SMTP password.", secret=True),
    Setting("smtp_from", "tokiflow@localhost", "From address of alert emails."),
    Setting(
        "output_capture_limit",
        "32k",
        "Bytes of job output kept per run (the tail); 0 turns output capture off.",
        _size,
    ),
    Setting(
        "output_retention",
        "90d",
        "How long captured job output is kept.",
        _duration,
    ),
    Setting(
        "output_max_total",
        "1G",
        "Captured output kept per organisation before the oldest is deleted.",
        _size,
    ),
    Setting(
        "stats_window",
        "100",
        "How many recent runs the duration percentiles and anomaly median are computed over.",
        _positive_int,
    ),
    Setting(
        "self_ping_url",
        "",
        "A URL Tokiflow pings every minute so that an outside monitor notices when it is down.",
    ),
    Setting(
        "secret_key",
        "",
        "Key for encrypting secrets and captured output at rest; by default one is created in "
        "the data folder. Give it through TOKIFLOW_SECRET_KEY_FILE rather than on the command line.",
        secret=True,
    ),
)

SETTINGS_BY_NAME = {s.name: s for s in SETTINGS}


@dataclasses.dataclass(frozen=True)
class Settings:
    """The effective settings, parsed; `sources` says where each value came from."""

    data_dir: Path
    host: str
    port: int
    base_url: str
    log_level: str
    log_format: str
    access_log: bool
    ping_body_limit: int
    ping_rate_limit: int
    ping_rate_burst: int
    trusted_proxies: tuple[str, ...]
    pings_kept: int
    retention: int
    shutdown_timeout: int
    alert_retry_for: int
    outbound_timeout: int
    outbound_block_private: bool
    smtp_host: str
    smtp_port: int
    smtp_tls: str
    smtp_user: str
    smtp_password: str
    smtp_from: str
    output_capture_limit: int
    output_retention: int
    output_max_total: int
    stats_window: int
    self_ping_url: str
    secret_key: str
    sources: Mapping[str, str] = dataclasses.field(default_factory=dict, compare=False)

    @property
    def db_path(self) -> Path:
        return self.data_dir / "tokiflow.db"

    @property
    def outputs_dir(self) -> Path:
        return self.data_dir / "outputs"

    @property
    def public_url(self) -> str:
        """The base URL with no trailing slash."""
        if self.base_url:
            return self.base_url.rstrip("/")
        host = "localhost" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def _read_config_file(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc}") from None
    section = data.get("tokiflow", data)
    if not isinstance(section, dict):
        raise ConfigError(f"config file {path}: [tokiflow] must be a table")
    unknown = sorted(set(section) - set(SETTINGS_BY_NAME))
    if unknown:
        raise ConfigError(f"config file {path}: unknown setting(s): {', '.join(unknown)}")
    return section


def _from_env(setting: Setting, env: Mapping[str, str]) -> tuple[str, str] | None:
    file_var = setting.env + "_FILE"
    if file_var in env:
        try:
            text = Path(env[file_var]).read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{file_var}: cannot read {env[file_var]}: {exc.strerror}") from None
        return text, f"env {file_var}"
    if setting.env in env:
        return env[setting.env], f"env {setting.env}"
    return None


def load_settings(
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config_file: str | None = None,
) -> Settings:
    """Combine flags, environment, config file and defaults into parsed Settings."""
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    env = os.environ if env is None else env
    config_file = config_file or env.get("TOKIFLOW_CONFIG")
    file_values = _read_config_file(config_file) if config_file else {}
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for setting in SETTINGS:
        raw: Any
        if setting.name in flags:
            raw, source = flags[setting.name], "flag"
        elif (found := _from_env(setting, env)) is not None:
            raw, source = found
        elif setting.name in file_values:
            raw, source = file_values[setting.name], f"file {config_file}"
        else:
            raw, source = setting.default, "default"
        if isinstance(raw, bool):
            raw = "true" if raw else "false"
        elif isinstance(raw, list):
            raw = ",".join(str(x) for x in raw)
        try:
            values[setting.name] = setting.parse(str(raw))
        except ValueError as exc:
            shown = "***" if setting.secret else repr(str(raw))
            raise ConfigError(f"setting {setting.name} ({source}): {shown}: {exc}") from None
        sources[setting.name] = source
    values["data_dir"] = Path(values["data_dir"])
    return Settings(**values, sources=sources)


def effective_settings(settings: Settings) -> list[tuple[str, str, str]]:
    """(name, shown value, source) rows for `tokiflow config`, secrets masked."""
    rows = []
    for setting in SETTINGS:
        value = getattr(settings, setting.name)
        if setting.secret:
            shown = "***" if value else "(not set)"
        elif isinstance(value, tuple):
            shown = ",".join(value)
        elif isinstance(value, bool):
            shown = "true" if value else "false"
        else:
            shown = str(value)
        rows.append((setting.name, shown, settings.sources.get(setting.name, "default")))
    return rows
