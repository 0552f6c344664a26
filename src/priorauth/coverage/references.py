"""References between the resources of an order: the id a `Type/id` reference names."""

from __future__ import annotations


def reference_id(reference: object, kind: str) -> str | None:
    """The id in a "Kind/id" (or absolute ".../Kind/id") reference string, else None."""
    if not isinstance(reference, str):
        return None
    parts = reference.rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == kind and parts[-1]:
        return parts[-1]
    return None
