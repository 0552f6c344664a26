"""CDS Hooks 2.0 EHR authentication: the JWT an EHR signs for each hook call, checked.

The EHR is registered under its `iss` with a JWKS, inline or as a `jku` URL. Each call's
bearer token is a JWT signed RS384 or ES384 with a `kid` from that JWKS; `aud` is the
service's URL, `exp` at most five minutes away, and its `jti` is never accepted twice
(the caller spends it). A `jku` in the header must be the EHR's registered one: a JWT
never makes this server fetch keys from a URL nobody registered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt

from priorauth.auth.actors import Actor
from priorauth.auth.tokens import (
    ALGORITHMS,
    MAX_ASSERTION_LIFETIME,
    MAX_JTI,
    FindClient,
    TokenError,
    key_for,
)

# The store's side: fetch a JWKS document from a registered URL (through the outbound policy).
FetchJwks = Callable[[str], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class HookCall:
    """A verified hook JWT: who calls, and the assertion id to spend before answering."""

    actor: Actor
    jti: str
    exp: datetime


def is_hook_jwt(token: str) -> bool:
    """Whether the bearer token looks like an EHR's signed JWT (not one of our HS256 tokens)."""
    try:
        return jwt.get_unverified_header(token).get("alg") in ALGORITHMS
    except jwt.PyJWTError:
        return False


def verify_hook_jwt(
    token: str,
    audience: str,
    now: datetime,
    source: str | None,
    *,
    find: FindClient,
    fetch: FetchJwks,
) -> HookCall:
    """The calling EHR, or TokenError("invalid_token", why)."""
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as e:
        raise TokenError("invalid_token", "the bearer token is not a JWT") from e
    if header.get("alg") not in ALGORITHMS:
        raise TokenError("invalid_token", "the JWT must be signed RS384 or ES384")
    if not isinstance(header.get("kid"), str) or not header["kid"]:
        raise TokenError("invalid_token", "the JWT header needs a kid")
    issuer = unverified.get("iss")
    client = find(issuer) if isinstance(issuer, str) and issuer else None
    if client is None or not client.active:
        raise TokenError("invalid_token", "the JWT's iss is not a registered, active EHR")
    jku = header.get("jku")
    if jku is not None and jku != client.jku:
        raise TokenError("invalid_token", "the JWT's jku is not the EHR's registered JWKS URL")
    url = jku if isinstance(jku, str) else None
    if url is None and not client.jwks.get("keys"):
        url = client.jku
    try:
        jwks = fetch(url) if url is not None else client.jwks
        key = key_for(jwks, header)
    except TokenError as e:
        raise TokenError("invalid_token", e.message) from e
    try:
        claims = jwt.decode(
            token,
            key=key,
            algorithms=list(ALGORITHMS),
            audience=audience,
            issuer=client.id,
            options={"require": ["iss", "aud", "exp", "jti"]},
            leeway=0,
        )
    except jwt.ExpiredSignatureError as e:
        raise TokenError("invalid_token", "the JWT has expired") from e
    except jwt.InvalidAudienceError as e:
        raise TokenError("invalid_token", "the JWT's aud is not this service's URL") from e
    except jwt.PyJWTError as e:
        raise TokenError("invalid_token", f"the JWT is not valid: {e}") from e
    exp = claims["exp"]
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        raise TokenError("invalid_token", "the JWT's exp must be a JSON number")
    expires = datetime.fromtimestamp(exp, now.tzinfo)
    if expires - now > MAX_ASSERTION_LIFETIME + timedelta(seconds=5):
        # Bounded so a spent jti need only be kept five minutes.
        raise TokenError("invalid_token", "the JWT may live at most five minutes")
    jti = claims["jti"]
    if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI:
        raise TokenError("invalid_token", f"the jti must be a string of 1 to {MAX_JTI} characters")
    actor = Actor(
        id=client.id,
        kind="client",
        source=source,
        organization=client.organization,
        scopes=frozenset(client.scopes.split()),
        role=client.role,
    )
    return HookCall(actor, jti, expires)
