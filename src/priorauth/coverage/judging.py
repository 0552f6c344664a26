"""What-if judging CRD and DTR share: a prescriber's hypothetical answers, and final denials.

The judging itself is the one pipeline of `policies.judging`, the same as $submit's.
"""

from __future__ import annotations

import dataclasses
from datetime import date

from priorauth.core.evaluator import CompiledPolicy
from priorauth.core.facts import Attestation, Facts
from priorauth.core.result import Determination
from priorauth.coverage.questions import questions
from priorauth.errors import NoPolicyInForce
from priorauth.policies import PolicyLibrary


def policies_in_force(library: PolicyLibrary, on: date) -> list[CompiledPolicy]:
    out = []
    for pid in library.versions:
        try:
            out.append(library.in_force(pid, on))
        except NoPolicyInForce:
            continue
    return out


def answered(facts: Facts, link_id: str, value: bool | int) -> Facts:
    """The facts with one more (hypothetical) prescriber answer."""
    a = Attestation(ref=f"QuestionnaireResponse/what-if#{link_id}", link_id=link_id, value=value)
    return dataclasses.replace(facts, attestations={**facts.attestations, link_id: a})


def final_denial(policy: CompiledPolicy, facts: Facts, det: Determination) -> bool:
    """True when no answer to an open question could lift a denial."""
    if det.recommendation != "deny":
        return False
    best = facts
    for q in questions(policy):
        if q.link_id not in facts.attestations:
            best = answered(best, q.link_id, q.favourable)
    return policy.evaluate(best).recommendation == "deny"
