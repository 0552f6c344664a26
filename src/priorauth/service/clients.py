"""The API clients' use cases: exchange a signed assertion for a token; is a client active."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from priorauth.auth.actors import Actor
from priorauth.auth.tokens import Issued, TokenError, issue
from priorauth.keys import ACCESS_TOKEN
from priorauth.store import clients
from priorauth.store.audit import Entry

if TYPE_CHECKING:
    from priorauth.service.app_service import PriorAuthService


def issue_token(
    service: PriorAuthService, form: dict[str, str], token_url: str, source: str | None
) -> Issued:
    """A short-lived access token for a client's signed assertion (SMART Backend Services).

    The spent assertion id and the audit record commit together; a refusal (TokenError) is
    audited after its transaction is rolled back, and raised.
    """
    # Wall time, not the service's clock: the JOSE library checks `exp` and `iat` of
    # assertions and tokens against wall time, so issuing must agree with it.
    now = datetime.now(UTC)
    try:
        with service.write_lock, service.sessions() as s:
            issued = issue(
                form,
                token_url,
                service.keys.current(ACCESS_TOKEN),
                now,
                find=lambda client_id: clients.find(s, client_id),
                spend=lambda client_id, jti, exp: clients.spend_jti(s, client_id, jti, exp, now),
            )
            actor = Actor(issued.client_id, "client", source)
            entity = f"client/{issued.client_id}"
            entry = Entry(actor, "token", "success", entity, {"scope": issued.scope})
            service.audit.append_in(s, [entry])
            s.commit()
    except TokenError as e:
        # Recorded once the token's transaction is over: SQLite has one writer at a time.
        service.audit.record_refusal(Actor(source=source), "token", None, reason=e.error)
        raise
    return issued


def is_active(service: PriorAuthService, client_id: str) -> bool:
    """Whether the client may still use its tokens: read on every request, never cached."""
    with service.sessions() as s:
        return clients.client_active(s, client_id)
