"""PAS $inquire (issue 13 item 7): OperationDefinition-Claim-inquiry (2.2.1), spec-53 (match on
member and provider), ValueSet X12278RequestedServiceType ("not-applicable"); the kit's
lib/davinci_pas_test_kit/server/claim_operation_logic.rb (check_response_status_and_payload:
a v2.2 inquire answers Parameters) and parameters_helper.rb (the bundles are "return")."""

from __future__ import annotations

import copy
from typing import Any

from fastapi.testclient import TestClient

from tests.api.conftest import post_fhir
from tests.conformance.pas.conftest import kit_fixture

SUBMIT, INQUIRE = "/fhir/Claim/$submit", "/fhir/Claim/$inquire"
DAR = "http://terminology.hl7.org/CodeSystem/data-absent-reason"


def _returned(r: Any) -> list[dict[str, Any]]:
    body = r.json()
    assert r.status_code == 200, r.text
    assert body["resourceType"] == "Parameters"
    bundles = [p["resource"] for p in body.get("parameter", [])]
    assert all(p["name"] == "return" for p in body.get("parameter", []))
    assert all(b["resourceType"] == "Bundle" for b in bundles)
    return bundles


def _case_ids(bundles: list[dict[str, Any]]) -> list[str]:
    return [b["entry"][0]["resource"]["id"] for b in bundles]


def _submit(client: TestClient, bundle: dict[str, Any]) -> str:
    r = post_fhir(client, SUBMIT, bundle)
    assert r.status_code == 201, r.text
    return str(r.json()["entry"][0]["resource"]["id"])


def _another(bundle: dict[str, Any], value: str) -> dict[str, Any]:
    other = copy.deepcopy(bundle)
    other["entry"][0]["resource"]["identifier"][0]["value"] = value
    return other


def test_the_kits_inquiry_finds_its_request_though_the_service_codes_differ(
    client: TestClient,
) -> None:
    """Kit conformant_pas_inquire_bundle_v110.json asks with X12 1365 code "3" for the
    request conformant_pas_bundle_v110.json made: matched by member, provider and the trace
    number (Claim.identifier 111099), answered with Parameters.return (2.2.1)."""
    case_id = _submit(client, kit_fixture("conformant_pas_bundle_v110.json"))
    r = post_fhir(client, INQUIRE, kit_fixture("conformant_pas_inquire_bundle_v110.json"))
    bundles = _returned(r)
    assert _case_ids(bundles) == [case_id]
    assert bundles[0]["meta"]["profile"][0].endswith("profile-pas-inquiry-response-bundle")
    assert bundles[0]["identifier"]["value"]


def test_every_matching_case_is_returned_newest_first(client: TestClient) -> None:
    """Claim-inquiry return 0..*: each matching case, not only the newest; "not-applicable"
    (data-absent-reason) as the service asks for every service."""
    request = kit_fixture("conformant_pas_bundle_v110.json")
    first = _submit(client, _another(request, "first"))
    second = _submit(client, _another(request, "second"))
    inquiry = kit_fixture("conformant_pas_inquire_bundle_v110.json")
    claim = inquiry["entry"][0]["resource"]
    claim["identifier"][0]["value"] = "a-new-inquiry"
    for item in claim["item"]:
        item.pop("extension", None)  # no item trace numbers: a search by example
        item["productOrService"] = {"coding": [{"system": DAR, "code": "not-applicable"}]}
    ids = _case_ids(_returned(post_fhir(client, INQUIRE, inquiry)))
    assert set(ids) == {first, second}


def test_no_match_is_an_empty_parameters_not_404(client: TestClient) -> None:
    """Claim-inquiry: return is 0..*; nothing found is a Parameters without return."""
    r = post_fhir(client, INQUIRE, kit_fixture("conformant_pas_inquire_bundle_v110.json"))
    assert _returned(r) == []


def test_the_inquiry_may_come_as_the_operations_resource_parameter(client: TestClient) -> None:
    """Claim-inquiry parameter "resource" (in, 1..1): a Parameters body is unwrapped."""
    case_id = _submit(client, kit_fixture("conformant_pas_bundle_v110.json"))
    body = {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "resource", "resource": kit_fixture("conformant_pas_inquire_bundle_v110.json")}
        ],
    }
    assert _case_ids(_returned(post_fhir(client, INQUIRE, body))) == [case_id]


def test_a_201_client_still_gets_one_bundle(client: TestClient) -> None:
    """PAS 2.0.1 Claim-inquiry answers a Bundle: an inquiry whose profile names 2.0.1."""
    case_id = _submit(client, kit_fixture("conformant_pas_bundle_v110.json"))
    inquiry = kit_fixture("conformant_pas_inquire_bundle_v110.json")
    inquiry["meta"]["profile"] = [inquiry["meta"]["profile"][0] + "|2.0.1"]
    r = post_fhir(client, INQUIRE, inquiry)
    assert r.status_code == 200, r.text
    assert r.json()["resourceType"] == "Bundle"
    assert r.json()["entry"][0]["resource"]["id"] == case_id
