"""DTR 2.0.1 `$questionnaire-package`, as the davinci-dtr-test-kit payer-server tests check it.

Kit: lib/davinci_dtr_test_kit/payer_server_groups/ (static and adaptive flows) and the IG's
OperationDefinition-questionnaire-package, StructureDefinition-dtr-qpackage-input-parameters,
-dtr-qpackage-output-parameters, -DTR-QPackageBundle, -dtr-std-questionnaire,
-dtr-questionnaire-adapt and -dtr-questionnaireresponse.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from tests.conformance.dtr.checks import (
    ADAPT_PROFILE,
    PACKAGE,
    QR_PROFILE,
    STD_PROFILE,
    check_package,
    contexts,
    known_by,
    post,
    sign,
)


def _context(assertion: str, *canonicals: str) -> dict[str, Any]:
    return {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "context", "valueString": assertion},
            *({"name": "questionnaire", "valueCanonical": c} for c in canonicals),
        ],
    }


def test_one_questionnaire_per_bundle_and_the_draft_response(
    app_client: TestClient, dtr_ig: Path, crd_ig: Path
) -> None:
    """OperationDefinition-questionnaire-package: "Each Questionnaire will be packaged into a
    distinct Bundle", the Questionnaire first (dtrb-1), with an initial draft response carrying
    the Context extensions (qr-context 2..*), intendedUse (DocReason, required) and the origin
    of every pre-filled answer (information-origin 1..1, dtrx-1).
    Kit: static_form_response_validation_test.rb, payer_server_adaptive_response_bundles_
    validation_test.rb."""
    assertion, _, res = sign(app_client, "conf-package")
    r = post(app_client, PACKAGE, _context(assertion))
    assert r.status_code == 200, r.text
    bundles = check_package(r.json(), dtr_ig, crd_ig)
    # Neither form named: both, each in its own Bundle (standard, then adaptive).
    forms = [b[0] for b in bundles]
    assert [STD_PROFILE in f["meta"]["profile"] for f in forms] == [True, False]
    assert ADAPT_PROFILE in forms[1]["meta"]["profile"]
    standard = bundles[0][-1]
    assert QR_PROFILE in standard["meta"]["profile"]
    coverage = f"Coverage/{res['Coverage'][0]['id']}"
    refs = contexts(standard)
    assert len(refs) >= 2 and refs[0] == coverage and refs[1].startswith("MedicationRequest/")
    assert standard["subject"]["reference"].startswith("Patient/")


def test_standard_or_adaptive_as_named(app_client: TestClient, dtr_ig: Path, crd_ig: Path) -> None:
    """The questionnaire parameter (canonical, optionally |version) picks the form: one Bundle.
    Kit: payer_server_static_group.rb / payer_server_adaptive_group.rb (one flow each)."""
    assertion, _, _ = sign(app_client, "conf-named")
    r = post(app_client, PACKAGE, _context(assertion))
    standard, adaptive = (b[0] for b in check_package(r.json(), dtr_ig, crd_ig))
    for form, profile in ((standard, STD_PROFILE), (adaptive, ADAPT_PROFILE)):
        url = known_by(form)
        for ref in (url, f"{url}|{form['version']}"):
            r = post(app_client, PACKAGE, _context(assertion, ref))
            assert r.status_code == 200, r.text
            (bundle,) = check_package(r.json(), dtr_ig, crd_ig)
            assert profile in bundle[0]["meta"]["profile"] and known_by(bundle[0]) == url
    # dtr-questionnaire-adapt: an SDC adaptive instance has no url; derivedFrom names the
    # canonical asked for, with the version.
    assert "url" not in adaptive
    assert adaptive["derivedFrom"] == [f"{known_by(adaptive)}|{adaptive['version']}"]
    # spec-25: the adaptive draft contains its form, with the payer's own answers asked.
    (bundle,) = check_package(
        post(app_client, PACKAGE, _context(assertion, known_by(adaptive))).json(), dtr_ig, crd_ig
    )
    qr = bundle[-1]
    assert qr["contained"][0]["resourceType"] == "Questionnaire"
    assert "enableWhen" not in str(qr["contained"][0])  # dtr-questionnaire-adapt: 0..0


def test_the_kit_input_parameters_are_accepted(
    app_client: TestClient, dtr_ig: Path, crd_ig: Path, kit: Any
) -> None:
    """questionnaire_package_input_params_conformant.json (dtr-qpackage-input-parameters:
    coverage, order, questionnaire, context, changedsince): the kit's own order is a blood gas
    panel no policy governs, so it is a 404 OperationOutcome; with one of our orders, and with
    every optional parameter, the output is shaped like
    questionnaire_package_output_params_conformant.json.
    Kit: static_form_request_validation_test.rb, static_form_response_validation_test.rb."""
    params = kit("questionnaire_package_input_params_conformant.json")
    r = post(app_client, PACKAGE, params)
    assert r.status_code == 404 and r.json()["resourceType"] == "OperationOutcome"
    assertion, hook, res = sign(app_client, "conf-kit-input")
    order = hook["context"]["draftOrders"]["entry"][0]["resource"]
    params["parameter"][0]["resource"] = res["Coverage"][0]
    params["parameter"][1]["resource"] = order
    params["parameter"].append({"name": "changedsince", "valueInstant": "2026-01-01T00:00:00Z"})
    r = post(app_client, PACKAGE, params)
    assert r.status_code == 200, r.text
    bundles = check_package(r.json(), dtr_ig, crd_ig)
    expected = kit("questionnaire_package_output_params_conformant.json")
    shape = expected["parameter"][0]
    for p in r.json()["parameter"]:
        assert p["name"] == shape["name"]
        assert p["resource"]["resourceType"] == shape["resource"]["resourceType"]
        assert p["resource"]["type"] == shape["resource"]["type"]
        assert p["resource"]["meta"]["profile"] == shape["resource"]["meta"]["profile"]
    refs = contexts(bundles[0][-1])
    assert refs == [f"Coverage/{res['Coverage'][0]['id']}", f"MedicationRequest/{order['id']}"]
    # The context parameter together with the canonical of the form: one Bundle.
    form = bundles[0][0]
    params["parameter"].extend(
        [
            {"name": "context", "valueString": assertion},
            {"name": "questionnaire", "valueCanonical": form["url"]},
        ]
    )
    r = post(app_client, PACKAGE, params)
    assert r.status_code == 200, r.text
    assert len(check_package(r.json(), dtr_ig, crd_ig)) == 1


def test_the_canonical_path_returns_a_draft_response_too(
    app_client: TestClient, dtr_ig: Path, crd_ig: Path, kit: Any
) -> None:
    """The IG's QuestionnairePackageInputParamsExample: coverage, an order no policy governs
    and a questionnaire canonical. The named form comes back with its draft response, whose
    context names the Coverage and the order (as QuestionnaireResponse-home-o2-
    questionnaireresponse does); a canonical we do not have is a warning in `Outcome`."""
    assertion, _, _ = sign(app_client, "conf-canonical")
    form = check_package(post(app_client, PACKAGE, _context(assertion)).json(), dtr_ig, crd_ig)[0][
        0
    ]
    params = kit("questionnaire_package_input_params_conformant.json")
    unknown = "http://hl7.org/fhir/us/davinci-dtr/Questionnaire/home-o2-std-questionnaire"
    params["parameter"] += [
        {"name": "questionnaire", "valueCanonical": form["url"]},
        {"name": "questionnaire", "valueCanonical": unknown},
    ]
    r = post(app_client, PACKAGE, params)
    assert r.status_code == 200, r.text
    (bundle,) = check_package(r.json(), dtr_ig, crd_ig)
    qr = bundle[-1]
    assert contexts(qr) == ["Coverage/CoverageExample", "ServiceRequest/ServiceRequestExample"]
    assert qr["subject"] == {"reference": "Patient/examplepatient"}
    assert QR_PROFILE in qr["meta"]["profile"]
    outcome = next(p for p in r.json()["parameter"] if p["name"] == "Outcome")["resource"]
    assert outcome["issue"][0]["severity"] == "warning" and unknown in str(outcome)
    # Only unknown forms: nothing to return.
    params["parameter"] = [p for p in params["parameter"] if p.get("valueCanonical") != form["url"]]
    assert post(app_client, PACKAGE, params).status_code == 404


def test_the_structure_check_catches_what_the_profiles_forbid(dtr_ig: Path) -> None:
    """The check itself: the IG's own example response holds; one context, no intendedUse, an
    answer without its origin, or a basedOn (0..0) each break dtr-questionnaireresponse."""
    import json

    from tests.conformance.dtr.structure import profiles, violations

    sd = profiles(dtr_ig)[QR_PROFILE]
    example = json.loads(
        (dtr_ig / "QuestionnaireResponse-home-o2-questionnaireresponse.json").read_text()
    )
    assert violations(example, sd) == []
    one_context = {**example, "extension": example["extension"][1:]}
    assert any("extension:context" in v for v in violations(one_context, sd))
    no_use = {**example, "extension": example["extension"][:2]}
    assert any("intendedUse" in v for v in violations(no_use, sd))
    bare = json.loads(json.dumps(example))
    bare["item"][0]["item"][0]["answer"][0].pop("extension")
    assert any("origin" in v for v in violations(bare, sd))
    assert any("basedOn" in v for v in violations({**example, "basedOn": [{}]}, sd))
