"""Checks on who the patient and the prescriber are: diagnosis, sex, age, specialty."""

from __future__ import annotations

from priorauth.core.checks import CheckFn, CompileContext, State, compiler
from priorauth.core.checks.common import attested
from priorauth.core.codes import IcdPatterns
from priorauth.core.facts import ICD10CM, Facts
from priorauth.core.model import DiagnosisCheck, MinAgeCheck, PrescriberSpecialtyCheck, SexCheck
from priorauth.core.result import MET, NOT_MET, UNKNOWN, Derived, Finding, Recorded


@compiler("diagnosis")
def diagnosis(cid: str, c: DiagnosisCheck, ctx: CompileContext) -> CheckFn:
    pats = IcdPatterns.of(c.codes)
    wanted = ", ".join(c.codes)

    def check(facts: Facts, st: State) -> Finding:
        claim_icd = [code for system, code in facts.claim_diagnoses if system == ICD10CM]
        for code in claim_icd:
            if pats.match(code):
                return Finding(
                    cid,
                    MET,
                    lambda: f"{code} is a diagnosis on the claim.",
                    (Recorded(facts.claim_ref, "diagnosis", code),),
                )
        for cond in facts.conditions:
            if cond.active and any(s == ICD10CM and pats.match(k) for s, k in cond.codes):
                return Finding(
                    cid, MET, lambda: f"Active Condition {cond.ref} codes {wanted}.", (cond,)
                )
        if claim_icd:
            return Finding(
                cid,
                NOT_MET,
                lambda: (
                    f"The claim's diagnoses ({', '.join(claim_icd)}) do not include "
                    f"{wanted}, and no active Condition does."
                ),
                tuple(Recorded(facts.claim_ref, "diagnosis", k) for k in claim_icd),
            )
        return Finding(
            cid, UNKNOWN, lambda: f"No ICD-10-CM diagnosis on the claim and no {wanted} Condition."
        )

    return check


@compiler("sex")
def sex(cid: str, c: SexCheck, ctx: CompileContext) -> CheckFn:
    def check(facts: Facts, st: State) -> Finding:
        p = facts.patient
        sources = (
            ("sex parameter for clinical use", p.sex_for_clinical_use, c.clinical_use, ""),
            ("birth sex", p.birth_sex, c.birth_sex, ""),
            (
                "administrative gender",
                p.gender,
                c.gender,
                " (fell back: no sex for clinical use or birth sex recorded)",
            ),
        )
        seen = []
        for label, raw, mapping, note in sources:
            if raw is None:
                continue
            mapped = mapping.get(raw)
            ev = Recorded(p.ref, label, raw)
            seen.append(ev)
            if mapped is None:
                continue
            ok = mapped == c.expected
            return Finding(
                cid,
                MET if ok else NOT_MET,
                lambda: f"{label.capitalize()} is {raw}{note}.",
                tuple(seen),
            )
        return Finding(
            cid, UNKNOWN, "No sex for clinical use, birth sex or gender is recorded.", tuple(seen)
        )

    return check


@compiler("min_age")
def min_age(cid: str, c: MinAgeCheck, ctx: CompileContext) -> CheckFn:
    def check(facts: Facts, st: State) -> Finding:
        p = facts.patient
        b = p.birth_date
        if b is None:
            return Finding(cid, UNKNOWN, "No complete birth date.")
        a = st.as_of
        age = a.year - b.year - ((a.month, a.day) < (b.month, b.day))
        ok = age >= c.years
        return Finding(
            cid,
            MET if ok else NOT_MET,
            lambda: f"Born {b.isoformat()}: {age} years old on {a.isoformat()}.",
            (Recorded(p.ref, "birth date", b.isoformat()), Derived("age", age, "years")),
            float(age),
        )

    return check


@compiler("prescriber_specialty")
def prescriber_specialty(cid: str, c: PrescriberSpecialtyCheck, ctx: CompileContext) -> CheckFn:
    allowed = frozenset(c.taxonomies)

    def check(facts: Facts, st: State) -> Finding:
        pr = facts.prescriber
        taxa = pr.taxonomies if pr else ()
        ev = tuple(Recorded(pr.ref, "specialty (NUCC)", t) for t in taxa) if pr else ()
        hit = next((t for t in taxa if t in allowed), None)
        if hit is not None:
            return Finding(
                cid, MET, lambda: f"The prescriber's specialty {hit} is a hemophilia specialty.", ev
            )
        a = facts.attestations.get(c.attestation) if c.attestation else None
        if a is not None and c.attestation:
            known = (
                f"Specialty {', '.join(taxa)} is not on the list"
                if taxa
                else "No specialty recorded"
            )
            return attested(cid, facts, c.attestation, known, ev)
        if taxa:
            return Finding(
                cid,
                NOT_MET,
                lambda: (
                    f"The prescriber's specialty ({', '.join(taxa)}) is not a "
                    "hemophilia specialty, and no attestation says otherwise."
                ),
                ev,
            )
        return Finding(cid, UNKNOWN, "The prescriber's specialty is not known.", ev)

    return check
