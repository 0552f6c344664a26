"""The API clients' use cases: exchange a signed assertion for a token; is a client active;
check an EHR's signed hook JWT."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx

from priorauth.auth.actors import Actor
from priorauth.auth.ehr import verify_hook_jwt
from priorauth.auth.tokens import Issued, TokenError, issue
from priorauth.keys import ACCESS_TOKEN
from priorauth.service.outbound import OutboundRefused, new_client
from priorauth.store import clients
from priorauth.store.audit import Entry

log = logging.getLogger("priorauth.auth")
JKU_TIMEOUT = 5.0
MAX_JWKS_BYTES = 100_000

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


def verify_ehr_call(
    service: PriorAuthService,
    token: str,
    audience: str,
    source: str | None,
    http: httpx.Client | None = None,
) -> Actor:
    """The EHR behind a CDS Hooks call's signed JWT; TokenError when it is refused.

    Its jti is spent (committed) before the hook is answered, so a replayed JWT is refused
    even while the first call is still being judged.
    """
    now = datetime.now(UTC)  # wall time: the JOSE library checks exp against it
    with service.sessions() as s:
        call = verify_hook_jwt(
            token,
            audience,
            now,
            source,
            find=lambda client_id: clients.find(s, client_id),
            fetch=lambda url: fetch_jwks(service, url, http),
        )
    with service.write_lock, service.sessions() as s:
        if not clients.spend_jti(s, call.actor.id, f"hook:{call.jti}", call.exp, now):
            raise TokenError("invalid_token", "this JWT (jti) was already used")
        s.commit()
    return call.actor


def fetch_jwks(
    service: PriorAuthService, url: str, http: httpx.Client | None = None
) -> dict[str, Any]:
    """A registered EHR's JWKS, fetched through the outbound address policy."""
    why: str
    own = http is None
    client = http or new_client(JKU_TIMEOUT)
    try:
        r = service.outbound.send(
            client, "GET", url, headers={"Accept": "application/json"}, timeout=JKU_TIMEOUT
        )
    except OutboundRefused as e:
        why = f"refused: {e}"
    except httpx.HTTPError as e:
        why = type(e).__name__
    else:
        if r.status_code != 200:
            why = f"HTTP {r.status_code}"
        elif len(r.content) > MAX_JWKS_BYTES:
            why = "too large"
        else:
            try:
                body = r.json()
            except ValueError:
                body = None
            if isinstance(body, dict) and isinstance(body.get("keys"), list):
                return body
            why = "not a JWKS"
    finally:
        if own:
            client.close()
    log.warning("the EHR's JWKS (jku) could not be fetched: %s", why)
    raise TokenError("invalid_token", f"the EHR's JWKS cannot be fetched ({why})")
