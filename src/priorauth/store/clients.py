"""API clients and their spent assertion ids: the SQL behind token issuance and client admin."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from priorauth.auth.tokens import RegisteredClient, check_registration
from priorauth.store.models import ApiClientRow, UsedJtiRow


def find(s: Session, client_id: str) -> RegisteredClient | None:
    row = s.get(ApiClientRow, client_id)
    if row is None:
        return None
    return RegisteredClient(
        row.id, row.jwks, row.scopes, row.organization, row.role, bool(row.active), row.jku
    )


def spend_jti(s: Session, client_id: str, jti: str, exp: datetime, now: datetime) -> bool:
    """Record an assertion id until it expires; False when it was spent before.

    Flushed, not committed: the caller commits it with the token's audit record.
    """
    s.execute(delete(UsedJtiRow).where(UsedJtiRow.expires_at < now))
    s.add(UsedJtiRow(jti=f"{client_id}:{jti}", client_id=client_id, expires_at=exp))
    try:
        s.flush()
    except IntegrityError:
        s.rollback()
        return False
    return True


def client_active(s: Session, client_id: str) -> bool:
    """Whether the client may still use its tokens: read on every request, never cached."""
    return bool(s.scalar(select(ApiClientRow.active).where(ApiClientRow.id == client_id)))


def disable_client(s: Session, client_id: str) -> bool:
    """Stop the client at once (new tokens and the ones it holds); False if unknown."""
    row = s.get(ApiClientRow, client_id)
    if row is None:
        return False
    row.active = False
    s.commit()
    return True


def register_client(
    s: Session,
    client_id: str,
    name: str,
    jwks: dict[str, Any],
    scopes: list[str],
    organization: str | None,
    now: datetime,
    *,
    payer_system: bool = False,
    jku: str | None = None,
) -> ApiClientRow:
    """A provider's system (bound to `organization`) or, explicitly, the payer's own system.

    An EHR calling the CRD hooks is registered under its JWT `iss`, with inline keys or a
    `jku` (its JWKS URL: the only one its JWTs may name).
    """
    organization, role = check_registration(
        jwks, scopes, organization, payer_system=payer_system, jku=jku
    )
    if s.scalars(select(ApiClientRow).where(ApiClientRow.id == client_id)).first():
        raise ValueError(f"client {client_id!r} exists")
    row = ApiClientRow(
        id=client_id,
        name=name,
        jwks=jwks,
        jku=jku,
        scopes=" ".join(scopes),
        organization=organization,
        role=role,
        active=True,
        created_at=now,
    )
    s.add(row)
    s.commit()
    return row
