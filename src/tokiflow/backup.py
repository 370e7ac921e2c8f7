"""Online backups of a data folder into one .tar.gz, and restoring one into an empty folder.

A backup is consistent while the server runs: the database is copied with SQLite's backup API in
one step on a read connection, which sees one committed moment of the WAL and never blocks the
writer. Captured output, the secret key and the licence are added after the database, so every
output file the copied database refers to is there (files written later are harmless extras).
The archive ends with `manifest.json` (SHA-256 and size of every file): an archive cut short has
no manifest and is refused on restore, and so is one whose files do not match it.

Archive members: tokiflow.db, secret.key, licence.txt (when present), outputs/..., manifest.json.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

from tokiflow import __version__
from tokiflow.licensing import LICENCE_FILE
from tokiflow.storage import db
from tokiflow.storage.crypto import KEY_FILE
from tokiflow.storage.db import StorageError
from tokiflow.storage.migrations import status as migration_status

FORMAT = 1
DB_FILE = "tokiflow.db"
MANIFEST = "manifest.json"
OUTPUTS = "outputs"
CHUNK = 1024 * 1024

Progress = Callable[[str], None]


class BackupError(StorageError):
    """A backup or restore cannot go on; str() is one line a user can act on."""


@dataclass
class BackupResult:
    """What went into an archive."""

    path: Path
    size: int
    db_size: int
    output_files: int
    output_bytes: int
    members: list[str] = field(default_factory=list)
    migrations: list[str] = field(default_factory=list)


def _quiet(_: str) -> None:
    pass


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB"


def default_target(now: dt.datetime) -> Path:
    return Path(f"tokiflow-backup-{now.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}.tar.gz")


def snapshot_database(db_path: Path, target: Path) -> None:
    """A consistent copy of a live database (one backup step on a read connection)."""
    try:
        db.snapshot(db_path, target)
    except sqlite3.Error as exc:
        raise BackupError(f"cannot copy the database {db_path}: {exc}") from None


def check_database(path: Path, *, full: bool = False) -> None:
    """Raise BackupError unless the SQLite file passes quick_check (integrity_check if full)."""
    try:
        rows = db.file_findings(path, full=full)
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"the database copy is not a usable SQLite file: {exc}") from None
    if rows != ["ok"]:
        raise BackupError(f"the database copy is damaged: {'; '.join(rows[:3])}")


def _hashing_copy(src: IO[bytes], dst: IO[bytes]) -> tuple[str, int]:
    digest = hashlib.sha256()
    total = 0
    while chunk := src.read(CHUNK):
        digest.update(chunk)
        dst.write(chunk)
        total += len(chunk)
    return digest.hexdigest(), total


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mtime: float) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o600
    info.mtime = int(mtime)
    tar.addfile(info, io.BytesIO(data))


class _HashingReader:
    """Reads a file for tarfile while hashing what passes through."""

    def __init__(self, fh: IO[bytes]) -> None:
        self._fh = fh
        self.digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._fh.read(size)
        self.digest.update(data)
        return data


def _output_files(outputs: Path) -> Iterator[Path]:
    if not outputs.is_dir():
        return
    for root, dirs, files in os.walk(outputs):
        dirs.sort()
        for name in sorted(files):
            if not name.endswith(".tmp"):
                yield Path(root) / name


def create_backup(
    data_dir: Path,
    target: Path,
    now: dt.datetime,
    *,
    progress: Progress = _quiet,
) -> BackupResult:
    """Write a consistent archive of the data folder to `target` (mode 0600: it holds the key)."""
    db_path = data_dir / DB_FILE
    if not db_path.is_file():
        raise BackupError(f"no database in {data_dir} (is --data-dir right?)")
    target = target.resolve()
    if target.exists():
        raise BackupError(f"{target} already exists; not overwriting it")
    if not target.parent.is_dir():
        raise BackupError(f"folder {target.parent} does not exist")
    hashes: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory(prefix=".tokiflow-backup-", dir=target.parent) as tmp:
        snap = Path(tmp) / DB_FILE
        progress(f"copying the database ({_mb(db_path.stat().st_size)}) ...")
        snapshot_database(db_path, snap)
        check_database(snap)
        state = migration_status(snap)
        db_size = snap.stat().st_size
        progress(f"database copied: {_mb(db_size)}, quick_check ok")
        partial = target.with_name(target.name + ".partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as raw:
                with tarfile.open(fileobj=raw, mode="w:gz", compresslevel=6) as tar:
                    files, total = _write_members(tar, snap, data_dir, hashes, progress)
                    manifest = {
                        "format": FORMAT,
                        "tokiflow_version": __version__,
                        "created_at": now.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
                        "migrations": state.applied,
                        "secret_key_included": KEY_FILE in hashes,
                        "files": hashes,
                    }
                    _add_bytes(tar, MANIFEST, json.dumps(manifest, indent=1).encode(), 0)
                raw.flush()
                os.fsync(raw.fileno())
            os.replace(partial, target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    return BackupResult(
        path=target, size=target.stat().st_size, db_size=db_size, output_files=files,
        output_bytes=total, members=sorted(hashes), migrations=state.applied,
    )  # fmt: skip


def _write_members(
    tar: tarfile.TarFile,
    snap: Path,
    data_dir: Path,
    hashes: dict[str, dict[str, object]],
    progress: Progress,
) -> tuple[int, int]:
    """The database copy, the key and licence, then the captured output; returns output counts."""
    with snap.open("rb") as fh:
        reader = _HashingReader(fh)
        info = tar.gettarinfo(str(snap), arcname=DB_FILE)
        info.mode = 0o600
        tar.addfile(info, reader)
    hashes[DB_FILE] = {"sha256": reader.digest.hexdigest(), "size": info.size}
    for name in (KEY_FILE, LICENCE_FILE):
        path = data_dir / name
        if path.is_file():
            data = path.read_bytes()
            _add_bytes(tar, name, data, path.stat().st_mtime)
            hashes[name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
            progress(f"added {name}")
    return _add_outputs(tar, data_dir / OUTPUTS, hashes, progress)


def _add_outputs(
    tar: tarfile.TarFile, outputs: Path, hashes: dict[str, dict[str, object]], progress: Progress
) -> tuple[int, int]:
    paths = list(_output_files(outputs))
    if not paths:
        return 0, 0
    progress(f"adding {len(paths)} captured output files ...")
    files = total = 0
    step = max(len(paths) // 10, 500)
    for path in paths:
        try:
            # Read whole (output files are small and capped) so each one is added as it was at
            # one moment, even if retention replaces or deletes it meanwhile.
            data = path.read_bytes()
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            continue  # deleted by retention since the listing: not in the database copy either
        name = PurePosixPath(OUTPUTS, *path.relative_to(outputs).parts).as_posix()
        _add_bytes(tar, name, data, mtime)
        hashes[name] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        files += 1
        total += len(data)
        if files % step == 0:
            progress(f"  {files}/{len(paths)} output files")
    progress(f"added {files} output files ({_mb(total)})")
    return files, total


# -- restore ------------------------------------------------------------------------------------


@dataclass
class RestoreResult:
    data_dir: Path
    files: int
    created_at: str
    tokiflow_version: str
    secret_key_included: bool
    migrations: list[str]


def _safe_name(name: str) -> str:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise BackupError(f"the archive holds an unsafe path '{name}'; refusing it")
    top = path.parts[0]
    if top not in (DB_FILE, KEY_FILE, LICENCE_FILE, MANIFEST, OUTPUTS) or (
        top != OUTPUTS and len(path.parts) != 1
    ):
        raise BackupError(f"the archive holds '{name}', which is not part of a Tokiflow backup")
    return path.as_posix()


def _mkdirs(top: Path, folder: Path) -> None:
    """Create `folder` and every missing folder between it and `top` with mode 0700."""
    missing = []
    while folder != top and not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        path.mkdir(mode=0o700)


def _is_empty(folder: Path) -> bool:
    return not folder.exists() or (folder.is_dir() and not any(folder.iterdir()))


def restore_backup(archive: Path, data_dir: Path, *, progress: Progress = _quiet) -> RestoreResult:
    """Unpack a backup into an empty (or new) data folder, verifying it before it is put there."""
    if not archive.is_file():
        raise BackupError(f"backup {archive} does not exist")
    if not _is_empty(data_dir):
        raise BackupError(
            f"data folder {data_dir} is not empty; restore into a new folder "
            "(or move this one aside first)"
        )
    parent = data_dir.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{data_dir.name}.restore-", dir=parent))
    try:
        found, manifest = _unpack(archive, staging, progress)
        _verify(found, manifest)
        progress("checking the database (integrity_check) ...")
        check_database(staging / DB_FILE, full=True)
        state = migration_status(staging / DB_FILE)
        if state.unknown:
            raise BackupError(
                "the backup was made by a newer Tokiflow (migrations "
                f"{', '.join(state.unknown)}); restore it with that version or newer"
            )
        (staging / OUTPUTS).mkdir(mode=0o700, exist_ok=True)
        _place(staging, data_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    progress(f"restored {len(found)} files into {data_dir}")
    return RestoreResult(
        data_dir=data_dir, files=len(found), created_at=str(manifest.get("created_at", "")),
        tokiflow_version=str(manifest.get("tokiflow_version", "")),
        secret_key_included=bool(manifest.get("secret_key_included")),
        migrations=state.applied,
    )  # fmt: skip


def _unpack(
    archive: Path, staging: Path, progress: Progress
) -> tuple[dict[str, tuple[str, int]], dict[str, object]]:
    found: dict[str, tuple[str, int]] = {}
    manifest: dict[str, object] | None = None
    progress(f"reading {archive} ({_mb(archive.stat().st_size)}) ...")
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            for member in tar:
                if member.isdir():
                    _safe_name(member.name.rstrip("/"))
                    continue
                if not member.isfile():
                    raise BackupError(f"the archive holds '{member.name}', which is not a file")
                name = _safe_name(member.name)
                src = tar.extractfile(member)
                assert src is not None
                if name == MANIFEST:
                    manifest = json.loads(src.read())
                    continue
                dest = staging.joinpath(*PurePosixPath(name).parts)
                _mkdirs(staging, dest.parent)
                fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as out:
                    found[name] = _hashing_copy(src, out)
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        if isinstance(exc, FileExistsError):
            raise BackupError("the archive holds the same file twice; refusing it") from None
        raise BackupError(f"{archive} is not a readable Tokiflow backup: {exc}") from None
    if manifest is None or not isinstance(manifest, dict):
        raise BackupError(f"{archive} has no manifest: it is incomplete or not a Tokiflow backup")
    return found, manifest


def _verify(found: dict[str, tuple[str, int]], manifest: dict[str, object]) -> None:
    if manifest.get("format") != FORMAT:
        raise BackupError(f"unsupported backup format {manifest.get('format')!r}")
    listed = manifest.get("files")
    if not isinstance(listed, dict) or DB_FILE not in listed:
        raise BackupError("the backup's manifest lists no database")
    missing = sorted(set(listed) - set(found))
    if missing:
        raise BackupError(f"the backup is incomplete: {len(missing)} files missing ({missing[0]})")
    extra = sorted(set(found) - set(listed))
    if extra:
        raise BackupError(f"the backup holds files its manifest does not list ({extra[0]})")
    for name, (digest, size) in found.items():
        entry = listed[name]
        if (
            not isinstance(entry, dict)
            or entry.get("sha256") != digest
            or entry.get("size") != size
        ):
            raise BackupError(f"the backup is damaged: {name} does not match its checksum")


def _place(staging: Path, data_dir: Path) -> None:
    """Move the verified files into the data folder (0700; key and licence 0600)."""
    for name in (KEY_FILE, LICENCE_FILE, DB_FILE):
        path = staging / name
        if path.exists():
            path.chmod(0o600)
    staging.chmod(0o700)
    if data_dir.exists():
        for entry in staging.iterdir():
            os.replace(entry, data_dir / entry.name)
        staging.rmdir()
        data_dir.chmod(0o700)
    else:
        os.replace(staging, data_dir)
