"""The token endpoint's logic: check a client's signed assertion, issue a short-lived token.

SMART Backend Services (HL7 FAST): grant_type client_credentials, with a JWT
client assertion signed RS384 or ES384 by a key in the client's registered JWKS.
The assertion's iss and sub are the client id, aud is our token URL, exp is at
most five minutes away, and its jti is never accepted twice. Access tokens are
HS256 JWTs signed with a key derived from the server's secret for this purpose only
(priorauth.keys), so every worker can check them and no web-session key can forge one.
A token is honoured only while its client is active (checked on every use).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from priorauth.auth import scopes as sc
from priorauth.auth.actors import Actor
from priorauth.errors import PriorauthError

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGORITHMS = ("RS384", "ES384")
MAX_ASSERTION_LIFETIME = timedelta(minutes=5)
TOKEN_LIFETIME = timedelta(minutes=5)
# A jti is kept (with the client id) until its assertion expires, in a column of 300.
MAX_JTI = 128


class TokenError(PriorauthError):
    """An OAuth error: `error` is the RFC 6749 code, the message says why."""

    def __init__(self, error: str, message: str) -> None:
        super().__init__(message)
        self.error, self.message = error, message


@dataclass(frozen=True)
class RegisteredClient:
    """What the token endpoint needs of a registered client (the store keeps it)."""

    id: str
    jwks: dict[str, Any]
    scopes: str
    organization: str | None
    role: str
    active: bool
    jku: str | None = None  # an EHR's registered JWKS URL (CDS Hooks), fetched when used


# The store's side of issuing: find a client by id; spend an assertion id (False when it
# was spent before). Passed in, so this module holds the JOSE rules and no SQL.
FindClient = Callable[[str], RegisteredClient | None]
SpendJti = Callable[[str, str, datetime], bool]


@dataclass(frozen=True)
class Issued:
    access_token: str
    scope: str
    expires_in: int
    client_id: str


def issue(
    form: dict[str, str],
    token_url: str,
    secret: str | bytes,
    now: datetime,
    *,
    find: FindClient,
    spend: SpendJti,
) -> Issued:
    if form.get("grant_type") != "client_credentials":
        raise TokenError("unsupported_grant_type", "grant_type must be client_credentials")
    if form.get("client_assertion_type") != ASSERTION_TYPE:
        raise TokenError("invalid_request", f"client_assertion_type must be {ASSERTION_TYPE}")
    assertion = form.get("client_assertion") or ""
    try:
        header = jwt.get_unverified_header(assertion)
        unverified = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError as e:
        raise TokenError("invalid_client", f"the client assertion is not a JWT: {e}") from e
    if header.get("alg") not in ALGORITHMS:
        raise TokenError("invalid_client", "the assertion must be signed RS384 or ES384")
    client_id = unverified.get("iss")
    client = find(client_id) if isinstance(client_id, str) else None
    if client is None or not client.active:
        raise TokenError("invalid_client", "unknown or inactive client")
    key = key_for(client.jwks, header)
    try:
        claims = jwt.decode(
            assertion,
            key=key,
            algorithms=list(ALGORITHMS),
            audience=token_url,
            issuer=client.id,
            options={"require": ["iss", "sub", "aud", "exp", "jti"]},
            leeway=0,
        )
    except jwt.ExpiredSignatureError as e:
        raise TokenError("invalid_client", "the client assertion has expired") from e
    except jwt.PyJWTError as e:
        raise TokenError("invalid_client", f"the client assertion is not valid: {e}") from e
    if claims["sub"] != client.id:
        raise TokenError("invalid_client", "the assertion's sub must be the client id")
    exp = _numeric_date(claims["exp"])
    if exp - now > MAX_ASSERTION_LIFETIME + timedelta(seconds=5):
        raise TokenError("invalid_client", "the assertion may live at most five minutes")
    jti = claims["jti"]
    if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI:
        raise TokenError(
            "invalid_client", f"the assertion's jti must be a string of 1 to {MAX_JTI} characters"
        )
    granted = _grant(form.get("scope", ""), client.scopes)
    if not spend(client.id, jti, exp):  # last: a refused assertion spends nothing
        raise TokenError("invalid_client", "this assertion (jti) was already used")
    expires = now + TOKEN_LIFETIME
    token = jwt.encode(
        {
            "iss": "priorauth",
            "sub": client.id,
            "scope": granted,
            "org": client.organization,
            "role": client.role,
            "exp": int(expires.timestamp()),
            "iat": int(now.timestamp()),
            "jti": secrets.token_urlsafe(16),
        },
        secret,
        algorithm="HS256",
    )
    return Issued(token, granted, int(TOKEN_LIFETIME.total_seconds()), client.id)


def _numeric_date(value: object) -> datetime:
    """A JWT NumericDate (RFC 7519: a JSON number of seconds), as a datetime.

    PyJWT accepts anything int() takes (a numeric string, 1e20); neither is a date
    this server can place, so both are refused rather than overflowing.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenError("invalid_client", "the assertion's exp must be a JSON number")
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError) as e:
        raise TokenError("invalid_client", "the assertion's exp is out of range") from e


def key_for(jwks: dict[str, Any], header: dict[str, Any]) -> Any:
    keys = [k for k in jwks.get("keys", []) if isinstance(k, dict)]
    kid = header.get("kid")
    matching = [k for k in keys if kid is None or k.get("kid") == kid]
    for k in matching:
        try:
            return jwt.PyJWK(k, algorithm=header["alg"]).key
        except jwt.PyJWTError:
            continue
    raise TokenError("invalid_client", "no registered key matches the assertion's kid")


def _grant(requested: str, registered: str) -> str:
    allowed = set(registered.split())
    asked = requested.split()
    granted = [sc for sc in asked if sc in allowed]
    if asked and not granted:
        raise TokenError("invalid_scope", "none of the requested scopes is allowed for this client")
    return " ".join(granted or sorted(allowed))


def verify_access_token(
    token: str, secret: str | bytes | Sequence[bytes], source: str | None
) -> Actor:
    """The Actor behind a bearer token; raises jwt.PyJWTError when it is not ours or expired.

    `secret` may be several keys (the current one first, then the previous during a rotation).
    """
    keys = [secret] if isinstance(secret, str | bytes) else list(secret)
    claims: dict[str, Any] | None = None
    for i, key in enumerate(keys):
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=["HS256"],
                issuer="priorauth",
                options={"require": ["exp", "sub", "scope", "role"]},
            )
            break
        except jwt.InvalidSignatureError:
            if i == len(keys) - 1:
                raise
    assert claims is not None
    role, org = claims["role"], claims.get("org")
    # A provider's token without its organization would act for every one: never accept it.
    if not (
        (role == sc.PROVIDER and isinstance(org, str) and org)
        or (role == sc.PAYER_SYSTEM and org is None)
    ):
        raise jwt.InvalidTokenError("the token's role and organization do not agree")
    return Actor(
        id=str(claims["sub"]),
        kind="client",
        source=source,
        organization=org,
        scopes=frozenset(str(claims["scope"]).split()),
        role=role,
    )


def check_registration(
    jwks: dict[str, Any],
    scopes: list[str],
    organization: str | None,
    *,
    payer_system: bool = False,
    jku: str | None = None,
) -> tuple[str | None, str]:
    """The organization and role of a client to register; ValueError says what is wrong.

    A provider's system is bound to its organization; the payer's own system, explicitly
    asked for, to none. An EHR may register a JWKS URL (`jku`) instead of inline keys.
    """
    organization = (organization or "").strip() or None
    if payer_system and organization:
        raise ValueError("a payer-system client acts for every organization: give no --org")
    if not payer_system and not organization:
        raise ValueError(
            "give --org NPI for a provider organization's system, "
            "or --payer-system for the payer's own system (it sees every organization)"
        )
    if organization and len(organization) > 200:
        raise ValueError("the organization identifier is longer than 200 characters")
    case_scopes = [x for x in scopes if x in sc.CASE_SCOPES]
    if organization and case_scopes:
        raise ValueError(
            f"{' '.join(case_scopes)} open the payer's case API, which a provider "
            "organization's client may not use; register the payer's system with --payer-system"
        )
    if jku is not None:
        if not jku.startswith("https://") and not jku.startswith("http://"):
            raise ValueError("the jku must be an absolute http(s) URL")
        if len(jku) > 500:
            raise ValueError("the jku is longer than 500 characters")
        if not jwks.get("keys"):
            return organization, sc.PAYER_SYSTEM if payer_system else sc.PROVIDER
    if not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
        raise ValueError("the JWKS has no keys")
    for k in jwks["keys"]:
        if "d" in k:
            raise ValueError("the JWKS holds a private key; register the public keys only")
        jwt.PyJWK(k)  # raises on an unusable key
    return organization, sc.PAYER_SYSTEM if payer_system else sc.PROVIDER
