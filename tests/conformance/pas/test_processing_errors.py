"""PAS 2.2.1 processing errors: ClaimResponse.error for business errors, OperationOutcome for
a Bundle that cannot be processed (IG specification.html spec-40, spec-46, "Prior
Authorization Transaction Error Handling"; profile-claimresponse error, extensions
errorPath / errorElement / errorFollowupAction, ValueSet X12278RejectReasonCodes;
davinci-pas-test-kit fixtures response_processing_error.json and
response_operation_failure_operation_outcome.json)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from priorauth.demo.samples import hemgenix_request
from priorauth.service.app_service import PriorAuthService
from tests.api.conftest import post_fhir
from tests.conformance.pas.conftest import kit_fixture

SUBMIT = "/fhir/Claim/$submit"
PAS = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/"
X12_REJECT = "https://codesystem.x12.org/005010/901"
X12_FOLLOWUP = "https://codesystem.x12.org/005010/889"


def _zero_quantity(name: str) -> dict[str, Any]:
    """A request valid as FHIR (Quantity.value may be 0) whose item cannot be judged."""
    bundle = hemgenix_request(name=name)
    bundle["entry"][0]["resource"]["item"][0]["quantity"] = {"value": 0}
    return bundle


def _ext(element: dict[str, Any], name: str) -> dict[str, Any]:
    return next(e for e in element["extension"] if e["url"] == PAS + name)


def test_an_item_that_cannot_be_judged_is_answered_with_claim_response_error(
    client: TestClient,
) -> None:
    """spec-40 / profile-claimresponse: an error the payer finds while processing a request
    that is valid FHIR is conveyed by ClaimResponse.error (outcome "error"), in a 2xx PAS
    response Bundle (spec-46), shaped as the kit's response_processing_error.json."""
    request = _zero_quantity("zero-quantity")
    r = post_fhir(client, SUBMIT, request)
    assert r.status_code == 200, r.text
    bundle = r.json()
    kit = kit_fixture("response_processing_error.json")
    assert bundle["resourceType"] == kit["resourceType"] == "Bundle"
    assert bundle["type"] == kit["type"] == "collection"
    assert bundle["meta"]["profile"] == [PAS + "profile-pas-response-bundle"]
    assert bundle["identifier"] == request["identifier"]
    cr = bundle["entry"][0]["resource"]
    kit_cr = kit["entry"][0]["resource"]
    assert cr["resourceType"] == kit_cr["resourceType"] == "ClaimResponse"
    assert cr["meta"]["profile"] == kit_cr["meta"]["profile"]
    assert cr["outcome"] == kit_cr["outcome"] == "error"
    assert cr["status"] == "active" and cr["use"] == "preauthorization"
    assert cr["identifier"][0] == request["entry"][0]["resource"]["identifier"][0]
    assert "item" not in cr  # nothing was adjudicated
    (error,) = cr["error"]
    # error.code 1..1, bound (required) to X12 278 reject reasons: the X12 901 system.
    assert error["code"]["coding"][0]["system"] == kit_cr["error"][0]["code"]["coding"][0]["system"]
    assert error["code"]["coding"][0]["system"] == X12_REJECT
    assert error["itemSequence"] == 1
    path = _ext(error, "extension-errorPath")["valueString"]
    assert path == "Bundle.entry[0].resource.item[0].quantity.value"
    follow = _ext(error, "extension-errorFollowupAction")["valueCodeableConcept"]
    assert follow["coding"][0] == {
        "system": X12_FOLLOWUP,
        "code": "C",
        "display": "Please Correct and Resubmit",
    }
    note_number = _ext(error, "extension-errorElement")["extension"][0]["valuePositiveInt"]
    note = next(n for n in cr["processNote"] if n["number"] == note_number)
    assert "greater than 0" in note["text"]
    # Every reference of the ClaimResponse resolves inside the response Bundle.
    urls = {e["fullUrl"] for e in bundle["entry"]}
    for key in ("patient", "insurer", "requestor"):
        assert cr[key]["reference"] in urls


def test_an_unjudged_request_stores_nothing_and_may_be_corrected(
    client: TestClient, service: PriorAuthService
) -> None:
    """errorFollowupAction C (correct and resubmit): the rejected request leaves no case,
    so the corrected one, under the same Claim.identifier, is a new request (201)."""
    before = len(service.open_cases())
    bad = _zero_quantity("resubmit-after-error")
    assert post_fhir(client, SUBMIT, bad).status_code == 200
    assert len(service.open_cases()) == before
    good = hemgenix_request(name="resubmit-after-error")
    r = post_fhir(client, SUBMIT, good)
    assert r.status_code == 201, r.text
    assert r.json()["entry"][0]["resource"]["outcome"] == "complete"


def test_a_bundle_that_cannot_be_processed_stays_an_operation_outcome(client: TestClient) -> None:
    """spec-40: validation errors are an OperationOutcome and no ClaimResponse, as the kit's
    response_operation_failure_operation_outcome.json (severity error, an IssueType code)."""
    kit = kit_fixture("response_operation_failure_operation_outcome.json")
    bundle = hemgenix_request(name="no-claim-use")
    del bundle["entry"][0]["resource"]["use"]
    r = post_fhir(client, SUBMIT, bundle)
    assert 400 <= r.status_code < 500, r.text
    body = r.json()
    assert body["resourceType"] == kit["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["severity"] == kit["issue"][0]["severity"] == "error"
    assert "ClaimResponse" not in r.text
