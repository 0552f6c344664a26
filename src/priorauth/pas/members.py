"""Member identity: the normalised key that the lifetime rule and member look-ups compare."""

from __future__ import annotations

import unicodedata
from collections.abc import Collection

__all__ = ["member_key"]


def member_key(
    system: str | None,
    value: str | None,
    *,
    case_sensitive_systems: Collection[str] = (),
    default_system: str = "",
) -> str | None:
    """ "system|value" for a member identifier, or None when there is no value.

    Both parts are Unicode NFKC-normalised and trimmed; the value is case-folded
    unless its system is declared case-sensitive, so "M123 " and "m123" are one
    member. A request that names no system takes `default_system` (the payer's).
    """
    if value is None:
        return None
    text = unicodedata.normalize("NFKC", value).strip()
    if not text:
        return None
    namespace = unicodedata.normalize("NFKC", system or "").strip() or default_system.strip()
    if namespace not in case_sensitive_systems:
        text = text.casefold()
    return f"{namespace}|{text}"
