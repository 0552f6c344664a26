"""Coverage assertions: each coverage-information answer, kept under its coverage-assertion-id.

An assertion belongs to the organization whose call created it: another organization's
look-up gets the same answer as an unknown id.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from priorauth.core.evaluator import CompiledPolicy
from priorauth.core.result import Determination
from priorauth.report import determination_to_dict
from priorauth.report.evaluation import Evaluation
from priorauth.store.models import CoverageAssertionRow

Json = dict[str, Any]


def new_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class Assertion:
    id: str
    policy_id: str | None
    policy_version: str | None
    bundle: Json  # the order and the EHR's resources, PAS-shaped (crd.bundle)
    order_ref: str
    as_of: date
    coverage: Json
    organization: str | None  # whose call created it (None: a payer-side caller's)
    evaluation: Evaluation | None = None  # the stored determination, with why its policy was chosen


def save(
    s: Session,
    *,
    assertion_id: str,
    now: datetime,
    policy: CompiledPolicy | None,
    det: Determination | None,
    bundle: Json,
    order_ref: str,
    member_id: str | None,
    coverage: Json,
    source: str,
    organization: str | None,
    routing: Json | None = None,
    as_of: date | None = None,
) -> None:
    """Keep an answer; without a policy (no PA needed, or no coverage) there is no evaluation."""
    on = det.as_of if det is not None else as_of or now.date()
    s.add(
        CoverageAssertionRow(
            id=assertion_id,
            created_at=now,
            member_id=member_id,
            policy_id=policy.policy.id if policy is not None else None,
            policy_version=policy.policy.version if policy is not None else None,
            order={
                "bundle": bundle,
                "order": order_ref,
                "as_of": on.isoformat(),
                "source": source,
            },
            coverage=coverage,
            evaluation=(
                determination_to_dict(det, policy, routing)
                if policy is not None and det is not None
                else None
            ),
            organization=organization,
        )
    )


def load(s: Session, assertion_id: str, organization: str | None) -> Assertion | None:
    """The assertion, if `organization` may use it: its own, or any for a payer-side caller."""
    row = s.get(CoverageAssertionRow, assertion_id)
    if row is None or (organization is not None and row.organization != organization):
        return None
    return Assertion(
        id=row.id,
        policy_id=row.policy_id,
        policy_version=row.policy_version,
        bundle=row.order["bundle"],
        order_ref=row.order["order"],
        as_of=date.fromisoformat(row.order["as_of"]),
        coverage=row.coverage,
        organization=row.organization,
        evaluation=Evaluation.parse(row.evaluation),
    )
