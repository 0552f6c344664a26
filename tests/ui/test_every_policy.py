"""Every shipped policy end to end: evaluate, $submit, CRD, DTR, the reviewer app and the letter.

Each policy's own test cases (src/priorauth/policies/cases/) drive it, so a new policy file
with cases is exercised through every front end without a line of test code naming it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from priorauth.cli.main import app as cli
from priorauth.coverage.information import COVERAGE_INFORMATION, violations
from priorauth.policies.cases import case_folders, packaged_cases
from priorauth.service.app_service import PriorAuthService
from tests.api.conftest import claim_response
from tests.crd.ehr import MR_PROFILE, ehr_resources, prefetch_for

CASES = case_folders(packaged_cases())
POLICIES = sorted({f.parent.name for f in CASES})


def _expected(folder: Path) -> str:
    return str(yaml.safe_load((folder / "expected.yaml").read_text())["recommendation"])


def _one_case(policy: str, recommendation: str) -> Path | None:
    found = [f for f in CASES if f.parent.name == policy and _expected(f) == recommendation]
    return found[0] if found else None


def _claims(folder: Path) -> list[str]:
    claims = folder / "claims.ndjson"
    return ["--claims", str(claims)] if claims.is_file() else []


def test_every_shipped_policy_has_a_case_of_each_recommendation() -> None:
    assert len(POLICIES) >= 3, POLICIES
    for policy in POLICIES:
        got = {_expected(f) for f in CASES if f.parent.name == policy}
        assert {"approve", "approve-modified", "deny", "pend"} <= got, (policy, got)


@pytest.mark.parametrize("folder", CASES, ids=lambda f: f"{f.parent.name}/{f.name}")
def test_evaluate_gives_the_cases_recommendation(folder: Path) -> None:
    r = CliRunner().invoke(
        cli, ["evaluate", str(folder / "request.json"), "--format", "json", *_claims(folder)]
    )
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["recommendation"] == _expected(folder)
    assert out["policy"]["id"] == folder.parent.name


def _order_sign(bundle: dict[str, Any]) -> dict[str, Any]:
    """The EHR's order-sign for the request's medication order, with everything prefetched."""
    res = ehr_resources(bundle)
    order = res["MedicationRequest"][0]
    order["status"] = "draft"
    order["meta"] = {"profile": [MR_PROFILE]}
    practitioner = res["Practitioner"][0]["id"]
    order["requester"] = {"reference": f"Practitioner/{practitioner}"}
    return {
        "hook": "order-sign",
        "hookInstance": f"hook-{order['id']}",
        "context": {
            "userId": f"Practitioner/{practitioner}",
            "patientId": res["Patient"][0]["id"],
            "draftOrders": {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": order}],
            },
        },
        "prefetch": prefetch_for(res),
    }


def _post(client: TestClient, path: str, body: object, fhir: bool = False):  # type: ignore[no-untyped-def]
    kind = "application/fhir+json" if fhir else "application/json"
    return client.post(path, content=orjson.dumps(body), headers={"Content-Type": kind})


@pytest.mark.parametrize("policy", POLICIES)
def test_crd_and_dtr_serve_the_policy_from_its_tree(
    policy: str, director: tuple[TestClient, str]
) -> None:
    client, _ = director
    folder = _one_case(policy, "pend") or _one_case(policy, "approve")
    assert folder is not None
    bundle = orjson.loads((folder / "request.json").read_bytes())
    r = _post(client, "/cds-services/priorauth-order-sign", _order_sign(bundle))
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["cards"], answer
    ext = next(
        e
        for e in answer["systemActions"][0]["resource"]["extension"]
        if e["url"] == COVERAGE_INFORMATION
    )
    assert violations(ext) == []
    parts = {
        p["url"]: next(v for k, v in p.items() if k.startswith("value")) for p in ext["extension"]
    }
    assert parts["covered"] == "covered" and parts["pa-needed"] == "auth-needed"
    r = _post(
        client,
        "/fhir/Questionnaire/$questionnaire-package",
        {
            "resourceType": "Parameters",
            "parameter": [{"name": "context", "valueString": parts["coverage-assertion-id"]}],
        },
    )
    assert r.status_code == 200, r.text
    form = r.json()["parameter"][0]["resource"]["entry"][0]["resource"]
    assert form["resourceType"] == "Questionnaire" and policy in form["url"]
    assert form["item"], "a questionnaire generated from the policy's tree"


@pytest.mark.parametrize("policy", POLICIES)
def test_submit_review_decide_and_letter(
    policy: str, director: tuple[TestClient, str], service: PriorAuthService
) -> None:
    client, token = director
    folder = _one_case(policy, "approve-modified")
    assert folder is not None
    if (folder / "claims.ndjson").is_file():
        pytest.skip("the case needs a claims history")
    bundle = orjson.loads((folder / "request.json").read_bytes())
    r = _post(client, "/fhir/Claim/$submit", bundle, fhir=True)
    assert r.status_code == 201, r.text
    case_id = r.json()["entry"][0]["resource"]["id"]
    case = service.case(case_id)
    assert case.recommendation == "approve-modified" and case.policy_id == policy
    ev = case.evaluation
    assert ev is not None and ev.dose is not None
    dose = ev.dose
    html = client.get(f"/ui/cases/{case_id}").text
    assert "✗ differs from the right dose" in html and ev.dose.differs is True
    assert dose.describe() in html
    if dose.unit != "kit":
        # The product and quantity in the policy's own unit; no kit where the unit is not one.
        assert not re.search(r"\bkits?\b", html, re.IGNORECASE), "kit wording for a non-kit policy"
    r = client.post(
        f"/ui/cases/{case_id}/decision",
        data={"decision": "approve-modified", "csrf_token": token},
    )
    assert r.status_code == 303, r.text
    decided = service.case(case_id).decision
    assert decided is not None
    assert (decided.quantity, decided.unit, decided.product_ndc) == (
        dose.quantity,
        dose.unit,
        dose.ndc,
    )
    inquiry = _post(client, "/fhir/Claim/$inquire", _inquiry(bundle), fhir=True)
    assert inquiry.status_code == 200, inquiry.text
    cr = claim_response(inquiry)
    added = cr["addItem"][0]
    assert added["quantity"]["value"] == dose.quantity and added["quantity"]["unit"] == dose.unit
    product = added["productOrService"]["coding"][0]["code"]
    # The product authorized: its NDC, else the policy's billing code.
    assert product == (dose.ndc or (dose.code or "").partition("|")[2]), added
    letter = client.get(f"/ui/cases/{case_id}/letter").text
    assert f"Authorized</dt><dd>{_authorized(dose)}" in letter
    assert "Requested</dt>" in letter
    pdf = client.get(f"/ui/cases/{case_id}/letter.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


def _authorized(dose: Any) -> str:
    parts = [f"{dose.quantity:g} {dose.unit}"]
    if dose.ndc:
        parts.append(f"NDC {dose.ndc}")
    return ", ".join(parts)


def _inquiry(bundle: dict[str, Any]) -> dict[str, Any]:
    from tests.api.test_submit import inquiry_for

    return inquiry_for(bundle)  # type: ignore[no-any-return]
