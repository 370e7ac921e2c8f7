"""The command line against a server: the remote side of the `monitors` and `incidents` commands
(the same names work on the local data folder; cli_monitors picks the side). Logging in is
cli_login.

A command talks to a server when `--server URL` is given, or an API key is (`--api-key`,
`TOKIFLOW_API_KEY`), or a login is stored, unless it was pointed at a data folder (`--data-dir`,
`--config`, `TOKIFLOW_DATA_DIR`). Only the standard library is used here (urllib), so remote
commands start fast and need nothing installed on the client side beyond Tokiflow itself.
"""

from __future__ import annotations

import argparse
import sys
import uuid as uuidlib
from collections.abc import Callable, Mapping
from typing import Any

from tokiflow import cli_output as out
from tokiflow.cli import CliError
from tokiflow.cli_http import (
    Client,
    Credentials,
    CredentialsError,
    HttpFailure,
    Unreachable,
    load_credentials,
    normalise_server,
)

EXIT_REFUSED = 1  # the server (or the data) refused: not found, conflict, invalid input
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_AUTH = 4  # not logged in, key revoked or expired, or not allowed
PAGE = 500


def parse_server(text: str, flag: str = "--server") -> str:
    """A server's base URL given with `flag`; a usage error when it is not one."""
    try:
        return normalise_server(text)
    except ValueError as exc:
        raise CliError(f"{flag}: {exc}", EXIT_USAGE) from None


def stored_login(env: Mapping[str, str]) -> Credentials | None:
    """The stored login, or None; an error when the credentials file is unusable."""
    try:
        return load_credentials(env)
    except CredentialsError as exc:
        raise CliError(str(exc)) from None


def explicit_local(args: argparse.Namespace, env: Mapping[str, str]) -> bool:
    return bool(getattr(args, "data_dir", None) or getattr(args, "config", None)
                or env.get("TOKIFLOW_DATA_DIR"))  # fmt: skip


def client_for(args: argparse.Namespace, env: Mapping[str, str]) -> Client | None:
    """The API client a command should use, or None to work on the local data folder."""
    flag_server = getattr(args, "server", None)
    flag_key = getattr(args, "api_key", None)
    local = getattr(args, "data_dir", None) or getattr(args, "config", None)
    if (flag_server or flag_key) and local:
        raise CliError("give either --server/--api-key (a server) or --data-dir/--config (this "
                       "machine's data folder), not both", EXIT_USAGE)  # fmt: skip
    if not flag_server and explicit_local(args, env):
        return None
    given_key = flag_key or env.get("TOKIFLOW_API_KEY") or None
    stored = stored_login(env)
    if not flag_server and not given_key and stored is None:
        return None
    if flag_server:
        server = parse_server(flag_server)
    elif env.get("TOKIFLOW_SERVER"):
        server = parse_server(env["TOKIFLOW_SERVER"], "TOKIFLOW_SERVER")
    elif stored is not None:
        server = stored.server
    else:
        raise CliError("an API key needs a server: add --server URL", EXIT_USAGE)
    # A stored key goes only to the server it was made for.
    key = given_key or (stored.api_key if stored is not None and stored.server == server else None)
    if not key:
        raise CliError(f"not logged in to {server}: run tokiflow login --server {server} "
                       "(or give --api-key)", EXIT_AUTH)  # fmt: skip
    return Client(server, key)


class Remote:
    """API calls with the command line's error messages and exit codes."""

    def __init__(self, client: Client) -> None:
        self.client = client

    @property
    def server(self) -> str:
        return self.client.server

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: Mapping[str, Any] | None = None,
        missing: str | None = None,
    ) -> Any:
        try:
            return self.client.call(method, path, body, query=query)
        except Unreachable as exc:
            raise CliError(f"cannot reach {self.server}: {exc}", EXIT_UNREACHABLE) from None
        except HttpFailure as exc:
            raise self.error(exc, missing) from None

    def error(self, exc: HttpFailure, missing: str | None = None) -> CliError:
        if exc.status == 401:
            return CliError(f"not logged in or key revoked: run tokiflow login (the server "
                            f"said: {exc.message})", EXIT_AUTH)  # fmt: skip
        if exc.status == 403:
            return CliError(f"not allowed: {exc.message}", EXIT_AUTH)
        if exc.status == 404 and missing:
            return CliError(missing, EXIT_REFUSED)
        return CliError(exc.message, EXIT_REFUSED)

    def monitors(self, q: str | None = None) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        offset: int | None = 0
        while offset is not None:
            page = self.call("GET", "/monitors", query={"limit": PAGE, "offset": offset, "q": q})
            rows.extend(page["monitors"])
            offset = page.get("next_offset")
        return rows

    def monitor(self, ident: str, org: str | None = None) -> dict[str, Any]:
        """A monitor of the key's organisation by uuid or slug."""
        self.check_org(org)
        uuid = as_uuid(ident)
        if uuid is not None:
            data: dict[str, Any] = self.call(
                "GET", f"/monitors/{uuid}", missing=f"no monitor with uuid {ident}"
            )
            return data
        found = [m for m in self.monitors(q=ident) if m["slug"] == ident]
        if not found:
            raise CliError(f"no monitor with slug '{ident}'", EXIT_REFUSED)
        return found[0]

    def check_org(self, slug: str | None) -> None:
        """`--org` on a server: the API key's organisation is the only one it reaches."""
        if slug is None:
            return
        org = self.call("GET", "/org")
        if org["slug"] != slug:
            raise CliError(f"this API key belongs to organisation '{org['slug']}', not '{slug}'",
                           EXIT_REFUSED)  # fmt: skip


def as_uuid(text: str) -> str | None:
    try:
        return str(uuidlib.UUID(text.strip()))
    except ValueError:
        return None


# -- flags shared by both modes -------------------------------------------------------------------


def _optional(text: str | None) -> str | None:
    return None if text is None or text.strip().lower() in ("", "off", "none") else text


def monitor_fields(args: argparse.Namespace) -> dict[str, Any]:
    """The monitor fields given on the command line, named as in the API."""
    fields: dict[str, Any] = {}
    for flag, name in (("name", "name"), ("slug", "slug"), ("description", "description"),
                       ("period", "period"), ("schedule", "cron"), ("tz", "tz"),
                       ("grace", "grace")):  # fmt: skip
        value = getattr(args, flag, None)
        if value is not None:
            fields[name] = value
    for flag, name in (("max_runtime", "max_runtime"), ("min_runtime", "min_runtime"),
                       ("renotify", "renotify_every")):  # fmt: skip
        value = getattr(args, flag, None)
        if value is not None:
            fields[name] = _optional(value)
    if getattr(args, "tags", None) is not None:
        fields["tags"] = args.tags.replace(",", " ").split()
    if getattr(args, "late_alerts", None) is not None:
        fields["late_alerts"] = args.late_alerts
    if getattr(args, "resolve_alerts", None) is not None:
        fields["notify_resolve"] = args.resolve_alerts
    return fields


def channel_ids(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(x) for x in text.replace(",", " ").split()]
    except ValueError:
        raise CliError(
            "--channels takes channel numbers, e.g. --channels 1,3", EXIT_USAGE
        ) from None


def require_changes(fields: dict[str, Any], ids: list[int] | None) -> None:
    if not fields and ids is None:
        raise CliError("nothing to change: give the flags to change, e.g. --grace 10m", EXIT_USAGE)


def confirm_delete(name: str, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise CliError("deleting needs --yes when there is no terminal to ask", EXIT_USAGE)
    answer = input(f"Delete monitor '{name}' and all its history? [y/N] ")
    if answer.strip().lower() not in ("y", "yes"):
        raise CliError("nothing was deleted", EXIT_REFUSED)


# -- remote monitors and incidents ----------------------------------------------------------------


def _set_channels(remote: Remote, uuid: str, ids: list[int] | None) -> None:
    if ids is None:
        return
    remote.call("PUT", f"/monitors/{uuid}/channels", {"channels": ids})


def monitors_list(remote: Remote, args: argparse.Namespace) -> int:
    remote.check_org(args.org)
    out.monitor_table(remote.monitors(), as_json=args.json)
    return 0


def monitors_get(remote: Remote, args: argparse.Namespace) -> int:
    out.monitor_details(remote.monitor(args.monitor, args.org), as_json=args.json)
    return 0


def monitors_create(remote: Remote, args: argparse.Namespace) -> int:
    remote.check_org(args.org)
    ids = channel_ids(args.channels)
    if ids:
        known = {c["id"] for c in remote.call("GET", "/channels")["channels"]}
        missing = [i for i in ids if i not in known]
        if missing:
            raise CliError(f"no channel #{missing[0]} in this organisation (see 'tokiflow "
                           "channels list')", EXIT_REFUSED)  # fmt: skip
    data = remote.call("POST", "/monitors", monitor_fields(args))
    _set_channels(remote, data["uuid"], ids)
    out.monitor_created(data, as_json=args.json)
    return 0


def monitors_update(remote: Remote, args: argparse.Namespace) -> int:
    fields, ids = monitor_fields(args), channel_ids(args.channels)
    require_changes(fields, ids)
    m = remote.monitor(args.monitor, args.org)
    data = remote.call("PATCH", f"/monitors/{m['uuid']}", fields) if fields else m
    _set_channels(remote, m["uuid"], ids)
    out.monitor_changed(data, "updated", as_json=args.json)
    return 0


def monitors_delete(remote: Remote, args: argparse.Namespace) -> int:
    m = remote.monitor(args.monitor, args.org)
    confirm_delete(m["name"], args.yes)
    remote.call("DELETE", f"/monitors/{m['uuid']}", missing=f"no monitor with uuid {m['uuid']}")
    print(f"deleted monitor '{m['name']}' ({m['uuid']}) and its history")
    return 0


def monitors_pause_or_resume(remote: Remote, args: argparse.Namespace) -> int:
    m = remote.monitor(args.monitor, args.org)
    data = remote.call("POST", f"/monitors/{m['uuid']}/{args.action}")
    out.monitor_changed(data, "paused" if args.action == "pause" else "resumed", as_json=args.json)
    return 0


def incidents_list(remote: Remote, args: argparse.Namespace) -> int:
    remote.check_org(args.org)
    found = remote.call("GET", "/incidents", query={"limit": args.limit})
    out.incident_table(found["incidents"], as_json=args.json)
    return 0


def incidents_act(remote: Remote, args: argparse.Namespace) -> int:
    data = remote.call("POST", f"/incidents/{args.id}/{args.action}",
                       missing=f"no incident #{args.id}")  # fmt: skip
    out.incident_state(data, as_json=args.json)
    return 0


REMOTE: dict[str, Callable[[Remote, argparse.Namespace], int]] = {
    "monitors list": monitors_list,
    "monitors get": monitors_get,
    "monitors create": monitors_create,
    "monitors update": monitors_update,
    "monitors delete": monitors_delete,
    "monitors pause": monitors_pause_or_resume,
    "monitors resume": monitors_pause_or_resume,
    "incidents list": incidents_list,
    "incidents ack": incidents_act,
    "incidents resolve": incidents_act,
}
