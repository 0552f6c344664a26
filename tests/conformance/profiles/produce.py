"""Real responses of the running app, for the profile checks: PAS, Subscription, CRD, DTR."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import orjson
from fastapi.testclient import TestClient

from priorauth.coverage.information import COVERAGE_INFORMATION
from priorauth.demo.samples import hemgenix_request
from priorauth.intake.claims import read_claims
from priorauth.policies.cases import packaged_cases
from priorauth.service.app_service import PriorAuthService
from priorauth.store.claims import import_claims
from tests.api.receiver import Receiver, allow_loopback, subscription
from tests.crd.ehr import order_sign

Json = dict[str, Any]
SUBMIT, INQUIRE = "/fhir/Claim/$submit", "/fhir/Claim/$inquire"
SIGN = "/cds-services/priorauth-order-sign"
PACKAGE = "/fhir/Questionnaire/$questionnaire-package"
NEXT = "/fhir/Questionnaire/$next-question"
MANUAL = {
    "url": "http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/information-origin",
    "extension": [{"url": "source", "valueCode": "manual"}],
}


def post(client: TestClient, path: str, body: object, fhir: bool = True) -> Any:
    kind = "application/fhir+json" if fhir else "application/json"
    r = client.post(path, content=orjson.dumps(body), headers={"Content-Type": kind})
    assert r.status_code in (200, 201), f"{path}: {r.status_code} {r.text[:500]}"
    return r.json()


def inquiry_for(request: Json) -> Json:
    """A PAS inquiry built from a request: same member, provider and service."""
    q = copy.deepcopy(request)
    q["entry"][0]["resource"]["identifier"] = [{"system": "urn:test:inquiry", "value": "Q1"}]
    return q


def submitted(client: TestClient, name: str, **kw: Any) -> tuple[Json, Json]:
    """A Hemgenix request and its $submit response Bundle."""
    request = hemgenix_request(name=name, **kw)
    return request, post(client, SUBMIT, request)


def decided(client: TestClient, decision: str, **kw: Any) -> dict[str, Json]:
    """A request decided through the case API, and every way PAS returns it afterwards."""
    body: Json = {"decision": decision}
    if decision == "deny":
        body |= {"reason": "criterion not met", "criteria": ["K"]}
    name = f"profiles-{decision}"
    if decision == "approve-modified":
        kw.setdefault("ndc", "0053-0170-17")
    request, first = submitted(client, name, **kw)
    case_id = first["entry"][0]["resource"]["id"]
    r = client.post(f"/api/cases/{case_id}/decision", json=body)
    assert r.status_code == 200, r.text
    return {
        "submit": post(client, SUBMIT, request),  # the same request again: the case as it is
        "inquire": post(client, INQUIRE, inquiry_for(request)),
        "read": client.get(f"/fhir/ClaimResponse/{case_id}").json(),
    }


def shipped_cases() -> list[Path]:
    return sorted(p for p in packaged_cases().glob("*/*") if (p / "request.json").is_file())


def submit_case(client: TestClient, service: PriorAuthService, folder: Path) -> Json:
    claims = folder / "claims.ndjson"
    if claims.is_file():
        with service.sessions() as s:
            import_claims(s, read_claims(claims.read_text().splitlines()))
    request = json.loads((folder / "request.json").read_text())
    return dict(post(client, SUBMIT, request))


def subscription_flow(
    client: TestClient, service: PriorAuthService, receiver: Receiver
) -> dict[str, Json]:
    """A Subscription created, read after its handshake, and the notification of a decision."""
    allow_loopback(service)
    request = hemgenix_request(name="profiles-sub")
    claim = request["entry"][0]["resource"]
    org = next(
        e["resource"] for e in request["entry"] if e["fullUrl"] == claim["provider"]["reference"]
    )
    created = post(
        client, "/fhir/Subscription", subscription(receiver.url, org["identifier"][0]["value"])
    )
    service.notifier.flush()
    read = client.get(f"/fhir/Subscription/{created['id']}").json()
    first = post(client, SUBMIT, request)
    case_id = first["entry"][0]["resource"]["id"]
    r = client.post(f"/api/cases/{case_id}/decision", json={"decision": "approve"})
    assert r.status_code == 200, r.text
    service.notifier.flush()
    notes = [body for _, body in receiver.received]
    return {"created": created, "read": read, "handshake": notes[0], "event": notes[-1]}


def crd_order_sign(client: TestClient, name: str = "profiles-crd", **kw: Any) -> Json:
    body, _ = order_sign(name, **kw)
    return dict(post(client, SIGN, body, fhir=False))


def assertion_id(crd: Json) -> str:
    ext = next(
        e
        for e in crd["systemActions"][0]["resource"]["extension"]
        if e["url"] == COVERAGE_INFORMATION
    )
    return str(
        next(p["valueString"] for p in ext["extension"] if p["url"] == "coverage-assertion-id")
    )


def dtr_package(client: TestClient, name: str = "profiles-dtr") -> Json:
    assertion = assertion_id(crd_order_sign(client, name, drop_labs=("777-3",)))
    params = {
        "resourceType": "Parameters",
        "parameter": [{"name": "context", "valueString": assertion}],
    }
    return dict(post(client, PACKAGE, params, fhir=False))


def dtr_next_question(client: TestClient, package: Json) -> Json:
    # One PackageBundle per form (DTR 2.0.1): the adaptive form and its draft are in theirs.
    bundles = [p["resource"] for p in package["parameter"] if p.get("name") == "PackageBundle"]
    adaptive_bundle = next(b for b in bundles if "adapt" in json.dumps(b["entry"][0]["resource"]))
    entries = [e["resource"] for e in adaptive_bundle["entry"]]
    adaptive = next(
        r
        for r in entries
        if r["resourceType"] == "Questionnaire" and "adapt" in json.dumps(r.get("meta", {}))
    )
    prefilled = next(
        r
        for b in bundles
        for r in (e["resource"] for e in b["entry"])
        if r["resourceType"] == "QuestionnaireResponse"
    )
    qr = {
        "resourceType": "QuestionnaireResponse",
        "status": "in-progress",
        "extension": prefilled.get("extension", []),
        "contained": [adaptive],
        "questionnaire": f"#{adaptive['id']}",
        "subject": prefilled["subject"],
        "authored": prefilled["authored"],
    }
    params = {
        "resourceType": "Parameters",
        "parameter": [{"name": "questionnaire-response", "resource": qr}],
    }
    return dict(post(client, NEXT, params, fhir=False))


def dtr_completed(client: TestClient, name: str = "profiles-done") -> Json:
    """The adaptive form answered to the end: the last $next-question response."""
    from priorauth.demo.samples import DEFAULT_ATTESTATIONS

    assertion = assertion_id(crd_order_sign(client, name))
    params = {
        "resourceType": "Parameters",
        "parameter": [{"name": "context", "valueString": assertion}],
    }
    package = post(client, PACKAGE, params, fhir=False)
    qr = dtr_next_question(client, package)
    for _ in range(20):
        if qr["status"] == "completed":
            return qr
        # The question asked is an item without an answer (dtr-questionnaireresponse 1..*).
        asked = {i["linkId"] for i in qr.get("item", []) if i.get("answer")}
        new = [i for i in qr["contained"][0]["item"] if i["linkId"] not in asked]
        link = new[0]["linkId"]
        key = "valueInteger" if new[0]["type"] == "integer" else "valueBoolean"
        # The DTR app marks what the prescriber typed (dtr-questionnaireresponse answer 1..1).
        answer = {"extension": [MANUAL], key: DEFAULT_ATTESTATIONS[link]}
        items = [i for i in qr.get("item", []) if i["linkId"] != link]
        qr["item"] = [*items, {"linkId": link, "answer": [answer]}]
        body = {
            "resourceType": "Parameters",
            "parameter": [{"name": "questionnaire-response", "resource": qr}],
        }
        qr = post(client, NEXT, body, fhir=False)
    raise AssertionError("the adaptive form did not complete in 20 questions")
