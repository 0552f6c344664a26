"""Checks answered by the prescriber, or refuted by a medication or a condition on record."""

from __future__ import annotations

import re

from priorauth.core.checks import CheckFn, CompileContext, State, compiler
from priorauth.core.checks.common import attested
from priorauth.core.codes import IcdPatterns
from priorauth.core.facts import ICD10CM, Facts
from priorauth.core.model import AttestationCheck, NoConditionCheck, NoMedicationCheck
from priorauth.core.result import MET, NOT_MET, UNKNOWN, Finding


@compiler("attestation")
def attestation(cid: str, c: AttestationCheck, ctx: CompileContext) -> CheckFn:
    link = c.link_id
    if c.expect is not None:
        expect = c.expect

        def yes_no(facts: Facts, st: State) -> Finding:
            f = attested(cid, facts, link, "")
            if not expect and f.status != UNKNOWN:
                f.status = NOT_MET if f.status == MET else MET
            return f

        return yes_no

    least = c.at_least
    assert least is not None

    def at_least(facts: Facts, st: State) -> Finding:
        a = facts.attestations.get(link)
        if a is None:
            return Finding(cid, UNKNOWN, lambda: f"No prescriber attestation '{link}'.")
        v = a.value
        if isinstance(v, bool) or not isinstance(v, int | float):
            return Finding(cid, UNKNOWN, lambda: f"Attestation '{link}' is not a number.", (a,))
        ok = v >= least
        return Finding(
            cid,
            MET if ok else NOT_MET,
            lambda: f"The prescriber reports {v:g} for '{link}' ({'≥' if ok else '<'} {least:g}).",
            (a,),
            float(v),
        )

    return at_least


@compiler("no_medication")
def no_medication(cid: str, c: NoMedicationCheck, ctx: CompileContext) -> CheckFn:
    names = re.compile(r"\b(" + "|".join(re.escape(n.lower()) for n in c.names) + r")")

    def check(facts: Facts, st: State) -> Finding:
        for m in facts.medications:
            if m.active and (hit := names.search(m.names)):
                return Finding(
                    cid, NOT_MET, lambda: f"Active medication {m.ref} names {hit.group(1)}.", (m,)
                )
        if c.attestation is None:
            return Finding(cid, MET, "No such active medication in the request.")
        return attested(cid, facts, c.attestation, "No such active medication in the request")

    return check


@compiler("no_condition")
def no_condition(cid: str, c: NoConditionCheck, ctx: CompileContext) -> CheckFn:
    pats = IcdPatterns.of(c.codes)

    def check(facts: Facts, st: State) -> Finding:
        for cond in facts.conditions:
            if cond.active and (
                hit := next((k for s, k in cond.codes if s == ICD10CM and pats.match(k)), None)
            ):
                return Finding(
                    cid, NOT_MET, lambda: f"Active Condition {cond.ref} ({hit}).", (cond,)
                )
        if c.attestation is None:
            return Finding(cid, MET, "No such active Condition in the request.")
        return attested(cid, facts, c.attestation, "No such active Condition in the request")

    return check
