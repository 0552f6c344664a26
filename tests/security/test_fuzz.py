"""Fuzzing: schemathesis over the OpenAPI schema, hypothesis-mutated bodies. No 500, ever.

Covered: every operation of the OpenAPI schema (PAS, CDS Hooks, DTR, the case API,
Subscriptions), mutated PAS bundles at $submit, mutated CDS Hooks requests at
order-sign and order-select, mutated DTR Parameters at $questionnaire-package and
$next-question, and mutated client assertions and forms at the token endpoint. Each
runs on SQLite and, when PRIORAUTH_TEST_DATABASE_URL is set, on PostgreSQL (where
column lengths are enforced). FHIR model validation is off, so the service's own
checks face every input. The hypothesis profile sets the budget, as for every property
test (tests/conftest.py): each endpoint's share below is multiplied by 5 under the `fuzz`
profile (PRIORAUTH_FUZZ_SCALE=N overrides it):

    HYPOTHESIS_PROFILE=fuzz uv run pytest tests/security/test_fuzz.py -s
"""

from __future__ import annotations

import copy
import os
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import jwt
import orjson
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text
from starlette.types import Receive, Scope, Send

from priorauth.api.app import create_app
from priorauth.auth import scopes as sc
from priorauth.demo.samples import hemgenix_request
from priorauth.policies import builtin
from priorauth.service.app_service import PriorAuthService
from priorauth.settings import Settings
from priorauth.store.db import make_engine, upgrade
from tests.crd.ehr import order_sign
from tests.databases import PG_ENV
from tests.security.conftest import Client, make_client
from tests.strategies import json_values, paths_of, replaced

# CI runs it; `-m 'not slow'` skips it while working. Its services are the module's own,
# and the last test reads what the others sent: one xdist worker runs the whole file
# (--dist loadfile, pyproject.toml).
pytestmark = pytest.mark.slow
# Shares, not the profile's max_examples: one request to a service costs far more than
# one call of a pure function, and the endpoints differ in what there is to mutate.
SCALE = int(
    os.environ.get("PRIORAUTH_FUZZ_SCALE")
    or {"fuzz": 5}.get(os.environ.get("HYPOTHESIS_PROFILE", "dev"), 1)
)
BASE_URL = "http://testserver"
TOKEN_URL = f"{BASE_URL}/auth/token"
FUZZ = settings(deadline=None, suppress_health_check=list(HealthCheck), database=None)


def _postgres() -> str | None:
    url = os.environ.get(PG_ENV)
    if not url:
        return None
    schema = f"priorauth_fuzz_{os.getpid()}"
    try:
        eng = create_engine(url)
        with eng.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        eng.dispose()
    except Exception:  # unreachable: the PostgreSQL half is skipped
        return None
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


def _service(url: str) -> PriorAuthService:
    upgrade(url)
    return PriorAuthService(
        Settings(
            database_url=url,
            base_url=BASE_URL,
            auth_enabled=False,
            fhir_validation=False,
            rate_burst=1_000_000,
        ),
        make_engine(url),
        builtin(),
    )


# One service per database for the module: schemathesis reads the schema when the module loads.
_URLS = {"sqlite": f"sqlite:///{Path(tempfile.mkdtemp(prefix='priorauth-fuzz-')) / 'fuzz.db'}"}
if (_pg := _postgres()) is not None:
    _URLS["postgresql"] = _pg
SERVICES = {name: _service(url) for name, url in _URLS.items()}
APPS = {name: create_app(svc) for name, svc in SERVICES.items()}
CLIENTS = {
    name: TestClient(app, base_url=BASE_URL, raise_server_exceptions=False)
    for name, app in APPS.items()
}
COUNT: Counter[tuple[str, str]] = Counter()  # (database, surface) -> requests sent
DATABASES = [
    "sqlite",
    pytest.param(
        "postgresql",
        marks=pytest.mark.skipif(
            "postgresql" not in APPS, reason=f"{PG_ENV} is not set (or PostgreSQL is unreachable)"
        ),
    ),
]


class Switch:
    """The app of the database under test: schemathesis calls one ASGI app."""

    def __init__(self) -> None:
        self.database = "sqlite"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await APPS[self.database](scope, receive, send)


SWITCH = Switch()
schema = schemathesis.openapi.from_asgi("/openapi.json", SWITCH)


def _client(database: str) -> TestClient:
    return CLIENTS[database]


def _sent(database: str, surface: str, r: Any) -> None:
    COUNT[database, surface] += 1
    assert r.status_code < 500, (surface, r.status_code, r.text[:300])


def _json(document: Any) -> bytes | None:
    try:
        return orjson.dumps(document, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:  # e.g. an integer JSON cannot carry: not a request anyone can send
        return None


# --- every operation of the OpenAPI schema ---------------------------------------------


@pytest.mark.parametrize("database", DATABASES)
@schema.parametrize()
@settings(FUZZ, max_examples=40 * SCALE)
def test_no_operation_answers_500(case: Any, database: str) -> None:
    _client(database)
    SWITCH.database = database
    response = case.call()
    COUNT[database, "openapi"] += 1
    assert response.status_code < 500, (case.method, case.path, response.text[:300])


# --- PAS $submit -------------------------------------------------------------------------

BUNDLE = hemgenix_request(name="fuzz-http")
BUNDLE_PATHS = paths_of(BUNDLE)


@pytest.mark.parametrize("database", DATABASES)
@given(st.sampled_from(BUNDLE_PATHS), json_values, st.integers(0, 10**9))
@settings(FUZZ, max_examples=150 * SCALE)
def test_mutated_bundles_never_get_a_500(
    database: str, path: tuple[Any, ...], value: Any, trace: int
) -> None:
    client = _client(database)
    bundle = copy.deepcopy(BUNDLE)
    bundle["entry"][0]["resource"]["identifier"][0]["value"] = f"fuzz-{trace}"
    replaced(bundle, path, value)
    if (body := _json(bundle)) is None:
        return
    r = client.post("/fhir/Claim/$submit", content=body)
    _sent(database, "pas", r)
    assert r.status_code in (200, 201, 400, 409, 422), r.status_code


# --- CDS Hooks (CRD) -------------------------------------------------------------------

HOOKS = {hook: order_sign("fuzz-crd", hook=hook)[0] for hook in ("order-sign", "order-select")}
HOOK_PATHS = {hook: paths_of(body) for hook, body in HOOKS.items()}


@pytest.mark.parametrize("database", DATABASES)
@pytest.mark.parametrize("hook", sorted(HOOKS))
@given(st.data(), json_values)
@settings(FUZZ, max_examples=50 * SCALE)
def test_mutated_cds_hooks_requests_never_get_a_500(
    database: str, hook: str, data: st.DataObject, value: Any
) -> None:
    client = _client(database)
    body = copy.deepcopy(HOOKS[hook])
    replaced(body, data.draw(st.sampled_from(HOOK_PATHS[hook])), value)
    if (raw := _json(body)) is None:
        return
    r = client.post(f"/cds-services/priorauth-{hook}", content=raw)
    _sent(database, "cds-hooks", r)


# --- DTR ------------------------------------------------------------------------------


def _dtr_bodies(database: str) -> dict[str, dict[str, Any]]:
    """A package request by context, one by order, and a $next-question request."""
    client = _client(database)
    sign, res = order_sign("fuzz-dtr", drop_labs=("777-3",))
    r = client.post("/cds-services/priorauth-order-sign", content=orjson.dumps(sign))
    assert r.status_code == 200, r.text
    ext = next(
        e
        for e in r.json()["systemActions"][0]["resource"]["extension"]
        if e["url"].endswith("coverage-information")
    )
    context = next(p["valueString"] for p in ext["extension"] if p["url"].endswith("assertion-id"))
    by_context = {
        "resourceType": "Parameters",
        "parameter": [{"name": "context", "valueString": context}],
    }
    r = client.post("/fhir/Questionnaire/$questionnaire-package", content=orjson.dumps(by_context))
    assert r.status_code == 200, r.text
    prefilled = r.json()["parameter"][0]["resource"]["entry"][-1]["resource"]
    order = sign["context"]["draftOrders"]["entry"][0]["resource"]
    return {
        "package-context": by_context,
        "package-order": {
            "resourceType": "Parameters",
            "parameter": [
                {"name": "order", "resource": order},
                {"name": "coverage", "resource": res["Coverage"][0]},
            ],
        },
        "next-question": {
            "resourceType": "Parameters",
            "parameter": [{"name": "questionnaire-response", "resource": prefilled}],
        },
    }


_DTR: dict[str, dict[str, dict[str, Any]]] = {}
DTR_PATH = {
    "package-context": "/fhir/Questionnaire/$questionnaire-package",
    "package-order": "/fhir/Questionnaire/$questionnaire-package",
    "next-question": "/fhir/Questionnaire/$next-question",
}


@pytest.mark.parametrize("database", DATABASES)
@pytest.mark.parametrize("kind", sorted(DTR_PATH))
@given(st.data(), json_values)
@settings(FUZZ, max_examples=35 * SCALE)
def test_mutated_dtr_requests_never_get_a_500(
    database: str, kind: str, data: st.DataObject, value: Any
) -> None:
    client = _client(database)
    if database not in _DTR:
        _DTR[database] = _dtr_bodies(database)
    body = copy.deepcopy(_DTR[database][kind])
    replaced(body, data.draw(st.sampled_from(paths_of(body))), value)
    if (raw := _json(body)) is None:
        return
    r = client.post(DTR_PATH[kind], content=raw)
    _sent(database, "dtr", r)


# --- the token endpoint ---------------------------------------------------------------

_TOKEN_CLIENTS: dict[str, Client] = {}
CLAIMS = ("iss", "sub", "aud", "exp", "jti", "iat", "nbf")


def _token_client(database: str) -> Client:
    if database not in _TOKEN_CLIENTS:
        _TOKEN_CLIENTS[database] = make_client(
            SERVICES[database], f"fuzz-{uuid.uuid4().hex[:8]}", "ES384", list(sc.ALL), None
        )
    return _TOKEN_CLIENTS[database]


def _form(assertion: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }


@pytest.mark.parametrize("database", DATABASES)
@given(st.dictionaries(st.sampled_from(CLAIMS), json_values, max_size=3), st.booleans())
@settings(FUZZ, max_examples=40 * SCALE)
def test_mutated_client_assertions_never_get_a_500(
    database: str, changes: dict[str, Any], drop: bool
) -> None:
    # Signed by a registered key: every claim reaches the server's own checks.
    client = _client(database)
    who = _token_client(database)
    claims: dict[str, Any] = {
        "iss": who.id,
        "sub": who.id,
        "aud": TOKEN_URL,
        "exp": int(time.time()) + 240,
        "jti": str(uuid.uuid4()),
        **changes,
    }
    if drop and changes:
        del claims[next(iter(changes))]
    try:
        assertion = jwt.encode(claims, who.key, algorithm=who.alg, headers={"kid": who.kid})
    except (TypeError, ValueError, OverflowError):  # not encodable as a JWT at all
        return
    r = client.post("/auth/token", data=_form(assertion))
    _sent(database, "token", r)
    assert r.status_code in (200, 400, 401), r.status_code


@pytest.mark.parametrize("database", DATABASES)
@given(st.dictionaries(st.sampled_from([*_form(""), "scope"]), st.text(max_size=300), max_size=4))
@settings(FUZZ, max_examples=20 * SCALE)
def test_mutated_token_forms_never_get_a_500(database: str, form: dict[str, str]) -> None:
    client = _client(database)
    r = client.post("/auth/token", data=form)
    _sent(database, "token", r)
    assert r.status_code in (400, 401), r.status_code


# --- afterwards ---------------------------------------------------------------------------


@pytest.mark.parametrize("database", DATABASES)
def test_the_service_still_answers_after_fuzzing(database: str) -> None:
    client = _client(database)
    assert client.get("/fhir/metadata").status_code == 200
    ok = client.post("/fhir/Claim/$submit", content=orjson.dumps(hemgenix_request(name="after")))
    assert ok.status_code == 201
    # Read by the README's figures: how many fuzzed requests this run sent (none got a 500).
    counts = {surface: n for (db, surface), n in sorted(COUNT.items()) if db == database}
    print(
        f"\nfuzzing on {database}: {sum(counts.values())} requests "
        f"({', '.join(f'{k} {v}' for k, v in counts.items())}), 0 server errors"
    )


def teardown_module() -> None:
    for c in CLIENTS.values():
        c.close()
    for svc in SERVICES.values():
        svc.notifier.close()
