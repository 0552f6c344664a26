"""CRD 2.0.1 coverage information: one answer per order, bound codes, no needless updates.

Encodes the Da Vinci CRD test kit's server checks (davinci-crd-test-kit,
lib/davinci_crd_test_kit/server_tests/): coverage_information_system_action_received_test.rb
(crd_coverage_info_system_action_received), coverage_information_system_action_validation_test.rb
(crd_coverage_info_system_action_validation: type update, one assertion id per coverage),
external_reference_card_validation_test.rb (crd_external_reference_card_validation: links all
`absolute`), and the required bindings of StructureDefinition-ext-coverage-information and
ValueSet-cardType in ../shared/igs/davinci-crd-2.0.1.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from priorauth.coverage.information import COVERAGE_INFORMATION, violations
from priorauth.crd.cards import external_reference
from priorauth.policies import PolicyLibrary
from priorauth.service.app_service import PriorAuthService
from priorauth.store.models import CoverageAssertionRow
from tests.api.receiver import allow_loopback
from tests.conformance.crd.conftest import fhir_api
from tests.conftest import shared_dir
from tests.crd.ehr import order_sign

SIGN = "/cds-services/priorauth-order-sign"
SELECT = "/cds-services/priorauth-order-select"
DISPATCH = "/cds-services/priorauth-order-dispatch"
BOOK = "/cds-services/priorauth-appointment-book"
TEMP = "http://hl7.org/fhir/us/davinci-crd/CodeSystem/temp"
Json = dict[str, Any]


def _ig(name: str) -> Any:
    return json.loads((shared_dir("igs", "davinci-crd-2.0.1") / name).read_text())


def _fixture(name: str) -> Any:
    return json.loads((shared_dir("fixtures", "davinci-crd") / name).read_text())


@cache
def _required_bindings() -> dict[str, set[str]]:
    """coverage-information part -> the codes its required binding allows (from the IG)."""
    sd = _ig("StructureDefinition-ext-coverage-information.json")
    out: dict[str, set[str]] = {}
    for e in sd["differential"]["element"]:
        b = e.get("binding")
        if not b or b.get("strength") != "required":
            continue
        part = e["id"].split(":")[1].split(".")[0]
        vs = _ig(f"ValueSet-{b['valueSet'].rsplit('/', 1)[1]}.json")
        out[part] = {c["code"] for inc in vs["compose"]["include"] for c in inc["concept"]}
    return out


@cache
def _card_types() -> set[str]:
    """ValueSet cardType: the descendants of _cardType in the CRD code system."""
    cs = _ig("CodeSystem-temp.json")
    parent = next(c for c in cs["concept"] if c["code"] == "_cardType")
    return {c["code"] for c in parent["concept"]}


def _post(client: TestClient, path: str, body: Any) -> Any:
    return client.post(
        path, content=orjson.dumps(body), headers={"Content-Type": "application/json"}
    )


def _info(resource: Json) -> Json:
    [ext] = [e for e in resource.get("extension", []) if e["url"] == COVERAGE_INFORMATION]
    return ext


def _parts(resource: Json) -> dict[str, Any]:
    return {
        p["url"]: next(v for k, v in p.items() if k.startswith("value"))
        for p in _info(resource)["extension"]
    }


def _check(out: Json) -> None:
    """Every systemAction and card of a CRD answer, as the kit and the IG check them."""
    for action in out["systemActions"]:
        assert action["type"] == "update"
        ext = _info(action["resource"])
        assert violations(ext) == []
        bindings = _required_bindings()
        for part in ext["extension"]:
            if part["url"] in bindings:
                assert part["valueCode"] in bindings[part["url"]], part
    for card in out["cards"]:
        topic = card["source"]["topic"]
        assert topic["system"] == TEMP and topic["code"] in _card_types(), topic
        assert 0 < len(card["summary"]) <= 140 and card["indicator"] in {"info", "warning"}


def test_no_doc_is_gone_and_codes_come_from_the_bound_value_sets() -> None:
    """AdditionalDocumentation (required binding of doc-needed) has no `no-doc`."""
    assert "no-doc" not in _required_bindings()["doc-needed"]
    assert {"coverage-info"} <= _card_types()


@pytest.mark.parametrize(
    ("name", "kw", "covered"),
    [
        ("pend", {"drop_labs": ("777-3",)}, "covered"),
        ("decided", {}, "covered"),
        ("denied", {"birth_sex": "F", "gender": "female"}, "not-covered"),
    ],
)
def test_governed_orders_use_bound_codes_only(
    app_client: TestClient, name: str, kw: Json, covered: str
) -> None:
    body, _ = order_sign(f"codes-{name}", **kw)
    r = _post(app_client, SIGN, body)
    assert r.status_code == 200, r.text
    _check(r.json())
    parts = _parts(r.json()["systemActions"][0]["resource"])
    assert parts["covered"] == covered
    assert parts.get("doc-needed") in (None, "clinical")


def _kit_order_sign(http: Any, service: PriorAuthService, **extra: list[Json]) -> Json:
    """The kit's order-sign request, with its fhirServer a local EHR serving its Coverage."""
    allow_loopback(service)
    resources = {"Coverage": [_ig("Coverage-example.json")], **extra}
    server = http(fhir_api(resources))
    body = _fixture("order_sign_hook_request.json")
    body["fhirServer"] = f"{server.url}/r4"
    return body


def test_every_order_of_the_kits_order_sign_gets_coverage_information(
    app_client: TestClient, service: PriorAuthService, http: Any
) -> None:
    """crd_coverage_info_system_action_received: a coverage-information system action for
    each order, here covered + no-auth (no policy lists these services); the order's other
    extensions are kept."""
    body = _kit_order_sign(http, service)
    r = _post(app_client, SIGN, body)
    assert r.status_code == 200, r.text
    out = r.json()
    _check(out)
    sent = {
        f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in body["context"]["draftOrders"]["entry"]
    }
    got = {f"{a['resource']['resourceType']}/{a['resource']['id']}" for a in out["systemActions"]}
    assert got == sent
    ids = set()
    for action in out["systemActions"]:
        parts = _parts(action["resource"])
        assert parts["covered"] == "covered" and parts["pa-needed"] == "no-auth"
        assert parts["coverage"] == {"reference": "Coverage/example"}
        ids.add(parts["coverage-assertion-id"])
    assert len(ids) == 2  # one assertion per order
    nutrition = next(
        a["resource"]
        for a in out["systemActions"]
        if a["resource"]["resourceType"] != "MedicationRequest"
    )
    assert {"existing_extension", "to_replace"} <= {e["url"] for e in nutrition["extension"]}


def test_no_active_coverage_is_not_covered_not_400(
    app_client: TestClient, service: PriorAuthService, http: Any
) -> None:
    """CRD: with no active coverage the answer is `not-covered` (was a 400)."""
    allow_loopback(service)
    server = http(fhir_api({"Coverage": []}))
    body = _fixture("order_sign_hook_request.json")
    body["fhirServer"] = f"{server.url}/r4"
    r = _post(app_client, SIGN, body)
    assert r.status_code == 200, r.text
    _check(r.json())
    assert len(r.json()["systemActions"]) == 2
    for action in r.json()["systemActions"]:
        parts = _parts(action["resource"])
        assert parts["covered"] == "not-covered" and "pa-needed" not in parts
        assert parts["reason"]["text"]


def test_the_kits_order_dispatch_is_answered(
    app_client: TestClient, service: PriorAuthService, http: Any
) -> None:
    """order-dispatch (fixture order_dispatch_hook_request.json): the dispatched order is read
    from the EHR's FHIR server and gets its coverage information."""
    allow_loopback(service)
    order = {k: v for k, v in _ig("ServiceRequest-example.json").items() if k != "text"}
    server = http(fhir_api({"Coverage": [_ig("Coverage-example.json")], "ServiceRequest": [order]}))
    body = _fixture("order_dispatch_hook_request.json")
    body["fhirServer"] = f"{server.url}/r4"
    r = _post(app_client, DISPATCH, body)
    assert r.status_code == 200, r.text
    _check(r.json())
    [action] = r.json()["systemActions"]
    assert action["resource"]["id"] == "example"
    assert _parts(action["resource"])["pa-needed"] == "no-auth"
    assert any(p.startswith("/r4/ServiceRequest/example") for p in server.seen)


def test_order_dispatch_of_a_governed_order_is_judged(app_client: TestClient) -> None:
    """order-dispatch with the order in the prefetch: judged like order-sign."""
    sign, _ = order_sign("dispatch")
    order = sign["context"]["draftOrders"]["entry"][0]["resource"]
    body = {
        "hook": "order-dispatch",
        "hookInstance": "dispatch-1",
        "context": {
            "patientId": sign["context"]["patientId"],
            "dispatchedOrders": [f"MedicationRequest/{order['id']}"],
            "performer": "Organization/pharmacy",
        },
        "prefetch": {**sign["prefetch"], "order": order},
    }
    r = _post(app_client, DISPATCH, body)
    assert r.status_code == 200, r.text
    _check(r.json())
    [action] = r.json()["systemActions"]
    assert _parts(action["resource"])["pa-needed"] == "auth-needed"
    assert any(c.get("links") for c in r.json()["cards"])


def test_appointment_book_gets_coverage_information(app_client: TestClient) -> None:
    """appointment-book: each proposed Appointment gets a coverage-information."""
    sign, _ = order_sign("book")
    appointment = {k: v for k, v in _ig("Appointment-example.json").items() if k != "text"}
    body = {
        "hook": "appointment-book",
        "hookInstance": "book-1",
        "context": {
            "userId": sign["context"]["userId"],
            "patientId": sign["context"]["patientId"],
            "appointments": {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": appointment}],
            },
        },
        "prefetch": {"coverage": sign["prefetch"]["coverage"]},
    }
    r = _post(app_client, BOOK, body)
    assert r.status_code == 200, r.text
    _check(r.json())
    [action] = r.json()["systemActions"]
    assert action["resource"]["resourceType"] == "Appointment"
    assert _parts(action["resource"])["covered"] == "covered"


def _count(service: PriorAuthService) -> int:
    with service.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(CoverageAssertionRow)) or 0)


@pytest.mark.parametrize("governed", [True, False])
def test_an_order_that_carries_the_same_answer_gets_no_update(
    app_client: TestClient, service: PriorAuthService, governed: bool
) -> None:
    """CRD cards.html#coverage-information: no system action when the order already carries
    the same coverage-information (a re-send no longer gets a new assertion id)."""
    body, _ = order_sign(f"resend-{governed}", drop_labs=("777-3",))
    order = body["context"]["draftOrders"]["entry"][0]["resource"]
    if not governed:
        order["medicationCodeableConcept"] = {"text": "aspirin 81 mg"}
    first = _post(app_client, SIGN, body)
    assert first.status_code == 200, first.text
    [action] = first.json()["systemActions"]
    before = _count(service)
    again = copy.deepcopy(body)
    again["hookInstance"] = "resend-2"
    again["context"]["draftOrders"]["entry"][0]["resource"] = action["resource"]
    r = _post(app_client, SIGN, again)
    assert r.status_code == 200, r.text
    assert r.json()["systemActions"] == []
    assert _count(service) == before
    # A changed answer (now a final denial) is sent, under a new id.
    if governed:
        changed = copy.deepcopy(again)
        patient = changed["prefetch"]["patient"]
        patient["gender"] = "female"
        for ext in patient.get("extension", []):
            if ext.get("url", "").endswith("us-core-birthsex"):
                ext["valueCode"] = "F"
        r = _post(app_client, SIGN, changed)
        [update] = r.json()["systemActions"]
        old = _parts(action["resource"])["coverage-assertion-id"]
        assert _parts(update["resource"])["coverage-assertion-id"] != old


def test_a_forged_assertion_id_is_replaced(app_client: TestClient) -> None:
    """An extension whose assertion id this payer never issued is not "the same answer"."""
    body, _ = order_sign("forged", drop_labs=("777-3",))
    first = _post(app_client, SIGN, body).json()["systemActions"][0]["resource"]
    forged = copy.deepcopy(first)
    for p in _info(forged)["extension"]:
        if p["url"] == "coverage-assertion-id":
            p["valueString"] = "not-ours"
    body["context"]["draftOrders"]["entry"][0]["resource"] = forged
    r = _post(app_client, SIGN, body)
    [action] = r.json()["systemActions"]
    assert _parts(action["resource"])["coverage-assertion-id"] != "not-ours"
    assert (
        len([e for e in action["resource"]["extension"] if e["url"] == COVERAGE_INFORMATION]) == 1
    )


@pytest.mark.parametrize("path", [SIGN, SELECT])
def test_an_external_reference_card_links_the_policy_text_and_version(
    app_client: TestClient, path: str
) -> None:
    """crd_external_reference_card_validation: a card whose links are all `absolute`; here the
    policy version's text (served by this server) and the publisher's page when known."""
    hook = "order-sign" if path == SIGN else "order-select"
    body, _ = order_sign(f"ref-{hook}", hook=hook)
    r = _post(app_client, path, body)
    assert r.status_code == 200, r.text
    _check(r.json())
    [card] = [c for c in r.json()["cards"] if c.get("links")]
    assert all(link["type"] == "absolute" for link in card["links"])
    url = card["links"][0]["url"]
    assert url.startswith("http")
    page = app_client.get(urlsplit(url).path)
    assert page.status_code == 200, page.text
    text = page.json()
    assert text["version"] in card["summary"] and text["version"] in url
    assert text["criteria"] and all(c["text"] for c in text["criteria"])
    assert app_client.get("/crd/policies/nothing/1").status_code == 404


def test_a_published_policy_url_is_linked(library: PolicyLibrary) -> None:
    """A policy whose `source` names the publisher's page links it too (BCBSND policies)."""
    with_url = [v for vs in library.versions.values() for v in vs if "https://" in v.policy.source]
    assert with_url
    card = external_reference(with_url[0], "https://payer.example.org")
    assert [link["type"] for link in card["links"]] == ["absolute", "absolute"]
    assert card["links"][1]["url"] in with_url[0].policy.source
    assert card["links"][0]["url"].startswith("https://payer.example.org/crd/policies/")


def test_order_select_states_coverage_information_without_documentation(
    app_client: TestClient,
) -> None:
    """CRD 2.0.1 (coverage-information on order-select; davinci-crd-test-kit
    server_tests/coverage_information_system_action_received_test.rb and
    coverage_information_system_action_validation_test.rb run for order-select too): each
    chosen order gets a coverage-information update, valid under the extension's rules, and
    no documentation is asked for while orders are being chosen (no doc-needed, no
    questionnaire, the order-sign instructions card replaced by a notice)."""
    body, res = order_sign("select-coverage", hook="order-select")
    r = _post(app_client, SELECT, body)
    assert r.status_code == 200, r.text
    out = r.json()
    _check(out)
    [action] = out["systemActions"]
    assert action["resource"]["id"] == res["MedicationRequest"][0]["id"]
    parts = _parts(action["resource"])
    assert parts["covered"] == "covered" and parts["pa-needed"] == "auth-needed"
    assert parts["coverage"] == {"reference": f"Coverage/{res['Coverage'][0]['id']}"}
    assert not {"doc-needed", "doc-purpose", "questionnaire"} & parts.keys()
    sign, _ = order_sign("select-coverage-sign")
    signed = _parts(_post(app_client, SIGN, sign).json()["systemActions"][0]["resource"])
    assert "doc-needed" in signed  # the same order asks for documentation once signed


def test_order_select_without_the_ehr_data_still_answers_with_notices(
    app_client: TestClient,
) -> None:
    """Coverage information is what order-select SHOULD return: when the prefetch cannot be
    had (davinci-crd-test-kit order_select_hook_request.json has none), the chosen orders
    get their cards and no systemActions, not 412 (order-sign's answer)."""
    r = _post(app_client, SELECT, _fixture("order_select_hook_request.json"))
    assert r.status_code == 200, r.text
    assert r.json()["systemActions"] == []
