"""Inputs of the wrong JSON shape or size get a 4xx with a clear answer, never a 500.

Each case below answered 500 before: CRD and DTR bodies with an element of the
wrong JSON type, token assertions with an `exp` no date can hold, keys longer than
PostgreSQL's columns, and a bundle stored with validation off that broke the queue.
"""

from __future__ import annotations

import copy
import dataclasses
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import jwt
import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from priorauth.api.app import create_app
from priorauth.auth import scopes as sc
from priorauth.auth.tokens import MAX_JTI
from priorauth.demo.samples import hemgenix_request
from priorauth.intake.values import MAX_MEMBER_ID
from priorauth.pas import request as pas_request
from priorauth.service.app_service import PriorAuthService
from priorauth.service.users import ensure_demo_users
from priorauth.store.models import ApiClientRow, CaseRow, UsedJtiRow
from priorauth.ui import install
from tests.api.conftest import service  # noqa: F401
from tests.crd.ehr import order_sign
from tests.security.conftest import TOKEN_URL, make_client
from tests.ui.conftest import INTAKE, sign_in

Json = dict[str, Any]
ORDER_SIGN = "/cds-services/priorauth-order-sign"
ORDER_SELECT = "/cds-services/priorauth-order-select"
PACKAGE = "/fhir/Questionnaire/$questionnaire-package"
NEXT = "/fhir/Questionnaire/$next-question"


@pytest.fixture
def loose(service: PriorAuthService) -> PriorAuthService:
    """The API service with FHIR model validation off (PRIORAUTH_FHIR_VALIDATION=false)."""
    service.settings = dataclasses.replace(service.settings, fhir_validation=False)  # type: ignore[misc]
    return service


@pytest.fixture
def client(loose: PriorAuthService) -> Iterator[TestClient]:
    app = create_app(loose)
    install(app, loose, secure_cookie=False)
    ensure_demo_users(loose)
    with TestClient(app, raise_server_exceptions=False, follow_redirects=False) as c:
        yield c


def _post(client: TestClient, path: str, body: object) -> Any:
    return client.post(
        path, content=orjson.dumps(body), headers={"Content-Type": "application/json"}
    )


def _outcome(r: Any) -> str:
    assert 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    body = r.json()
    assert body["resourceType"] == "OperationOutcome", body
    issue = body["issue"][0]
    return f"{issue.get('diagnostics')} @ {issue.get('expression')}"


def _order(body: Json) -> Json:
    return body["context"]["draftOrders"]["entry"][0]["resource"]


def _coverages(body: Json) -> list[Json]:
    return [e["resource"] for e in body["prefetch"]["coverage"]["entry"]]


def _contained_order(body: Json) -> None:
    # The order names its drug through a contained Medication, so `contained` is read.
    order = _order(body)
    order["medicationReference"] = {"reference": "#med"}
    order.pop("medicationCodeableConcept", None)
    order["contained"] = 7


CRD_CASES: list[tuple[str, Callable[[Json], Any], str]] = [
    ("subject-string", lambda b: _order(b).update(subject="Patient/x"), "subject"),
    (
        "coding-number",
        lambda b: _order(b)["medicationCodeableConcept"].update(coding=5),
        "coding",
    ),
    ("insurance-number", lambda b: _order(b).update(insurance=5), "insurance"),
    (
        "beneficiary-string",
        lambda b: [c.update(beneficiary="Patient/x") for c in _coverages(b)],
        "beneficiary",
    ),
    ("coverage-entry-number", lambda b: b["prefetch"]["coverage"].update(entry=5), "entry"),
    ("contained-number", _contained_order, "contained"),
]


@pytest.mark.parametrize(("mutate", "where"), [pytest.param(m, w, id=n) for n, m, w in CRD_CASES])
def test_crd_bodies_of_the_wrong_shape_get_422(
    client: TestClient, mutate: Callable[[Json], Any], where: str
) -> None:
    body, _ = order_sign("shape")
    mutate(body)
    r = _post(client, ORDER_SIGN, body)
    assert r.status_code == 422
    assert where in _outcome(r)


def test_order_select_with_selections_that_are_not_strings_gets_422(client: TestClient) -> None:
    body, _ = order_sign("shape", hook="order-select")
    body["context"]["selections"] = [{}]
    r = _post(client, ORDER_SELECT, body)
    assert r.status_code == 422
    assert "context.selections" in _outcome(r)


def _assertion_id(client: TestClient) -> str:
    body, _ = order_sign("dtr-shape", drop_labs=("777-3",))
    r = _post(client, ORDER_SIGN, body)
    assert r.status_code == 200, r.text
    ext = next(
        e
        for e in r.json()["systemActions"][0]["resource"]["extension"]
        if e["url"].endswith("coverage-information")
    )
    return next(p["valueString"] for p in ext["extension"] if p["url"] == "coverage-assertion-id")


def _prefilled(client: TestClient) -> Json:
    r = _post(
        client,
        PACKAGE,
        {
            "resourceType": "Parameters",
            "parameter": [{"name": "context", "valueString": _assertion_id(client)}],
        },
    )
    assert r.status_code == 200, r.text
    return r.json()["parameter"][0]["resource"]["entry"][-1]["resource"]  # type: ignore[no-any-return]


def test_dtr_parameters_of_the_wrong_shape_get_422(client: TestClient) -> None:
    r = _post(client, PACKAGE, {"resourceType": "Parameters", "parameter": 5})
    assert r.status_code == 422
    assert "Parameters.parameter" in _outcome(r)

    body, res = order_sign("dtr-order")
    order = _order(body)
    order["subject"] = "Patient/x"
    r = _post(
        client,
        PACKAGE,
        {
            "resourceType": "Parameters",
            "parameter": [
                {"name": "order", "resource": order},
                {"name": "coverage", "resource": res["Coverage"][0]},
            ],
        },
    )
    assert r.status_code == 422
    assert "subject" in _outcome(r)


@pytest.mark.parametrize(("element", "value"), [("meta", "x"), ("contained", 5), ("extension", 5)])
def test_a_questionnaire_response_of_the_wrong_shape_gets_422(
    client: TestClient, element: str, value: object
) -> None:
    qr = copy.deepcopy(_prefilled(client))
    qr[element] = value
    r = _post(
        client,
        NEXT,
        {
            "resourceType": "Parameters",
            "parameter": [{"name": "questionnaire-response", "resource": qr}],
        },
    )
    assert r.status_code == 422
    assert element in _outcome(r)


# --- the token endpoint ------------------------------------------------------------


def _assertion_with(client: Any, **claims: Any) -> str:
    base = {
        "iss": client.id,
        "sub": client.id,
        "aud": TOKEN_URL,
        "exp": int(time.time()) + 240,
        "jti": str(uuid.uuid4()),
    }
    return jwt.encode(
        {**base, **claims}, client.key, algorithm=client.alg, headers={"kid": client.kid}
    )


def _token_with(api: TestClient, assertion: str) -> Any:
    return api.post(
        "/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        },
    )


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"exp": 1e20}, id="exp-1e20"),
        pytest.param({"exp": str(int(time.time()) + 240)}, id="exp-numeric-string"),
        pytest.param({"exp": 2**70}, id="exp-huge-integer"),
        pytest.param({"jti": "j" * 400}, id="jti-400-characters"),
        pytest.param({"jti": 12345}, id="jti-number"),
    ],
)
def test_token_assertions_with_impossible_claims_are_refused(
    api: TestClient, secured: PriorAuthService, claims: Json
) -> None:
    provider = make_client(secured, "prov", "ES384", [sc.SUBMIT], "1234567890")
    r = _token_with(api, _assertion_with(provider, **claims))
    assert r.status_code in (400, 401), r.text
    assert r.json()["error"] == "invalid_client"
    # The endpoint still works for a well-formed assertion.
    ok = _token_with(api, _assertion_with(provider))
    assert ok.status_code == 200, ok.text


# --- keys longer than the database's columns -----------------------------------------


def _with_codes(n: int) -> Json:
    bundle = hemgenix_request(name="codes")
    item = bundle["entry"][0]["resource"]["item"][0]
    item["productOrService"]["coding"] += [
        {"system": "http://example.org/codes", "code": f"X{i:04d}"} for i in range(n)
    ]
    return bundle


def _with_claim_identifier(value: str) -> Json:
    bundle = hemgenix_request(name="claim-id")
    bundle["entry"][0]["resource"]["identifier"][0]["value"] = value
    return bundle


@pytest.mark.parametrize(
    "bundle",
    [
        pytest.param(hemgenix_request(name="long-member", member_id="M" * 101), id="member-101"),
        pytest.param(
            hemgenix_request(name="long-member", member_id="M" * (MAX_MEMBER_ID + 1)),
            id="member-over-limit",
        ),
        pytest.param(_with_claim_identifier("C" * 301), id="claim-identifier-301"),
        pytest.param(_with_codes(60), id="60-service-codes"),
    ],
)
def test_keys_longer_than_the_columns_get_4xx_on_every_database(
    client: TestClient, bundle: Json
) -> None:
    for path in ("/fhir/Claim/$submit", "/fhir/Claim/$inquire"):
        r = client.post(path, content=orjson.dumps(bundle))
        assert 400 <= r.status_code < 500, (path, r.status_code, r.text[:300])
        _outcome(r)


def test_crd_with_a_member_id_longer_than_the_column_gets_422(client: TestClient) -> None:
    body, _ = order_sign("crd-long-member", member_id="M" * 150)
    r = _post(client, ORDER_SIGN, body)
    assert r.status_code == 422
    assert "member id" in _outcome(r)


def test_the_limits_fit_the_columns() -> None:
    # The door's limits are what the tables hold; a change to either must keep them in step.
    cases = CaseRow.__table__.c
    assert cases.member_id.type.length >= MAX_MEMBER_ID
    assert (
        min(cases.claim_identifier.type.length, cases.submitter.type.length)
        >= pas_request.MAX_IDENTIFIER
    )
    widest = pas_request.MAX_SERVICE_CODES * (pas_request.MAX_SERVICE_CODE + 1) - 1
    assert widest <= cases.service_codes.type.length
    client_id = ApiClientRow.__table__.c.id.type.length
    assert client_id + 1 + MAX_JTI <= UsedJtiRow.__table__.c.jti.type.length


# --- what is stored never breaks a page -----------------------------------------------


def test_with_validation_off_a_bad_patient_name_is_refused_at_the_door(client: TestClient) -> None:
    bundle = hemgenix_request(name="bad-name")
    for e in bundle["entry"]:
        if e["resource"]["resourceType"] == "Patient":
            e["resource"]["name"] = [5]
    r = client.post("/fhir/Claim/$submit", content=orjson.dumps(bundle))
    assert r.status_code == 422
    assert "name" in _outcome(r)


BAD_STORED: list[Callable[[Json], None]] = [
    lambda p: p.update(name=[5]),
    lambda p: p.update(name=["Jo", {"given": 5}]),
    lambda p: p.update(name={"text": "x"}, birthDate={"y": 1}),
]


def test_a_stored_request_of_any_shape_does_not_break_the_queue(
    client: TestClient, loose: PriorAuthService
) -> None:
    good = loose.submit(orjson.dumps(hemgenix_request(name="good-one"))).record.id
    bad = []
    for i, mutate in enumerate(BAD_STORED):
        bundle = hemgenix_request(name=f"stored-{i}")
        bad.append(loose.submit(orjson.dumps(bundle)).record.id)
        for e in bundle["entry"]:
            if e["resource"]["resourceType"] == "Patient":
                mutate(e["resource"])
            if e["resource"]["resourceType"] == "MedicationRequest":
                e["resource"]["medicationCodeableConcept"] = 5
            if e["resource"]["resourceType"] == "Organization":
                e["resource"]["name"] = 7
        # As a row stored before the door checked shapes (or written by another version).
        with loose.sessions() as s:
            s.execute(
                update(CaseRow)
                .where(CaseRow.id == bad[-1])
                .values(request_bundle=orjson.dumps(bundle))
            )
            s.commit()
    sign_in(client, INTAKE)
    r = client.get("/ui/queue")
    assert r.status_code == 200, r.text[:500]
    assert f"/ui/cases/{good}" in r.text
    for case_id in bad:
        assert f"/ui/cases/{case_id}" in r.text
        page = client.get(f"/ui/cases/{case_id}")
        assert page.status_code == 200, page.text[:500]
