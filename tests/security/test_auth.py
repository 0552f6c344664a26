"""SMART Backend Services end to end with real keys; every refusal the issue names."""

from __future__ import annotations

import copy

import orjson
import pytest
from fastapi.testclient import TestClient

from priorauth.auth import scopes as sc
from priorauth.demo.samples import hemgenix_request
from priorauth.service.app_service import PriorAuthService
from tests.security.conftest import PROVIDER_SCOPES, Client, bearer, make_client, token


def _npi(bundle: dict) -> str:
    ref = bundle["entry"][0]["resource"]["provider"]["reference"]
    org = next(e["resource"] for e in bundle["entry"] if e["fullUrl"] == ref)
    return org["identifier"][0]["value"]


BUNDLE = hemgenix_request(name="auth-1")
NPI = _npi(BUNDLE)


@pytest.fixture(params=["RS384", "ES384"])
def provider(request: pytest.FixtureRequest, secured: PriorAuthService) -> Client:
    return make_client(secured, "ehr-a", request.param, PROVIDER_SCOPES, NPI)


def test_token_flow_end_to_end(api: TestClient, provider: Client) -> None:
    r = token(api, provider, f"{sc.SUBMIT} {sc.CLAIM_RESPONSE_READ}")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer" and body["expires_in"] <= 300
    assert set(body["scope"].split()) == {sc.SUBMIT, sc.CLAIM_RESPONSE_READ}
    assert r.headers["cache-control"] == "no-store"
    h = {"Authorization": f"Bearer {body['access_token']}"}
    sub = api.post("/fhir/Claim/$submit", content=orjson.dumps(BUNDLE), headers=h)
    assert sub.status_code == 201, sub.text
    cid = sub.json()["entry"][0]["resource"]["id"]
    assert api.get(f"/fhir/ClaimResponse/{cid}", headers=h).status_code == 200


def test_wrong_signature_is_refused(
    api: TestClient, provider: Client, secured: PriorAuthService
) -> None:
    impostor = make_client(secured, "other", provider.alg, PROVIDER_SCOPES, "1")
    r = token(api, provider, key=impostor.key)  # provider's id and kid, someone else's key
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


def test_expired_assertion_is_refused(api: TestClient, provider: Client) -> None:
    r = token(api, provider, exp_in=-10)
    assert r.status_code == 401 and "expired" in r.json()["error_description"]


def test_assertion_living_too_long_is_refused(api: TestClient, provider: Client) -> None:
    assert token(api, provider, exp_in=3600).status_code == 401


def test_replayed_jti_is_refused(api: TestClient, provider: Client) -> None:
    assert token(api, provider, jti="same-jti").status_code == 200
    again = token(api, provider, jti="same-jti")
    assert again.status_code == 401 and "already used" in again.json()["error_description"]


def test_wrong_audience_and_unknown_client(api: TestClient, provider: Client) -> None:
    assert token(api, provider, aud="https://elsewhere/token").status_code == 401
    stranger = Client("nobody", provider.key, provider.alg, provider.kid)
    assert token(api, stranger).status_code == 401


def test_missing_scope_is_403(api: TestClient, provider: Client) -> None:
    h = bearer(api, provider, sc.CLAIM_RESPONSE_READ)  # no Claim.write
    r = api.post("/fhir/Claim/$submit", content=orjson.dumps(BUNDLE), headers=h)
    assert r.status_code == 403
    assert "insufficient_scope" in r.headers["www-authenticate"]
    assert token(api, provider, sc.CASES_DECIDE).status_code == 400  # never granted


def test_no_or_bad_token_is_401_and_open_endpoints_stay_open(api: TestClient) -> None:
    for method, path in [
        ("post", "/fhir/Claim/$submit"),
        ("post", "/fhir/Claim/$inquire"),
        ("get", "/fhir/ClaimResponse/x"),
        ("get", "/api/cases"),
        ("post", "/fhir/Subscription"),
    ]:
        r = getattr(api, method)(path)
        assert r.status_code == 401, path
        assert r.json()["resourceType"] == "OperationOutcome"
    bad = api.get("/api/cases", headers={"Authorization": "Bearer not-a-token"})
    assert bad.status_code == 401
    assert api.get("/fhir/metadata").status_code == 200
    conf = api.get("/.well-known/smart-configuration").json()
    assert conf["token_endpoint"].endswith("/auth/token")
    assert set(conf["token_endpoint_auth_signing_alg_values_supported"]) == {"RS384", "ES384"}


def test_another_organizations_case_is_invisible(
    api: TestClient, provider: Client, secured: PriorAuthService
) -> None:
    other = make_client(secured, "ehr-b", provider.alg, PROVIDER_SCOPES, "1999999999")
    mine = bearer(api, provider)
    theirs = bearer(api, other)
    cid = api.post("/fhir/Claim/$submit", content=orjson.dumps(BUNDLE), headers=mine).json()[
        "entry"
    ][0]["resource"]["id"]
    # B cannot read A's ClaimResponse, inquire about it, nor submit in A's name
    assert api.get(f"/fhir/ClaimResponse/{cid}", headers=theirs).status_code == 404
    inquiry = copy.deepcopy(BUNDLE)
    inquiry["entry"][0]["resource"]["identifier"] = [{"system": "urn:q", "value": "Q"}]
    assert (
        api.post("/fhir/Claim/$inquire", content=orjson.dumps(inquiry), headers=theirs).status_code
        == 403
    )
    assert (
        api.post("/fhir/Claim/$submit", content=orjson.dumps(BUNDLE), headers=theirs).status_code
        == 403
    )
    # A can
    assert (
        api.post("/fhir/Claim/$inquire", content=orjson.dumps(inquiry), headers=mine).status_code
        == 200
    )


def test_rate_limit_answers_429_with_retry_after(
    api: TestClient, provider: Client, secured: PriorAuthService, clock
) -> None:
    # The limiter runs on the service's clock, which only the test moves: the budget is
    # exactly the burst (50), whatever the machine's speed.
    h = bearer(api, provider)
    codes = [api.get("/fhir/ClaimResponse/none", headers=h).status_code for _ in range(60)]
    assert codes == [404] * 50 + [429] * 10
    r = api.get("/fhir/ClaimResponse/none", headers=h)
    assert r.status_code == 429 and r.headers["retry-after"] == "1"  # 60 a minute
    clock.advance(seconds=2)
    again = [api.get("/fhir/ClaimResponse/none", headers=h).status_code for _ in range(3)]
    assert again == [404, 404, 429]


def test_development_mode_is_announced(
    capsys: pytest.CaptureFixture[str], secured: PriorAuthService
) -> None:
    import dataclasses

    from priorauth.api.app import create_app

    secured.settings = dataclasses.replace(secured.settings, auth_enabled=False)
    create_app(secured)
    assert "authentication is OFF" in capsys.readouterr().err
