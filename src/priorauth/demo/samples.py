"""Builders of Hemgenix PAS request bundles and claims NDJSON, for demos, tests and benchmarks.

`hemgenix_request()` with no arguments is a request that meets every criterion
of policy IP0535 (contract sections 1-3), in the same shape as the shared
examples; each argument changes one piece of evidence. Ids are uuid5 values
derived from `name`, so the same arguments always give the same bundle.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import orjson

from priorauth.core.facts import HCPCS, ICD10CM, LOINC, NDC, NUCC, SNOMED

__all__ = ["DEFAULT_ATTESTATIONS", "DEFAULT_LABS", "Lab", "claims_ndjson", "hemgenix_request"]

Json = dict[str, Any]

UCUM = "http://unitsofmeasure.org"
PAS = "http://hl7.org/fhir/us/davinci-pas/StructureDefinition"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
SEX_FOR_CLINICAL_USE = "http://hl7.org/fhir/StructureDefinition/patient-sexParameterForClinicalUse"
BIRTH_SEX = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex"
_SNOMED_DISPLAY = {
    "260385009": "Negative",
    "260415000": "Not detected",
    "10828004": "Positive",
    "260373001": "Detected",
}


@dataclass(frozen=True)
class Lab:
    """One Observation: a quantity and/or a SNOMED-coded result, dated days before as-of.

    `code` overrides the LOINC code (by default the key it is given under);
    `uln` becomes referenceRange[0].high in the same unit.
    """

    value: float | None = None
    unit: str | None = None
    uln: float | None = None
    days_before: int = 9
    coded: str | None = None
    interpretation: str | None = None
    status: str = "final"
    code: str | None = None


# LOINC code -> result: every lab criterion met. FIX is a baseline from years ago.
DEFAULT_LABS: Mapping[str, Lab] = {
    "3187-2": Lab(0.8, "%", days_before=2400),
    "3185-6": Lab(0.0, "[beth'U]/mL"),
    "5196-1": Lab(coded="260385009"),
    "11011-4": Lab(coded="260415000"),
    "1742-6": Lab(31, "U/L", uln=55),
    "1920-8": Lab(28, "U/L", uln=48),
    "1975-2": Lab(0.7, "mg/dL", uln=1.2),
    "6768-6": Lab(88, "U/L", uln=129),
    "777-3": Lab(231, "10*3/uL"),
    "2160-0": Lab(0.9, "mg/dL", uln=1.3),
}

# linkId -> answer (contract section 3): every criterion met.
DEFAULT_ATTESTATIONS: Mapping[str, bool | int] = {
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
# Answers grouped under "clinical-history", so readers must search nested items.
_GROUPED = frozenset(
    {
        "no-current-hepatitis-antiviral",
        "no-uncontrolled-hiv",
        "no-advanced-liver-disease",
        "prescriber-hemophilia-specialist",
        "history-of-fix-inhibitors",
    }
)


def hemgenix_request(
    *,
    name: str = "demo",
    as_of: date = date(2026, 5, 4),
    birth_date: date | None = date(1979, 11, 23),
    sex_for_clinical_use: str | None = None,
    birth_sex: str | None = "M",
    gender: str | None = "male",
    weight: tuple[float, str] | None = (88.0, "kg"),
    ndc: str | None = "0053-0180-18",
    quantity: float | None = 1,
    priority: str = "normal",
    specialty: str | None = "207RH0000X",
    labs: Mapping[str, Lab | None] | None = None,
    attestations: Mapping[str, bool | int | None] | None = None,
    diagnoses: Sequence[str] = ("D67",),
    conditions: Sequence[str | tuple[str, str | None]] = (),
    medications: Sequence[str | tuple[str, str]] = (),
    member_id: str | None = None,
    extra_observations: Sequence[Lab | Json] = (),
) -> Json:
    """A PAS request Bundle (dict) for one Hemgenix kit.

    `labs` and `attestations` are merged over DEFAULT_LABS / DEFAULT_ATTESTATIONS:
    a value replaces the default, None removes it. Each diagnosis code is both a
    Claim.diagnosis and an active Condition; `conditions` adds Conditions (a code,
    or (code, clinicalStatus or None)); `medications` adds MedicationStatements
    (a name, or (name, status)); `extra_observations` adds Labs (with `code`) or
    raw Observation dicts. `weight=None` leaves out the body weight.
    """

    def url(key: str) -> str:
        return f"urn:uuid:{_uuid(name, key)}"

    def entry(key: str, resource: Json) -> Json:
        resource.setdefault("id", str(_uuid(name, key)))
        return {"fullUrl": f"urn:uuid:{resource['id']}", "resource": resource}

    patient = {"reference": url("patient")}
    member = member_id or "M" + _uuid(name, "member").hex[:9].upper()
    created = f"{as_of.isoformat()}T10:00:00Z"

    clinical: list[Json] = []
    for i, code in enumerate(diagnoses):
        clinical.append(entry(f"condition/{i}", _condition(code, "active", patient)))
    for i, extra in enumerate(conditions):
        code, status = (extra, "active") if isinstance(extra, str) else extra
        clinical.append(entry(f"condition/extra/{i}", _condition(code, status, patient)))
    for i, med in enumerate(medications):
        text, status = (med, "active") if isinstance(med, str) else med
        statement = {
            "resourceType": "MedicationStatement",
            "status": status,
            "medicationCodeableConcept": {"text": text},
            "subject": patient,
        }
        clinical.append(entry(f"medication/{i}", statement))

    chosen: dict[str, Lab | None] = dict(DEFAULT_LABS)
    if weight is not None:
        chosen["29463-7"] = Lab(weight[0], weight[1])
    chosen.update(labs or {})
    for key, lab in chosen.items():
        if lab is not None:
            clinical.append(entry(f"obs/{key}", _observation(lab.code or key, lab, as_of, patient)))
    for i, extra_obs in enumerate(extra_observations):
        if isinstance(extra_obs, Lab):
            if extra_obs.code is None:
                raise ValueError("an extra observation Lab needs its LOINC `code`")
            clinical.append(
                entry(f"extra/{i}", _observation(extra_obs.code, extra_obs, as_of, patient))
            )
        else:
            clinical.append(entry(f"extra/{i}", dict(extra_obs)))

    answers = {**DEFAULT_ATTESTATIONS, **(attestations or {})}
    qr = {
        "resourceType": "QuestionnaireResponse",
        "status": "completed",
        "questionnaire": "http://example.org/priorauth/Questionnaire/hemgenix-ip0535",
        "subject": patient,
        "authored": as_of.isoformat(),
        "author": {"reference": url("role")},
        "item": _qr_items(answers),
    }
    clinical.append(entry("qr", qr))

    request: Json = {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"text": "Hemgenix"},
        "subject": patient,
        "authoredOn": as_of.isoformat(),
        "requester": {"reference": url("role")},
        "dosageInstruction": [{"text": "2x10^13 gc/kg IV once"}],
    }
    if ndc:
        request["medicationCodeableConcept"]["coding"] = [
            {"system": NDC, "code": ndc, "display": "Hemgenix kit"}
        ]
    item: Json = {
        "sequence": 1,
        "careTeamSequence": [1],
        "productOrService": {"coding": [{"system": HCPCS, "code": "J1411"}]},
        "servicedDate": (as_of + timedelta(days=21)).isoformat(),
        "extension": [
            {
                "url": f"{PAS}/extension-requestedService",
                "valueReference": {"reference": url("request")},
            }
        ],
    }
    if quantity is not None:
        item["quantity"] = {"value": quantity}
    claim = {
        "resourceType": "Claim",
        "meta": {"profile": [f"{PAS}/profile-claim"]},
        "identifier": [
            {"system": "http://example.org/provider/claim-trace", "value": f"PA-{name}"}
        ],
        "status": "active",
        "type": _concept("http://terminology.hl7.org/CodeSystem/claim-type", "professional"),
        "use": "preauthorization",
        "patient": patient,
        "created": created,
        "insurer": {"reference": url("payer")},
        "provider": {"reference": url("provider")},
        "priority": _concept("http://terminology.hl7.org/CodeSystem/processpriority", priority),
        "careTeam": [{"sequence": 1, "provider": {"reference": url("role")}}],
        "insurance": [{"sequence": 1, "focal": True, "coverage": {"reference": url("coverage")}}],
        "item": [item],
        "diagnosis": [
            {"sequence": i, "diagnosisCodeableConcept": _concept(ICD10CM, code)}
            for i, code in enumerate(diagnoses, start=1)
        ],
        "supportingInfo": [
            {
                "sequence": i,
                "category": _concept(
                    "http://hl7.org/us/davinci-pas/CodeSystem/PASSupportingInfoType",
                    "additionalInformation",
                ),
                "valueReference": {"reference": clinical_entry["fullUrl"]},
            }
            for i, clinical_entry in enumerate(clinical, start=1)
        ],
    }
    if not diagnoses:
        del claim["diagnosis"]

    entries = [
        entry("claim", claim),
        entry(
            "patient",
            _patient(
                name,
                member,
                birth_date=birth_date,
                sex_for_clinical_use=sex_for_clinical_use,
                birth_sex=birth_sex,
                gender=gender,
            ),
        ),
        entry(
            "coverage",
            {
                "resourceType": "Coverage",
                "status": "active",
                "subscriberId": member,
                "beneficiary": patient,
                "payor": [{"reference": url("payer")}],
            },
        ),
        entry("payer", {"resourceType": "Organization", "name": "Example Health Plan"}),
        entry(
            "provider",
            {
                "resourceType": "Organization",
                "name": "Regional Hemophilia Treatment Center",
                "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567893"}],
            },
        ),
        entry(
            "practitioner",
            {
                "resourceType": "Practitioner",
                "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "1588667638"}],
                "name": [{"family": "Okafor", "given": ["Ada"]}],
            },
        ),
        entry("role", _role(url("practitioner"), url("provider"), specialty)),
        entry("request", request),
        *clinical,
    ]
    return {
        "resourceType": "Bundle",
        "id": str(_uuid(name, "bundle")),
        "meta": {"profile": [f"{PAS}/profile-pas-request-bundle"]},
        "identifier": {"system": "http://example.org/provider/bundle", "value": f"B-{name}"},
        "type": "collection",
        "timestamp": created,
        "entry": entries,
    }


def claims_ndjson(
    member_id: str, *codes: tuple[str, str], served: date = date(2025, 10, 14)
) -> str:
    """Claims history NDJSON: one paid ExplanationOfBenefit per (system, code), for one member."""
    lines = []
    for i, (system, code) in enumerate(codes):
        eob = {
            "resourceType": "ExplanationOfBenefit",
            "id": str(_uuid(member_id, f"eob/{i}/{code}")),
            "status": "active",
            "type": _concept("http://terminology.hl7.org/CodeSystem/claim-type", "professional"),
            "use": "claim",
            "patient": {
                "identifier": {"system": "http://example.org/payer/member-id", "value": member_id}
            },
            "billablePeriod": {"start": served.isoformat(), "end": served.isoformat()},
            "created": f"{served.isoformat()}T00:00:00Z",
            "outcome": "complete",
            "insurer": {"display": "Example Health Plan"},
            "provider": {"display": "Some provider"},
            "insurance": [{"focal": True, "coverage": {"display": "Example Health Plan"}}],
            "item": [
                {
                    "sequence": 1,
                    "productOrService": {"coding": [{"system": system, "code": code}]},
                    "servicedDate": served.isoformat(),
                }
            ],
        }
        lines.append(orjson.dumps(eob).decode())
    return "".join(f"{line}\n" for line in lines)


def _uuid(name: str, key: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"{name}/{key}")


def _concept(system: str, code: str, display: str | None = None) -> Json:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding]}


def _condition(code: str, status: str | None, patient: Json) -> Json:
    condition: Json = {
        "resourceType": "Condition",
        "code": _concept(ICD10CM, code),
        "subject": patient,
    }
    if status:
        condition["clinicalStatus"] = _concept(
            "http://terminology.hl7.org/CodeSystem/condition-clinical", status
        )
    return condition


def _observation(code: str, lab: Lab, as_of: date, patient: Json) -> Json:
    category = "vital-signs" if code == "29463-7" else "laboratory"
    obs: Json = {
        "resourceType": "Observation",
        "status": lab.status,
        "category": [
            _concept("http://terminology.hl7.org/CodeSystem/observation-category", category)
        ],
        "code": _concept(LOINC, code),
        "subject": patient,
        "effectiveDateTime": (as_of - timedelta(days=lab.days_before)).isoformat(),
    }
    if lab.value is not None:
        obs["valueQuantity"] = _quantity(lab.value, lab.unit)
    if lab.coded is not None:
        obs["valueCodeableConcept"] = _concept(SNOMED, lab.coded, _SNOMED_DISPLAY.get(lab.coded))
    if lab.interpretation is not None:
        obs["interpretation"] = [_concept(INTERPRETATION, lab.interpretation)]
    if lab.uln is not None:
        obs["referenceRange"] = [{"high": _quantity(lab.uln, lab.unit)}]
    return obs


def _quantity(value: float, unit: str | None) -> Json:
    if unit is None:
        return {"value": value}
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def _patient(
    name: str,
    member: str,
    *,
    birth_date: date | None,
    sex_for_clinical_use: str | None,
    birth_sex: str | None,
    gender: str | None,
) -> Json:
    patient: Json = {
        "resourceType": "Patient",
        "identifier": [
            {
                "type": _concept("http://terminology.hl7.org/CodeSystem/v2-0203", "MB"),
                "system": "http://example.org/payer/member-id",
                "value": member,
            }
        ],
        "name": [{"family": "Case", "given": [name]}],
    }
    if gender is not None:
        patient["gender"] = gender
    if birth_date is not None:
        patient["birthDate"] = birth_date.isoformat()
    extensions: list[Json] = []
    if birth_sex is not None:
        extensions.append({"url": BIRTH_SEX, "valueCode": birth_sex})
    if sex_for_clinical_use is not None:
        # The R5 complex form (a "value" sub-extension), as cross-version R4 senders use it.
        value = _concept(
            "http://terminology.hl7.org/CodeSystem/sex-parameter-for-clinical-use",
            sex_for_clinical_use,
        )
        extensions.append(
            {
                "url": SEX_FOR_CLINICAL_USE,
                "extension": [{"url": "value", "valueCodeableConcept": value}],
            }
        )
    if extensions:
        patient["extension"] = extensions
    return patient


def _role(practitioner_url: str, provider_url: str, specialty: str | None) -> Json:
    role: Json = {
        "resourceType": "PractitionerRole",
        "practitioner": {"reference": practitioner_url},
        "organization": {"reference": provider_url},
    }
    if specialty is not None:
        role["specialty"] = [_concept(NUCC, specialty)]
    return role


def _qr_items(answers: Mapping[str, bool | int | None]) -> list[Json]:
    top: list[Json] = []
    grouped: list[Json] = []
    for link_id, value in answers.items():
        if value is None:
            continue
        # bool before int: True is an int to Python but a valueBoolean to FHIR.
        answer = {"valueBoolean": value} if isinstance(value, bool) else {"valueInteger": value}
        (grouped if link_id in _GROUPED else top).append({"linkId": link_id, "answer": [answer]})
    if grouped:
        top.append({"linkId": "clinical-history", "item": grouped})
    return top
