"""PAS: one Claim.identifier is one request (issue 13 item 9; davinci-pas-test-kit fixtures
approval/denial/pended_pa_submit_request.json, which all carry Claim.identifier 111099)."""

from __future__ import annotations

import copy

from fastapi.testclient import TestClient

from tests.api.conftest import post_fhir
from tests.conformance.pas.conftest import kit_fixture

SUBMIT = "/fhir/Claim/$submit"


def test_the_same_request_again_is_answered_with_its_own_case(client: TestClient) -> None:
    """Kit approval and denial requests are byte-for-byte the same bundle: one case."""
    first = post_fhir(client, SUBMIT, kit_fixture("approval_pa_submit_request.json"))
    again = post_fhir(client, SUBMIT, kit_fixture("denial_pa_submit_request.json"))
    assert first.status_code == 201, first.text
    assert again.status_code == 200, again.text
    assert again.json()["entry"][0]["resource"]["id"] == first.json()["entry"][0]["resource"]["id"]


def test_a_resend_with_a_new_bundle_id_and_timestamp_is_still_the_same_request(
    client: TestClient,
) -> None:
    """The digest covers the content, not the Bundle's envelope (id, meta, timestamp)."""
    bundle = kit_fixture("approval_pa_submit_request.json")
    assert post_fhir(client, SUBMIT, bundle).status_code == 201
    resent = copy.deepcopy(bundle)
    resent["id"], resent["timestamp"] = "resent", "2026-01-01T00:00:00Z"
    assert post_fhir(client, SUBMIT, resent).status_code == 200


def test_another_request_under_the_same_identifier_is_refused_with_an_outcome(
    client: TestClient,
) -> None:
    """Kit pended request: same Claim.identifier 111099, other content, no Claim.related.
    Refused with 409 and an OperationOutcome, never answered with the approval's case."""
    assert (
        post_fhir(client, SUBMIT, kit_fixture("approval_pa_submit_request.json")).status_code == 201
    )
    r = post_fhir(client, SUBMIT, kit_fixture("pended_pa_submit_request.json"))
    assert r.status_code == 409, r.text
    outcome = r.json()
    assert outcome["resourceType"] == "OperationOutcome"
    issue = outcome["issue"][0]
    assert issue["code"] == "conflict"
    assert "111099" in issue["diagnostics"] and "related" in issue["diagnostics"]
