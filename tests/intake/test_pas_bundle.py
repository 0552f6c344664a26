"""Reading PAS request bundles into Facts (intake.pas_bundle): contract checks and examples."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest

from priorauth.core.facts import HCPCS, ICD10CM, Facts
from priorauth.demo.samples import hemgenix_request
from priorauth.errors import InvalidRequest
from priorauth.intake.pas_bundle import read_bundle
from tests.conftest import shared_dir
from tests.intake.bundles import Bundle, observation, qr_item, resource

EXAMPLE_MEMBERS = {
    "approve.json": ("MC9F4989BF", "0053-0180-18"),
    "approve-modified.json": ("MC8DB2D4ED", "0053-0170-17"),
    "deny.json": ("MB722A3542", "0053-0150-15"),
    "pend.json": ("M3DD18AC2B", "0053-0150-15"),
}


# --- the builder's default request --------------------------------------------------


def test_default_request_reads_into_the_expected_facts() -> None:
    bundle = hemgenix_request(name="t-default", member_id="M123456789")
    facts = read_bundle(orjson.dumps(bundle))

    assert facts.claim_ref == f"Claim/{resource(bundle, 'Claim')['id']}"
    assert facts.as_of == date(2026, 5, 4)
    assert facts.expedited is False
    assert facts.notes == ()
    assert facts.claims is None
    assert facts.patient.member_id == "M123456789"
    assert facts.patient.birth_date == date(1979, 11, 23)
    assert (facts.patient.birth_sex, facts.patient.gender) == ("M", "male")
    assert facts.patient.sex_for_clinical_use is None

    (weight,) = facts.observations["29463-7"]
    assert (weight.value, weight.unit, weight.when) == (88.0, "kg", date(2026, 4, 25))
    assert weight.ref == f"Observation/{observation(bundle, '29463-7')['id']}"
    (fix,) = facts.observations["3187-2"]
    assert fix.when is not None
    assert fix.when.year < 2020
    (ast,) = facts.observations["1920-8"]
    assert (ast.value, ast.uln, ast.uln_unit) == (28.0, 48.0, "U/L")
    (hbsag,) = facts.observations["5196-1"]
    assert hbsag.coded == frozenset({("http://snomed.info/sct", "260385009")})
    assert hbsag.value is None

    assert {k: a.value for k, a in facts.attestations.items()} == {
        "no-prior-gene-therapy": True,
        "fix-exposure-days": 220,
        "life-threatening-hemorrhage": False,
        "repeated-spontaneous-bleeding": True,
        "on-demand-fix-spontaneous": True,
        "no-current-hepatitis-antiviral": True,
        "no-uncontrolled-hiv": True,
        "no-advanced-liver-disease": True,
        "history-of-fix-inhibitors": False,
    }
    qr_id = resource(bundle, "QuestionnaireResponse")["id"]
    hiv = facts.attestations["no-uncontrolled-hiv"]  # nested in a group
    assert hiv.ref == f"QuestionnaireResponse/{qr_id}#no-uncontrolled-hiv"
    assert hiv.when == date(2026, 5, 4)

    assert facts.prescriber is not None
    assert facts.prescriber.ref.startswith("PractitionerRole/")
    assert facts.prescriber.taxonomies == ("207RH0000X",)
    (item,) = facts.items
    assert item.codes == ((HCPCS, "J1411"),)
    assert (item.ndc, item.quantity, item.sequence) == ("0053-0180-18", 1.0, 1)
    assert (
        item.medication_request
        == f"MedicationRequest/{resource(bundle, 'MedicationRequest')['id']}"
    )
    assert facts.claim_diagnoses == ((ICD10CM, "D67"),)
    assert [(c.codes, c.active) for c in facts.conditions] == [(((ICD10CM, "D67"),), True)]
    # The requested MedicationRequest is the service, not a current medication.
    assert facts.medications == ()


def test_str_bytes_and_dict_inputs_read_alike() -> None:
    bundle = hemgenix_request(name="t-inputs")
    as_dict = read_bundle(bundle)
    assert read_bundle(orjson.dumps(bundle)) == as_dict
    assert read_bundle(json.dumps(bundle)) == as_dict


@pytest.mark.parametrize(
    ("priority", "expedited"),
    [("stat", True), ("urgent", True), ("normal", False), ("deferred", False)],
)
def test_expedited_follows_claim_priority(priority: str, expedited: bool) -> None:
    facts = read_bundle(hemgenix_request(name="t-priority", priority=priority))
    assert facts.expedited is expedited


def test_as_of_defaults_to_claim_created_and_can_be_overridden() -> None:
    bundle = hemgenix_request(name="t-asof")
    resource(bundle, "Claim")["created"] = "2026-05-06T23:30:00-05:00"
    assert read_bundle(bundle).as_of == date(2026, 5, 6)
    assert read_bundle(bundle, as_of=date(2026, 6, 1)).as_of == date(2026, 6, 1)


def test_claims_argument_is_kept() -> None:
    from priorauth.core.facts import ClaimsHistory

    history = ClaimsHistory(member_id="M1", claim_count=2)
    assert read_bundle(hemgenix_request(name="t-claims"), claims=history).claims is history


# --- malformed requests --------------------------------------------------------------


def _set(path: Callable[[Bundle], dict[str, Any]], key: str, value: Any) -> Callable[[Bundle], Any]:
    def mutate(bundle: Bundle) -> None:
        path(bundle)[key] = value

    return mutate


def _delete(path: Callable[[Bundle], dict[str, Any]], key: str) -> Callable[[Bundle], Any]:
    def mutate(bundle: Bundle) -> None:
        del path(bundle)[key]

    return mutate


def _claim(bundle: Bundle) -> dict[str, Any]:
    return resource(bundle, "Claim")


def _weight(bundle: Bundle) -> dict[str, Any]:
    quantity: dict[str, Any] = observation(bundle, "29463-7")["valueQuantity"]
    return quantity


def _first_item(bundle: Bundle) -> dict[str, Any]:
    item: dict[str, Any] = resource(bundle, "Claim")["item"][0]
    return item


def _swap_first_two(bundle: Bundle) -> None:
    bundle["entry"][0], bundle["entry"][1] = bundle["entry"][1], bundle["entry"][0]


def _duplicate_full_url(bundle: Bundle) -> None:
    bundle["entry"][3]["fullUrl"] = bundle["entry"][2]["fullUrl"]


def _requested_service(bundle: Bundle) -> dict[str, Any]:
    ext: dict[str, Any] = _first_item(bundle)["extension"][0]["valueReference"]
    return ext


BAD_MUTATIONS: list[tuple[str, Callable[[Bundle], Any], str, str]] = [
    # (id, mutation, message fragment, end of `where`)
    ("wrong-bundle-type", _set(lambda b: b, "type", "transaction"), "collection", "Bundle.type"),
    ("no-entries", _set(lambda b: b, "entry", []), "no entries", "Bundle.entry"),
    ("first-entry-patient", _swap_first_two, "must be a Claim", "entry[0]"),
    (
        "entry-without-resource",
        _delete(lambda b: b["entry"][4], "resource"),
        "resource",
        "entry[4]",
    ),
    ("duplicate-fullUrl", _duplicate_full_url, "unique", "entry[3]"),
    ("claim-use", _set(_claim, "use", "claim"), "preauthorization", ".use"),
    ("created-missing", _delete(_claim, "created"), "missing", ".created"),
    ("created-invalid", _set(_claim, "created", "2026-05-04T25:00:00Z"), "dateTime", ".created"),
    ("created-no-zone", _set(_claim, "created", "2026-05-04T10:00:00"), "dateTime", ".created"),
    ("created-partial", _set(_claim, "created", "2026-05"), "full date", ".created"),
    ("patient-missing", _delete(_claim, "patient"), "no reference", ".patient"),
    (
        "patient-unresolved",
        _set(lambda b: _claim(b)["patient"], "reference", "urn:uuid:nobody"),
        "does not resolve",
        ".patient",
    ),
    (
        "patient-not-a-patient",
        lambda b: _claim(b)["patient"].update(reference=_claim(b)["provider"]["reference"]),
        "Patient",
        ".patient",
    ),
    (
        "coverage-unresolved",
        _set(lambda b: _claim(b)["insurance"][0]["coverage"], "reference", "Coverage/x"),
        "does not resolve",
        "insurance[0].coverage",
    ),
    (
        "provider-unresolved",
        _set(lambda b: _claim(b)["provider"], "reference", "Organization/x"),
        "does not resolve",
        ".provider",
    ),
    (
        "care-team-unresolved",
        _set(lambda b: _claim(b)["careTeam"][0]["provider"], "reference", "PractitionerRole/x"),
        "does not resolve",
        "careTeam[0].provider",
    ),
    (
        "supporting-info-unresolved",
        _set(lambda b: _claim(b)["supportingInfo"][2]["valueReference"], "reference", "urn:x"),
        "does not resolve",
        "supportingInfo[2].valueReference",
    ),
    (
        "requested-service-unresolved",
        _set(_requested_service, "reference", "MedicationRequest/x"),
        "does not resolve",
        "requestedService]",
    ),
    (
        "requester-unresolved",
        _set(lambda b: resource(b, "MedicationRequest")["requester"], "reference", "urn:uuid:x"),
        "does not resolve",
        ".requester",
    ),
    (
        "role-practitioner-unresolved",
        _set(lambda b: resource(b, "PractitionerRole")["practitioner"], "reference", "urn:x"),
        "does not resolve",
        ".practitioner",
    ),
    ("weight-negative", _set(_weight, "value", -3), "negative", "valueQuantity.value"),
    ("weight-zero", _set(_weight, "value", 0), "700 kg", "valueQuantity.value"),
    ("weight-701-kg", _set(_weight, "value", 701), "700 kg", "valueQuantity.value"),
    (
        "weight-1600-lb",
        lambda b: _weight(b).update(value=1600, unit="[lb_av]", code="[lb_av]"),
        "700 kg",
        "valueQuantity.value",
    ),
    ("weight-string", _set(_weight, "value", "88"), "number", "valueQuantity.value"),
    ("weight-boolean", _set(_weight, "value", True), "number", "valueQuantity.value"),
    (
        "lab-negative",
        _set(lambda b: observation(b, "1742-6")["valueQuantity"], "value", -1),
        "negative",
        "valueQuantity.value",
    ),
    (
        "uln-not-numeric",
        _set(lambda b: observation(b, "1742-6")["referenceRange"][0]["high"], "value", "55"),
        "number",
        "referenceRange[0].high.value",
    ),
    (
        "effective-yesterday",
        _set(lambda b: observation(b, "29463-7"), "effectiveDateTime", "yesterday"),
        "dateTime",
        ".effectiveDateTime",
    ),
    (
        "effective-period-end-invalid",
        _set(lambda b: observation(b, "777-3"), "effectivePeriod", {"end": "2026-02-30"}),
        "dateTime",
        ".effectivePeriod.end",
    ),
    (
        "issued-invalid",
        _set(lambda b: observation(b, "777-3"), "issued", "2026-04-25 10:00"),
        "dateTime",
        ".issued",
    ),
    (
        "birth-date-invalid",
        _set(lambda b: resource(b, "Patient"), "birthDate", "1979-13-45"),
        "date",
        ".birthDate",
    ),
    (
        "birth-date-with-time",
        _set(lambda b: resource(b, "Patient"), "birthDate", "1979-11-23T00:00:00Z"),
        "date",
        ".birthDate",
    ),
    (
        "authored-invalid",
        _set(lambda b: resource(b, "QuestionnaireResponse"), "authored", "04/05/2026"),
        "dateTime",
        ".authored",
    ),
    (
        "serviced-date-invalid",
        _set(_first_item, "servicedDate", "2026-05-32"),
        "date",
        "servicedDate",
    ),
    (
        "quantity-zero",
        _set(_first_item, "quantity", {"value": 0}),
        "greater than 0",
        "quantity.value",
    ),
    (
        "quantity-negative",
        _set(_first_item, "quantity", {"value": -1}),
        "greater than 0",
        "quantity.value",
    ),
    ("quantity-string", _set(_first_item, "quantity", {"value": "1"}), "number", "quantity.value"),
    (
        "qr-boolean-as-string",
        lambda b: qr_item(b, "no-uncontrolled-hiv").update(answer=[{"valueBoolean": "true"}]),
        "valueBoolean",
        "item[no-uncontrolled-hiv].answer",
    ),
    (
        "qr-integer-as-string",
        lambda b: qr_item(b, "fix-exposure-days").update(answer=[{"valueInteger": "220"}]),
        "valueInteger",
        "item[fix-exposure-days].answer",
    ),
    (
        "qr-integer-as-boolean",
        lambda b: qr_item(b, "fix-exposure-days").update(answer=[{"valueInteger": True}]),
        "valueInteger",
        "item[fix-exposure-days].answer",
    ),
    ("items-not-a-list", _set(_claim, "item", {"sequence": 1}), "array", ".item"),
]


@pytest.mark.parametrize(
    ("mutate", "fragment", "where"),
    [pytest.param(m, f, w, id=name) for name, m, f, w in BAD_MUTATIONS],
)
def test_malformed_request_is_refused_with_a_precise_message(
    mutate: Callable[[Bundle], Any], fragment: str, where: str
) -> None:
    bundle = hemgenix_request(name="t-bad")
    mutate(bundle)
    with pytest.raises(InvalidRequest) as caught:
        read_bundle(orjson.dumps(bundle))
    error = caught.value
    assert fragment in error.message
    assert error.where is not None
    assert error.where.endswith(where)
    assert "\n" not in str(error)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        pytest.param(b"{not json", "not valid JSON", id="not-json"),
        pytest.param(b"", "not valid JSON", id="empty-body"),
        pytest.param(b"[1, 2]", "JSON object", id="json-array"),
        pytest.param(b'"Bundle"', "JSON object", id="json-string"),
        pytest.param(b'{"resourceType": "Patient"}', "Bundle", id="not-a-bundle"),
        pytest.param(b'{"resourceType": "Bundle", "type": "collection"}', "no entries", id="empty"),
    ],
)
def test_unreadable_request_is_refused(data: bytes, fragment: str) -> None:
    with pytest.raises(InvalidRequest, match=fragment):
        read_bundle(data)


def test_error_messages_do_not_echo_patient_data() -> None:
    bundle = hemgenix_request(name="t-phi")
    resource(bundle, "Patient")["birthDate"] = "1979-13-45"
    with pytest.raises(InvalidRequest) as caught:
        read_bundle(bundle)
    assert "1979" not in str(caught.value)
    assert str(caught.value).startswith("Patient/")


# --- validate=True ---------------------------------------------------------------------


def test_validate_passes_the_builder_request() -> None:
    bundle = hemgenix_request(name="t-validate")
    assert read_bundle(bundle, validate=True) == read_bundle(bundle)


def test_validate_catches_a_bad_date_the_fast_path_does_not_read() -> None:
    bundle = hemgenix_request(name="t-validate-bad")
    resource(bundle, "MedicationRequest")["authoredOn"] = "2026-02-30"
    assert isinstance(read_bundle(bundle), Facts)  # authoredOn is not extracted
    with pytest.raises(InvalidRequest) as caught:
        read_bundle(bundle, validate=True)
    assert caught.value.where is not None
    assert caught.value.where.endswith(".authoredOn")
    assert "FHIR validation failed" in caught.value.message
    assert "2026-02-30" not in str(caught.value)


def test_validate_catches_an_unknown_element() -> None:
    bundle = hemgenix_request(name="t-validate-extra")
    resource(bundle, "Coverage")["subscriberIdentifier"] = "x"
    with pytest.raises(InvalidRequest, match="subscriberIdentifier"):
        read_bundle(bundle, validate=True)


# --- the shared examples and the Da Vinci fixtures -------------------------------------


@pytest.mark.parametrize("name", sorted(EXAMPLE_MEMBERS))
def test_shared_examples_read_without_notes(name: str) -> None:
    path = shared_dir("examples", "hemgenix") / name
    facts = read_bundle(path.read_bytes())
    member_id, ndc = EXAMPLE_MEMBERS[name]
    assert facts.notes == ()
    assert facts.patient.member_id == member_id
    assert facts.items[0].ndc == ndc
    assert facts.as_of == date(2026, 5, 4)
    assert facts.prescriber is not None
    assert facts.prescriber.taxonomies == ("207RH0000X",)
    assert ("777-3" in facts.observations) is (name != "pend.json")
    assert ("no-uncontrolled-hiv" in facts.attestations) is (name != "pend.json")


def test_shared_examples_pass_model_validation() -> None:
    for path in sorted(shared_dir("examples", "hemgenix").glob("*.json")):
        assert read_bundle(path.read_bytes(), validate=True).notes == ()


def _fixtures() -> list[Path]:
    return sorted(shared_dir("fixtures", "davinci-pas").glob("*.json"))


def test_every_davinci_fixture_reads_or_is_refused_cleanly() -> None:
    outcomes: dict[str, str] = {}
    for path in _fixtures():
        try:
            facts = read_bundle(path.read_bytes())
        except InvalidRequest:
            outcomes[path.name] = "refused"
        else:
            assert isinstance(facts, Facts)
            outcomes[path.name] = "read"
    assert outcomes["approval_pa_submit_request.json"] == "read"
    assert outcomes["missing_referenced_resource_request_bundle.json"] == "refused"
    assert outcomes["nonconformant_pas_bundle_v110.json"] == "refused"
    assert outcomes["response_approval.json"] == "refused"
    assert outcomes["must_support_pa_submit_request.json"] == "refused"


def test_davinci_request_facts() -> None:
    path = shared_dir("fixtures", "davinci-pas") / "approval_pa_submit_request.json"
    facts = read_bundle(path.read_bytes())
    assert facts.patient.member_id == "12345678901"
    assert facts.patient.birth_date == date(1987, 2, 20)
    assert facts.as_of == date(2005, 5, 2)
    assert facts.prescriber is not None
    assert facts.prescriber.ref == "Organization/UMOExample"
    assert facts.items[0].ndc is None
