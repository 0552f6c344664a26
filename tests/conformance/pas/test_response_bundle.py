"""PAS 2.2.1 response Bundle: identifier, items and documentation requests (issue 13 item 8;
IG profiles profile-pas-response-bundle, profile-claimresponse-base, profile-communicationrequest,
ValueSet pas-loinc-attachment-codes; davinci-pas-test-kit approval_pa_submit_request.json)."""

from __future__ import annotations

import copy
import json
from typing import Any

from fastapi.testclient import TestClient

from priorauth.demo.samples import hemgenix_request
from tests.api.conftest import action_codes, claim_response, post_fhir
from tests.conformance.pas.conftest import kit_fixture
from tests.conftest import shared_dir

SUBMIT = "/fhir/Claim/$submit"
PAS = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition/"
TRACE = PAS + "extension-itemTraceNumber"


def _loinc_attachment_codes() -> set[str]:
    path = shared_dir("igs", "davinci-pas-2.2.1") / "ValueSet-pas-loinc-attachment-codes.json"
    vs = json.loads(path.read_text())
    return {c["code"] for inc in vs["compose"]["include"] for c in inc.get("concept", [])}


def _traces(item: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["valueIdentifier"] for e in item.get("extension", []) if e["url"] == TRACE]


def test_every_response_bundle_has_an_identifier(client: TestClient) -> None:
    """profile-pas-response-bundle: Bundle.identifier 1..1 (2.2.1), the request's echoed."""
    request = kit_fixture("approval_pa_submit_request.json")
    r = post_fhir(client, SUBMIT, request)
    assert r.status_code == 201, r.text
    assert r.json()["identifier"] == request["identifier"]
    without = hemgenix_request(name="no-bundle-identifier")
    without.pop("identifier", None)
    identifier = post_fhir(client, SUBMIT, without).json()["identifier"]
    assert identifier["system"] == "urn:ietf:rfc:3986" and identifier["value"].startswith("urn:")


def test_item_trace_numbers_are_echoed(client: TestClient) -> None:
    """profile-claimresponse-base ClaimResponse.item.extension:itemTraceNumber: the Claim
    item's trace numbers come back on the ClaimResponse item of the same sequence."""
    request = kit_fixture("approval_pa_submit_request.json")
    cr = claim_response(post_fhir(client, SUBMIT, request))
    sent = {i["sequence"]: _traces(i) for i in request["entry"][0]["resource"]["item"]}
    assert any(sent.values())
    for item in cr["item"]:
        assert _traces(item) == sent[item["itemSequence"]]


def test_an_item_cancelled_by_info_cancelled_is_answered_as_cancelled(client: TestClient) -> None:
    """modifierextension-infoCancelled (Claim.item): a modifier, so honoured, not ignored:
    that item's reviewAction is C; the others are judged as usual."""
    request = copy.deepcopy(kit_fixture("conformant_pas_bundle_v110.json"))
    claim = request["entry"][0]["resource"]
    claim["identifier"] = [{"system": "urn:test", "value": "info-cancelled"}]
    extra = copy.deepcopy(claim["item"][0])
    extra["sequence"] = max(i["sequence"] for i in claim["item"]) + 1
    extra["modifierExtension"] = [
        {"url": PAS + "modifierextension-infoCancelled", "valueBoolean": True}
    ]
    claim["item"].append(extra)
    r = post_fhir(client, SUBMIT, request)
    assert r.status_code == 201, r.text
    codes = action_codes(claim_response(r))
    assert codes[-1] == "C" and "C" not in codes[:-1]


def test_documentation_requests_follow_the_221_communication_request_profile(
    client: TestClient,
) -> None:
    """profile-communicationrequest (2.2.1): identifier 0..1 (the attachment control number),
    payload 0..1 with contentString from pas-loinc-attachment-codes: one per document."""
    bundle = hemgenix_request(
        name="comm-request", labs={"777-3": None}, attestations={"no-uncontrolled-hiv": None}
    )
    r = post_fhir(client, SUBMIT, bundle)
    cr = claim_response(r)
    entries = {e["fullUrl"]: e["resource"] for e in r.json()["entry"]}
    comms = [entries[ref["reference"]] for ref in cr["communicationRequest"]]
    assert len(comms) >= 2
    codes = _loinc_attachment_codes()
    ids = set()
    for comm in comms:
        assert len(comm["identifier"]) == 1
        ids.add(comm["identifier"][0]["value"])
        (payload,) = comm["payload"]
        assert payload["contentString"] in codes
    assert len(ids) == len(comms)
