"""Checks shared by the DTR conformance tests: calls, and what every package must satisfy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.parameters import Parameters
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from priorauth.coverage.information import COVERAGE_INFORMATION
from tests.conformance.dtr.structure import claimed, profiles, violations
from tests.crd.ehr import order_sign

PACKAGE = "/fhir/Questionnaire/$questionnaire-package"
NEXT = "/fhir/Questionnaire/$next-question"
DTR = "http://hl7.org/fhir/us/davinci-dtr/StructureDefinition"
OUTPUT_PROFILE = f"{DTR}/dtr-qpackage-output-parameters"
PACKAGE_PROFILE = f"{DTR}/DTR-QPackageBundle"
QR_PROFILE = f"{DTR}/dtr-questionnaireresponse"
STD_PROFILE = f"{DTR}/dtr-std-questionnaire"
ADAPT_PROFILE = f"{DTR}/dtr-questionnaire-adapt"
QR_CONTEXT = f"{DTR}/qr-context"
INTENDED_USE = f"{DTR}/intendedUse"
ORIGIN = f"{DTR}/information-origin"
MODELS = {"Questionnaire": Questionnaire, "QuestionnaireResponse": QuestionnaireResponse}


def post(client: TestClient, path: str, body: Any) -> Any:
    return client.post(
        path, content=orjson.dumps(body), headers={"Content-Type": "application/fhir+json"}
    )


def sign(client: TestClient, name: str, **kw: Any) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """order-sign through CRD: (coverage assertion id, the hook body, the EHR's resources)."""
    body, res = order_sign(name, **kw)
    r = post(client, "/cds-services/priorauth-order-sign", body)
    assert r.status_code == 200, r.text
    ext = next(
        e
        for e in r.json()["systemActions"][0]["resource"]["extension"]
        if e["url"] == COVERAGE_INFORMATION
    )
    parts = {p["url"]: p for p in ext["extension"]}
    return parts["coverage-assertion-id"]["valueString"], body, res


def value_set_codes(folder: Path, name: str) -> set[tuple[str, str]]:
    vs = json.loads((folder / f"ValueSet-{name}.json").read_text())
    return {(inc["system"], c["code"]) for inc in vs["compose"]["include"] for c in inc["concept"]}


def answers(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for item in items:
        out.extend(item.get("answer", []))
        out.extend(answers(item.get("item", [])))
        for a in item.get("answer", []):
            out.extend(answers(a.get("item", [])))
    return out


def conforms(resource: dict[str, Any], ig: Path) -> None:
    """R4B-valid, and every DTR profile it claims holds (cardinalities, prohibited elements)."""
    model = MODELS.get(resource["resourceType"])
    if model is not None:
        model.model_validate(resource)
    for url, errors in claimed(resource, ig):
        assert errors == [], (url, errors)


def check_package(out: dict[str, Any], ig: Path, crd_ig: Path) -> list[list[dict[str, Any]]]:
    """The operation's output as the kit checks it; returns each package Bundle's resources.

    Kit: payer_server_groups/static_form_response_validation_test.rb and
    payer_server_adaptive_response_validation_test.rb (dtr-qpackage-output-parameters),
    payer_server_adaptive_response_bundles_validation_test.rb (DTR-QPackageBundle).
    """
    Parameters.model_validate(out)
    known = profiles(ig)
    assert violations(out, known[OUTPUT_PROFILE]) == []
    doc_reason = value_set_codes(crd_ig, "DocReason")
    origins = {code for _, code in value_set_codes(ig, "informationOrigins")}
    bundles = []
    for p in out["parameter"]:
        if p["name"] != "PackageBundle":
            assert p["name"] == "Outcome" and p["resource"]["resourceType"] == "OperationOutcome"
            continue
        bundle = p["resource"]
        Bundle.model_validate(bundle)
        assert bundle["type"] == "collection"
        assert PACKAGE_PROFILE in bundle["meta"]["profile"]
        assert violations(bundle, known[PACKAGE_PROFILE]) == []
        resources = [e["resource"] for e in bundle["entry"]]
        # dtrb-1: the Questionnaire first; the operation: one Questionnaire per Bundle.
        assert resources[0]["resourceType"] == "Questionnaire"
        assert [r["resourceType"] for r in resources].count("Questionnaire") == 1
        form = resources[0]
        assert {STD_PROFILE, ADAPT_PROFILE} & set(form["meta"]["profile"])
        assert form["text"]["status"] == "generated"
        assert form["text"]["div"].startswith('<div xmlns="http://www.w3.org/1999/xhtml">')
        for r in resources:
            conforms(r, ig)
        drafts = [r for r in resources if r["resourceType"] == "QuestionnaireResponse"]
        # The operation: one or more initial draft responses that reference the form.
        assert drafts
        for qr in drafts:
            assert qr["status"] == "in-progress"
            if ADAPT_PROFILE in form["meta"]["profile"]:
                # spec-25: the adaptive response contains the form it answers.
                inner = next(c for c in qr["contained"] if c["resourceType"] == "Questionnaire")
                assert qr["questionnaire"] == f"#{inner['id']}"
                assert inner["derivedFrom"] == form["derivedFrom"]
            else:
                assert qr["questionnaire"] == f"{form['url']}|{form['version']}"
            uses = [e for e in qr["extension"] if e["url"] == INTENDED_USE]
            assert uses, "intendedUse"
            for use in uses:
                coding = use["valueCodeableConcept"]["coding"]
                assert any((c["system"], c["code"]) in doc_reason for c in coding)
            for a in answers(qr.get("item", [])):
                origin = [e for e in a.get("extension", []) if e["url"] == ORIGIN]
                assert len(origin) == 1
                parts = {x["url"]: x for x in origin[0]["extension"]}
                assert parts["source"]["valueCode"] in origins
                # dtrx-1: an author only with an override or a manual answer.
                assert ("author" in parts) == (parts["source"]["valueCode"] != "auto")
        bundles.append(resources)
    assert bundles
    return bundles


def contexts(qr: dict[str, Any]) -> list[str]:
    return [e["valueReference"]["reference"] for e in qr["extension"] if e["url"] == QR_CONTEXT]


def known_by(form: dict[str, Any]) -> str:
    """The canonical a form is asked for by: its url, or (an SDC adaptive instance, url 0..0)
    the one it is derivedFrom, without the version."""
    if "url" in form:
        return str(form["url"])
    (derived,) = form["derivedFrom"]  # dtr-questionnaire-adapt: derivedFrom 1..1
    return str(derived).partition("|")[0]


def answer(qr: dict[str, Any], link: str, value: dict[str, Any]) -> None:
    """Fill in the answer of an asked question (its item is in the response, unanswered),
    as a DTR app does; the item is added when the response does not list it."""
    items = qr.setdefault("item", [])
    for item in items:
        if item["linkId"] == link:
            item["answer"] = [value]
            return
    items.append({"linkId": link, "answer": [value]})


def answered(qr: dict[str, Any]) -> set[str]:
    """The linkIds the response answers (an asked question is an item without answer)."""
    return {i["linkId"] for i in qr.get("item", []) if i.get("answer")}
