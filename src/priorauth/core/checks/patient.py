"""Checks on who the patient and the prescriber are: diagnosis, sex, age, specialty."""

from __future__ import annotations

from priorauth.core.checks import CheckFn, CompileContext, State, compiler
from priorauth.core.checks.common import attested
from priorauth.core.codes import IcdPatterns
from priorauth.core.facts import ICD10CM, Facts
from priorauth.core.model import DiagnosisCheck, MinAgeCheck, PrescriberSpecialtyCheck, SexCheck
from priorauth.core.result import MET, NOT_MET, UNKNOWN, Derived, Raw, Recorded


@compiler("diagnosis")
def diagnosis(cid: str, c: DiagnosisCheck, ctx: CompileContext) -> CheckFn:
    pats = IcdPatterns.of(c.codes)
    wanted = ", ".join(c.codes)

    def check(facts: Facts, st: State) -> Raw:
        claim_icd = [code for system, code in facts.claim_diagnoses if system == ICD10CM]
        for code in claim_icd:
            if pats.match(code):
                return (
                    MET,
                    None,
                    lambda: (
                        f"{code} is a diagnosis on the claim.",
                        (Recorded(facts.claim_ref, "diagnosis", code),),
                    ),
                )
        for cond in facts.conditions:
            if cond.active and any(s == ICD10CM and pats.match(k) for s, k in cond.codes):
                return (
                    MET,
                    None,
                    lambda: (f"Active Condition {cond.ref} codes {wanted}.", (cond,)),
                )
        if claim_icd:
            return (
                NOT_MET,
                None,
                lambda: (
                    f"The claim's diagnoses ({', '.join(claim_icd)}) do not include "
                    f"{wanted}, and no active Condition does.",
                    tuple(Recorded(facts.claim_ref, "diagnosis", k) for k in claim_icd),
                ),
            )
        return (
            UNKNOWN,
            None,
            lambda: (f"No ICD-10-CM diagnosis on the claim and no {wanted} Condition.", ()),
        )

    return check


@compiler("sex")
def sex(cid: str, c: SexCheck, ctx: CompileContext) -> CheckFn:
    fallback = " (fell back: no sex for clinical use or birth sex recorded)"
    sources = (
        ("sex parameter for clinical use", "sex_for_clinical_use", c.clinical_use, ""),
        ("birth sex", "birth_sex", c.birth_sex, ""),
        ("administrative gender", "gender", c.gender, fallback),
    )
    expected = c.expected

    def check(facts: Facts, st: State) -> Raw:
        p = facts.patient
        seen: list[tuple[str, str]] = []
        for label, attr, mapping, note in sources:
            raw: str | None = getattr(p, attr)
            if raw is None:
                continue
            seen.append((label, raw))
            mapped = mapping.get(raw)
            if mapped is None:
                continue
            return (
                MET if mapped == expected else NOT_MET,
                None,
                lambda: (
                    f"{label.capitalize()} is {raw}{note}.",
                    tuple(Recorded(p.ref, lb, v) for lb, v in seen),
                ),
            )
        return (
            UNKNOWN,
            None,
            lambda: (
                "No sex for clinical use, birth sex or gender is recorded.",
                tuple(Recorded(p.ref, lb, v) for lb, v in seen),
            ),
        )

    return check


@compiler("min_age")
def min_age(cid: str, c: MinAgeCheck, ctx: CompileContext) -> CheckFn:
    years = c.years
    no_birth_date: Raw = (UNKNOWN, None, ("No complete birth date.", ()))

    def check(facts: Facts, st: State) -> Raw:
        p = facts.patient
        b = p.birth_date
        if b is None:
            return no_birth_date
        a = st.as_of
        age = a.year - b.year - ((a.month, a.day) < (b.month, b.day))
        return (
            MET if age >= years else NOT_MET,
            float(age),
            lambda: (
                f"Born {b.isoformat()}: {age} years old on {a.isoformat()}.",
                (Recorded(p.ref, "birth date", b.isoformat()), Derived("age", age, "years")),
            ),
        )

    return check


@compiler("prescriber_specialty")
def prescriber_specialty(cid: str, c: PrescriberSpecialtyCheck, ctx: CompileContext) -> CheckFn:
    allowed = frozenset(c.taxonomies)
    attestation = c.attestation

    def check(facts: Facts, st: State) -> Raw:
        pr = facts.prescriber
        taxa = pr.taxonomies if pr else ()

        def evidence() -> tuple[Recorded, ...]:
            return tuple(Recorded(pr.ref, "specialty (NUCC)", t) for t in taxa) if pr else ()

        hit = next((t for t in taxa if t in allowed), None)
        if hit is not None:
            return (
                MET,
                None,
                lambda: (
                    f"The prescriber's specialty {hit} is one the policy accepts.",
                    evidence(),
                ),
            )
        if attestation and attestation in facts.attestations:
            known = (
                f"Specialty {', '.join(taxa)} is not on the list"
                if taxa
                else "No specialty recorded"
            )
            return attested(facts, attestation, known, evidence())
        if taxa:
            return (
                NOT_MET,
                None,
                lambda: (
                    f"The prescriber's specialty ({', '.join(taxa)}) is not one the "
                    "policy accepts, and no attestation says otherwise.",
                    evidence(),
                ),
            )
        return (UNKNOWN, None, lambda: ("The prescriber's specialty is not known.", evidence()))

    return check
