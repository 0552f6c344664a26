"""order-sign names what is missing; the DTR form collects it; $submit then approves."""

from __future__ import annotations

import orjson
from fastapi.testclient import TestClient

from priorauth.coverage.information import COVERAGE_INFORMATION, violations
from priorauth.demo.samples import DEFAULT_ATTESTATIONS, hemgenix_request
from priorauth.dtr.adaptive import response_items
from priorauth.service.app_service import PriorAuthService
from tests.crd.ehr import order_sign


def _post(client: TestClient, path: str, body: object):  # type: ignore[no-untyped-def]
    return client.post(
        path, content=orjson.dumps(body), headers={"Content-Type": "application/json"}
    )


def _coverage_parts(resource: dict) -> dict[str, object]:
    ext = next(e for e in resource["extension"] if e["url"] == COVERAGE_INFORMATION)
    assert violations(ext) == []
    return {
        p["url"]: next(v for k, v in p.items() if k.startswith("value")) for p in ext["extension"]
    }


def test_order_sign_then_dtr_then_submit_approves(
    app_client: TestClient, service: PriorAuthService
) -> None:
    hook, _ = order_sign("e2e", drop_labs=("777-3",))
    r = _post(app_client, "/cds-services/priorauth-order-sign", hook)
    assert r.status_code == 200, r.text
    answer = r.json()
    card = answer["cards"][0]
    # What is missing, exactly: the platelet count and the prescriber's attestations.
    assert "Platelet count (LOINC 777-3)" in card["detail"]
    assert "no-uncontrolled-hiv" in card["detail"]
    assert "**Already met by the record:**" in card["detail"] and "- D:" in card["detail"]
    parts = _coverage_parts(answer["systemActions"][0]["resource"])
    assert parts["covered"] == "covered" and parts["pa-needed"] == "auth-needed"
    assert parts["doc-needed"] == "clinical"
    assertion = parts["coverage-assertion-id"]

    r = _post(
        app_client,
        "/fhir/Questionnaire/$questionnaire-package",
        {
            "resourceType": "Parameters",
            "parameter": [{"name": "context", "valueString": assertion}],
        },
    )
    assert r.status_code == 200, r.text
    entries = [e["resource"] for e in r.json()["parameter"][0]["resource"]["entry"]]
    form = entries[0]
    assert form["resourceType"] == "Questionnaire"
    assert parts["questionnaire"] == form["url"]

    # The prescriber answers every question; the completed response goes into $submit.
    answers = {**DEFAULT_ATTESTATIONS}
    completed = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": f"{form['url']}|{form['version']}",
        "status": "completed",
        "authored": "2026-05-04",
        "item": response_items(form["item"], answers),
    }
    bundle = hemgenix_request(name="e2e", attestations=dict.fromkeys(DEFAULT_ATTESTATIONS))
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "QuestionnaireResponse":
            patient = entry["resource"]["subject"]
            entry["resource"] = {**completed, "id": entry["resource"]["id"], "subject": patient}
    r = app_client.post(
        "/fhir/Claim/$submit",
        content=orjson.dumps(bundle),
        headers={"Content-Type": "application/fhir+json"},
    )
    assert r.status_code == 201, r.text
    case_id = r.json()["entry"][0]["resource"]["id"]
    assert service.case(case_id).recommendation == "approve"
