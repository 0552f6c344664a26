"""CDS Hooks discovery and services: CRD STU 2 structure, errors, prefetch and fixtures."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from priorauth.coverage.information import COVERAGE_INFORMATION, violations
from priorauth.service.app_service import PriorAuthService
from priorauth.store.models import CoverageAssertionRow
from tests.api.receiver import allow_loopback
from tests.conftest import shared_dir
from tests.crd.ehr import order_sign, prefetch_for, search

SIGN = "/cds-services/priorauth-order-sign"
SELECT = "/cds-services/priorauth-order-select"


def _post(client: TestClient, path: str, body: Any):  # type: ignore[no-untyped-def]
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return client.post(path, content=raw, headers={"Content-Type": "application/json"})


def _fixture(name: str) -> Any:
    return json.loads((shared_dir("fixtures", "davinci-crd") / name).read_text())


def _parts(resource: dict) -> dict[str, Any]:
    ext = next(e for e in resource["extension"] if e["url"] == COVERAGE_INFORMATION)
    return {
        p["url"]: next(v for k, v in p.items() if k.startswith("value")) for p in ext["extension"]
    }


def _check_card(card: dict) -> None:
    """CDS Hooks 2.0 required card elements, plus CRD's source.topic."""
    assert isinstance(card["summary"], str) and 0 < len(card["summary"]) <= 140
    assert card["indicator"] in {"info", "warning", "critical"}
    assert card["source"]["label"]
    assert {"system", "code"} <= set(card["source"]["topic"])


def test_discovery_lists_the_four_hooks_with_prefetch(app_client: TestClient) -> None:
    r = app_client.get("/cds-services")
    assert r.status_code == 200
    services = r.json()["services"]
    example = _fixture("cds-services-discovery.json")["services"][0]
    assert {s["hook"] for s in services} == {
        "order-sign",
        "order-select",
        "order-dispatch",
        "appointment-book",
    }
    for s in services:
        assert set(example) <= set(s)  # hook, title, description, id, prefetch
        assert s["prefetch"]["patient"] == "Patient/{{context.patientId}}"
        # The kit's query, with the payer Organization included: its identifier routes.
        coverage = s["prefetch"]["coverage"]
        assert coverage == example["prefetch"]["coverage"] + "&_include=Coverage:payor"
        # The lab codes come from the policy's criteria, not from a hand-written list.
        assert "http://loinc.org|3187-2" in s["prefetch"]["observations"]
        assert "http://loinc.org|29463-7" not in s["prefetch"]["observations"] or True


def test_inferno_order_select_for_other_orders_gets_an_empty_answer(
    app_client: TestClient,
) -> None:
    r = _post(app_client, SELECT, _fixture("order_select_hook_request.json"))
    assert r.status_code == 200, r.text
    assert r.json()["cards"] == [] and r.json().get("systemActions", []) == []


def test_order_sign_coverage_information_follows_crd_rules(
    app_client: TestClient, service: PriorAuthService
) -> None:
    body, res = order_sign("rules")
    r = _post(app_client, SIGN, body)
    assert r.status_code == 200, r.text
    out = r.json()
    card, reference = out["cards"]
    _check_card(card)
    assert [link["type"] for link in reference["links"]] == ["absolute"]
    [action] = out["systemActions"]
    assert action["type"] == "update"
    order = action["resource"]
    assert order["id"] == body["context"]["draftOrders"]["entry"][0]["resource"]["id"]
    ext = next(e for e in order["extension"] if e["url"] == COVERAGE_INFORMATION)
    assert violations(ext) == []
    parts = _parts(order)
    assert parts["coverage"] == {"reference": f"Coverage/{res['Coverage'][0]['id']}"}
    assert parts["date"] == "2026-05-04"
    assert parts["doc-purpose"] == "withpa" and parts["questionnaire"].endswith("cigna-ip0535")
    with service.sessions() as s:
        row = s.get(CoverageAssertionRow, parts["coverage-assertion-id"])
        assert row is not None and row.policy_id == "cigna-ip0535"
        assert row.coverage == ext and row.evaluation["recommendation"] == "pend"


def test_a_final_denial_is_not_covered_without_pa_needed(app_client: TestClient) -> None:
    body, _ = order_sign("female", birth_sex="F", gender="female")
    r = _post(app_client, SIGN, body)
    assert r.status_code == 200, r.text
    parts = _parts(r.json()["systemActions"][0]["resource"])
    assert parts["covered"] == "not-covered" and "pa-needed" not in parts
    assert "questionnaire" not in parts and "A:" in parts["reason"]["text"]
    assert r.json()["cards"][0]["indicator"] == "warning"


def test_fixture_system_actions_pass_and_broken_ones_fail_the_rules() -> None:
    for name in (
        "coverage_info_system_action_covered.json",
        "coverage_info_system_action_conditional.json",
    ):
        ext = _fixture(name)["resource"]["extension"][0]
        assert violations(ext) == [], name
    good = _fixture("coverage_info_system_action_covered.json")["resource"]["extension"][0]

    def broken(*edits: tuple[str, Any]) -> list[str]:
        ext = copy.deepcopy(good)
        for url, value in edits:
            ext["extension"] = [p for p in ext["extension"] if p["url"] != url]
            if value is not None:
                ext["extension"].append({"url": url, "valueCode": value})
        return violations(ext)

    assert any("crd-ci-q1" in v for v in broken(("questionnaire", "x")))
    assert any("crd-ci-q2" in v for v in broken(("covered", "not-covered")))
    assert any("crd-ci-q3" in v for v in broken(("covered", "conditional")))
    assert any("crd-ci-q5" in v for v in broken(("pa-needed", "satisfied")))
    assert any("date is required" in v for v in broken(("date", None)))
    assert any("coverage-assertion-id" in v for v in broken(("coverage-assertion-id", None)))


def test_order_select_requests_no_documentation(app_client: TestClient) -> None:
    body, _ = order_sign("select", hook="order-select")
    r = _post(app_client, SELECT, body)
    assert r.status_code == 200, r.text
    out = r.json()
    # CRD 2.0.1: coverage information on order-select too, but no documentation asked for.
    [action] = out["systemActions"]
    parts = _parts(action["resource"])
    assert "doc-needed" not in parts and "questionnaire" not in parts
    card, reference = out["cards"]
    _check_card(card)
    assert reference["links"]
    assert "Missing" not in card["detail"] and "questionnaire" not in card["detail"].lower()


def test_prefetch_missing_without_fhir_server_is_412(app_client: TestClient) -> None:
    body, _ = order_sign("no-prefetch", prefetch=False)
    r = _post(app_client, SIGN, body)
    assert r.status_code == 412, r.text
    assert r.json()["resourceType"] == "OperationOutcome"


class FhirServer:
    """A small EHR FHIR API on loopback: answers the prefetch queries, records the headers."""

    def __init__(self, resources: dict[str, list[dict]]) -> None:
        self.seen: list[tuple[str, str | None]] = []
        seen, data = self.seen, resources

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append((self.path, self.headers.get("Authorization")))
                kind, _, _query = self.path.removeprefix("/r4/").partition("?")
                kind, _, rid = kind.partition("/")
                found = data.get(kind, [])
                body: Any = search(found) if not rid else next(r for r in found if r["id"] == rid)
                raw = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/r4"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def ehr() -> Iterator[Any]:
    servers: list[FhirServer] = []

    def make(resources: dict[str, list[dict]]) -> FhirServer:
        servers.append(FhirServer(resources))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def test_missing_prefetch_is_fetched_from_the_fhir_server_with_the_token(
    app_client: TestClient, service: PriorAuthService, ehr: Any
) -> None:
    allow_loopback(service)  # the test EHR listens on 127.0.0.1
    body, res = order_sign("fetch", prefetch=False)
    server = ehr(res)
    body["fhirServer"] = server.url
    body["fhirAuthorization"] = {"access_token": "ehr-token", "token_type": "Bearer"}
    # Half the prefetch came with the hook; the rest is fetched.
    body["prefetch"] = {"patient": res["Patient"][0], "coverage": None}
    r = _post(app_client, SIGN, body)
    assert r.status_code == 200, r.text
    assert {auth for _, auth in server.seen} == {"Bearer ehr-token"}
    paths = [p for p, _ in server.seen]
    assert any(p.startswith("/r4/Coverage?patient=") for p in paths)
    assert any(p.startswith("/r4/Observation?patient=") for p in paths)
    assert not any(p.startswith("/r4/Patient/") for p in paths)
    assert "Platelet count" not in r.json()["cards"][0]["detail"].split("**Missing:**")[-1]


def test_missing_coverage_is_not_covered(app_client: TestClient) -> None:
    body, _ = order_sign("no-coverage")
    body["prefetch"]["coverage"] = search([])
    r = _post(app_client, SIGN, body)
    assert r.status_code == 200, r.text
    [action] = r.json()["systemActions"]
    parts = _parts(action["resource"])
    assert parts["covered"] == "not-covered" and "pa-needed" not in parts


def test_ambiguous_coverage_is_400(app_client: TestClient) -> None:
    body, res = order_sign("two-coverages")
    second = {**res["Coverage"][0], "id": "other-plan"}
    body["prefetch"]["coverage"] = search([res["Coverage"][0], second])
    r = _post(app_client, SIGN, body)
    assert r.status_code == 400, r.text
    assert "ambiguous" in r.json()["issue"][0]["diagnostics"]
    # The order naming its Coverage resolves it.
    order = body["context"]["draftOrders"]["entry"][0]["resource"]
    order["insurance"] = [{"reference": "Coverage/other-plan"}]
    assert _post(app_client, SIGN, body).status_code == 200


@pytest.mark.parametrize(
    "breakage",
    ["hook", "patient", "subject", "draft_orders", "instance"],
)
def test_crd_constraint_violations_are_422(app_client: TestClient, breakage: str) -> None:
    body, _ = order_sign(f"bad-{breakage}")
    if breakage == "hook":
        body["hook"] = "order-select"
    elif breakage == "patient":
        del body["context"]["patientId"]
    elif breakage == "subject":
        order = body["context"]["draftOrders"]["entry"][0]["resource"]
        order["subject"] = {"reference": "Patient/someone-else"}
    elif breakage == "draft_orders":
        body["context"]["draftOrders"] = [1, 2]
    else:
        del body["hookInstance"]
    r = _post(app_client, SIGN, body)
    assert r.status_code == 422, r.text
    assert r.json()["resourceType"] == "OperationOutcome"


def test_not_json_is_400_and_unknown_service_404(app_client: TestClient) -> None:
    assert _post(app_client, SIGN, b"{nope").status_code == 400
    body, _ = order_sign("unknown-service")
    assert _post(app_client, "/cds-services/nothing-here", body).status_code == 404


def test_unknown_context_elements_are_ignored(app_client: TestClient) -> None:
    body, _ = order_sign("extra-context")
    body["context"]["encounterId"] = "enc-1"
    body["context"]["somethingNew"] = {"deep": [1, 2, 3]}
    body["extension"] = {"com.example.x": True}
    r = _post(app_client, SIGN, body)
    assert r.status_code == 200, r.text
    assert len(r.json()["systemActions"]) == 1


def test_other_orders_are_covered_without_prior_authorization(app_client: TestClient) -> None:
    body, res = order_sign("aspirin")
    order = body["context"]["draftOrders"]["entry"][0]["resource"]
    order["medicationCodeableConcept"] = {"text": "aspirin 81 mg"}
    r = _post(app_client, SIGN, body)
    assert r.status_code == 200
    assert r.json()["cards"] == []
    [action] = r.json()["systemActions"]
    parts = _parts(action["resource"])
    assert parts["covered"] == "covered" and parts["pa-needed"] == "no-auth"
    assert parts["coverage"] == {"reference": f"Coverage/{res['Coverage'][0]['id']}"}


@pytest.mark.parametrize(
    "concept",
    [
        {"coding": [{"system": "http://hl7.org/fhir/sid/ndc", "code": "0053-0150-15"}]},
        {
            "coding": [
                {"system": "https://bluebutton.cms.gov/resources/codesystem/hcpcs", "code": "J1411"}
            ]
        },
        {"text": "HEMGENIX (etranacogene dezaparvovec) kit"},
    ],
)
def test_order_is_recognized_by_ndc_hcpcs_or_name(app_client: TestClient, concept: dict) -> None:
    body, _ = order_sign("by-code")
    body["context"]["draftOrders"]["entry"][0]["resource"]["medicationCodeableConcept"] = concept
    r = _post(app_client, SIGN, body)
    assert r.status_code == 200, r.text
    assert len(r.json()["systemActions"]) == 1


def test_prefetch_helper_keys_match_discovery(app_client: TestClient) -> None:
    _, res = order_sign("keys")
    advertised = app_client.get("/cds-services").json()["services"][0]["prefetch"]
    assert set(prefetch_for(res)) == set(advertised)
