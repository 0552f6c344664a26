"""SDC `$next-question` on the DTR adaptive form, as the davinci-dtr-test-kit calls it.

Kit: lib/davinci_dtr_test_kit/payer_server_groups/payer_server_next_request_validation_test.rb
(the request is SDC parameters-questionnaire-next-question-in, fixture
next_question_initial_input_params_conformant.json), payer_server_next_response_validation_test.rb
(200, an SDC QuestionnaireResponse) and payer_server_next_response_complete_test.rb (the sequence
ends `completed`). The coverage assertion id is CRD context, not a gate (issue 13, item 13); the
organization isolation of an assertion that is named is tests/security/test_isolation.py.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from priorauth.demo.samples import DEFAULT_ATTESTATIONS
from tests.conformance.dtr.checks import (
    NEXT,
    PACKAGE,
    answer,
    answered,
    check_package,
    known_by,
    post,
    sign,
)

ADAPT_QR = "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaireresponse-adapt"


def _adaptive_form(client: TestClient, ig: Path, crd_ig: Path) -> dict[str, Any]:
    assertion, _, _ = sign(client, "conf-next")
    body = {
        "resourceType": "Parameters",
        "parameter": [{"name": "context", "valueString": assertion}],
    }
    return check_package(post(client, PACKAGE, body).json(), ig, crd_ig)[1][0]


def _run(client: TestClient, params: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """Answer each question as it comes (the kit's user does), until the form is completed."""
    asked: list[str] = []
    qr = params["parameter"][0]["resource"]
    for _ in range(20):
        r = post(client, NEXT, params)
        assert r.status_code == 200, r.text
        qr = r.json()
        QuestionnaireResponse.model_validate(qr)
        assert ADAPT_QR in qr["meta"]["profile"]
        form = next(c for c in qr["contained"] if c["resourceType"] == "Questionnaire")
        assert qr["questionnaire"] == f"#{form['id']}"
        assert "enableWhen" not in str(form)  # dtr-questionnaire-adapt: item.enableWhen 0..0
        if qr["status"] == "completed":
            break
        assert qr["status"] == "in-progress"
        new = [i for i in form["item"] if i["linkId"] not in asked]
        assert len(new) == 1  # one question at a time
        link = new[0]["linkId"]
        asked.append(link)
        # dtr-questionnaireresponse item 1..*: the question asked is listed, unanswered.
        assert link in {i["linkId"] for i in qr["item"]} and link not in answered(qr)
        key = "valueInteger" if new[0]["type"] == "integer" else "valueBoolean"
        # Without CRD's record, questions it would have answered are asked too: yes.
        answer(qr, link, {key: DEFAULT_ATTESTATIONS.get(link, True)})
        params = {
            "resourceType": "Parameters",
            "parameter": [{"name": "questionnaire-response", "resource": qr}],
        }
    return asked, qr


def test_the_kit_request_without_crd_context_runs_to_completion(
    app_client: TestClient, dtr_ig: Path, crd_ig: Path, kit: Any
) -> None:
    """The kit's initial request (no coverage-assertion-id, the form contained by canonical,
    cqf-library, subject, authored) with our adaptive form in place of its dinner order: the
    policy is found by the form's canonical, every step answers 200, and the sequence ends
    `completed` (payer_server_next_response_complete_test.rb)."""
    form = _adaptive_form(app_client, dtr_ig, crd_ig)
    params = kit("next_question_initial_input_params_conformant.json")
    qr = params["parameter"][0]["resource"]
    qr["contained"] = [copy.deepcopy(form)]
    qr["questionnaire"] = f"#{form['id']}"
    asked, done = _run(app_client, params)
    assert done["status"] == "completed"
    assert asked
    assert done["subject"] == {"reference": "Patient/example"}
    # A version-specific canonical in `questionnaire` names the form as well.
    qr["contained"] = []
    qr["questionnaire"] = f"{known_by(form)}|{form['version']}"
    r = post(app_client, NEXT, params)
    assert r.status_code == 200, r.text
    assert r.json()["contained"][0]["derivedFrom"] == form["derivedFrom"]
    assert "url" not in r.json()["contained"][0]  # dtr-questionnaire-adapt: url 0..0


def test_an_older_client_naming_the_form_by_url_is_understood(
    app_client: TestClient, dtr_ig: Path, crd_ig: Path, kit: Any
) -> None:
    """Before dtr-questionnaire-adapt was followed (url 0..0, derivedFrom 1..1) the contained
    form carried the canonical as its url: such a response still finds its policy."""
    form = _adaptive_form(app_client, dtr_ig, crd_ig)
    old = copy.deepcopy(form)
    old["url"] = known_by(form)
    del old["derivedFrom"]
    params = kit("next_question_initial_input_params_conformant.json")
    qr = params["parameter"][0]["resource"]
    qr["contained"] = [old]
    qr["questionnaire"] = f"#{form['id']}"
    asked, done = _run(app_client, params)
    assert asked and done["status"] == "completed"


def test_the_first_step_lists_the_question_asked(
    app_client: TestClient, dtr_ig: Path, crd_ig: Path, kit: Any
) -> None:
    """dtr-questionnaireresponse item 1..*: the first $next-question answer lists the question
    it asks as an item without an answer (SDC adaptive: what was asked so far), and no empty
    array (kit payer_server_next_response_validation_test.rb validates the response)."""
    form = _adaptive_form(app_client, dtr_ig, crd_ig)
    params = kit("next_question_initial_input_params_conformant.json")
    qr = params["parameter"][0]["resource"]
    qr["contained"] = [copy.deepcopy(form)]
    qr["questionnaire"] = f"#{form['id']}"
    qr["item"] = []
    r = post(app_client, NEXT, params)
    assert r.status_code == 200, r.text
    out = r.json()
    asked = [i["linkId"] for i in out["contained"][0]["item"]]
    assert [i["linkId"] for i in out["item"]] == asked
    assert not any("answer" in i for i in out["item"])
    assert "[]" not in json.dumps(out).replace(" ", "")


def test_the_kit_dinner_order_is_a_404_naming_the_form(app_client: TestClient, kit: Any) -> None:
    """The fixture as it stands asks about the kit's own form: the answer names that form (an
    OperationOutcome), not a missing coverage-assertion-id."""
    r = post(app_client, NEXT, kit("next_question_initial_input_params_conformant.json"))
    assert r.status_code == 404 and r.json()["resourceType"] == "OperationOutcome"
    assert "urn:inferno:dtr-test-kit:dinner-order-adaptive" in r.text
    assert "coverage-assertion" not in r.text


def test_a_response_naming_no_form_is_422(app_client: TestClient, kit: Any) -> None:
    params = kit("next_question_initial_input_params_conformant.json")
    qr = params["parameter"][0]["resource"]
    del qr["contained"], qr["questionnaire"]
    r = post(app_client, NEXT, params)
    assert r.status_code == 422 and r.json()["resourceType"] == "OperationOutcome"


def test_a_named_but_unknown_assertion_is_still_404(
    app_client: TestClient, dtr_ig: Path, crd_ig: Path, kit: Any
) -> None:
    """When the response does carry a coverage assertion id, it must be the caller's own: it is
    not ignored in favour of the canonical (tests/security/test_isolation.py, item 8)."""
    form = _adaptive_form(app_client, dtr_ig, crd_ig)
    params = kit("next_question_initial_input_params_conformant.json")
    qr = params["parameter"][0]["resource"]
    qr["contained"] = [form]
    qr["questionnaire"] = f"#{form['id']}"
    qr["extension"] = [
        {
            "url": "http://127.0.0.1:8000/fhir/StructureDefinition/coverage-assertion-id",
            "valueString": "not-an-assertion",
        }
    ]
    assert post(app_client, NEXT, params).status_code == 404
