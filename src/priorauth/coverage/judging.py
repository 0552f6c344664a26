"""Judging an order the way $submit would, for CRD and DTR alike."""

from __future__ import annotations

import dataclasses
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from priorauth.core.evaluator import CompiledPolicy
from priorauth.core.facts import Attestation, Facts
from priorauth.core.result import Determination
from priorauth.coverage.bundle import facts_of
from priorauth.coverage.questions import questions
from priorauth.errors import InvalidRequest, NoPolicyInForce
from priorauth.service.app_service import PriorAuthService
from priorauth.service.errors import Unprocessable
from priorauth.store import claims as claims_store

Json = dict[str, Any]


def policies_in_force(svc: PriorAuthService, on: date) -> list[CompiledPolicy]:
    out = []
    for pid in svc.library.versions:
        try:
            out.append(svc.library.in_force(pid, on))
        except NoPolicyInForce:
            continue
    return out


def judge(
    s: Session, policy: CompiledPolicy, bundle: Json, as_of: date
) -> tuple[Facts, Determination]:
    """Intake reads the bundle as $submit would; the engine judges it with the claims history."""
    try:
        facts = facts_of(bundle, None, as_of)
    except InvalidRequest as e:
        raise Unprocessable(f"the EHR's data cannot be read: {e.message}", e.where) from e
    facts = dataclasses.replace(facts, claims=claims_store.history_for(s, facts.patient.member_id))
    return facts, policy.evaluate(facts)


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
