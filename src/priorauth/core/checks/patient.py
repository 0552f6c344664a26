"""Checks on who the patient and the prescriber are: diagnosis, sex, age, specialty."""

from __future__ import annotations

from datetime import date

from priorauth.core.checks import CheckFn, CompileContext, State, compiler
from priorauth.core.checks.common import attested
from priorauth.core.codes import IcdPatterns, codes_of
from priorauth.core.facts import ICD10CM, NUCC, Condition, Facts, Patient, Prescriber
from priorauth.core.model import (
    AgeCheck,
    DiagnosisCheck,
    MinAgeCheck,
    PrescriberSpecialtyCheck,
    SexCheck,
)
from priorauth.core.result import MET, NOT_MET, UNKNOWN, Derived, Explanation, Raw, Recorded


@compiler("diagnosis")
def diagnosis(cid: str, c: DiagnosisCheck, ctx: CompileContext) -> CheckFn:
    pats = IcdPatterns.of(c.codes, ctx.policy.systems)
    wanted = ", ".join(codes_of(c.codes, ICD10CM, ctx.policy.systems))

    def check(facts: Facts, st: State) -> Raw:
        claim_icd = [code for system, code in facts.claim_diagnoses if system == ICD10CM]
        for code in claim_icd:
            if pats.match(code):
                return (MET, None, (on_claim, code, facts.claim_ref))
        for cond in facts.conditions:
            if cond.active:
                for s, k in cond.codes:
                    if s == ICD10CM and pats.match(k):
                        return (MET, None, (active, cond))
        if claim_icd:
            return (NOT_MET, None, (not_on_claim, claim_icd, facts.claim_ref))
        return (
            UNKNOWN,
            None,
            (f"No ICD-10-CM diagnosis on the claim and no {wanted} Condition.", ()),
        )

    def on_claim(code: str, claim_ref: str) -> Explanation:
        return (
            f"{code} is a diagnosis on the claim.",
            (Recorded(claim_ref, "diagnosis", code),),
        )

    def active(cond: Condition) -> Explanation:
        return f"Active Condition {cond.ref} codes {wanted}.", (cond,)

    def not_on_claim(claim_icd: list[str], claim_ref: str) -> Explanation:
        return (
            f"The claim's diagnoses ({', '.join(claim_icd)}) do not include "
            f"{wanted}, and no active Condition does.",
            tuple(Recorded(claim_ref, "diagnosis", k) for k in claim_icd),
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
                (recorded_as, label, raw, note, p, seen),
            )
        return (UNKNOWN, None, (nothing_recorded, p, seen))

    def recorded_as(
        label: str, raw: str, note: str, p: Patient, seen: list[tuple[str, str]]
    ) -> Explanation:
        return f"{label.capitalize()} is {raw}{note}.", _recorded(p, seen)

    def nothing_recorded(p: Patient, seen: list[tuple[str, str]]) -> Explanation:
        return "No sex for clinical use, birth sex or gender is recorded.", _recorded(p, seen)

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
        age = years_between(b, a)
        return (MET if age >= years else NOT_MET, float(age), (aged, p, b, a, age))

    def aged(p: Patient, b: date, a: date, age: int) -> Explanation:
        return (
            f"Born {b.isoformat()}: {age} years old on {a.isoformat()}.",
            (Recorded(p.ref, "birth date", b.isoformat()), Derived("age", age, "years")),
        )

    return check


def years_between(born: date, on: date) -> int:
    """Whole years of age on a date: the birthday itself counts (29 February: from 1 March)."""
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


@compiler("age")
def age(cid: str, c: AgeCheck, ctx: CompileContext) -> CheckFn:
    low, high = c.min_years, c.max_years
    at_service = c.at == "service"
    if low is not None and high is not None:
        wanted = f"{low} to {high} years" if low != high else f"{low} years"
    elif low is not None:
        wanted = f"at least {low} years"
    else:
        wanted = f"at most {high} years"
    no_birth_date: Raw = (UNKNOWN, None, ("No complete birth date.", ()))

    def check(facts: Facts, st: State) -> Raw:
        p = facts.patient
        b = p.birth_date
        if b is None:
            return no_birth_date
        on, which = st.as_of, "the review date"
        if at_service:
            served = [i.serviced for i in facts.items if i.serviced is not None]
            if served:
                on, which = min(served), "the date of service"
            else:
                which = "the review date (the claim gives no date of service)"
        years = years_between(b, on)
        ok = (low is None or years >= low) and (high is None or years <= high)
        return (MET if ok else NOT_MET, float(years), (aged, p, b, on, which, years, ok))

    def aged(p: Patient, b: date, on: date, which: str, years: int, ok: bool) -> Explanation:
        return (
            f"Born {b.isoformat()}: {years} years old on {which}, {on.isoformat()} "
            f"({'within' if ok else 'outside'} {wanted}).",
            (Recorded(p.ref, "birth date", b.isoformat()), Derived("age", years, "years")),
        )

    return check


@compiler("prescriber_specialty")
def prescriber_specialty(cid: str, c: PrescriberSpecialtyCheck, ctx: CompileContext) -> CheckFn:
    allowed = frozenset(codes_of(c.taxonomies, NUCC, ctx.policy.systems))
    attestation = c.attestation
    accepts = f"accepts as {c.label}" if c.label else "accepts"

    def check(facts: Facts, st: State) -> Raw:
        pr = facts.prescriber
        taxa = pr.taxonomies if pr else ()
        for t in taxa:
            if t in allowed:
                return (MET, None, (accepted, t, pr))
        if attestation and attestation in facts.attestations:
            known = (
                f"Specialty {', '.join(taxa)} is not one the policy {accepts}"
                if taxa
                else "No specialty recorded"
            )
            return attested(facts, attestation, known, _specialties(pr))
        if taxa:
            return (NOT_MET, None, (not_accepted, pr))
        return (UNKNOWN, None, (not_known, pr))

    def accepted(t: str, pr: Prescriber) -> Explanation:
        return f"The prescriber's specialty {t} is one the policy {accepts}.", _specialties(pr)

    def not_accepted(pr: Prescriber) -> Explanation:
        return (
            f"The prescriber's specialty ({', '.join(pr.taxonomies)}) is not one the "
            f"policy {accepts}, and no attestation says otherwise.",
            _specialties(pr),
        )

    def not_known(pr: Prescriber | None) -> Explanation:
        return "The prescriber's specialty is not known.", _specialties(pr)

    return check


def _specialties(pr: Prescriber | None) -> tuple[Recorded, ...]:
    return tuple(Recorded(pr.ref, "specialty (NUCC)", t) for t in pr.taxonomies) if pr else ()


def _recorded(p: Patient, seen: list[tuple[str, str]]) -> tuple[Recorded, ...]:
    return tuple(Recorded(p.ref, lb, v) for lb, v in seen)
