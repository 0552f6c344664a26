"""A service with authentication ON, clients with real RS384 / ES384 keys, and a token helper."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from priorauth.api.app import create_app
from priorauth.auth import scopes as sc
from priorauth.policies import PolicyLibrary
from priorauth.service.app_service import PriorAuthService
from priorauth.settings import Settings
from priorauth.store.clients import register_client
from priorauth.store.db import make_engine
from tests.api.conftest import Clock, clock, db_url  # noqa: F401

BASE = "http://testserver"
TOKEN_URL = f"{BASE}/auth/token"


@dataclass
class Client:
    id: str
    key: Any  # private key
    alg: str
    kid: str

    def assertion(
        self, *, exp_in: int = 240, jti: str | None = None, aud: str = TOKEN_URL, key: Any = None
    ) -> str:
        now = int(time.time())
        claims = {
            "iss": self.id,
            "sub": self.id,
            "aud": aud,
            "exp": now + exp_in,
            "jti": jti or str(uuid.uuid4()),
        }
        return jwt.encode(claims, key or self.key, algorithm=self.alg, headers={"kid": self.kid})


def _jwk(public: Any, alg: str, kid: str) -> dict[str, Any]:
    conv = RSAAlgorithm if alg.startswith("RS") else ECAlgorithm
    jwk = json.loads(conv.to_jwk(public))
    return {**jwk, "kid": kid, "alg": alg, "use": "sig"}


def make_client(
    service: PriorAuthService, cid: str, alg: str, scopes: list[str], org: str | None
) -> Client:
    key = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if alg == "RS384"
        else ec.generate_private_key(ec.SECP384R1())
    )
    kid = f"{cid}-key"
    with service.sessions() as s:
        register_client(
            s,
            cid,
            cid,
            {"keys": [_jwk(key.public_key(), alg, kid)]},
            scopes,
            org,
            datetime.now(UTC),
            payer_system=org is None,
        )
    return Client(cid, key, alg, kid)


@pytest.fixture
def secured(db_url: str, clock: Clock, library: PolicyLibrary) -> Iterator[PriorAuthService]:
    engine = make_engine(db_url)
    settings = Settings(database_url=db_url, base_url=BASE, rate_per_minute=60, rate_burst=50)
    svc = PriorAuthService(settings, engine, library, clock=clock)
    yield svc
    svc.notifier.close()
    engine.dispose()


@pytest.fixture
def api(secured: PriorAuthService) -> Iterator[TestClient]:
    with TestClient(create_app(secured), base_url=BASE, raise_server_exceptions=False) as c:
        yield c


PROVIDER_SCOPES = [sc.SUBMIT, sc.INQUIRE, sc.CLAIM_RESPONSE_READ, sc.SUBSCRIPTION]


def token(api: TestClient, client: Client, scope: str = "", **kw: Any) -> Any:
    return api.post(
        "/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": client.assertion(**kw),
            "scope": scope,
        },
    )


def bearer(api: TestClient, client: Client, scope: str = "") -> dict[str, str]:
    r = token(api, client, scope)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}
