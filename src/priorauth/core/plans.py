"""Apply a benefit plan document to a policy: the plan supersedes the policy where they differ."""

from __future__ import annotations

from priorauth.core.model import (
    BenefitPlanExclusionCheck,
    Criterion,
    PlanDocument,
    Policy,
    PolicyOverride,
    walk,
)

EXCLUSION_ID = "PL"


def override_for(policy: Policy, plan: PlanDocument) -> PolicyOverride | None:
    return next((o for o in plan.overrides if o.policy == policy.id), None)


def amend(policy: Policy, plan: PlanDocument) -> Policy:
    """The policy as the plan document changes it; unchanged when the plan says nothing of it."""
    ov = override_for(policy, plan)
    if ov is None:
        return policy
    source = plan.title
    replacing = {c.id: c.model_copy(update={"source": source}) for c in ov.replace}
    unknown = set(replacing) - {c.id for c in walk(policy.criteria)}
    if unknown:
        raise ValueError(
            f"plan {plan.id} replaces criteria {', '.join(sorted(unknown))} "
            f"that {policy.id} {policy.version} does not have"
        )
    criteria = [_replace(c, replacing) for c in policy.criteria]
    criteria += [c.model_copy(update={"source": source}) for c in ov.add]
    exclusions = list(policy.exclusions)
    if ov.exclude:
        exclusions.insert(
            0,
            Criterion(
                id=EXCLUSION_ID,
                text=ov.exclude,
                evidence="benefit_plan",
                check=BenefitPlanExclusionCheck(kind="benefit_plan_exclusion", document=source),
                source=source,
            ),
        )
    approval = policy.approval
    if ov.approval is not None:
        changes = {k: v for k, v in ov.approval.model_dump().items() if v is not None}
        if "days" in changes:
            changes["days_basis"] = "policy"
        approval = approval.model_copy(update=changes)
    # Validate the result as a whole: ids stay unique, references still resolve.
    return Policy.model_validate(
        {
            **policy.model_dump(),
            "criteria": [c.model_dump() for c in criteria],
            "exclusions": [c.model_dump() for c in exclusions],
            "approval": approval.model_dump(),
        }
    )


def _replace(c: Criterion, replacing: dict[str, Criterion]) -> Criterion:
    if c.id in replacing:
        return replacing[c.id]
    if not c.children:
        return c
    return c.model_copy(update={"children": [_replace(ch, replacing) for ch in c.children]})
