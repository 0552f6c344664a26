"""The digest of a PAS request's content: what tells a repeat from another request."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

# What a sender may change when it resends the same request: the Bundle's own id, its
# timestamp and its metadata. Everything else (the Claim, every resource) is content.
_ENVELOPE = ("id", "meta", "timestamp")

__all__ = ["request_digest"]


def request_digest(bundle: dict[str, Any]) -> str:
    """SHA-256 (hex) of the Bundle without its envelope, keys sorted."""
    content = {k: v for k, v in bundle.items() if k not in _ENVELOPE}
    return hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()
