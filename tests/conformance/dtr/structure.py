"""A small structural check of a resource against a DTR profile's differential (IG package JSON).

It checks what the kit's validator would reject first: element and extension-slice cardinalities,
parameter slices by name, and prohibited elements (max 0). Bindings and invariants that matter to
DTR are asserted by the tests themselves.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

Json = dict[str, Any]


@cache
def profiles(folder: Path) -> dict[str, Json]:
    """Every StructureDefinition of an IG package folder, by canonical url."""
    out = {}
    for path in folder.glob("StructureDefinition-*.json"):
        sd = json.loads(path.read_text())
        out[sd["url"]] = sd
    return out


def _values(node: Any, name: str) -> list[Any]:
    if not isinstance(node, dict):
        return []
    if name.endswith("[x]"):
        stem = name[:-3]
        found = [v for k, v in node.items() if k.startswith(stem) and k[len(stem) :][:1].isupper()]
        value: Any = found[0] if found else None
    else:
        value = node.get(name)
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _items(node: Any) -> list[Any]:
    """Items at every depth: item.item and answer.item share the item definition."""
    out = []
    for item in _values(node, "item"):
        out.append(item)
        out.extend(_items(item))
        for answer in _values(item, "answer"):
            out.extend(_items(answer))
    return out


def _children(node: Any, segment: str, elements: dict[str, Json], prefix: str) -> list[Any]:
    name, _, slice_name = segment.partition(":")
    values = _items(node) if name == "item" else _values(node, name)
    if not slice_name:
        return values
    if name == "parameter":
        return [v for v in values if isinstance(v, dict) and v.get("name") == slice_name]
    if name in ("extension", "modifierExtension"):
        types = elements.get(f"{prefix}.{segment}", {}).get("type") or [{}]
        urls = set(types[0].get("profile") or [])
        return [v for v in values if isinstance(v, dict) and v.get("url") in urls]
    return values


def violations(resource: Json, sd: Json) -> list[str]:
    """Where the resource breaks the profile's differential cardinalities."""
    elements = {e["id"]: e for e in sd["differential"]["element"]}
    out = []
    for eid, e in elements.items():
        if e.get("min") is None and e.get("max") is None:
            continue
        segments = eid.split(".")[1:]
        if not segments:
            continue
        parents: list[Any] = [resource]
        prefix = eid.split(".")[0]
        for seg in segments[:-1]:
            parents = [c for p in parents for c in _children(p, seg, elements, prefix)]
            prefix = f"{prefix}.{seg}"
        for parent in parents:
            count = len(_children(parent, segments[-1], elements, prefix))
            low, high = e.get("min") or 0, e.get("max")
            if count < low:
                out.append(f"{eid}: {count} < min {low}")
            if high not in (None, "*") and count > int(high):
                out.append(f"{eid}: {count} > max {high}")
    return out


def claimed(resource: Json, folder: Path) -> list[tuple[str, list[str]]]:
    """(profile, violations) for each profile the resource claims that the package defines."""
    known = profiles(folder)
    claims = (resource.get("meta") or {}).get("profile") or []
    return [(url, violations(resource, known[url])) for url in claims if url in known]
