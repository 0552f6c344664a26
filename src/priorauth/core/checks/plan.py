"""A benefit plan's exclusion: the plan document supersedes the coverage policy."""

from __future__ import annotations

from priorauth.core.checks import CheckFn, CompileContext, State, compiler
from priorauth.core.facts import Facts
from priorauth.core.model import BenefitPlanExclusionCheck
from priorauth.core.result import MET, Raw


@compiler("benefit_plan_exclusion")
def benefit_plan_exclusion(cid: str, c: BenefitPlanExclusionCheck, ctx: CompileContext) -> CheckFn:
    applies: Raw = (
        MET,
        None,
        (
            f"Excluded by the benefit plan document {c.document}, which supersedes "
            f"coverage policy {ctx.policy.number}.",
            (),
        ),
    )

    def check(facts: Facts, st: State) -> Raw:
        return applies

    return check
