"""Access control for the API: bearer tokens with scopes, per-client rate limits, the token URL."""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import jwt
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from priorauth.api.deps import get_service
from priorauth.api.responses import JsonResponse
from priorauth.auth import scopes as sc
from priorauth.auth.tokens import ALGORITHMS, TokenError, issue, verify_access_token
from priorauth.service.errors import Forbidden, TooManyRequests, Unauthorized
from priorauth.store.audit import Actor

log = logging.getLogger("priorauth.auth")
DEV_ACTOR_ID = "development"


def warn_if_open(auth_enabled: bool) -> None:
    if not auth_enabled:
        msg = "authentication is OFF (development mode): every caller has every scope"
        log.warning(msg)
        sys.stderr.write(f"priorauth: WARNING: {msg}\n")


def require(scope: str) -> Callable[[Request], Awaitable[Actor]]:
    """A dependency: the caller's Actor, refused unless its token carries `scope`."""

    async def dependency(request: Request) -> Actor:
        svc = get_service(request)
        source = request.client.host if request.client else None
        if not svc.settings.auth_enabled:
            actor = Actor(
                DEV_ACTOR_ID, "anonymous", source, None, frozenset(sc.ALL), sc.PAYER_SYSTEM
            )
        else:
            header = request.headers.get("authorization", "")
            if not header.lower().startswith("bearer "):
                await _denied(svc, Actor(source=source), request, "no bearer token")
                raise Unauthorized(
                    "a bearer access token is required",
                    headers={"WWW-Authenticate": 'Bearer realm="priorauth"'},
                )
            try:
                actor = verify_access_token(header[7:].strip(), svc.secret_key, source)
            except jwt.PyJWTError as e:
                await _denied(svc, Actor(source=source), request, "invalid token")
                raise Unauthorized(
                    "the access token is not valid or has expired",
                    headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
                ) from e
            if scope not in actor.scopes:
                await _denied(svc, actor, request, f"missing scope {scope}")
                raise Forbidden(
                    f"the token lacks the scope {scope}",
                    headers={
                        "WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope}"'
                    },
                )
        wait = svc.limiter.take(actor.id)
        if wait is not None:
            raise TooManyRequests(
                "rate limit reached; retry later",
                headers={"Retry-After": str(max(1, int(wait + 0.999)))},
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


async def _denied(svc, actor: Actor, request: Request, why: str) -> None:  # type: ignore[no-untyped-def]
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
    form = {k: str(v) for k, v in (await request.form()).items()}
    token_url = svc.settings.base_url.rstrip("/") + "/auth/token"
    source = request.client.host if request.client else None

    def work() -> JsonResponse:
        now = datetime.now(UTC)
        try:
            with svc.write_lock, svc.sessions() as s:
                issued = issue(s, form, token_url, svc.secret_key, now)
        except TokenError as e:
            # Recorded once the token's transaction is over: SQLite has one writer at a time.
            svc.audit.record_refusal(Actor(source=source), "token", None, reason=e.error)
            return JsonResponse(
                {"error": e.error, "error_description": e.message}, status_code=e.status
            )
        svc.audit.record(
            Actor(issued.client_id, "client", source),
            "token",
            "success",
            f"client/{issued.client_id}",
            scope=issued.scope,
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

    return await run_in_threadpool(work)
