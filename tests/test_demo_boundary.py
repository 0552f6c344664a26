"""Demo data stays in priorauth.demo: only the CLI's demo commands import it."""

from __future__ import annotations

import ast
from pathlib import Path

import priorauth

SRC = Path(priorauth.__file__).parent
ALLOWED = {SRC / "cli" / "main.py", SRC / "cli" / "server.py"}  # `priorauth demo` itself


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_only_the_demo_command_imports_the_demo_package() -> None:
    offenders = [
        str(p.relative_to(SRC))
        for p in SRC.rglob("*.py")
        if SRC / "demo" not in p.parents
        and p not in ALLOWED
        and any(n == "priorauth.demo" or n.startswith("priorauth.demo.") for n in _imports(p))
    ]
    assert offenders == []
    assert not (SRC / "samples.py").exists()
