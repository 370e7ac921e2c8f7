"""The package's layering, `web -> engine -> storage`, checked on its source with `ast`, so a new
module is covered without being listed anywhere. Scope: every module of `src/tokiflow/`; tests,
tools and benchmarks may reach into the database directly and are not checked.

The rules:

1. SQL lives in `storage/`. No module outside it calls a method named `execute`, `executemany`
   or `executescript` (on whatever object), and no string literal outside it reads as a whole
   SQL statement (`SELECT ... FROM`, `INSERT INTO`, `UPDATE ... SET`, `DELETE FROM`, `PRAGMA`,
   `BEGIN`/`COMMIT`/`ROLLBACK`, `CREATE TABLE|INDEX`; upper case, as the code writes SQL; prose
   and HTTP method names do not match). Fragments such as a WHERE clause built elsewhere are not
   recognised; the call rule catches those as soon as they are run outside storage.
2. Outside `storage/`, `sqlite3` is named but not used: `sqlite3.Connection` as a type (in
   annotations and type aliases such as `Callable[[sqlite3.Connection], T]`, never called) and
   sqlite3's exception classes (`sqlite3.Error` and its subclasses, to catch them). Nothing else
   from it: no `connect`, `Row`, `backup`, no constants. Connections are opened by storage (its
   `Database` writer and readers, or `storage.db.connect` for the command line).
3. `web/` does not touch storage's machinery: it never imports `storage.db` (connections,
   pragmas), `storage.readers` or `storage.migrations`; from `storage.writer` only the two
   exceptions a write can raise (`WriteFailed`, `WriterClosed`); and `storage.database` only in
   `web/appkeys.py`, which declares the typed key that `app.py` puts the `Database` under.
   Everything else in web reads and writes through `request.app[appkeys.DB]` with storage's
   query modules and the engine.
4. Dependencies point one way: `storage/` imports nothing from `engine`, `web` or `channels`;
   `engine/` imports nothing from `web` and not `aiohttp.web`.

Files that break rule 1 or 2 and are not moved yet are listed in EXEMPT with what replaces
their SQL; a test fails when an exemption is no longer needed, so the list only shrinks.
"""

from __future__ import annotations

import ast
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "tokiflow"
SQL_CALLS = {"execute", "executemany", "executescript"}
SQL_TEXT = re.compile(
    r"\s*(SELECT\s+\S|INSERT\s+(OR\s+[A-Z]+\s+)?INTO\b|UPDATE\s+\w+\s+SET\b|DELETE\s+FROM\b"
    r"|PRAGMA\s+\w|(BEGIN(\s+(IMMEDIATE|EXCLUSIVE|DEFERRED))?|COMMIT|ROLLBACK)\s*;?\s*$"
    r"|CREATE\s+(TABLE|INDEX|UNIQUE\s+INDEX)\b)",
    re.DOTALL,
)
SQLITE_TYPES = {"Connection"}
SQLITE_ERRORS = {
    name
    for name in dir(sqlite3)
    if isinstance(getattr(sqlite3, name), type)
    and issubclass(getattr(sqlite3, name), sqlite3.Error)
}
STORAGE_MACHINERY = {"db", "readers", "migrations", "writer", "database"}
WRITER_ERRORS = {"WriteFailed", "WriterClosed"}
APP_WIRING = "web/appkeys.py"

# path (relative to src/tokiflow) -> (why it still holds SQL, what replaces it)
EXEMPT: dict[str, str] = {}


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"src/tokiflow/{self.path}:{self.line}: {self.what}"


def modules() -> Iterator[tuple[str, ast.Module]]:
    for file in sorted(PACKAGE.rglob("*.py")):
        rel = file.relative_to(PACKAGE).as_posix()
        yield rel, ast.parse(file.read_text(encoding="utf-8"), filename=str(file))


def outside_storage() -> Iterator[tuple[str, ast.Module]]:
    return ((rel, tree) for rel, tree in modules() if not rel.startswith("storage/"))


def _text(node: ast.AST) -> str | None:
    """A string literal's text; an f-string's with `{}` for each placeholder."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(
            v.value if isinstance(v, ast.Constant) and isinstance(v.value, str) else "{}"
            for v in node.values
        )
    return None


def sql_findings(rel: str, tree: ast.Module) -> list[Finding]:
    """Rule 1: calls that run SQL and literals that are SQL statements."""
    found = []
    inside_fstrings = {
        id(v) for n in ast.walk(tree) if isinstance(n, ast.JoinedStr) for v in n.values
    }
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in SQL_CALLS
        ):
            found.append(Finding(rel, node.lineno, f".{node.func.attr}() call"))
        text = None if id(node) in inside_fstrings else _text(node)
        if text is not None and SQL_TEXT.match(text):
            found.append(Finding(rel, node.lineno, f"SQL text {text.strip()[:40]!r}"))
    return found


def _sqlite_names(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.asname or a.name for a in node.names if a.name == "sqlite3"}
    return names


def sqlite_findings(rel: str, tree: ast.Module) -> list[Finding]:
    """Rule 2: anything taken from sqlite3 other than Connection as a type and its errors."""
    allowed = SQLITE_TYPES | SQLITE_ERRORS
    found = []
    aliases = _sqlite_names(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "sqlite3":
            found += [
                Finding(rel, node.lineno, f"from sqlite3 import {a.name}")
                for a in node.names
                if a.name not in allowed
            ]
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and node.attr not in allowed
        ):
            found.append(Finding(rel, node.lineno, f"sqlite3.{node.attr}"))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id in aliases
            and node.func.attr in SQLITE_TYPES
        ):
            found.append(Finding(rel, node.lineno, f"sqlite3.{node.func.attr}(...) opens one"))
    return found


def _imports(rel: str, tree: ast.Module) -> Iterator[tuple[int, str, str | None]]:
    """(line, absolute module, imported name or None) for every import of the module."""
    package = ["tokiflow", *rel.split("/")[:-1]]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name, None
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package[: len(package) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            for a in node.names:
                yield node.lineno, base, a.name


def _storage_module(module: str, name: str | None) -> str | None:
    """The storage submodule an import names (`tokiflow.storage.db` or `from tokiflow.storage
    import db`), else None."""
    if module.startswith("tokiflow.storage."):
        return module.split(".")[2]
    if module == "tokiflow.storage" and name is not None:
        return name
    return None


def web_findings(rel: str, tree: ast.Module) -> list[Finding]:
    """Rule 3: web modules stay off storage's connections, readers, writer and migrations."""
    found = []
    for line, module, name in _imports(rel, tree):
        sub = _storage_module(module, name)
        if sub not in STORAGE_MACHINERY:
            continue
        whole_module = module == "tokiflow.storage" or name is None
        if sub == "writer" and not whole_module and name in WRITER_ERRORS:
            continue
        if sub == "database" and rel == APP_WIRING and name == "Database":
            continue
        found.append(
            Finding(rel, line, f"imports storage.{sub}" + ("" if whole_module else f".{name}"))
        )
    return found


def direction_findings(rel: str, tree: ast.Module) -> list[Finding]:
    """Rule 4: storage imports no higher layer; engine imports no web."""
    if rel.startswith("storage/"):
        banned = ("tokiflow.engine", "tokiflow.web", "tokiflow.channels")
    elif rel.startswith("engine/"):
        banned = ("tokiflow.web", "aiohttp.web")
    else:
        return []
    found = []
    for line, module, name in _imports(rel, tree):
        full = module if name is None else f"{module}.{name}"
        hit = next((b for b in banned if full == b or full.startswith(b + ".")), None)
        if hit is not None:
            found.append(Finding(rel, line, f"imports {full}"))
    return found


def _report(findings: list[Finding]) -> str:
    return "\n".join(str(f) for f in findings)


def test_sql_runs_only_in_storage() -> None:
    findings = [
        f for rel, tree in outside_storage() if rel not in EXEMPT for f in sql_findings(rel, tree)
    ]
    assert not findings, "SQL outside storage/ (move it into a storage module):\n" + _report(
        findings
    )


def test_sqlite3_is_used_only_for_types_and_errors_outside_storage() -> None:
    findings = [
        f
        for rel, tree in outside_storage()
        if rel not in EXEMPT
        for f in sqlite_findings(rel, tree)
    ]
    assert not findings, "sqlite3 used outside storage/:\n" + _report(findings)


def test_web_does_not_import_storage_machinery() -> None:
    findings = [
        f for rel, tree in modules() if rel.startswith("web/") for f in web_findings(rel, tree)
    ]
    assert not findings, "web/ reaches into storage's machinery:\n" + _report(findings)


def test_dependencies_point_from_web_to_engine_to_storage() -> None:
    findings = [f for rel, tree in modules() for f in direction_findings(rel, tree)]
    assert not findings, "an import against the layering:\n" + _report(findings)


@pytest.mark.parametrize("rel", sorted(EXEMPT))
def test_every_exemption_is_still_needed(rel: str) -> None:
    """Once a listed file's SQL has moved, its entry must go (so the list only shrinks)."""
    tree = ast.parse((PACKAGE / rel).read_text(encoding="utf-8"))
    assert sql_findings(rel, tree) or sqlite_findings(rel, tree), (
        f"{rel} no longer holds SQL: remove it from EXEMPT"
    )


# -- the checks themselves catch what they are meant to ------------------------------------------

BAD = """
import sqlite3 as lite
from sqlite3 import connect, Error
from tokiflow.storage.db import connect as open_db
from tokiflow.storage import readers
from tokiflow.storage.writer import Writer, WriteFailed

def f(conn: lite.Connection) -> None:
    conn.execute("SELECT 1")
    conn.executemany(SQL, [])
    rows = lite.connect(":memory:")
    lite.Connection(":memory:")
    sql = f"SELECT {cols} FROM monitors WHERE id = ?"
    other = "DELETE FROM runs"
    try:
        pass
    except lite.Error:
        pass
"""
GOOD = '''
import sqlite3
from collections.abc import Callable
from tokiflow.storage import monitors
from tokiflow.storage.writer import WriteFailed, WriterClosed

Reader = Callable[[sqlite3.Connection], int]

def f(conn: sqlite3.Connection) -> None:
    """Select the monitors from the list, then delete from the page; update them."""
    try:
        monitors.get(conn, 1)
    except (sqlite3.Error, sqlite3.IntegrityError, WriteFailed, WriterClosed):
        method = "DELETE"
'''


def test_the_checks_flag_sql_sqlite3_use_and_storage_machinery() -> None:
    tree = ast.parse(BAD)
    sql = {f.what for f in sql_findings("web/x.py", tree)}
    assert sql == {".execute() call", ".executemany() call", "SQL text 'SELECT 1'",
                   "SQL text 'SELECT {} FROM monitors WHERE id = ?'",
                   "SQL text 'DELETE FROM runs'"}  # fmt: skip
    used = {f.what for f in sqlite_findings("web/x.py", tree)}
    assert used == {"from sqlite3 import connect", "sqlite3.connect",
                    "sqlite3.Connection(...) opens one"}  # fmt: skip
    web = {f.what for f in web_findings("web/x.py", tree)}
    assert web == {"imports storage.db.connect", "imports storage.readers",
                   "imports storage.writer.Writer"}  # fmt: skip


def test_the_checks_let_types_errors_and_query_modules_through() -> None:
    tree = ast.parse(GOOD)
    assert sql_findings("web/x.py", tree) == []
    assert sqlite_findings("web/x.py", tree) == []
    assert web_findings("web/x.py", tree) == []


def test_the_direction_check_resolves_relative_imports() -> None:
    tree = ast.parse("from ..web import appkeys\nfrom . import monitors\n")
    assert [f.what for f in direction_findings("storage/x.py", tree)] == [
        "imports tokiflow.web.appkeys"
    ]
