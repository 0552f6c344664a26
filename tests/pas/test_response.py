"""PAS response Bundles rendered from cases (pas.response) and OperationOutcomes."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.operationoutcome import OperationOutcome

from priorauth.intake.request import PasRequest
from priorauth.pas.records import CaseRecord, CaseStatus, Decision
from priorauth.pas.request import read_keys
from priorauth.pas.response import (
    ITEM_ISSUE_DATE,
    ITEM_PERIOD,
    NDC,
    REVIEW_ACTION,
    REVIEW_ACTION_CODE,
    claim_response_bundle,
    operation_outcome,
)
from priorauth.report.evaluation import Evaluation
from tests.conftest import shared_dir

NOW = datetime(2026, 5, 6, 14, 30, tzinfo=UTC)
RECEIVED = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
CASE_ID = "0b9d1f8e-5c2a-4e61-9a7d-3f1e2d4c5b6a"
AUTH = "PA26-000042"
MISSING = [
    "Platelet count (LOINC 777-3) dated within 30 days.",
    "Prescriber's confirmation of no uncontrolled HIV infection (attestation no-uncontrolled-hiv).",
]
EVALUATION: dict[str, Any] = {
    "schema": "priorauth.determination/1",
    "recommendation": "pend",
    "criteria": {
        "I.ii": {
            "status": "not_met",
            "text": "Aspartate aminotransferase level is <= two times the upper limit of normal.",
            "reason": "AST 150 U/L on 2026-04-25 is 3.12 x ULN 48.",
        },
        "K": {"status": "unknown", "text": "Platelet count >= 50 x 10^9/L.", "reason": None},
    },
    "authorization": {"start": "2026-05-04", "end": "2026-08-01"},
    "policy": {
        "id": "cigna-ip0535",
        "number": "IP0535",
        "version": "2026-03-12",
        "selected": {"why": "in force on the date of service 2026-05-25"},
    },
    "missing": MISSING,
    "reasons": [{"id": "I.ii", "text": "AST ...", "reason": "AST 150 U/L"}],
}


def _request(name: str = "approve.json") -> dict[str, Any]:
    data: dict[str, Any] = json.loads((shared_dir("examples", "hemgenix") / name).read_text())
    return data


def _case(
    status: CaseStatus,
    decision: Decision | None = None,
    *,
    request: dict[str, Any] | None = None,
    evaluation: dict[str, Any] | None = None,
) -> CaseRecord:
    bundle = request if request is not None else _request()
    return CaseRecord(
        id=CASE_ID,
        status=status,
        keys=read_keys(bundle),
        auth_number=AUTH,
        received_at=RECEIVED,
        due_at=RECEIVED + timedelta(days=3),
        policy_id="cigna-ip0535",
        recommendation="pend",
        evaluation=Evaluation.parse(EVALUATION if evaluation is None else evaluation),
        request=PasRequest(None, bundle),
        decision=decision,
    )


def _decision(kind: Any, **kw: Any) -> Decision:
    base: dict[str, Any] = {
        "kind": kind,
        "decided_at": NOW,
        "decided_by": "md-1",
        "reason": None,
        "auth_start": date(2026, 5, 6),
        "auth_end": date(2026, 8, 3),
    }
    return Decision(**{**base, **kw})


APPROVED = _decision("approve", reason="Meets IP0535.")
MODIFIED = _decision(
    "approve-modified", product_ndc="0053-0180-18", product_vials=18, quantity=1, unit="kit"
)
DENIED = _decision(
    "deny",
    reason="Liver function outside policy limits.",
    criteria=("I.ii",),
    auth_start=None,
    auth_end=None,
)


def _render(case: CaseRecord, **kw: Any) -> dict[str, Any]:
    bundle = claim_response_bundle(case, now=NOW, **kw)
    Bundle.model_validate(bundle)  # FHIR R4(B) structure, every entry resource included
    _assert_references_resolve(bundle)
    return bundle


def _claim_response(bundle: dict[str, Any]) -> dict[str, Any]:
    first: dict[str, Any] = bundle["entry"][0]["resource"]
    assert first["resourceType"] == "ClaimResponse"
    return first


def _review(adjudication: list[dict[str, Any]]) -> dict[str, Any]:
    (ext,) = [e for e in adjudication[0]["extension"] if e["url"] == REVIEW_ACTION]
    out: dict[str, Any] = {}
    for part in ext["extension"]:
        if part["url"] == REVIEW_ACTION_CODE:
            out["code"] = part["valueCodeableConcept"]["coding"][0]["code"]
        elif part["url"] == "number":
            out["number"] = part["valueString"]
        elif part["url"] == "reasonCode":
            out["reason"] = part["valueCodeableConcept"]["coding"][0]["code"]
    return out


def _extension(element: dict[str, Any], url: str) -> Any:
    found = [e for e in element.get("extension", []) if e["url"] == url]
    return found[0] if found else None


def _references(node: Any) -> list[str]:
    if isinstance(node, dict):
        here = [node["reference"]] if isinstance(node.get("reference"), str) else []
        return here + [r for v in node.values() for r in _references(v)]
    if isinstance(node, list):
        return [r for v in node for r in _references(v)]
    return []


def _assert_references_resolve(bundle: dict[str, Any]) -> None:
    """Every Reference.reference names an entry: by fullUrl, or "Type/id" of an entry."""
    full_urls = {e["fullUrl"] for e in bundle["entry"]}
    type_ids = {
        f"{e['resource']['resourceType']}/{e['resource'].get('id')}" for e in bundle["entry"]
    }
    assert len(full_urls) == len(bundle["entry"]), "fullUrls are unique"
    for ref in _references(bundle["entry"]):
        assert ref in full_urls or ref in type_ids, f"{ref} does not resolve in the bundle"


# --- the four decisions and the pend ---------------------------------------------------


def test_pended_with_missing_documentation() -> None:
    bundle = _render(_case("pended"))
    assert bundle["type"] == "collection"
    assert bundle["meta"]["profile"] == [
        "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/profile-pas-response-bundle"
    ]
    response = _claim_response(bundle)
    assert response["id"] == CASE_ID
    assert response["outcome"] == "complete"
    assert response["status"] == "active"
    assert response["use"] == "preauthorization"
    assert response["preAuthRef"] == AUTH
    assert "preAuthPeriod" not in response
    (item,) = response["item"]
    assert item["itemSequence"] == 1
    assert _review(item["adjudication"]) == {"code": "A4", "number": AUTH, "reason": "0U"}
    assert _extension(item, ITEM_PERIOD) is None
    assert _extension(item, ITEM_ISSUE_DATE) is None
    notes = [n["text"] for n in response["processNote"]]
    assert notes[:2] == [f"Missing documentation: {m}" for m in MISSING]
    assert any("Medical Director review" in n for n in notes)
    assert all(n["type"] == "display" for n in response["processNote"])
    assert [n["number"] for n in response["processNote"]] == list(range(1, len(notes) + 1))

    # PAS 2.2.1: one CommunicationRequest per missing document (payload 0..1), each with
    # an identifier and a LOINC attachment code; the engine's words are its note.
    refs = response["communicationRequest"]
    assert len(refs) == len(MISSING)
    for ref, words in zip(refs, MISSING, strict=True):
        comm = next(e for e in bundle["entry"] if e["fullUrl"] == ref["reference"])["resource"]
        assert comm["resourceType"] == "CommunicationRequest"
        assert comm["status"] == "active"
        assert len(comm["identifier"]) == 1 and comm["identifier"][0]["value"]
        assert [p["contentString"] for p in comm["payload"]] == ["11503-0"]
        assert comm["note"] == [{"text": words}]
        assert comm["subject"] == response["patient"]
        assert comm["recipient"] == [response["requestor"]]


def test_pended_without_missing_documents_has_no_communication_request() -> None:
    bundle = _render(_case("pended", evaluation={**EVALUATION, "missing": []}))
    response = _claim_response(bundle)
    assert "communicationRequest" not in response
    assert not any(e["resource"]["resourceType"] == "CommunicationRequest" for e in bundle["entry"])
    assert _review(response["item"][0]["adjudication"]) == {
        "code": "A4",
        "number": AUTH,
        "reason": "0V",
    }


def test_pended_without_a_policy_or_evaluation() -> None:
    case = dataclasses.replace(_case("pended"), policy_id=None, evaluation=None)
    response = _claim_response(_render(case))
    assert any("No coverage policy" in n["text"] for n in response["processNote"])


def test_approved() -> None:
    response = _claim_response(_render(_case("approved", APPROVED)))
    (item,) = response["item"]
    assert _review(item["adjudication"]) == {"code": "A1", "number": AUTH}
    period = {"start": "2026-05-06", "end": "2026-08-03"}
    assert response["preAuthPeriod"] == period
    assert _extension(item, ITEM_PERIOD)["valuePeriod"] == period
    assert _extension(item, ITEM_ISSUE_DATE)["valueDate"] == "2026-05-06"
    assert response["preAuthRef"] == AUTH
    assert "addItem" not in response
    assert "communicationRequest" not in response
    assert any("Meets IP0535." in n["text"] for n in response["processNote"])


def test_approved_falls_back_on_the_engine_authorization_window() -> None:
    decision = _decision("approve", auth_start=None, auth_end=None)
    response = _claim_response(_render(_case("approved", decision)))
    assert response["preAuthPeriod"] == {"start": "2026-05-04", "end": "2026-08-01"}


def test_modified_adds_the_right_kit() -> None:
    request = _request("approve-modified.json")
    response = _claim_response(_render(_case("modified", MODIFIED, request=request)))
    (item,) = response["item"]
    assert _review(item["adjudication"])["code"] == "A6"
    assert _extension(item, ITEM_PERIOD) is not None
    (added,) = response["addItem"]
    assert added["itemSequence"] == [1]
    assert added["productOrService"]["coding"] == [{"system": NDC, "code": "0053-0180-18"}]
    assert added["quantity"] == {"value": 1, "unit": "kit"}
    assert _review(added["adjudication"]) == {"code": "A1", "number": AUTH}
    assert response["preAuthPeriod"] == {"start": "2026-05-06", "end": "2026-08-03"}
    assert any("0053-0180-18" in n["text"] for n in response["processNote"])


def test_denied_cites_reason_and_criteria() -> None:
    response = _claim_response(_render(_case("denied", DENIED)))
    (item,) = response["item"]
    assert _review(item["adjudication"]) == {"code": "A3", "number": AUTH, "reason": "0F"}
    assert "preAuthPeriod" not in response
    assert _extension(item, ITEM_PERIOD) is None
    assert _extension(item, ITEM_ISSUE_DATE)["valueDate"] == "2026-05-06"
    assert response["preAuthRef"] == AUTH
    notes = [n["text"] for n in response["processNote"]]
    assert notes[0] == "Reason for denial: Liver function outside policy limits."
    assert notes[1].startswith(
        "Criterion I.ii not met: Aspartate aminotransferase level is <= two times"
    )
    assert "communicationRequest" not in response
    assert notes[-1] == (
        "Judged under coverage policy IP0535 version 2026-03-12: "
        "in force on the date of service 2026-05-25."
    )
    assert item["noteNumber"] == list(range(1, len(notes) + 1))


def test_denied_without_cited_criteria_cites_the_engine_reasons() -> None:
    decision = _decision("deny", reason="Not met.", auth_start=None, auth_end=None)
    response = _claim_response(_render(_case("denied", decision)))
    assert any(n["text"].startswith("Criterion I.ii not met") for n in response["processNote"])


def test_cancelled() -> None:
    response = _claim_response(_render(_case("cancelled", APPROVED)))
    assert response["status"] == "active"  # fixed by the PAS profile
    (item,) = response["item"]
    assert _review(item["adjudication"]) == {"code": "C", "number": AUTH}
    assert "preAuthPeriod" not in response
    assert _extension(item, ITEM_PERIOD) is None


# --- bundle contents ---------------------------------------------------------------


def test_parties_are_copied_with_their_request_full_urls() -> None:
    request = _request()
    bundle = _render(_case("approved", APPROVED, request=request))
    response = _claim_response(bundle)
    claim = request["entry"][0]["resource"]
    assert response["patient"] == claim["patient"]
    assert response["insurer"] == claim["insurer"]
    assert response["requestor"] == claim["provider"]
    assert response["identifier"] == claim["identifier"]
    assert response["type"] == claim["type"]
    assert response["request"] == {"type": "Claim", "identifier": claim["identifier"][0]}
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds == ["ClaimResponse", "Patient", "Organization", "Organization"]
    # Nothing clinical leaves with the response.
    assert not {"Observation", "QuestionnaireResponse", "Condition"} & set(kinds)


def test_missing_insurer_becomes_a_minimal_organization() -> None:
    request = _request()
    claim = request["entry"][0]["resource"]
    insurer_url = claim["insurer"]["reference"]
    request["entry"] = [e for e in request["entry"] if e["fullUrl"] != insurer_url]
    claim["insurer"] = {"display": "Example Health Plan"}
    bundle = _render(_case("pended", request=request), insurer_name="Acme Health")
    response = _claim_response(bundle)
    insurer = next(e for e in bundle["entry"] if e["fullUrl"] == response["insurer"]["reference"])
    assert insurer["resource"] == {
        "resourceType": "Organization",
        "id": insurer["resource"]["id"],
        "name": "Acme Health",
    }


def test_practitioner_role_requestor_brings_what_it_references() -> None:
    request = _request()
    claim = request["entry"][0]["resource"]
    role = next(e for e in request["entry"] if e["resource"]["resourceType"] == "PractitionerRole")
    claim["provider"] = {"reference": role["fullUrl"]}
    bundle = _render(_case("approved", APPROVED, request=request))
    kinds = sorted(e["resource"]["resourceType"] for e in bundle["entry"])
    assert "Practitioner" in kinds
    assert "PractitionerRole" in kinds


@pytest.mark.parametrize(
    "name", ["approval_pa_submit_request.json", "pended_pa_submit_request.json"]
)
def test_pas_fixture_requests_render(name: str) -> None:
    request = json.loads((shared_dir("fixtures", "davinci-pas") / name).read_text())
    bundle = _render(_case("pended", request=request))
    response = _claim_response(bundle)
    assert (
        response["patient"]["reference"] == "http://davinci-pas.org/fhir/Patient/SubscriberExample"
    )
    assert response["identifier"][0]["assigner"]  # the trace number is echoed as sent


def test_inquiry_flavour_uses_the_inquiry_profiles() -> None:
    bundle = _render(_case("pended"), inquiry=True)
    assert bundle["meta"]["profile"][0].endswith("profile-pas-inquiry-response-bundle")
    response = _claim_response(bundle)
    assert response["meta"]["profile"][0].endswith("profile-claiminquiryresponse")
    assert "communicationRequest" not in response


def test_stored_request_without_a_claim_still_renders() -> None:
    broken = dataclasses.replace(_case("pended"), request=PasRequest(None, {}))
    bundle = _render(broken)
    response = _claim_response(bundle)
    assert response["item"][0]["itemSequence"] == 1
    assert response["identifier"] == [
        {"system": "http://example.org/provider/claim-trace", "value": "PA-example-approve"}
    ]


def test_each_render_is_a_new_bundle() -> None:
    case = _case("pended")
    first, second = (claim_response_bundle(case, now=NOW) for _ in range(2))
    assert first["id"] != second["id"]
    assert first["entry"] == second["entry"]


# --- OperationOutcome ----------------------------------------------------------------


def test_operation_outcome() -> None:
    outcome = operation_outcome(
        "invalid", "Bundle: resourceType must be Bundle", expression="Bundle"
    )
    OperationOutcome.model_validate(outcome)
    assert outcome == {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": "invalid",
                "diagnostics": "Bundle: resourceType must be Bundle",
                "expression": ["Bundle"],
            }
        ],
    }
    warning = operation_outcome("throttled", "slow down", severity="warning")
    OperationOutcome.model_validate(warning)
    assert "expression" not in warning["issue"][0]


def test_operation_outcome_refuses_unknown_codes() -> None:
    with pytest.raises(ValueError, match="issue-type"):
        operation_outcome("bad-request", "x")
    with pytest.raises(ValueError, match="issue-severity"):
        operation_outcome("invalid", "x", severity="fatalish")


# --- requests from the sample builder (no ../shared needed) -----------------------------


@pytest.mark.parametrize(
    ("status", "decision", "code"),
    [
        ("pended", None, "A4"),
        ("approved", APPROVED, "A1"),
        ("modified", MODIFIED, "A6"),
        ("denied", DENIED, "A3"),
        ("cancelled", None, "C"),
    ],
)
def test_sample_requests_render(status: CaseStatus, decision: Decision | None, code: str) -> None:
    samples = pytest.importorskip("priorauth.demo.samples")
    request = samples.hemgenix_request(name=f"pas-{status}", ndc="0053-0170-17")
    case = _case(status, decision, request=request)
    response = _claim_response(_render(case))
    assert _review(response["item"][0]["adjudication"])["code"] == code
    assert response["identifier"] == request["entry"][0]["resource"]["identifier"]
    assert ("addItem" in response) == (status == "modified")
