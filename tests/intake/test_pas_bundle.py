"""Reading PAS request bundles into Facts (intake.pas_bundle), per the Hemgenix data contract."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from priorauth.core.facts import HCPCS, ICD10CM, Facts
from priorauth.errors import InvalidRequest
from priorauth.intake.pas_bundle import read_bundle
from priorauth.samples import Lab, hemgenix_request
from tests.conftest import shared_dir

Bundle = dict[str, Any]

EXAMPLE_MEMBERS = {
    "approve.json": ("MC9F4989BF", "0053-0180-18"),
    "approve-modified.json": ("MC8DB2D4ED", "0053-0170-17"),
    "deny.json": ("MB722A3542", "0053-0150-15"),
    "pend.json": ("M3DD18AC2B", "0053-0150-15"),
}


def resource(bundle: Bundle, kind: str, n: int = 0) -> dict[str, Any]:
    """The n-th resource of a type in the bundle (mutable: tests edit it in place)."""
    found: list[dict[str, Any]] = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind
    ]
    return found[n]


def observation(bundle: Bundle, loinc: str) -> dict[str, Any]:
    for entry in bundle["entry"]:
        res: dict[str, Any] = entry["resource"]
        if res["resourceType"] == "Observation" and res["code"]["coding"][0]["code"] == loinc:
            return res
    raise AssertionError(f"no Observation {loinc}")


def qr_item(bundle: Bundle, link_id: str) -> dict[str, Any]:
    def walk(items: list[dict[str, Any]]) -> dict[str, Any] | None:
        for item in items:
            if item["linkId"] == link_id:
                return item
            found = walk(item.get("item", []))
            if found is not None:
                return found
        return None

    found = walk(resource(bundle, "QuestionnaireResponse")["item"])
    assert found is not None
    return found


def add_entry(bundle: Bundle, res: dict[str, Any]) -> None:
    bundle["entry"].append({"fullUrl": f"urn:uuid:{res['id']}", "resource": res})


def patient_ref(bundle: Bundle) -> dict[str, str]:
    return dict(resource(bundle, "Claim")["patient"])


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


# --- what is accepted, and how ---------------------------------------------------------


def test_relative_references_and_absolute_full_urls_resolve() -> None:
    bundle = hemgenix_request(name="t-relative")
    base = "http://provider.example/fhir"
    by_url = {}
    for entry in bundle["entry"]:
        res = entry["resource"]
        by_url[entry["fullUrl"]] = f"{res['resourceType']}/{res['id']}"
        entry["fullUrl"] = f"{base}/{res['resourceType']}/{res['id']}"
    text = orjson.dumps(bundle).decode()
    for urn, relative in by_url.items():
        text = text.replace(f'"{urn}"', f'"{relative}"')
    bundle = json.loads(text)
    # Claim.patient as an absolute URL equal to a fullUrl; evidence keeps "Patient/id".
    patient = resource(bundle, "Patient")
    resource(bundle, "Claim")["patient"]["reference"] = f"{base}/Patient/{patient['id']}"
    facts = read_bundle(bundle)
    assert facts.notes == ()
    assert facts.patient.ref == f"Patient/{patient['id']}"
    assert facts.items[0].ndc == "0053-0180-18"
    assert len(facts.observations) == 11


def test_datetime_forms_and_the_observation_date_order() -> None:
    bundle = hemgenix_request(name="t-dates")
    alt = observation(bundle, "1742-6")
    alt["effectiveDateTime"] = "2026-04-30T23:59:59.123+14:00"
    ast = observation(bundle, "1920-8")
    del ast["effectiveDateTime"]
    ast["effectivePeriod"] = {"start": "2026-04-01", "end": "2026-04-02T08:00:00Z"}
    bili = observation(bundle, "1975-2")
    del bili["effectiveDateTime"]
    bili["issued"] = "2026-04-03T10:00:00Z"
    plt = observation(bundle, "777-3")
    del plt["effectiveDateTime"]
    facts = read_bundle(bundle)
    assert facts.observations["1742-6"][0].when == date(2026, 4, 30)
    assert facts.observations["1920-8"][0].when == date(2026, 4, 2)
    assert facts.observations["1975-2"][0].when == date(2026, 4, 3)
    assert facts.observations["777-3"][0].when is None


def test_results_of_one_test_are_sorted_most_recent_first_undated_last() -> None:
    undated = {
        "resourceType": "Observation",
        "id": "undated-inhibitor",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "3185-6"}]},
        "valueQuantity": {"value": 2.0, "code": "[beth'U]/mL"},
    }
    bundle = hemgenix_request(
        name="t-order",
        extra_observations=[
            Lab(0.9, "[beth'U]/mL", days_before=400, code="3185-6"),
            Lab(0.1, "[beth'U]/mL", days_before=1, code="3185-6"),
        ],
    )
    undated["subject"] = patient_ref(bundle)
    bundle["entry"].insert(9, {"fullUrl": "urn:uuid:undated", "resource": undated})
    results = read_bundle(bundle).observations["3185-6"]
    assert [o.value for o in results] == [0.1, 0.0, 0.9, 2.0]
    assert results[-1].when is None


def test_partial_dates_are_kept_undated_with_a_note() -> None:
    bundle = hemgenix_request(name="t-partial")
    resource(bundle, "Patient")["birthDate"] = "1979"
    observation(bundle, "3187-2")["effectiveDateTime"] = "2019-10"
    facts = read_bundle(bundle)
    assert facts.patient.birth_date is None
    assert facts.observations["3187-2"][0].when is None
    assert len(facts.notes) == 2
    assert any("birthDate" in note for note in facts.notes)


@pytest.mark.parametrize(
    "extension",
    [
        pytest.param({"valueCodeableConcept": {"coding": [{"code": "male-typical"}]}}, id="cc"),
        pytest.param({"valueCode": "male-typical"}, id="code"),
        pytest.param(
            {
                "extension": [
                    {"url": "period", "valuePeriod": {"start": "2000-01-01"}},
                    {
                        "url": "value",
                        "valueCodeableConcept": {"coding": [{"code": "male-typical"}]},
                    },
                ]
            },
            id="complex",
        ),
    ],
)
def test_sex_parameter_for_clinical_use_forms(extension: dict[str, Any]) -> None:
    bundle = hemgenix_request(name="t-spcu", birth_sex=None, gender="female")
    resource(bundle, "Patient")["extension"] = [
        {
            "url": "http://hl7.org/fhir/StructureDefinition/patient-sexParameterForClinicalUse",
            **extension,
        }
    ]
    patient = read_bundle(bundle).patient
    assert (patient.sex_for_clinical_use, patient.birth_sex, patient.gender) == (
        "male-typical",
        None,
        "female",
    )


def test_builder_sex_parameter_reads_back() -> None:
    facts = read_bundle(hemgenix_request(name="t-spcu2", sex_for_clinical_use="female-typical"))
    assert facts.patient.sex_for_clinical_use == "female-typical"


def test_member_id_falls_back_to_the_patient_mb_identifier() -> None:
    bundle = hemgenix_request(name="t-member", member_id="MFALLBACK1")
    del resource(bundle, "Coverage")["subscriberId"]
    assert read_bundle(bundle).patient.member_id == "MFALLBACK1"
    resource(bundle, "Patient")["identifier"][0]["type"]["coding"][0]["code"] = "MR"
    assert read_bundle(bundle).patient.member_id is None


def test_prescriber_taxonomies_from_role_and_practitioner_qualification() -> None:
    bundle = hemgenix_request(name="t-tax", specialty="208D00000X")
    resource(bundle, "Practitioner")["qualification"] = [
        {
            "code": {
                "coding": [{"system": "http://nucc.org/provider-taxonomy", "code": "207RH0003X"}]
            }
        },
        {"code": {"coding": [{"system": "http://example.org/board", "code": "X"}]}},
    ]
    prescriber = read_bundle(bundle).prescriber
    assert prescriber is not None
    assert prescriber.taxonomies == ("208D00000X", "207RH0003X")


def test_prescriber_may_be_a_practitioner() -> None:
    bundle = hemgenix_request(name="t-practitioner")
    practitioner = resource(bundle, "Practitioner")
    practitioner["qualification"] = [
        {
            "code": {
                "coding": [{"system": "http://nucc.org/provider-taxonomy", "code": "2080P0207X"}]
            }
        }
    ]
    resource(bundle, "MedicationRequest")["requester"] = {
        "reference": f"Practitioner/{practitioner['id']}"
    }
    prescriber = read_bundle(bundle).prescriber
    assert prescriber is not None
    assert prescriber.ref == f"Practitioner/{practitioner['id']}"
    assert prescriber.taxonomies == ("2080P0207X",)


def test_prescriber_falls_back_to_claim_provider_without_taxonomies() -> None:
    bundle = hemgenix_request(name="t-provider")
    del resource(bundle, "MedicationRequest")["requester"]
    prescriber = read_bundle(bundle).prescriber
    assert prescriber is not None
    assert prescriber.ref.startswith("Organization/")
    assert prescriber.taxonomies == ()


def test_item_without_requested_medication_has_no_ndc() -> None:
    bundle = hemgenix_request(name="t-nondc", ndc=None, quantity=None)
    (item,) = read_bundle(bundle).items
    assert (item.ndc, item.quantity) == (None, None)
    assert item.medication_request is not None


def test_observation_values_units_comparator_and_interpretation() -> None:
    bundle = hemgenix_request(
        name="t-values",
        labs={
            "3185-6": Lab(0.5, "BU/mL", interpretation="NEG"),
            "11011-4": Lab(coded="260373001", interpretation="DET"),
        },
    )
    inhibitor = observation(bundle, "3185-6")
    inhibitor["valueQuantity"] = {"value": 0.5, "unit": "BU/mL", "comparator": "<"}
    facts = read_bundle(bundle)
    (result,) = facts.observations["3185-6"]
    assert (result.value, result.unit, result.comparator) == (0.5, "BU/mL", "<")
    assert result.interpretation == frozenset({"NEG"})
    (hcv,) = facts.observations["11011-4"]
    assert hcv.coded == frozenset({("http://snomed.info/sct", "260373001")})
    assert hcv.interpretation == frozenset({"DET"})


def test_observation_indexed_under_each_loinc_code_it_carries() -> None:
    bundle = hemgenix_request(name="t-multi")
    alt = observation(bundle, "1742-6")
    alt["code"]["coding"].append({"system": "http://loinc.org", "code": "1744-2"})
    alt["code"]["coding"].append({"system": "http://example.org/local", "code": "ALT"})
    facts = read_bundle(bundle)
    assert facts.observations["1744-2"][0].ref == facts.observations["1742-6"][0].ref
    assert facts.observations["1744-2"][0].code == "1744-2"
    assert "ALT" not in facts.observations


# --- what is set aside ----------------------------------------------------------------


def _other_patient(bundle: Bundle) -> dict[str, str]:
    other = {"resourceType": "Patient", "id": "someone-else", "gender": "male"}
    add_entry(bundle, other)
    return {"reference": "urn:uuid:someone-else"}


def test_entered_in_error_and_preliminary_results_are_set_aside() -> None:
    bundle = hemgenix_request(
        name="t-status",
        labs={"777-3": Lab(20, "10*3/uL", status="entered-in-error")},
        extra_observations=[Lab(300, "10*3/uL", status="preliminary", code="777-3")],
    )
    facts = read_bundle(bundle)
    assert "777-3" not in facts.observations
    assert len(facts.notes) == 2
    assert any("set aside: status entered-in-error" in note for note in facts.notes)
    assert any("set aside: status preliminary" in note for note in facts.notes)


def test_evidence_about_another_patient_is_set_aside() -> None:
    bundle = hemgenix_request(name="t-foreign", conditions=["B18.2"], medications=["entecavir"])
    other = _other_patient(bundle)
    observation(bundle, "777-3")["subject"] = other
    resource(bundle, "Condition", 1)["subject"] = other
    resource(bundle, "MedicationStatement")["subject"] = other
    resource(bundle, "QuestionnaireResponse")["subject"] = other
    facts = read_bundle(bundle)
    assert "777-3" not in facts.observations
    assert [c.codes for c in facts.conditions] == [((ICD10CM, "D67"),)]
    assert facts.medications == ()
    assert facts.attestations == {}
    assert len(facts.notes) == 4
    assert all("not the claim's patient" in note for note in facts.notes)


def test_observation_without_subject_is_set_aside() -> None:
    bundle = hemgenix_request(name="t-nosubject")
    del observation(bundle, "29463-7")["subject"]
    facts = read_bundle(bundle)
    assert "29463-7" not in facts.observations
    (note,) = facts.notes
    assert note.endswith("set aside: no patient identified")


def test_subject_by_identifier_of_the_claim_patient_counts() -> None:
    bundle = hemgenix_request(name="t-ident", member_id="MIDENT0001")
    observation(bundle, "29463-7")["subject"] = {
        "identifier": {"system": "http://example.org/payer/member-id", "value": "MIDENT0001"}
    }
    facts = read_bundle(bundle)
    assert facts.notes == ()
    assert "29463-7" in facts.observations


def test_conditions_status_and_verification() -> None:
    bundle = hemgenix_request(
        name="t-conditions", conditions=[("K74.60", "resolved"), ("B18.1", None), "K70.30"]
    )
    resource(bundle, "Condition", 3)["verificationStatus"] = {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                "code": "refuted",
            }
        ]
    }
    facts = read_bundle(bundle)
    assert [(c.codes[0][1], c.active) for c in facts.conditions] == [
        ("D67", True),
        ("K74.60", False),
        ("B18.1", True),
    ]
    (note,) = facts.notes
    assert "refuted" in note


def test_medications_names_and_status() -> None:
    bundle = hemgenix_request(
        name="t-meds", medications=["Vemlidy (tenofovir alafenamide)", ("Epclusa", "completed")]
    )
    statement = resource(bundle, "MedicationStatement")
    statement["medicationCodeableConcept"]["coding"] = [
        {
            "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
            "code": "1",
            "display": "Tenofovir Alafenamide 25 MG",
        }
    ]
    facts = read_bundle(bundle)
    assert [(m.names, m.active) for m in facts.medications] == [
        ("vemlidy (tenofovir alafenamide) | tenofovir alafenamide 25 mg", True),
        ("epclusa", False),
    ]


def test_questionnaire_responses_status_and_the_latest_answer() -> None:
    bundle = hemgenix_request(name="t-qrs")
    patient = patient_ref(bundle)
    newer = {
        "resourceType": "QuestionnaireResponse",
        "id": "qr-newer",
        "status": "amended",
        "subject": patient,
        "authored": "2026-05-05T09:00:00Z",
        "item": [
            {
                "linkId": "outer",
                "answer": [
                    {
                        "valueBoolean": True,
                        "item": [
                            {"linkId": "no-uncontrolled-hiv", "answer": [{"valueBoolean": False}]}
                        ],
                    }
                ],
            }
        ],
    }
    draft = {**newer, "id": "qr-draft", "status": "in-progress", "authored": "2026-05-06"}
    draft["item"] = [{"linkId": "fix-exposure-days", "answer": [{"valueInteger": 1}]}]
    add_entry(bundle, newer)
    add_entry(bundle, draft)
    facts = read_bundle(bundle)
    hiv = facts.attestations["no-uncontrolled-hiv"]
    assert (hiv.value, hiv.ref) == (False, "QuestionnaireResponse/qr-newer#no-uncontrolled-hiv")
    assert facts.attestations["fix-exposure-days"].value == 220
    assert facts.attestations["no-advanced-liver-disease"].value is True
    (note,) = facts.notes
    assert note == "QuestionnaireResponse/qr-draft set aside: status in-progress"


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


# --- robustness: any change to a valid request reads or is refused, never crashes -------


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out.extend(_paths(value, (*prefix, key)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out.extend(_paths(value, (*prefix, i)))
    return out


_TEMPLATE = hemgenix_request(name="t-fuzz", medications=["entecavir"])
_PATHS = _paths(_TEMPLATE)[1:]
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-10, 10**6)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(["2026-13-01", "urn:uuid:x", "final", "Patient/x", ""]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


@settings(
    max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(st.lists(st.tuples(st.integers(0, len(_PATHS) - 1), _JSON), min_size=1, max_size=3))
def test_any_mutation_reads_or_raises_invalid_request(changes: list[tuple[int, Any]]) -> None:
    bundle = copy.deepcopy(_TEMPLATE)
    for index, value in changes:
        *parents, last = _PATHS[index]
        node: Any = bundle
        try:
            for part in parents:
                node = node[part]
            node[last] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed this path
    result: Facts | InvalidRequest
    try:
        result = read_bundle(orjson.dumps(bundle))
    except InvalidRequest as error:
        result = error
    if isinstance(result, InvalidRequest):
        assert result.message
        assert "\n" not in str(result)
    else:
        assert isinstance(result, Facts)
