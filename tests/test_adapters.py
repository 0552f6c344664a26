"""The adapters hold no SQL: the web app and the API reach the store only through the service."""

from __future__ import annotations

import ast
from pathlib import Path

import priorauth

ROOT = Path(priorauth.__file__).parent


def imports_and_sessions(folder: str) -> dict[str, tuple[set[str], int]]:
    """module file -> (every module it imports, lazy ones too; uses of `.sessions`)."""
    found: dict[str, tuple[set[str], int]] = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        names: set[str] = set()
        sessions = 0
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
                names.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
            elif isinstance(node, ast.Attribute) and node.attr == "sessions":
                sessions += 1
        found[path.relative_to(ROOT).as_posix()] = (names, sessions)
    return found


def _database(names: set[str]) -> set[str]:
    return {
        n for n in names if n == "sqlalchemy" or n.startswith(("sqlalchemy.", "priorauth.store"))
    }


def test_the_web_app_holds_no_sql_and_no_store() -> None:
    found = imports_and_sessions("ui")
    assert "ui/pages.py" in found and "ui/auth.py" in found  # the walk sees the app
    offending = {m: sorted(_database(n)) for m, (n, _) in found.items() if _database(n)}
    assert offending == {}
    # Nor does it open a database session of the service's: every read is a use case.
    assert {m: s for m, (_, s) in found.items() if s} == {}


def test_the_api_queries_no_table() -> None:
    found = imports_and_sessions("api")
    # The composition root builds the engine and checks the schema; nothing else touches them.
    wiring = {"sqlalchemy.Engine", "sqlalchemy", "priorauth.store.db",
              "priorauth.store.db.check_schema", "priorauth.store.db.make_engine"}  # fmt: skip
    offending = {
        m: sorted(_database(n) - (wiring if m == "api/factory.py" else set()))
        for m, (n, _) in found.items()
    }
    assert {m: v for m, v in offending.items() if v} == {}
    assert {m: s for m, (_, s) in found.items() if s} == {}


def test_the_walk_finds_a_query() -> None:
    # The check itself: a module with SQL is caught.
    names = {"sqlalchemy.select", "priorauth.store.models.CaseRow", "priorauth.pas.records"}
    assert _database(names) == {"sqlalchemy.select", "priorauth.store.models.CaseRow"}
