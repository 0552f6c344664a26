"""The determination as a stable JSON object (schema `priorauth.determination/1`).

The shape is documented in docs/determination-json.md. CLI, API and UI all
serialize through `determination_to_dict`, so they never disagree.
"""

from __future__ import annotations

from typing import Any

from priorauth.core.dose import Dose
from priorauth.core.evaluator import CompiledPolicy
from priorauth.core.facts import (
    LOINC,
    Attestation,
    ClaimLine,
    Condition,
    Medication,
    Observation,
    Record,
)
from priorauth.core.result import MET, NOT_MET, Derived, Determination, Evidence, Finding, Recorded

SCHEMA = "priorauth.determination/1"
_EXCLUSION_STATUS = {MET: "applies", NOT_MET: "does_not_apply"}


def evidence_to_dict(e: Evidence) -> dict[str, Any]:
    out: dict[str, Any]
    if isinstance(e, Observation):
        # The code it was found under: "loinc" for LOINC, else "code" as "SYSTEM-URL|code".
        code_field = "code" if "|" in e.code else "loinc"
        dated = e.when.isoformat() if e.when else None
        out = {"resource": e.ref, code_field: e.code, "date": dated}
        if e.value is not None:
            out["value"], out["unit"] = e.value, e.unit
        if e.coded:
            out["coded"] = sorted(f"{s}|{c}" for s, c in e.coded)
        if e.interpretation:
            out["interpretation"] = sorted(e.interpretation)
        if e.uln is not None:
            out["uln"], out["uln_unit"] = e.uln, e.uln_unit
        return out
    if isinstance(e, Attestation):
        return {
            "resource": e.ref,
            "link_id": e.link_id,
            "value": e.value,
            "date": e.when.isoformat() if e.when else None,
        }
    if isinstance(e, Condition):
        return {"resource": e.ref, "codes": [f"{s}|{c}" for s, c in e.codes], "active": e.active}
    if isinstance(e, Medication):
        return {"resource": e.ref, "medication": e.names, "active": e.active}
    if isinstance(e, ClaimLine):
        return {
            "resource": e.ref,
            "codes": [f"{s}|{c}" for s, c in e.codes],
            "date": e.when.isoformat() if e.when else None,
        }
    if isinstance(e, Record):
        return record_to_dict(e)
    if isinstance(e, Derived):
        out = {"derived": e.label, "value": e.value}
        if e.unit:
            out["unit"] = e.unit
        if e.inputs:
            out["from"] = list(e.inputs)
        if e.note:
            out["formula"] = e.note
        return out
    assert isinstance(e, Recorded)
    return {"resource": e.ref, "field": e.label, "value": e.value}


def record_to_dict(e: Record) -> dict[str, Any]:
    """A Procedure, DiagnosticReport, ImagingStudy or DocumentReference cited as evidence."""
    out: dict[str, Any] = {
        "resource": e.ref,
        "record": e.resource_type,
        "codes": sorted(k if "|" in k else f"{LOINC}|{k}" for k in e.codes),
        "status": e.status,
        "value": e.title,
        "date": e.when.isoformat() if e.when else None,
    }
    if e.attachments:
        out["attachments"] = [
            {
                "title": a.title,
                "content_type": a.content_type,
                "url": a.url,
                "inline": a.has_data,
            }
            for a in e.attachments
        ]
    return out


def _finding(f: Finding, policy: CompiledPolicy, exclusion: bool) -> dict[str, Any]:
    c = policy.criteria[f.id]
    out = {
        "status": _EXCLUSION_STATUS.get(f.status, "unknown") if exclusion else f.status,
        "text": c.text,
        "evidence_kind": c.evidence,
        "reason": f.reason,
        "evidence": [evidence_to_dict(e) for e in f.evidence],
    }
    if c.key is not None:
        out["key"] = c.key
    if c.source is not None:
        out["source"] = c.source  # a benefit plan document added or replaced it
    if c.reconstructed is not None:
        # The wording is rebuilt from the revision table row of this date, not quoted.
        out["reconstructed"] = c.reconstructed.isoformat()
    return out


def determination_to_dict(
    d: Determination, policy: CompiledPolicy, routing: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The JSON determination; `routing` says why this policy version was chosen."""
    p = policy.policy
    criteria = {i: _finding(f, policy, False) for i, f in d.findings.items()}
    criteria.update({i: _finding(f, policy, True) for i, f in d.exclusions.items()})
    named: dict[str, Any] = {
        "id": p.id,
        "number": p.number,
        "version": p.version,
        "title": p.title,
        "payer": p.payer,
        "effective": p.effective.isoformat(),
    }
    if routing is not None:
        named["selected"] = routing
    return {
        "schema": SCHEMA,
        "policy": named,
        "as_of": d.as_of.isoformat(),
        "expedited": d.expedited,
        "recommendation": d.recommendation,
        "medical_director_review": d.medical_director_review,
        "reviewer": p.approval.reviewer,
        "criteria": criteria,
        "dose": _dose(d.dose, d.differs),
        # `kit` is the dose of a policy billed by the kit, kept for readers of /1 before `dose`.
        "kit": {"vials": d.dose.vials, "ndc": d.dose.ndc}
        if d.dose and d.dose.unit == "kit" and d.dose.ndc
        else None,
        "requested": {
            "ndc": d.requested.ndc,
            "quantity": d.requested.quantity,
            "unit": d.requested.unit,
        },
        "authorization": (
            {
                "start": d.authorization[0].isoformat(),
                "end": d.authorization[1].isoformat(),
                "administrations": d.administrations,
            }
            if d.authorization
            else None
        ),
        "missing": list(d.missing),
        "reasons": [{"id": u.id, "text": u.text, "reason": u.reason} for u in d.reasons],
    }


def _dose(dose: Dose | None, differs: bool) -> dict[str, Any] | None:
    if dose is None:
        return None
    return {
        "quantity": dose.quantity,
        "unit": dose.unit,
        "ndc": dose.ndc,
        "vials": dose.vials,
        "label": dose.label,
        "code": dose.code,
        "text": dose.describe(),
        "differs_from_request": differs,
    }
