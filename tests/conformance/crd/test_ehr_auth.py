"""CDS Hooks 2.0 "Trusting CDS Clients" and CRD 2.0.1 security: an EHR's signed JWT per call.

Encodes what the CRD test kit's client suite sends (a JWT in the Authorization header, signed
with a key of the EHR's JWKS: iss, aud = the service URL, exp, iat, jti, kid, and jku or a
registered JWKS; davinci-crd-test-kit lib/davinci_crd_test_kit/client_hooks_group / the
cds-hooks 2.0 requirements sheet, "CDS Service SHALL validate the JWT"), and the isolation
rules of tests/security/test_isolation.py.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from sqlalchemy import select
from typer.testing import CliRunner

from priorauth.auth import scopes as sc
from priorauth.cli.main import app as cli
from priorauth.coverage import assertions
from priorauth.service.app_service import PriorAuthService
from priorauth.store.clients import register_client
from priorauth.store.db import make_engine, session_factory
from priorauth.store.models import ApiClientRow, CoverageAssertionRow
from tests.api.receiver import allow_loopback
from tests.crd.ehr import order_sign
from tests.security.conftest import BASE

SIGN = "/cds-services/priorauth-order-sign"
NPI_A, NPI_B = "1111111112", "1999999999"
runner = CliRunner()


@dataclass
class Ehr:
    iss: str
    key: Any
    alg: str
    kid: str
    jku: str | None = None

    def token(
        self,
        *,
        aud: str = BASE + SIGN,
        exp_in: int = 240,
        jti: str | None = None,
        key: Any = None,
        jku: str | None = None,
        drop: tuple[str, ...] = (),
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.iss,
            "aud": aud,
            "exp": now + exp_in,
            "iat": now,
            "jti": jti or str(uuid.uuid4()),
        }
        for name in drop:
            claims.pop(name)
        headers = {"kid": self.kid, "typ": "JWT"}
        if jku or self.jku:
            headers["jku"] = jku or self.jku or ""
        return jwt.encode(claims, key or self.key, algorithm=self.alg, headers=headers)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [public_jwk(self.key, self.alg, self.kid)]}


def new_key(alg: str) -> Any:
    if alg == "RS384":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP384R1())


def public_jwk(key: Any, alg: str, kid: str) -> dict[str, Any]:
    conv = RSAAlgorithm if alg.startswith("RS") else ECAlgorithm
    return {**json.loads(conv.to_jwk(key.public_key())), "kid": kid, "alg": alg, "use": "sig"}


def register(
    svc: PriorAuthService,
    iss: str,
    alg: str = "ES384",
    org: str = NPI_A,
    *,
    jku: str | None = None,
    inline: bool = True,
) -> Ehr:
    ehr = Ehr(iss, new_key(alg), alg, f"{alg}-{uuid.uuid4().hex[:6]}", jku)
    with svc.sessions() as s:
        register_client(
            s, iss, iss, ehr.jwks() if inline else {}, [sc.CDS], org, datetime.now(UTC), jku=jku
        )
    return ehr


def call(api: TestClient, token: str, body: Any = None, path: str = SIGN) -> Any:
    hook = body if body is not None else order_sign(f"auth-{uuid.uuid4().hex[:8]}")[0]
    return api.post(
        path,
        content=orjson.dumps(hook),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )


@pytest.mark.parametrize("alg", ["ES384", "RS384"])
def test_a_registered_ehrs_signed_jwt_is_accepted(
    api: TestClient, secured: PriorAuthService, alg: str
) -> None:
    """CDS Hooks 2.0 §Trusting CDS Clients: the JWT is verified with the EHR's registered
    JWKS (before this change every such call got 401)."""
    ehr = register(secured, "https://ehr-a.example.org", alg)
    r = call(api, ehr.token())
    assert r.status_code == 200, r.text
    assert r.json()["systemActions"]


def test_the_assertion_belongs_to_the_ehrs_organization(
    api: TestClient, secured: PriorAuthService
) -> None:
    """Security isolation (tests/security/test_isolation.py): a coverage assertion is tied to
    the organization whose call created it, also when the caller is an EHR's JWT."""
    ehr = register(secured, "https://ehr-a.example.org")
    r = call(api, ehr.token())
    assert r.status_code == 200, r.text
    ext = r.json()["systemActions"][0]["resource"]["extension"][-1]
    aid = next(p["valueString"] for p in ext["extension"] if p["url"] == "coverage-assertion-id")
    with secured.sessions() as s:
        row = s.get(CoverageAssertionRow, aid)
        assert row is not None and row.organization == NPI_A
        assert assertions.load(s, aid, NPI_B) is None
        assert assertions.load(s, aid, NPI_A) is not None


def test_a_replayed_jti_is_refused(api: TestClient, secured: PriorAuthService) -> None:
    """CDS Hooks 2.0: jti is a nonce; a JWT used twice is refused."""
    ehr = register(secured, "https://ehr-a.example.org")
    token = ehr.token(jti="once")
    assert call(api, token).status_code == 200
    again = call(api, token)
    assert again.status_code == 401
    assert again.json()["resourceType"] == "OperationOutcome"
    # A new JWT with the same jti is a replay too.
    assert call(api, ehr.token(jti="once")).status_code == 401


@pytest.mark.parametrize(
    "breakage",
    [
        "aud-other-service",
        "aud-base",
        "expired",
        "too-long",
        "no-jti",
        "no-exp",
        "no-aud",
        "other-key",
        "unknown-kid",
        "unknown-iss",
        "unregistered-jku",
    ],
)
def test_a_jwt_that_breaks_a_rule_is_401(
    api: TestClient, secured: PriorAuthService, breakage: str
) -> None:
    """CDS Hooks 2.0 JWT claims: aud is the service's URL, exp in the future (at most five
    minutes away here), jti present, signed by a key of the registered iss, kid known, and a
    jku only when it is the registered one."""
    ehr = register(secured, "https://ehr-a.example.org")
    kw: dict[str, Any] = {
        "aud-other-service": {"aud": BASE + "/cds-services/priorauth-order-select"},
        "aud-base": {"aud": "https://elsewhere.example.org" + SIGN},
        "expired": {"exp_in": -30},
        "too-long": {"exp_in": 3600},
        "no-jti": {"drop": ("jti",)},
        "no-exp": {"drop": ("exp",)},
        "no-aud": {"drop": ("aud",)},
        "other-key": {"key": new_key("ES384")},
        "unregistered-jku": {"jku": "https://attacker.example.org/jwks.json"},
    }.get(breakage, {})
    if breakage == "unknown-kid":
        ehr.kid = "nobody"
    if breakage == "unknown-iss":
        ehr.iss = "https://ehr-z.example.org"
    r = call(api, ehr.token(**kw))
    assert r.status_code == 401, (breakage, r.text)
    assert r.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_disabled_ehr_is_refused(api: TestClient, secured: PriorAuthService) -> None:
    ehr = register(secured, "https://ehr-a.example.org")
    with secured.sessions() as s:
        s.get(ApiClientRow, ehr.iss).active = False  # type: ignore[union-attr]
        s.commit()
    assert call(api, ehr.token()).status_code == 401


def test_a_registered_client_without_the_cds_scope_is_403(
    api: TestClient, secured: PriorAuthService
) -> None:
    ehr = Ehr("https://ehr-c.example.org", new_key("ES384"), "ES384", "k1")
    with secured.sessions() as s:
        register_client(s, ehr.iss, ehr.iss, ehr.jwks(), [sc.SUBMIT], NPI_A, datetime.now(UTC))
    assert call(api, ehr.token()).status_code == 403


def test_a_hook_jwt_opens_the_hooks_only(api: TestClient, secured: PriorAuthService) -> None:
    """The per-call JWT is for the CDS services; the FHIR API still wants an access token."""
    ehr = register(secured, "https://ehr-a.example.org")
    token = ehr.token(aud=BASE + "/fhir/Claim/$submit")
    r = api.post(
        "/fhir/Claim/$submit",
        content=b"{}",
        headers={"Content-Type": "application/fhir+json", "Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 401


def test_a_registered_jku_is_fetched_through_the_outbound_policy(
    api: TestClient, secured: PriorAuthService, http: Any
) -> None:
    """CDS Hooks 2.0: the JWKS may be named by jku; only an allow-listed (registered) jku is
    fetched, and through the outbound address policy (src/priorauth/service/outbound.py)."""
    holder: dict[str, Any] = {}
    server = http(lambda path: holder["jwks"] if path == "/jwks.json" else None)
    jku = f"{server.url}/jwks.json"
    ehr = register(secured, "https://ehr-j.example.org", "RS384", jku=jku, inline=False)
    holder["jwks"] = ehr.jwks()
    # Loopback is not a public address: refused until the policy allows it.
    refused = call(api, ehr.token())
    assert refused.status_code == 401 and server.seen == []
    allow_loopback(secured)
    r = call(api, ehr.token())
    assert r.status_code == 200, r.text
    assert server.seen == ["/jwks.json"]
    # Without jku in the header, the registered URL is used (the EHR holds no inline keys).
    bare = Ehr(ehr.iss, ehr.key, ehr.alg, ehr.kid)
    assert call(api, bare.token()).status_code == 200
    # A JWKS without the JWT's key: refused.
    holder["jwks"] = {"keys": []}
    assert call(api, ehr.token()).status_code == 401


def test_clients_add_registers_an_ehr_with_jwks_or_jku(
    db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`priorauth clients add --ehr`: the client id is the JWT iss, the scope the CDS one."""
    monkeypatch.setenv("PRIORAUTH_DATABASE_URL", db_url)
    key = new_key("ES384")
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [public_jwk(key, "ES384", "k")]}))
    inline = runner.invoke(
        cli,
        [
            "clients",
            "add",
            "https://ehr-1.example.org",
            "--ehr",
            "--jwks",
            str(path),
            "--org",
            NPI_A,
        ],
    )
    assert inline.exit_code == 0, inline.output
    assert "EHR" in inline.stdout and "call the CRD hooks" in inline.stdout
    by_url = runner.invoke(
        cli,
        [
            "clients",
            "add",
            "https://ehr-2.example.org",
            "--ehr",
            "--org",
            NPI_B,
            "--jku",
            "https://ehr-2.example.org/.well-known/jwks.json",
        ],
    )
    assert by_url.exit_code == 0, by_url.output
    no_keys = runner.invoke(cli, ["clients", "add", "x", "--ehr", "--org", NPI_B])
    assert no_keys.exit_code == 2 and "--jku" in no_keys.stderr
    jku_not_ehr = runner.invoke(
        cli,
        [
            "clients",
            "add",
            "y",
            "--org",
            NPI_B,
            "--jku",
            "https://y.example.org/j",
            "--scopes",
            sc.CDS,
        ],
    )
    assert jku_not_ehr.exit_code == 2 and "--ehr" in jku_not_ehr.stderr
    engine = make_engine(db_url)
    with session_factory(engine)() as s:
        rows = {r.id: r for r in s.scalars(select(ApiClientRow))}
        assert rows["https://ehr-1.example.org"].scopes == sc.CDS
        assert rows["https://ehr-1.example.org"].organization == NPI_A
        assert rows["https://ehr-2.example.org"].jku.endswith("/.well-known/jwks.json")  # type: ignore[union-attr]
        assert set(rows) == {"https://ehr-1.example.org", "https://ehr-2.example.org"}
    engine.dispose()


def test_the_policy_page_a_card_links_is_open(api: TestClient, secured: PriorAuthService) -> None:
    """The External Reference card's link is followed by a clinician's browser: no token."""
    ehr = register(secured, "https://ehr-a.example.org")
    r = call(api, ehr.token())
    [card] = [c for c in r.json()["cards"] if c.get("links")]
    page = api.get(card["links"][0]["url"])
    assert page.status_code == 200 and page.json()["criteria"]
