"""PAS $submit, $inquire and ClaimResponse reads, end to end through HTTP."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from priorauth.demo.samples import Lab, hemgenix_request
from priorauth.intake.references import BundleIndex
from priorauth.service.app_service import PriorAuthService
from priorauth.store.models import CaseEventRow, CaseRow
from tests.api.conftest import action_codes, claim_response, post_fhir

SUBMIT, INQUIRE = "/fhir/Claim/$submit", "/fhir/Claim/$inquire"


def inquiry_for(request: dict) -> dict:
    """A PAS inquiry built from a request: same member, provider and service."""
    q = copy.deepcopy(request)
    q["entry"][0]["resource"]["identifier"] = [{"system": "urn:test:inquiry", "value": "Q1"}]
    return q


def count_cases(service: PriorAuthService) -> int:
    with service.sessions() as s:
        return s.scalar(select(func.count()).select_from(CaseRow)) or 0


def test_submit_pends_for_the_medical_director_and_stores_the_recommendation(
    client: TestClient, service: PriorAuthService
) -> None:
    r = post_fhir(client, SUBMIT, hemgenix_request(name="api-approve"))
    assert r.status_code == 201, r.text
    assert r.headers["content-type"].startswith("application/fhir+json")
    cr = claim_response(r)
    assert cr["outcome"] == "complete"
    assert action_codes(cr) == ["A4"]
    case = service.case(cr["id"])
    assert case.recommendation == "approve"
    assert case.evaluation is not None and case.evaluation.dose is not None
    assert case.evaluation.dose.ndc == "0053-0180-18"
    assert (case.evaluation.dose.quantity, case.evaluation.dose.unit) == (1, "kit")
    assert case.due_at - case.received_at == __import__("datetime").timedelta(hours=72)
    # the ClaimResponse can be read back by id
    again = client.get(f"/fhir/ClaimResponse/{cr['id']}")
    assert again.status_code == 200 and action_codes(again.json()) == ["A4"]


def test_expedited_requests_get_a_24_hour_clock(
    service: PriorAuthService, client: TestClient
) -> None:
    r = post_fhir(client, SUBMIT, hemgenix_request(name="api-urgent", priority="urgent"))
    case = service.case(claim_response(r)["id"])
    assert case.due_at - case.received_at == __import__("datetime").timedelta(hours=24)


def test_resubmission_returns_the_existing_case(
    client: TestClient, service: PriorAuthService
) -> None:
    bundle = hemgenix_request(name="api-dup")
    first = post_fhir(client, SUBMIT, bundle)
    second = post_fhir(client, SUBMIT, bundle)
    assert (first.status_code, second.status_code) == (201, 200)
    assert claim_response(first)["id"] == claim_response(second)["id"]
    assert count_cases(service) == 1


def test_pended_response_names_what_is_missing(client: TestClient) -> None:
    bundle = hemgenix_request(
        name="api-pend", labs={"777-3": None}, attestations={"no-uncontrolled-hiv": None}
    )
    r = post_fhir(client, SUBMIT, bundle)
    cr = claim_response(r)
    notes = " ".join(n["text"] for n in cr.get("processNote", []))
    assert "777-3" in notes and "no-uncontrolled-hiv" in notes
    entries = {e["fullUrl"]: e["resource"] for e in r.json()["entry"]}
    comms = [entries[ref["reference"]] for ref in cr["communicationRequest"]]
    assert all(c["resourceType"] == "CommunicationRequest" for c in comms)
    # One request per document; the words are the note, the payload a LOINC attachment code.
    words = " ".join(c["note"][0]["text"] for c in comms)
    assert "777-3" in words and "no-uncontrolled-hiv" in words


def test_decisions_flow_to_the_claim_response_and_inquiry(client: TestClient) -> None:
    bundle = hemgenix_request(name="api-decide")
    cr = claim_response(post_fhir(client, SUBMIT, bundle))
    d = client.post(f"/api/cases/{cr['id']}/decision", json={"decision": "approve"})
    assert d.status_code == 200, d.text
    assert d.json()["decision"]["authorization"] == {"start": "2026-05-04", "end": "2026-08-01"}
    r = post_fhir(client, INQUIRE, inquiry_for(bundle))
    assert r.status_code == 200, r.text
    final = claim_response(r)
    assert action_codes(final) == ["A1"]
    assert final["preAuthRef"]
    period = next(
        e["valuePeriod"]
        for e in final["item"][0]["extension"]
        if e["url"].endswith("itemPreAuthPeriod")
    )
    assert period == {"start": "2026-05-04", "end": "2026-08-01"}
    # deciding twice is refused
    again = client.post(
        f"/api/cases/{cr['id']}/decision",
        json={"decision": "deny", "reason": "x", "criteria": ["K"]},
    )
    assert again.status_code == 409
    assert again.json()["resourceType"] == "OperationOutcome"


def test_approve_modified_authorizes_the_right_kit(client: TestClient) -> None:
    bundle = hemgenix_request(name="api-mod", ndc="0053-0170-17")
    cr = claim_response(post_fhir(client, SUBMIT, bundle))
    d = client.post(
        f"/api/cases/{cr['id']}/decision",
        json={"decision": "approve-modified"},
    )
    assert d.status_code == 200, d.text
    final = claim_response(
        client.post(INQUIRE, content=__import__("orjson").dumps(inquiry_for(bundle)))
    )
    assert action_codes(final) == ["A6"]
    added = final["addItem"][0]["productOrService"]["coding"][0]
    assert added["code"] == "0053-0180-18"


def test_denial_needs_a_reason_and_criteria_and_is_returned_with_them(
    client: TestClient,
) -> None:
    bundle = hemgenix_request(
        name="api-deny", labs={"1920-8": Lab(150, "U/L", uln=48, days_before=3)}
    )
    cr = claim_response(post_fhir(client, SUBMIT, bundle))
    url = f"/api/cases/{cr['id']}/decision"
    assert client.post(url, json={"decision": "deny"}).status_code == 422
    no_criteria = {"decision": "deny", "reason": "AST too high"}
    assert client.post(url, json=no_criteria).status_code == 422
    bad_id = {**no_criteria, "criteria": ["Z.9"]}
    assert client.post(url, json=bad_id).status_code == 422
    ok = {**no_criteria, "reason": "AST 150 U/L is 3.1 times the upper limit", "criteria": ["I.ii"]}
    assert client.post(url, json=ok).status_code == 200
    final = claim_response(post_fhir(client, INQUIRE, inquiry_for(bundle)))
    assert action_codes(final) == ["A3"]
    notes = " ".join(n["text"] for n in final["processNote"])
    assert "AST 150 U/L is 3.1 times the upper limit" in notes
    assert "I.ii" in notes


def test_one_approval_per_member_ever(client: TestClient) -> None:
    first = hemgenix_request(name="api-life-1", member_id="MLIFE")
    second = hemgenix_request(name="api-life-2", member_id="MLIFE")
    ids = [claim_response(post_fhir(client, SUBMIT, b))["id"] for b in (first, second)]
    approve = {"decision": "approve"}
    assert client.post(f"/api/cases/{ids[0]}/decision", json=approve).status_code == 200
    refused = client.post(f"/api/cases/{ids[1]}/decision", json=approve)
    assert refused.status_code == 409
    assert "lifetime" in refused.json()["issue"][0]["diagnostics"]
    # a denial of the second request is still possible
    deny = {
        "decision": "deny",
        "reason": "already treated",
        "criteria": ["C"],
    }
    assert client.post(f"/api/cases/{ids[1]}/decision", json=deny).status_code == 200


def test_cancel_and_revision(client: TestClient, service: PriorAuthService) -> None:
    original = hemgenix_request(name="api-rev", labs={"777-3": None})
    cr = claim_response(post_fhir(client, SUBMIT, original))
    assert service.case(cr["id"]).recommendation == "pend"
    claim = original["entry"][0]["resource"]
    # a revision that now includes the platelet count
    revised = hemgenix_request(name="api-rev")
    rclaim = revised["entry"][0]["resource"]
    rclaim["identifier"] = [{"system": "urn:test", "value": "REV-2"}]
    rclaim["related"] = [{"claim": {"identifier": claim["identifier"][0]}}]
    rclaim.setdefault("extension", []).append(
        {
            "url": "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/extension-certificationType",
            "valueCodeableConcept": {
                "coding": [{"system": "https://codesystem.x12.org/005010/1322", "code": "S"}]
            },
        }
    )
    r = post_fhir(client, SUBMIT, revised)
    assert r.status_code == 200, r.text
    assert claim_response(r)["id"] == cr["id"]
    case = service.case(cr["id"], with_history=True)
    assert case.recommendation == "approve"
    assert [h["kind"] for h in case.history] == ["submitted", "revised"]
    # then a cancellation
    cancel = copy.deepcopy(revised)
    cclaim = cancel["entry"][0]["resource"]
    cclaim["identifier"] = [{"system": "urn:test", "value": "CANCEL-3"}]
    cclaim["related"] = [{"claim": {"identifier": {"system": "urn:test", "value": "REV-2"}}}]
    cclaim["extension"][-1]["valueCodeableConcept"]["coding"][0]["code"] = "3"
    r = post_fhir(client, SUBMIT, cancel)
    assert r.status_code == 200, r.text
    assert service.case(cr["id"]).status == "cancelled"
    assert count_cases(service) == 1
    with service.sessions() as s:
        kinds = [e.kind for e in s.scalars(select(CaseEventRow).order_by(CaseEventRow.id))]
    assert kinds == ["submitted", "revised", "cancelled"]


def test_case_api_lists_open_cases_soonest_deadline_first(client: TestClient) -> None:
    post_fhir(client, SUBMIT, hemgenix_request(name="api-std"))
    post_fhir(client, SUBMIT, hemgenix_request(name="api-exp", priority="stat"))
    cases = client.get("/api/cases").json()
    assert [c["expedited"] for c in cases] == [True, False]
    one = client.get(f"/api/cases/{cases[0]['id']}").json()
    assert one["evaluation"]["criteria"]["K"]["status"] == "met"
    assert one["history"][0]["kind"] == "submitted"


def test_inquiry_without_a_match_is_an_empty_parameters(client: TestClient) -> None:
    """PAS 2.2.1 Claim-inquiry: 0..* return; no match is no return parameter, not 404."""
    r = post_fhir(client, INQUIRE, inquiry_for(hemgenix_request(name="never-sent")))
    assert r.status_code == 200
    assert r.json()["resourceType"] == "Parameters"
    assert "parameter" not in r.json()


def test_a_201_inquiry_without_a_match_is_404(client: TestClient) -> None:
    """A PAS 2.0.1 inquiry (its profile says so) keeps the Bundle answer, and 404."""
    q = inquiry_for(hemgenix_request(name="never-sent"))
    q["meta"] = {
        "profile": [
            "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/profile-pas-inquiry-request-bundle|2.0.1"
        ]
    }
    r = post_fhir(client, INQUIRE, q)
    assert r.status_code == 404
    assert r.json()["resourceType"] == "OperationOutcome"


def test_claims_history_in_the_database_drives_criterion_c(
    client: TestClient, service: PriorAuthService
) -> None:
    from priorauth.demo.samples import claims_ndjson
    from priorauth.intake.claims import read_claims
    from priorauth.store.claims import import_claims

    ndjson = claims_ndjson(
        "MPRIOR", ("http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets", "J1411")
    )
    with service.sessions() as s:
        assert import_claims(s, read_claims(ndjson.splitlines()))[0] >= 1
        assert import_claims(s, read_claims(ndjson.splitlines()))[0] == 0  # idempotent
    cr = claim_response(
        post_fhir(client, SUBMIT, hemgenix_request(name="api-prior", member_id="MPRIOR"))
    )
    ev = service.case(cr["id"]).evaluation
    assert ev is not None
    assert ev.recommendation == "deny"
    assert ev.criteria["C"].status == "not_met"
    assert ev.criteria["NC.1"].status == "applies"


def test_metadata_claims_only_what_is_served(client: TestClient) -> None:
    """Every operation and interaction in the CapabilityStatement has a route behind it."""
    cs = client.get("/fhir/metadata").json()
    served = {
        (method.upper(), path)
        for path, ops in client.get("/openapi.json").json()["paths"].items()
        for method in ops
    }
    for res in cs["rest"][0]["resource"]:
        kind = res["type"]
        for op in res.get("operation", []):
            # A type-level operation, or an instance-level one (Subscription $status).
            assert ("POST", f"/fhir/{kind}/${op['name']}") in served or any(
                m == "POST" and p.startswith(f"/fhir/{kind}/{{") and p.endswith(f"/${op['name']}")
                for m, p in served
            ), op["name"]
        for i in res.get("interaction", []):
            method, path = {
                "read": ("GET", f"/fhir/{kind}/{{"),
                "create": ("POST", f"/fhir/{kind}"),
                "update": ("PUT", f"/fhir/{kind}/{{"),
                "delete": ("DELETE", f"/fhir/{kind}/{{"),
            }[i["code"]]
            assert any(m == method and p.startswith(path) for m, p in served), (kind, i["code"])


def test_one_submit_decodes_the_body_once_and_indexes_it_once(
    client: TestClient, service: PriorAuthService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """API → one parsed request → facts → evaluation → store → response: the keys, the facts
    and the response all read the same decoded, indexed request."""
    body = orjson.dumps(hemgenix_request(name="api-once"))
    decoded: list[bytes] = []
    indexed: list[int] = []
    loads, init = orjson.loads, BundleIndex.__init__

    def counting_loads(data: Any) -> Any:
        if bytes(data) == body:
            decoded.append(bytes(data))
        return loads(data)

    def counting_init(self: BundleIndex, entries: list[Any]) -> None:
        indexed.append(len(entries))
        init(self, entries)

    monkeypatch.setattr(orjson, "loads", counting_loads)
    monkeypatch.setattr(BundleIndex, "__init__", counting_init)
    r = client.post(SUBMIT, content=body, headers={"Content-Type": "application/fhir+json"})
    assert r.status_code == 201, r.text
    assert len(decoded) == 1
    assert indexed == [len(orjson.loads(body)["entry"])]
    # The response was rendered from that request: its parties are copied from it.
    kinds = [e["resource"]["resourceType"] for e in r.json()["entry"]]
    assert "Patient" in kinds and kinds[0] == "ClaimResponse"
    # Reading the case back decodes the stored bundle again (a different request), once.
    decoded.clear()
    indexed.clear()
    again = client.get(f"/fhir/ClaimResponse/{claim_response(r)['id']}")
    assert again.status_code == 200
    assert len(decoded) == 1 and len(indexed) == 1
