"""CRD order-sign takes the policy from the same routing as $submit: payer, plan, date."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from priorauth.policies import builtin, load_directory
from priorauth.service.app_service import PriorAuthService
from priorauth.store.models import CoverageAssertionRow
from tests.crd.ehr import order_sign
from tests.crd.test_hooks import SIGN, _parts, _post
from tests.policies.test_plans import EXAMPLES

CLASS = "http://terminology.hl7.org/CodeSystem/coverage-class"
NAIC = "urn:oid:2.16.840.1.113883.6.300"


def _coverage(body: dict[str, Any]) -> dict[str, Any]:
    entries = body["prefetch"]["coverage"]["entry"]
    return next(e["resource"] for e in entries if e["resource"]["resourceType"] == "Coverage")


def test_a_plan_that_excludes_the_service_is_judged_under_its_plan_document(
    app_client: TestClient, service: PriorAuthService
) -> None:
    service.library = load_directory(EXAMPLES, builtin())
    body, _ = order_sign("crd-basic")
    _coverage(body)["class"] = [
        {"type": {"coding": [{"system": CLASS, "code": "plan"}]}, "value": "EX-BASIC"}
    ]
    r = _post(app_client, SIGN, body)
    assert r.status_code == 200, r.text
    parts = _parts(r.json()["systemActions"][0]["resource"])
    with service.sessions() as s:
        row = s.get(CoverageAssertionRow, parts["coverage-assertion-id"])
        assert row is not None
        assert row.evaluation["recommendation"] == "deny"
        assert row.evaluation["criteria"]["PL"]["status"] == "applies"
        selected = row.evaluation["policy"]["selected"]
        assert selected["plan_document"]["id"] == "example-basic-2026"


def test_a_payer_without_a_policy_for_the_order_gets_no_card_and_no_auth(
    app_client: TestClient,
) -> None:
    body, _ = order_sign("crd-other-payer")
    _coverage(body)["payor"] = [{"identifier": {"system": NAIC, "value": "12345"}}]
    r = _post(app_client, SIGN, body)
    assert r.status_code == 200, r.text
    assert r.json()["cards"] == []
    [action] = r.json()["systemActions"]
    parts = _parts(action["resource"])
    assert parts["covered"] == "covered" and parts["pa-needed"] == "no-auth"


def _all_links(items: list[dict[str, Any]]) -> set[str]:
    out: set[str] = set()
    for i in items:
        out.add(i["linkId"])
        out |= _all_links(i.get("item", []))
    return out


def test_dtr_asks_what_the_members_plan_adds(
    app_client: TestClient, service: PriorAuthService
) -> None:
    """CRD under a plan document, then DTR from its context: the plan's added criterion."""
    service.library = load_directory(EXAMPLES, builtin())
    body, _ = order_sign("crd-gold")
    _coverage(body)["class"] = [
        {"type": {"coding": [{"system": CLASS, "code": "plan"}]}, "value": "EX-GOLD"}
    ]
    r = _post(app_client, SIGN, body)
    assertion = _parts(r.json()["systemActions"][0]["resource"])["coverage-assertion-id"]
    r = _post(
        app_client,
        "/fhir/Questionnaire/$questionnaire-package",
        {
            "resourceType": "Parameters",
            "parameter": [{"name": "context", "valueString": assertion}],
        },
    )
    assert r.status_code == 200, r.text
    form = r.json()["parameter"][0]["resource"]["entry"][0]["resource"]
    assert "designated-treatment-center" in _all_links(form["item"])
