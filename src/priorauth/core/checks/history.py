"""Checks against the payer's claims history, and exclusions that mirror a criterion."""

from __future__ import annotations

from priorauth.core.checks import CheckFn, CompileContext, State, compiler
from priorauth.core.checks.common import attested
from priorauth.core.codes import codes_of, ndc11
from priorauth.core.facts import HCPCS, NDC, ClaimLine, Facts
from priorauth.core.model import ExclusionByCriterionCheck, NoPriorClaimsCheck
from priorauth.core.result import MET, NOT_MET, UNKNOWN, Explanation, Raw, Status, explain


@compiler("no_prior_claims")
def no_prior_claims(cid: str, c: NoPriorClaimsCheck, ctx: CompileContext) -> CheckFn:
    aliases = ctx.policy.systems
    hcpcs = frozenset(codes_of(c.hcpcs, HCPCS, aliases))
    ndcs = frozenset(n for n in (ndc11(x) for x in codes_of(c.ndc, NDC, aliases)) if n) | (
        ctx.kit_ndcs if c.include_kit_ndcs else frozenset()
    )
    attestation = c.attestation
    clean_is_enough = not c.attestation_required_when_clean or attestation is None

    def hit(line: ClaimLine) -> str | None:
        for system, code in line.codes:
            if system == HCPCS and code in hcpcs:
                return code
            if system == NDC and ndc11(code) in ndcs:
                return code
        return None

    def check(facts: Facts, st: State) -> Raw:
        h = facts.claims
        if h is not None and h.available:
            found = [(line, code) for line in h.lines if (code := hit(line))]
            if found:
                return (
                    NOT_MET,
                    None,
                    lambda: (
                        "Claims history shows prior gene therapy "
                        f"({', '.join(sorted({code for _, code in found}))}).",
                        tuple(line for line, _ in found),
                    ),
                )
            context = f"Claims history ({h.claim_count} claims) shows no prior gene therapy"
            if clean_is_enough:
                return (MET, None, (f"{context}.", ()))
        else:
            context = "No claims history is available for the member"
        if attestation is None:
            return (UNKNOWN, None, (f"{context}.", ()))
        return attested(facts, attestation, context)

    return check


def _criterion(c: ExclusionByCriterionCheck) -> list[str]:
    return [c.criterion]


@compiler("excluded_when_not_met", depends=_criterion)
def excluded_when_not_met(cid: str, c: ExclusionByCriterionCheck, ctx: CompileContext) -> CheckFn:
    target = c.criterion

    def check(facts: Facts, st: State) -> Raw:
        f = st.findings[target]
        s = f[0]
        status: Status = MET if s == NOT_MET else NOT_MET if s == MET else UNKNOWN
        return (status, None, (mirrored, f))

    def mirrored(f: Raw) -> Explanation:
        reason, evidence = explain(f[2])
        return f"Mirrors {target}: {reason}", evidence

    return check
