"""Access control for the API: rate limits, bearer tokens with scopes, the token URL."""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable, Callable

import jwt
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from priorauth.api.deps import get_service
from priorauth.api.errors import http_status
from priorauth.api.responses import JsonResponse
from priorauth.auth import scopes as sc
from priorauth.auth.actors import Actor
from priorauth.auth.ehr import is_hook_jwt
from priorauth.auth.tokens import ALGORITHMS, TokenError, verify_access_token
from priorauth.keys import ACCESS_TOKEN
from priorauth.service import clients
from priorauth.service.app_service import PriorAuthService
from priorauth.service.errors import Forbidden, TooManyRequests, Unauthorized
from priorauth.service.ratelimit import RateLimiter

log = logging.getLogger("priorauth.auth")
DEV_ACTOR_ID = "development"


def warn_if_open(auth_enabled: bool) -> None:
    if not auth_enabled:
        msg = "authentication is OFF (development mode): every caller has every scope"
        log.warning(msg)
        sys.stderr.write(f"priorauth: WARNING: {msg}\n")


def require(scope: str, *, hooks: bool = False) -> Callable[[Request], Awaitable[Actor]]:
    """A dependency: the caller's Actor, refused unless its token carries `scope`.

    With `hooks` (the CDS Hooks services), the bearer token may also be the JWT a registered
    EHR signs for the call (CDS Hooks 2.0), its aud the service's URL under base_url.

    Order: rate limit, then token, then audit. A request without a valid token spends its
    address's budget before anything is written, so a flood of them is refused (and counted)
    instead of filling the audit trail; a valid token spends its client's budget.
    """

    async def dependency(request: Request) -> Actor:
        svc = get_service(request)
        source = request.client.host if request.client else None
        if not svc.settings.auth_enabled:
            actor = Actor(
                DEV_ACTOR_ID, "anonymous", source, None, frozenset(sc.ALL), sc.PAYER_SYSTEM
            )
            await limit(svc, svc.limiter, actor.id, actor)
            return actor
        header = request.headers.get("authorization", "")
        actor_or_none: Actor | None = None
        why, challenge = "no bearer token", 'Bearer realm="priorauth"'
        if header.lower().startswith("bearer "):
            why, challenge = "invalid token", 'Bearer error="invalid_token"'
            bearer = header[7:].strip()
            if hooks and is_hook_jwt(bearer):
                audience = svc.settings.base_url.rstrip("/") + request.url.path
                try:
                    actor_or_none = await run_in_threadpool(
                        clients.verify_ehr_call, svc, bearer, audience, source
                    )
                except TokenError as e:
                    why = f"EHR JWT refused: {e.message}"
            else:
                try:
                    actor_or_none = verify_access_token(
                        bearer, svc.keys.verifying(ACCESS_TOKEN), source
                    )
                except jwt.PyJWTError:
                    actor_or_none = None
        if actor_or_none is None:
            anonymous = Actor(source=source)
            await limit(svc, svc.anon_limiter, source or "unknown", anonymous)
            await _denied(svc, anonymous, request, why)
            message = (
                "a bearer access token is required"
                if why == "no bearer token"
                else "the access token is not valid or has expired"
            )
            raise Unauthorized(message, headers={"WWW-Authenticate": challenge})
        actor = actor_or_none
        await limit(svc, svc.limiter, actor.id, actor)
        if not await run_in_threadpool(clients.is_active, svc, actor.id):
            await _denied(svc, actor, request, "client disabled")
            raise Unauthorized(
                "the client is unknown or disabled",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        if scope not in actor.scopes:
            await _denied(svc, actor, request, f"missing scope {scope}")
            raise Forbidden(
                f"the token lacks the scope {scope}",
                headers={"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'},
            )
        return actor

    return dependency


def require_payer(scope: str) -> Callable[[Request], Awaitable[Actor]]:
    """Like `require`, and refused to a provider organization's client: the payer's API."""
    check = require(scope)

    async def dependency(request: Request) -> Actor:
        actor = await check(request)
        if actor.role != sc.PAYER_SYSTEM:
            await _denied(get_service(request), actor, request, "not a payer-system client")
            raise Forbidden(
                "the case API is the payer's: a provider organization's client may not use it"
            )
        return actor

    return dependency


async def limit(svc: PriorAuthService, limiter: RateLimiter, key: str, actor: Actor) -> None:
    """Spend one request of `key`'s budget, or refuse with 429 (counted, not audited one by one)."""
    wait = await run_in_threadpool(limiter.take, key) if limiter.blocking else limiter.take(key)
    now = svc.clock().timestamp()
    if wait is None:
        closed = svc.refusals.closed(now)
    else:
        closed = svc.refusals.count(f"{actor.kind}:{key}", now)
    if closed:
        await run_in_threadpool(svc.record_refusals, closed)
    if wait is not None:
        raise TooManyRequests(
            "rate limit reached; retry later",
            headers={"Retry-After": str(max(1, int(wait + 0.999)))},
        )


async def _denied(svc: PriorAuthService, actor: Actor, request: Request, why: str) -> None:
    # Never raises: a refusal stays a 401/403 even if its record cannot be written.
    await run_in_threadpool(
        svc.audit.record_refusal,
        actor,
        "access",
        f"{request.method} {request.url.path}",
        reason=why,
    )


router = APIRouter(tags=["auth"])


@router.get("/.well-known/smart-configuration", summary="SMART configuration (open)")
async def smart_configuration(request: Request) -> JsonResponse:
    base = get_service(request).settings.base_url.rstrip("/")
    return JsonResponse(
        {
            "token_endpoint": f"{base}/auth/token",
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": list(ALGORITHMS),
            "grant_types_supported": ["client_credentials"],
            "scopes_supported": list(sc.ALL),
            "capabilities": ["client-confidential-asymmetric"],
        }
    )


@router.post("/auth/token", summary="SMART Backend Services token endpoint")
async def token(request: Request) -> JsonResponse:
    svc = get_service(request)
    source = request.client.host if request.client else None
    if svc.settings.auth_enabled:
        # Nobody holds a token yet: the address's budget, before reading or auditing anything.
        await limit(svc, svc.anon_limiter, source or "unknown", Actor(source=source))
    form = {k: str(v) for k, v in (await request.form()).items()}
    token_url = svc.settings.base_url.rstrip("/") + "/auth/token"

    try:
        issued = await run_in_threadpool(clients.issue_token, svc, form, token_url, source)
    except TokenError as e:
        return JsonResponse(
            {"error": e.error, "error_description": e.message}, status_code=http_status(e)
        )
    return JsonResponse(
        {
            "access_token": issued.access_token,
            "token_type": "bearer",
            "expires_in": issued.expires_in,
            "scope": issued.scope,
        },
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )
