"""Per-purpose keys derived from one secret, and the audit trail's HMAC key."""

from __future__ import annotations

import hashlib
import hmac
import logging

log = logging.getLogger("priorauth.keys")

# Used only when neither PRIORAUTH_AUDIT_KEY nor PRIORAUTH_SECRET_KEY is set (development):
# fixed so that `audit verify` still works after a restart, and named so nobody mistakes it.
DEV_AUDIT_KEY = "priorauth-INSECURE-DEVELOPMENT-audit-key-not-for-production"
AUDIT_PURPOSE = "audit-chain"
MIN_AUDIT_KEY_CHARS = 32


def derive_key(secret: str, purpose: str) -> bytes:
    """A key for one purpose: HMAC-SHA256(secret, "priorauth:" + purpose).

    Keys for different purposes are independent: learning one (say, by a token forged
    with it) tells nothing about another derived from the same secret.
    """
    if not secret:
        raise ValueError("cannot derive a key from an empty secret")
    label = f"priorauth:{purpose}".encode()
    return hmac.new(secret.encode(), label, hashlib.sha256).digest()


def audit_key(audit_secret: str, secret_key: str) -> tuple[bytes, str]:
    """The audit chain's HMAC key and where it came from (for `audit verify` to say).

    PRIORAUTH_AUDIT_KEY when set; else derived from PRIORAUTH_SECRET_KEY; else the
    development key, with a warning. Either way the key lives outside the database, so
    whoever can write the database cannot recompute the chain.
    """
    if audit_secret and audit_secret != DEV_AUDIT_KEY:
        return audit_secret.encode(), "PRIORAUTH_AUDIT_KEY"
    if not audit_secret and secret_key:
        return derive_key(secret_key, AUDIT_PURPOSE), "derived from PRIORAUTH_SECRET_KEY"
    log.warning(
        "the audit trail is keyed with the DEVELOPMENT key: anyone can recompute it; "
        "set PRIORAUTH_AUDIT_KEY or PRIORAUTH_SECRET_KEY"
    )
    return DEV_AUDIT_KEY.encode(), "the INSECURE development key"
