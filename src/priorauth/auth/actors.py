"""Who acts: a signed-in user, an API client, the system itself, or an anonymous caller."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Actor:
    """Who did something, and from where. `kind`: user, client, system or anonymous."""

    id: str = "anonymous"
    kind: str = "anonymous"
    source: str | None = None
    organization: str | None = None  # a client's organization (NPI), for access checks
    scopes: frozenset[str] = field(default_factory=frozenset)
    role: str | None = None  # a client's: "provider" (one organization) or "payer-system"


SYSTEM = Actor("priorauth", "system")
