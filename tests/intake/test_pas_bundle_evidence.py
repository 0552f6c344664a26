"""Reading PAS request bundles into Facts (intake.pas_bundle): evidence, dates, set-asides."""

from __future__ import annotations

import copy
import json
from datetime import date
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from priorauth.core.facts import ICD10CM, Facts
from priorauth.demo.samples import Lab, hemgenix_request
from priorauth.errors import InvalidRequest
from priorauth.intake.pas_bundle import read_bundle
from tests.intake.bundles import Bundle, add_entry, observation, patient_ref, resource

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


@settings(derandomize=True)
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
