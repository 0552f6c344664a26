"""Checks against the payer's claims history, and exclusions that mirror a criterion."""

from __future__ import annotations

from priorauth.core.checks import CheckFn, CompileContext, State, compiler
from priorauth.core.checks.common import attested
from priorauth.core.codes import ndc11
from priorauth.core.facts import HCPCS, NDC, ClaimLine, Facts
from priorauth.core.model import ExclusionByCriterionCheck, NoPriorClaimsCheck
from priorauth.core.result import MET, NOT_MET, UNKNOWN, Finding, Status


@compiler("no_prior_claims")
def no_prior_claims(cid: str, c: NoPriorClaimsCheck, ctx: CompileContext) -> CheckFn:
    hcpcs = frozenset(c.hcpcs)
    ndcs = frozenset(n for n in (ndc11(x) for x in c.ndc) if n) | (
        ctx.kit_ndcs if c.include_kit_ndcs else frozenset()
    )

    def hit(line: ClaimLine) -> str | None:
        for system, code in line.codes:
            if system == HCPCS and code in hcpcs:
                return code
            if system == NDC and ndc11(code) in ndcs:
                return code
        return None

    def check(facts: Facts, st: State) -> Finding:
        h = facts.claims
        if h is not None and h.available:
            found = [(line, code) for line in h.lines if (code := hit(line))]
            if found:
                codes = ", ".join(sorted({code for _, code in found}))
                return Finding(
                    cid,
                    NOT_MET,
                    lambda: f"Claims history shows prior gene therapy ({codes}).",
                    tuple(line for line, _ in found),
                )
            context = f"Claims history ({h.claim_count} claims) shows no prior gene therapy"
            if not c.attestation_required_when_clean or c.attestation is None:
                return Finding(cid, MET, lambda: f"{context}.")
        else:
            context = "No claims history is available for the member"
        if c.attestation is None:
            return Finding(cid, UNKNOWN, lambda: f"{context}.")
        return attested(cid, facts, c.attestation, context)

    return check


def _criterion(c: ExclusionByCriterionCheck) -> list[str]:
    return [c.criterion]


@compiler("excluded_when_not_met", depends=_criterion)
def excluded_when_not_met(cid: str, c: ExclusionByCriterionCheck, ctx: CompileContext) -> CheckFn:
    target = c.criterion

    def check(facts: Facts, st: State) -> Finding:
        f = st.findings[target]
        status: Status = MET if f.status == NOT_MET else NOT_MET if f.status == MET else UNKNOWN
        return Finding(cid, status, lambda: f"Mirrors {target}: {f.reason}", f.evidence)

    return check
