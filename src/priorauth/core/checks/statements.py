"""Checks answered by the prescriber, or refuted by a medication or a condition on record."""

from __future__ import annotations

import re

from priorauth.core.checks import INLINE, CheckFn, CompileContext, State, compiler
from priorauth.core.checks.common import attested
from priorauth.core.codes import IcdPatterns
from priorauth.core.facts import ICD10CM, Attestation, Condition, Facts, Medication
from priorauth.core.model import AttestationCheck, NoConditionCheck, NoMedicationCheck
from priorauth.core.result import MET, NOT_MET, UNKNOWN, Explanation, Raw


@compiler("attestation")
def attestation(cid: str, c: AttestationCheck, ctx: CompileContext) -> CheckFn:
    link = c.link_id
    if c.expect is not None:
        if c.expect:
            answered_yes = f"The prescriber answered yes to '{link}'."
            answered_no = f"The prescriber answered no to '{link}'."

            def yes(facts: Facts, st: State) -> Raw:
                # `attested` inlined for the common answer: a yes/no.
                a = facts.attestations.get(link)
                if a is not None and type(a.value) is bool:
                    if a.value:
                        return (MET, None, (answered_yes, (a,)))
                    return (NOT_MET, None, (answered_no, (a,)))
                return attested(facts, link, "")

            INLINE[yes] = ("attest_yes", link, answered_yes, answered_no)
            return yes

        def no(facts: Facts, st: State) -> Raw:
            # "No" meets the criterion: the answer's status flips, its sentence stays.
            status, value, detail = attested(facts, link, "")
            if status == UNKNOWN:
                return (status, value, detail)
            return (NOT_MET if status == MET else MET, value, detail)

        INLINE[no] = (
            "attest_no",
            link,
            f"The prescriber answered yes to '{link}'.",
            f"The prescriber answered no to '{link}'.",
        )
        return no

    least = c.at_least
    assert least is not None

    def at_least(facts: Facts, st: State) -> Raw:
        a = facts.attestations.get(link)
        if a is None:
            return (UNKNOWN, None, (f"No prescriber attestation '{link}'.", ()))
        v = a.value
        if isinstance(v, bool) or not isinstance(v, int | float):
            return (UNKNOWN, None, (f"Attestation '{link}' is not a number.", (a,)))
        ok = v >= least
        return (MET if ok else NOT_MET, float(v), (reported, a, v, ok))

    def reported(a: Attestation, v: float, ok: bool) -> Explanation:
        return (
            f"The prescriber reports {v:g} for '{link}' ({'≥' if ok else '<'} {least:g}).",
            (a,),
        )

    return at_least


def _active(cond: Condition, code: str) -> Raw:
    return (NOT_MET, None, lambda: (f"Active Condition {cond.ref} ({code}).", (cond,)))


@compiler("no_medication")
def no_medication(cid: str, c: NoMedicationCheck, ctx: CompileContext) -> CheckFn:
    names = re.compile(r"\b(" + "|".join(re.escape(n.lower()) for n in c.names) + r")")
    attestation = c.attestation
    none: Raw = (MET, None, ("No such active medication in the request.", ()))

    def check(facts: Facts, st: State) -> Raw:
        for m in facts.medications:
            if m.active and (hit := names.search(m.names)):
                return (NOT_MET, None, (_names, m, hit.group(1)))
        if attestation is None:
            return none
        return attested(facts, attestation, "No such active medication in the request")

    return check


@compiler("no_condition")
def no_condition(cid: str, c: NoConditionCheck, ctx: CompileContext) -> CheckFn:
    pats = IcdPatterns.of(c.codes, ctx.policy.systems)
    attestation = c.attestation
    none: Raw = (MET, None, ("No such active Condition in the request.", ()))

    def check(facts: Facts, st: State) -> Raw:
        for cond in facts.conditions:
            if cond.active:
                for s, k in cond.codes:
                    if s == ICD10CM and k and pats.match(k):
                        return _active(cond, k)
        if attestation is None:
            return none
        return attested(facts, attestation, "No such active Condition in the request")

    return check


def _names(m: Medication, name: str) -> Explanation:
    return f"Active medication {m.ref} names {name}.", (m,)
