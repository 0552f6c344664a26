"""The prescriber's questions a policy asks (its attestation criteria), and the form's URL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from priorauth.core.evaluator import CompiledPolicy
from priorauth.core.model import AttestationCheck, Criterion

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Question:
    """One attestation a criterion reads (contract section 3)."""

    link_id: str
    criterion: Criterion
    kind: str  # "boolean" | "integer"
    favourable: bool | int  # the answer that meets the criterion (or keeps an exclusion off)

    def item(self) -> Json:
        c = self.criterion
        return {
            "linkId": self.link_id,
            "text": c.question or c.text,
            "type": self.kind,
        }


def attestation_link(c: Criterion) -> str | None:
    check = c.check
    if check is None:
        return None
    if isinstance(check, AttestationCheck):
        return check.link_id
    return getattr(check, "attestation", None)


def questions(policy: CompiledPolicy) -> list[Question]:
    """Every attestation of the policy, in the policy's order."""
    exclusions = {c.id for c in policy.policy.exclusions}
    out: list[Question] = []
    seen: set[str] = set()
    for c in policy.criteria.values():
        link = attestation_link(c)
        if link is None or link in seen:
            continue
        seen.add(link)
        check = c.check
        if isinstance(check, AttestationCheck) and check.at_least is not None:
            out.append(Question(link, c, "integer", int(check.at_least)))
        elif isinstance(check, AttestationCheck) and check.expect is not None:
            out.append(Question(link, c, "boolean", check.expect))
        else:
            # "true" meets a criterion, and makes an exclusion apply.
            out.append(Question(link, c, "boolean", c.id not in exclusions))
    return out


def canonical(policy: CompiledPolicy, base_url: str) -> str:
    return f"{base_url.rstrip('/')}/fhir/Questionnaire/{policy.policy.id}"
