"""DTR: the generated Questionnaire, its FHIRPath pre-fill, the package and the adaptive form."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.parameters import Parameters
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from fhirpathpy import evaluate

from priorauth.core.evaluator import CompiledPolicy
from priorauth.core.facts import HCPCS, LOINC
from priorauth.core.model import walk
from priorauth.coverage.information import COVERAGE_INFORMATION, violations
from priorauth.demo.samples import DEFAULT_ATTESTATIONS, claims_ndjson
from priorauth.dtr import expressions
from priorauth.dtr.adaptive import walk_items
from priorauth.dtr.questionnaire import build
from priorauth.intake.claims import read_claims
from priorauth.service.app_service import PriorAuthService
from priorauth.store.claims import import_claims
from tests.conftest import shared_dir
from tests.crd.ehr import ehr_resources, order_sign, search

CONTRACT_LINK_IDS = {
    "no-prior-gene-therapy",
    "fix-exposure-days",
    "life-threatening-hemorrhage",
    "on-demand-fix-life-threatening",
    "repeated-spontaneous-bleeding",
    "on-demand-fix-spontaneous",
    "no-current-hepatitis-antiviral",
    "no-uncontrolled-hiv",
    "no-advanced-liver-disease",
    "prescriber-hemophilia-specialist",
    "history-of-fix-inhibitors",
}
PACKAGE = "/fhir/Questionnaire/$questionnaire-package"
NEXT = "/fhir/Questionnaire/$next-question"


def _post(client: TestClient, path: str, body: Any):  # type: ignore[no-untyped-def]
    return client.post(
        path, content=orjson.dumps(body), headers={"Content-Type": "application/json"}
    )


def _items(form: dict) -> dict[str, dict]:
    return {i["linkId"]: i for i in walk_items(form["item"])}


def test_questionnaire_is_generated_from_the_policy(ip0535: CompiledPolicy) -> None:
    form = build(ip0535, "http://payer.example")
    Questionnaire.model_validate(form)
    items = _items(form)
    assert set(items) >= CONTRACT_LINK_IDS
    assert items["fix-exposure-days"]["type"] == "integer"
    assert items["no-uncontrolled-hiv"]["type"] == "boolean"
    # Every documentation criterion has an item: its EHR value, or the attestation it reads.
    for c in walk(ip0535.policy.criteria + ip0535.policy.exclusions):
        if c.check is not None and c.evidence == "documentation":
            assert (
                f"doc-{c.id}" in items
                or c.id in items
                or any(i.get("text") in (c.question, c.text) for i in items.values())
            ), c.id
    # Wording comes from the policy file.
    assert items["doc-D"]["text"] == ip0535.criteria["D"].request
    assert items["no-uncontrolled-hiv"]["text"] == ip0535.criteria["H"].question


def test_enable_when_asks_only_relevant_questions(ip0535: CompiledPolicy) -> None:
    items = _items(build(ip0535, "http://payer.example"))
    assert items["on-demand-fix-life-threatening"]["enableWhen"] == [
        {"question": "life-threatening-hemorrhage", "operator": "=", "answerBoolean": True}
    ]
    assert items["on-demand-fix-spontaneous"]["enableWhen"][0]["question"] == (
        "repeated-spontaneous-bleeding"
    )
    for group in ("E.ii", "E.iii"):
        rule = items[group]["enableWhen"]
        assert items[group]["enableBehavior"] == "any"
        assert {"question": "fix-exposure-days", "operator": "<", "answerInteger": 150} in rule
    assert "enableWhen" not in items["fix-exposure-days"]


@pytest.mark.parametrize(("combine", "n"), [("none", None), ("at_least", 2)])
def test_every_child_of_none_and_at_least_is_asked(combine: str, n: int | None) -> None:
    from priorauth.core.evaluator import compile_policy
    from priorauth.policies import parse_policy
    from tests.core.test_combinators import policy_text

    form = build(compile_policy(parse_policy(policy_text(combine, n))), "http://payer.example")
    Questionnaire.model_validate(form)
    items = _items(form)
    for link in ("comb-0", "comb-1", "comb-2"):
        assert items[link]["type"] == "boolean"
        assert "enableWhen" not in items[link], link


def _run_query(query: str, res: dict[str, list[dict]]) -> dict:
    """What an EHR answers to an x-fhir-query: the patient's resources, filtered by code."""
    kind, _, params = query.partition("?")
    found = res.get(kind, [])
    for part in params.split("&"):
        key, _, value = part.partition("=")
        if key == "code":
            wanted = {v.split("|")[-1] for v in value.split(",")}
            found = [r for r in found if r["code"]["coding"][0]["code"] in wanted]
    return search(found)


def test_initial_expressions_prefill_from_us_core_data(
    ip0535: CompiledPolicy, library: Any
) -> None:
    from priorauth.demo.samples import hemgenix_request

    res = ehr_resources(hemgenix_request(name="prefill"))
    form = build(ip0535, "http://payer.example")
    env: dict[str, Any] = {"patient": res["Patient"][0], "user": res["Practitioner"][0]}
    for ext in form["extension"]:
        if ext["url"].endswith("/variable"):
            expr = ext["valueExpression"]
            query = expr["expression"].replace("{{%patient.id}}", res["Patient"][0]["id"])
            query = query.replace("{{%user.id}}", res["Practitioner"][0]["id"])
            if query.startswith("PractitionerRole"):
                env[expr["name"]] = search(res["PractitionerRole"])
            else:
                env[expr["name"]] = _run_query(query, res)
    filled = {}
    for link, item in _items(form).items():
        for ext in item.get("extension", []):
            if ext["url"].endswith("sdc-questionnaire-initialExpression"):
                expression = ext["valueExpression"]["expression"]
                if ext["valueExpression"]["language"] == "text/cql-identifier":
                    # The Library's CQL fills it (tests/conformance/cql); its FHIRPath twin here.
                    c = ip0535.criteria[link.removeprefix("doc-")]
                    expression = expressions.prefill(c, ip0535.policy.systems)[2]  # type: ignore[index]
                got = evaluate({}, expression, env)
                filled[link] = got[0] if got else None
    assert float(filled["doc-D"]) == 0.8  # the lowest (baseline) FIX
    assert float(filled["doc-N"]) == 88.0
    assert float(filled["doc-K"]) == 231
    assert float(filled["doc-I.i"]) == 31
    assert float(filled["doc-F.ii"]) == 0.0
    assert filled["doc-B"] == "1979-11-23"
    assert filled["doc-A"] == "M"
    assert filled["doc-DX"] is True
    assert filled["doc-M"] == "207RH0000X"
    assert filled["doc-G.i"] in {"Negative", "Not detected"}
    # The sample has no measured creatinine clearance: nothing to pre-fill, nothing invented.
    assert [k for k, v in filled.items() if v is None] == ["doc-L.i"], filled


def _package(client: TestClient, assertion: str) -> list[dict]:
    r = _post(
        client,
        PACKAGE,
        {
            "resourceType": "Parameters",
            "parameter": [{"name": "context", "valueString": assertion}],
        },
    )
    assert r.status_code == 200, r.text
    Parameters.model_validate(r.json())
    bundles = [
        [
            e["resource"]
            for e in p["resource"]["entry"]
            if e["resource"]["resourceType"] != "Library"
        ]
        for p in r.json()["parameter"]
    ]
    # A package Bundle per form (standard, then adaptive), each its form first.
    assert [[x["resourceType"] for x in b] for b in bundles] == [
        ["Questionnaire", "QuestionnaireResponse"]
    ] * 2
    (form, qr), (adaptive_form, _) = bundles
    return [form, adaptive_form, qr]


def _sign(client: TestClient, name: str, **kw: Any) -> tuple[str, dict]:
    body, res = order_sign(name, **kw)
    r = _post(client, "/cds-services/priorauth-order-sign", body)
    assert r.status_code == 200, r.text
    ext = next(
        e
        for e in r.json()["systemActions"][0]["resource"]["extension"]
        if e["url"] == COVERAGE_INFORMATION
    )
    parts = {p["url"]: p for p in ext["extension"]}
    return parts["coverage-assertion-id"]["valueString"], res


def _import(service: PriorAuthService, member: str, *codes: tuple[str, str]) -> None:
    with service.sessions() as s:
        import_claims(s, read_claims(claims_ndjson(member, *codes).splitlines()))


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        ((("http://www.ama-assn.org/go/cpt", "99213"),), True),
        (((HCPCS, "J1411"),), False),
        ((), None),
    ],
)
def test_package_prefills_criterion_c_from_claims_history(
    app_client: TestClient, service: PriorAuthService, claims: tuple, expected: bool | None
) -> None:
    name = f"claims-{expected}"
    _, res = order_sign(name)
    if claims:
        _import(service, res["Coverage"][0]["subscriberId"], *claims)
    assertion, _ = _sign(app_client, name)
    form, adaptive_form, qr = _package(app_client, assertion)
    Questionnaire.model_validate(form)
    Questionnaire.model_validate(adaptive_form)
    QuestionnaireResponse.model_validate(qr)
    assert qr["status"] == "in-progress"
    answers = {
        i["linkId"]: i["answer"][0]["valueBoolean"] for i in walk_items(qr["item"]) if "answer" in i
    }
    assert answers.get("no-prior-gene-therapy") is expected


def test_package_from_order_and_coverage(app_client: TestClient) -> None:
    params = json.loads(
        (
            shared_dir("fixtures", "davinci-dtr")
            / "questionnaire_package_input_params_conformant.json"
        ).read_text()
    )
    # The Inferno input asks about a lab panel: no form applies.
    assert _post(app_client, PACKAGE, params).status_code == 404
    body, res = order_sign("package-order")
    order = body["context"]["draftOrders"]["entry"][0]["resource"]
    params["parameter"][1]["resource"] = order
    params["parameter"][0]["resource"] = res["Coverage"][0]
    r = _post(app_client, PACKAGE, params)
    assert r.status_code == 200, r.text
    kinds = [
        [e["resource"]["resourceType"] for e in p["resource"]["entry"]]
        for p in r.json()["parameter"]
    ]
    assert kinds == [["Questionnaire", "Library", "QuestionnaireResponse"]] * 2
    assert (
        _post(app_client, PACKAGE, {"resourceType": "Parameters", "parameter": []}).status_code
        == 422
    )


def _next(client: TestClient, qr: dict) -> dict:
    r = _post(
        client,
        NEXT,
        {
            "resourceType": "Parameters",
            "parameter": [{"name": "questionnaire-response", "resource": qr}],
        },
    )
    assert r.status_code == 200, r.text
    QuestionnaireResponse.model_validate(r.json())
    return r.json()


def test_next_question_asks_only_what_can_change_the_case(app_client: TestClient) -> None:
    assertion, _ = _sign(app_client, "adaptive")
    _, adaptive_form, prefilled = _package(app_client, assertion)
    qr = {
        "resourceType": "QuestionnaireResponse",
        "status": "in-progress",
        "extension": prefilled["extension"],
        "contained": [adaptive_form],
        "questionnaire": f"#{adaptive_form['id']}",
        "item": [],
    }
    asked = []
    for _ in range(20):
        qr = _next(app_client, qr)
        if qr["status"] == "completed":
            break
        new = [i for i in qr["contained"][0]["item"] if i["linkId"] not in asked]
        assert len(new) == 1
        link = new[0]["linkId"]
        asked.append(link)
        value = DEFAULT_ATTESTATIONS[link]
        key = "valueInteger" if new[0]["type"] == "integer" else "valueBoolean"
        # The question asked is listed unanswered (dtr-questionnaireresponse item 1..*).
        qr["item"] = [i for i in qr["item"] if i["linkId"] != link]
        qr["item"].append({"linkId": link, "answer": [{key: value}]})
    assert qr["status"] == "completed"
    # Once 220 exposure days meet E, neither bleeding history is asked.
    assert "fix-exposure-days" in asked
    assert not {"life-threatening-hemorrhage", "repeated-spontaneous-bleeding"} & set(asked)
    # The prescriber's specialty is on record (criterion M), so it is never asked.
    assert "prescriber-hemophilia-specialist" not in asked
    ext = next(e for e in qr["extension"] if e["url"] == COVERAGE_INFORMATION)
    assert violations(ext) == []
    parts = {p["url"]: p for p in ext["extension"]}
    # Decided, every criterion met: nothing more to document, so no doc-needed (CRD 2.0.1's
    # AdditionalDocumentation value set has no "no-doc").
    assert "doc-needed" not in parts and "questionnaire" not in parts


def test_next_question_stops_at_once_when_the_case_is_decided(app_client: TestClient) -> None:
    assertion, _ = _sign(app_client, "decided", birth_sex="F", gender="female")
    _, adaptive_form, prefilled = _package(app_client, assertion)
    qr = {
        "resourceType": "QuestionnaireResponse",
        "status": "in-progress",
        "extension": prefilled["extension"],
        "contained": [adaptive_form],
        "questionnaire": f"#{adaptive_form['id']}",
    }
    out = _next(app_client, qr)
    assert out["status"] == "completed"
    ext = next(e for e in out["extension"] if e["url"] == COVERAGE_INFORMATION)
    assert {p["url"]: p for p in ext["extension"]}["covered"]["valueCode"] == "not-covered"


def test_next_question_for_a_form_not_ours_is_404_naming_it(app_client: TestClient) -> None:
    """The kit's own dinner-order form: no coverage-assertion gate, a clear 404 for the form."""
    fixture = json.loads(
        (
            shared_dir("fixtures", "davinci-dtr")
            / "next_question_initial_input_params_conformant.json"
        ).read_text()
    )
    r = _post(app_client, NEXT, fixture)
    assert r.status_code == 404
    assert r.json()["resourceType"] == "OperationOutcome"
    assert "urn:inferno:dtr-test-kit:dinner-order-adaptive" in r.text
    assert "coverage-assertion" not in r.text


def test_lab_codes_for_prefill_are_loinc(ip0535: CompiledPolicy) -> None:
    form = build(ip0535, "http://payer.example")
    queries = [
        e["valueExpression"]["expression"]
        for e in form["extension"]
        if e["url"].endswith("/variable")
    ]
    assert any(f"{LOINC}|3187-2" in q for q in queries)
