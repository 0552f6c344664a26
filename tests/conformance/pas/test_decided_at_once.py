"""Decisions at once (issue 13 item 10): a policy that does not send approvals to the Medical
Director (approval.medical_director_review: denials or none) lets the engine answer A1 when
every criterion is met and no criterion needs a person (evidence md_verification); anything
else pends (A4). IP0535 sends every review to the Medical Director: it always pends.
(The kit's decision tests, davinci-pas-test-kit server pas_server_approval/denial use cases,
submit approval/denial_pa_submit_request.json: home-health codes G0154/B4185 that no loaded
policy covers, so priorauth pends them for manual review, A4; the kit takes the expected
A1/A3 from the tester's configuration, and both bundles are the same request.)"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from priorauth.api.app import create_app
from priorauth.policies import load_library, packaged_folder
from priorauth.service.app_service import PriorAuthService
from priorauth.settings import Settings
from priorauth.store.db import make_engine
from tests.api.conftest import Clock, action_codes, claim_response, post_fhir
from tests.conformance.pas.conftest import kit_fixture

SUBMIT = "/fhir/Claim/$submit"
CASES = Path(str(packaged_folder())).parent / "cases"


def _request(policy: str, case: str) -> dict:
    return json.loads((CASES / policy / case / "request.json").read_text())


@pytest.fixture
def engine_decides(tmp_path: Path, db_url: str, clock: Clock) -> Iterator[TestClient]:
    """The shipped policies, with the gene-therapy policy's one md_verification criterion
    made documentary: a policy under which nothing needs a person once all is met."""
    folder = tmp_path / "policies"
    shutil.copytree(str(packaged_folder()), folder)
    for f in folder.glob("bcbsnd-roctavian-*.yaml"):
        f.write_text(f.read_text().replace("evidence: md_verification", "evidence: documentation"))
    library = load_library([folder], packaged=False)
    engine = make_engine(db_url)
    settings = Settings(database_url=db_url, auth_enabled=False, rate_burst=100_000)
    svc = PriorAuthService(settings, engine, library, clock=clock)
    with TestClient(create_app(svc), raise_server_exceptions=False) as c:
        yield c
    svc.notifier.close()
    engine.dispose()


def test_a_fully_met_request_under_a_denials_only_policy_is_approved_at_once(
    engine_decides: TestClient,
) -> None:
    r = post_fhir(engine_decides, SUBMIT, _request("bcbsnd-roctavian", "approve"))
    assert r.status_code == 201, r.text
    cr = claim_response(r)
    assert set(action_codes(cr)) == {"A1"}
    assert cr["preAuthPeriod"]


def test_a_request_with_something_missing_pends(engine_decides: TestClient) -> None:
    r = post_fhir(engine_decides, SUBMIT, _request("bcbsnd-roctavian", "pend-liver-imaging"))
    assert set(action_codes(claim_response(r))) == {"A4"}


def test_a_denial_is_never_decided_at_once(engine_decides: TestClient) -> None:
    r = post_fhir(engine_decides, SUBMIT, _request("bcbsnd-roctavian", "deny-age-over-70"))
    assert set(action_codes(claim_response(r))) == {"A4"}


def test_a_criterion_a_person_verifies_keeps_the_request_pended(client: TestClient) -> None:
    """The shipped gene-therapy policy has an md_verification criterion: A4."""
    r = post_fhir(client, SUBMIT, _request("bcbsnd-roctavian", "approve"))
    assert set(action_codes(claim_response(r))) == {"A4"}


def test_ip0535_always_pends(engine_decides: TestClient) -> None:
    """medical_director_review: all: every review goes to the Medical Director."""
    r = post_fhir(engine_decides, SUBMIT, _request("cigna-ip0535", "approve"))
    assert set(action_codes(claim_response(r))) == {"A4"}


def test_the_kits_examples_pend_for_manual_review(client: TestClient) -> None:
    """No loaded policy covers the kit's home-health services: A4 (see the module note)."""
    r = post_fhir(client, SUBMIT, kit_fixture("approval_pa_submit_request.json"))
    assert set(action_codes(claim_response(r))) == {"A4"}
