"""Member identity: the normalised key that the lifetime rule and member look-ups compare."""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Collection

__all__ = ["MAX_KEY", "member_key"]

# The key is stored in a column of this width; a longer one (systems are the sender's
# free text) is replaced by its digest, so no identifier can overflow the column.
MAX_KEY = 300


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
    A key longer than MAX_KEY becomes "sha256:<digest>" of itself.
    """
    if value is None:
        return None
    text = unicodedata.normalize("NFKC", value).strip()
    if not text:
        return None
    namespace = unicodedata.normalize("NFKC", system or "").strip() or default_system.strip()
    if namespace not in case_sensitive_systems:
        text = text.casefold()
    key = f"{namespace}|{text}"
    if len(key) > MAX_KEY:
        return "sha256:" + hashlib.sha256(key.encode()).hexdigest()
    return key
