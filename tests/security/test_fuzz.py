"""Fuzzing: schemathesis over the OpenAPI schema, hypothesis bundles at $submit. No 500, ever."""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import orjson
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from priorauth.api.app import create_app
from priorauth.demo.samples import hemgenix_request
from priorauth.policies import builtin
from priorauth.service.app_service import PriorAuthService
from priorauth.settings import Settings
from priorauth.store.db import make_engine, upgrade
from tests.strategies import json_values, paths_of, replaced

# One service for the module: schemathesis reads the schema when the module loads.
_DB = Path(tempfile.mkdtemp(prefix="priorauth-fuzz-")) / "fuzz.db"
_URL = f"sqlite:///{_DB}"
upgrade(_URL)
SERVICE = PriorAuthService(
    Settings(database_url=_URL, auth_enabled=False, rate_burst=1_000_000),
    make_engine(_URL),
    builtin(),
)
APP = create_app(SERVICE)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
COUNT = {"requests": 0}
pytestmark = pytest.mark.slow
# The hypothesis profile sets the budget (tests/conftest.py); each example here is an HTTP
# exchange, so these take a share of it. A long run: HYPOTHESIS_PROFILE=fuzz ... -s
_BUDGET = settings.default.max_examples


@schema.parametrize()
@settings(max_examples=max(5, _BUDGET // 8), suppress_health_check=list(HealthCheck))
def test_no_operation_answers_500(case: Any) -> None:
    response = case.call()
    COUNT["requests"] += 1
    assert response.status_code < 500, (case.method, case.path, response.text[:300])


BASE = hemgenix_request(name="fuzz-http")


PATHS = paths_of(BASE)


@given(st.sampled_from(PATHS), json_values, st.integers(0, 10**9))
@settings(max_examples=max(10, _BUDGET // 2), suppress_health_check=list(HealthCheck))
def test_mutated_bundles_never_get_a_500(path: tuple[Any, ...], value: Any, trace: int) -> None:
    bundle = copy.deepcopy(BASE)
    bundle["entry"][0]["resource"]["identifier"][0]["value"] = f"fuzz-{trace}"
    replaced(bundle, path, value)
    try:
        body = orjson.dumps(bundle, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:  # e.g. an integer JSON cannot carry: not a request anyone can send
        return
    with TestClient(APP, raise_server_exceptions=False) as client:
        r = client.post("/fhir/Claim/$submit", content=body)
    COUNT["requests"] += 1
    assert r.status_code < 500, r.text[:300]
    assert r.status_code in (200, 201, 400, 422), r.status_code


def test_the_service_still_answers_after_fuzzing() -> None:
    with TestClient(APP) as client:
        assert client.get("/fhir/metadata").status_code == 200
        ok = client.post(
            "/fhir/Claim/$submit", content=orjson.dumps(hemgenix_request(name="after"))
        )
        assert ok.status_code == 201
    # Read by the README's figures: how many fuzzed requests this run sent (none got a 500).
    print(f"\nfuzzing: {COUNT['requests']} requests, 0 server errors")
