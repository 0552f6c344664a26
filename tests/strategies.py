"""Hypothesis strategies shared by the property and fuzz tests."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

# Any JSON value, integers beyond 64 bits and odd floats included.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)


def paths_of(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path (keys and indexes) into a JSON document, the root excluded."""
    out: list[tuple[Any, ...]] = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += paths_of(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += paths_of(v, (*prefix, i))
    return out


def replaced(document: Any, path: tuple[Any, ...], value: Any) -> None:
    """Put `value` at `path` inside `document` (in place)."""
    node = document
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
