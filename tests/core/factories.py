"""Facts for core tests: a request that meets every criterion, and ways to change it."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from typing import Any

from priorauth.core.facts import (
    HCPCS,
    ICD10CM,
    NDC,
    SNOMED,
    Attestation,
    ClaimLine,
    ClaimsHistory,
    Condition,
    Facts,
    Medication,
    Observation,
    Patient,
    Prescriber,
    Record,
    RequestedItem,
)
from priorauth.demo.samples import DEFAULT_ATTESTATIONS

AS_OF = date(2026, 5, 4)
NEGATIVE, NOT_DETECTED, POSITIVE, DETECTED = "260385009", "260415000", "10828004", "260373001"


def obs(
    code: str,
    value: float | None = None,
    unit: str | None = None,
    *,
    days: int | None = 9,
    uln: float | None = None,
    uln_unit: str | None = None,
    coded: str | None = None,
    interp: tuple[str, ...] = (),
    ref: str | None = None,
) -> Observation:
    """A result `days` before AS_OF (negative: after it; None: undated)."""
    return Observation(
        ref=ref or f"Observation/{code}-{days}-{value}",
        code=code,
        when=None if days is None else AS_OF - timedelta(days=days),
        value=value,
        unit=unit,
        coded=frozenset({(SNOMED, coded)}) if coded else frozenset(),
        interpretation=frozenset(interp),
        uln=uln,
        uln_unit=uln_unit if uln_unit is not None else (unit if uln is not None else None),
    )


DEFAULT_OBS = [
    obs("3187-2", 0.8, "%", days=2400),
    obs("3185-6", 0.0, "[beth'U]/mL"),
    obs("5196-1", coded=NEGATIVE, days=40),
    obs("11011-4", coded=NOT_DETECTED, days=40),
    obs("1742-6", 31, "U/L", uln=55),
    obs("1920-8", 28, "U/L", uln=48),
    obs("1975-2", 0.7, "mg/dL", uln=1.2),
    obs("6768-6", 88, "U/L", uln=129),
    obs("777-3", 231, "10*3/uL"),
    obs("2160-0", 0.9, "mg/dL", uln=1.3),
    obs("29463-7", 88.0, "kg"),
]

# The same answers as the sample bundles: every criterion met.
DEFAULT_ANSWERS: dict[str, bool | int] = dict(DEFAULT_ATTESTATIONS)


def _index(observations: list[Observation]) -> dict[str, tuple[Observation, ...]]:
    out: dict[str, list[Observation]] = {}
    for o in observations:
        out.setdefault(o.code, []).append(o)
    return {
        k: tuple(sorted(v, key=lambda o: (o.when is None, -(o.when.toordinal() if o.when else 0))))
        for k, v in out.items()
    }


def facts(
    *,
    observations: list[Observation] | None = None,
    replace: dict[str, list[Observation] | None] | None = None,
    answers: dict[str, Any] | None = None,
    patient: dict[str, Any] | None = None,
    taxonomies: tuple[str, ...] = ("207RH0000X",),
    ndc: str | None = "0053-0180-18",
    quantity: float | None = 1,
    diagnoses: tuple[str, ...] = ("D67",),
    conditions: tuple[Condition, ...] = (),
    medications: tuple[Medication, ...] = (),
    claims: ClaimsHistory | None = None,
) -> Facts:
    """All criteria met (88 kg, kit 0053-0180-18) unless told otherwise.

    `replace` swaps the results of one LOINC code (None removes them);
    `answers` overrides prescriber answers (None removes one).
    """
    chosen = list(DEFAULT_OBS if observations is None else observations)
    for code, new in (replace or {}).items():
        chosen = [o for o in chosen if o.code != code] + list(new or [])
    merged: dict[str, Any] = {**DEFAULT_ANSWERS, **(answers or {})}
    atts = {
        k: Attestation(f"QuestionnaireResponse/qr#{k}", k, v, AS_OF)
        for k, v in merged.items()
        if v is not None
    }
    p = {
        "ref": "Patient/p",
        "member_id": "M1",
        "birth_date": date(1979, 11, 23),
        "birth_sex": "M",
        "gender": "male",
    } | (patient or {})
    return Facts(
        claim_ref="Claim/c",
        as_of=AS_OF,
        expedited=False,
        patient=Patient(**p),
        prescriber=Prescriber("PractitionerRole/r", taxonomies),
        items=(
            RequestedItem(
                1, ((HCPCS, "J1411"),), quantity, ndc, "MedicationRequest/m" if ndc else None
            ),
        ),
        claim_diagnoses=tuple((ICD10CM, d) for d in diagnoses),
        conditions=conditions,
        observations=_index(chosen),
        medications=medications,
        attestations=atts,
        claims=claims,
    )


def condition(code: str, active: bool = True) -> Condition:
    return Condition(f"Condition/{code}", ((ICD10CM, code),), active)


def medication(names: str, active: bool = True) -> Medication:
    return Medication(f"MedicationStatement/{names.split(maxsplit=1)[0]}", names.lower(), active)


def history(*codes: tuple[str, str], member: str = "M1", extra_claims: int = 1) -> ClaimsHistory:
    """A claims history holding one line per code, plus `extra_claims` unrelated claims."""
    lines = tuple(ClaimLine(f"ExplanationOfBenefit/e{i}", (c,), AS_OF) for i, c in enumerate(codes))
    other = tuple(
        ClaimLine(f"ExplanationOfBenefit/x{i}", ((HCPCS, "J7201"),), AS_OF)
        for i in range(extra_claims)
    )
    return ClaimsHistory(member, lines + other, len(lines) + len(other))


HCPCS_CODE = HCPCS
NDC_CODE = NDC


def replace_patient(f: Facts, **changes: Any) -> Facts:
    return dataclasses.replace(f, patient=dataclasses.replace(f.patient, **changes))


def record(
    kind: str,
    *codes: str,
    days: int | None = 9,
    status: str | None = None,
    title: str | None = None,
    attachments: tuple[Any, ...] = (),
    ref: str | None = None,
) -> Record:
    """A Procedure/DiagnosticReport/ImagingStudy/DocumentReference `days` before AS_OF.

    `codes` are code keys (bare for LOINC); the status defaults to the type's current one.
    """
    current = {
        "Procedure": "completed",
        "DiagnosticReport": "final",
        "ImagingStudy": "available",
        "DocumentReference": "current",
    }
    return Record(
        ref=ref or f"{kind}/{'-'.join(codes) or 'x'}-{days}-{status}",
        resource_type=kind,
        codes=frozenset(codes),
        when=None if days is None else AS_OF - timedelta(days=days),
        status=status if status is not None else current[kind],
        title=title,
        attachments=attachments,
    )


def with_records(f: Facts, *records: Record) -> Facts:
    """The facts with these records indexed as intake indexes them (by code key and type)."""
    out: dict[str, list[Record]] = {}
    ordered = sorted(
        records, key=lambda r: (r.when is None, -(r.when.toordinal() if r.when else 0))
    )
    for r in ordered:
        out.setdefault(r.resource_type, []).append(r)
        for k in r.codes:
            out.setdefault(k, []).append(r)
    return dataclasses.replace(f, records={k: tuple(v) for k, v in out.items()})
