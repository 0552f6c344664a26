"""One secret, a key per purpose (HKDF), weak-secret checks, and the audit chain's key."""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from priorauth.errors import PriorauthError

log = logging.getLogger("priorauth.keys")

# Purposes: a key derived for one never verifies anything made for another.
ACCESS_TOKEN = "access-token"
UI_SESSION = "ui-session"
CSRF = "csrf"

MIN_SECRET_BYTES = 32
MIN_DISTINCT_CHARS = 8
MIN_ESTIMATED_BITS = 96.0
# Words that mark a secret copied from a sample rather than generated (long enough that a
# random secret practically never contains one by chance).
PLACEHOLDERS = (
    "changeme",
    "change-me",
    "change_me",
    "secret",
    "password",
    "passw0rd",
    "example",
    "placeholder",
    "default",
    "insecure",
    "dummy",
    "replace",
    "qwerty",
    "letmein",
    "priorauth",
)


def derive_key(secret: str, purpose: str) -> bytes:
    """A 32-byte key for one purpose, from the configured secret (HKDF-SHA256, info = purpose)."""
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=None,
        info=b"priorauth:" + purpose.encode(),
    ).derive(secret.encode())


def secret_problem(secret: str) -> str | None:
    """Why this secret is too weak for production, or None when it will do."""
    size = len(secret.encode())
    if size < MIN_SECRET_BYTES:
        return f"it has {size} bytes; at least {MIN_SECRET_BYTES} are needed"
    lowered = secret.lower()
    for word in PLACEHOLDERS:
        if word in lowered:
            return f"it contains the placeholder {word!r}"
    counts = Counter(secret)
    if len(counts) < MIN_DISTINCT_CHARS:
        return f"it uses only {len(counts)} different characters"
    for unit in range(1, len(secret) // 2 + 1):  # e.g. "ab12ab12ab12..."
        if len(secret) % unit == 0 and secret == secret[:unit] * (len(secret) // unit):
            return "it repeats a short pattern"
    # Shannon estimate over the secret's own characters: a crude floor, not a proof of randomness.
    bits = -sum(n * math.log2(n / len(secret)) for n in counts.values())
    if bits < MIN_ESTIMATED_BITS:
        return f"it looks predictable (about {bits:.0f} bits; {MIN_ESTIMATED_BITS:.0f} needed)"
    return None


HOW_TO_GENERATE = 'python -c "import secrets; print(secrets.token_urlsafe(48))"'


class WeakSecret(PriorauthError, ValueError):
    """A configured secret too weak for a server with authentication on."""


def check_secrets(secret: str, previous: str = "") -> None:
    """Raise WeakSecret for a configured (non-empty) secret that `secret_problem` refuses."""
    for name, value in (
        ("PRIORAUTH_SECRET_KEY", secret),
        ("PRIORAUTH_SECRET_KEY_PREVIOUS", previous),
    ):
        problem = secret_problem(value) if value else None
        if problem:
            raise WeakSecret(
                f"{name} is too weak for production ({problem}); generate one with "
                f"{HOW_TO_GENERATE}, or run in development mode (PRIORAUTH_AUTH=off)"
            )


@dataclass(frozen=True)
class KeyRing:
    """The keys of every purpose, for the current secret and (during a rotation) the previous one.

    Sign with `current(purpose)`; verify with each of `verifying(purpose)`, newest first.
    """

    secret: str
    previous: str = ""

    def current(self, purpose: str) -> bytes:
        return derive_key(self.secret, purpose)

    def verifying(self, purpose: str) -> list[bytes]:
        keys = [derive_key(self.secret, purpose)]
        if self.previous:
            keys.append(derive_key(self.previous, purpose))
        return keys


# Used only when neither PRIORAUTH_AUDIT_KEY nor PRIORAUTH_SECRET_KEY is set (development):
# fixed so that `audit verify` still works after a restart, and named so nobody mistakes it.
DEV_AUDIT_KEY = "priorauth-INSECURE-DEVELOPMENT-audit-key-not-for-production"
AUDIT_PURPOSE = "audit-chain"
MIN_AUDIT_KEY_CHARS = 32


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
