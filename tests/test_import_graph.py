"""The package's sub-packages import each other one way only: no cycle between them."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import priorauth

ROOT = Path(priorauth.__file__).parent


def _unit(module: str) -> str:
    """The sub-package (or top-level module) a dotted module name belongs to."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "priorauth"


def import_graph() -> dict[str, set[str]]:
    """Sub-package -> the sub-packages it imports, from every import statement (lazy ones too)."""
    edges: dict[str, set[str]] = defaultdict(set)
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        module = ".".join(("priorauth", *parts)).removesuffix(".__init__")
        here = _unit(module)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "priorauth":
                # `from priorauth import ui` imports the sub-package ui
                targets = [f"priorauth.{a.name}" for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [node.module]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for target in targets:
                if target.startswith("priorauth.") and _unit(target) != here:
                    edges[here].add(_unit(target))
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_cycle_between_sub_packages() -> None:
    edges = import_graph()
    assert edges["core"] <= {"errors"}  # the pure core: no adapter, no I/O
    assert cycles(edges) == [], {k: sorted(v) for k, v in edges.items()}


def test_crd_and_dtr_share_coverage_not_each_other() -> None:
    edges = import_graph()
    assert "dtr" not in edges["crd"] and "crd" not in edges["dtr"]
    assert "coverage" in edges["crd"] and "coverage" in edges["dtr"]


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_judging_pipeline_imports_no_use_case_and_no_store() -> None:
    """The one pipeline (policies.judging) and what CRD and DTR share sit below the service:
    the claims history comes in as a callable, not through an import of the store."""
    edges = import_graph()
    assert "service" not in edges["coverage"]
    assert not edges["policies"] & {"service", "store", "coverage", "api", "cli", "ui"}


def test_auth_sits_below_the_store() -> None:
    """Who acts and the JOSE rules of tokens know no tables: the store finds clients and
    spends assertion ids, and the token logic takes those as callables."""
    edges = import_graph()
    assert not edges["auth"] & {"store", "service", "api", "cli", "ui"}
