"""Case operations, each one transaction: submit, revise, cancel, decide, read."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from priorauth.errors import PriorauthError
from priorauth.intake.request import PasRequest
from priorauth.intake.summary import RequestSummary, summarize
from priorauth.pas.records import CaseRecord, Decision, Identifier, RequestKeys, Voided
from priorauth.report.evaluation import Evaluation
from priorauth.store.models import Base, CaseEventRow, CaseRow

OPEN = "pended"
APPROVED = ("approved", "modified")
DECIDED = ("approved", "modified", "denied")


class CaseConflict(PriorauthError):
    """The operation does not fit the case's current state (e.g. deciding it twice)."""


class LifetimeLimitReached(CaseConflict):
    """The member already holds every approval the therapy class allows in a lifetime."""


@dataclass(frozen=True)
class Lifetime:
    """The policy's lifetime rule: `limit` approvals per member across `therapy_class`."""

    therapy_class: str
    limit: int

    def slots(self, member_key: str) -> list[str]:
        """The unique keys an approval may take, one per approval allowed."""
        return [f"{self.therapy_class}|{member_key}|{n}" for n in range(1, self.limit + 1)]


def new_case(
    *,
    keys: RequestKeys,
    request: PasRequest,
    received_at: datetime,
    due_at: datetime,
    policy_id: str | None,
    policy_version: str | None,
    recommendation: str | None,
    evaluation: dict[str, Any] | None,
    member_key: str | None = None,
    digest: str | None = None,
) -> CaseRow:
    cid = str(uuid.uuid4())
    return CaseRow(
        id=cid,
        auth_number=f"PA{received_at:%Y%m%d}-{cid[:8].upper()}",
        submitter=keys.submitter.key(),
        claim_identifier=keys.claim_identifier.key(),
        member_id=keys.member_id,
        member_key=member_key,
        service_codes=" ".join(keys.service_codes),
        policy_id=policy_id,
        policy_version=policy_version,
        status=OPEN,
        expedited=keys.expedited,
        received_at=received_at,
        due_at=due_at,
        updated_at=received_at,
        recommendation=recommendation,
        evaluation=evaluation,
        request_bundle=request.raw or b"",
        keys=keys_to_json(keys),
        request_digest=digest,
        **summary_columns(request),
    )


def summary_columns(request: PasRequest) -> dict[str, str | None]:
    """The case table's summary columns for a request (what the case lists show)."""
    return asdict(summarize(request))


def _summary(row: CaseRow) -> RequestSummary:
    return RequestSummary(
        member_name=row.member_name,
        member_birth_date=row.member_birth_date,
        provider_name=row.provider_name,
        prescriber_name=row.prescriber_name,
        service_name=row.service_name,
    )


def keys_to_json(keys: RequestKeys) -> dict[str, Any]:
    return asdict(keys)


def _keys_from_json(d: dict[str, Any]) -> RequestKeys:
    related = d.get("related")
    return RequestKeys(
        claim_identifier=Identifier(**d["claim_identifier"]),
        submitter=Identifier(**d["submitter"]),
        member_id=d.get("member_id"),
        service_codes=tuple(d.get("service_codes", ())),
        certification=d.get("certification", "I"),
        related=Identifier(**related) if related else None,
        expedited=bool(d.get("expedited")),
        member_system=d.get("member_system"),
    )


def event(
    session: Session, case_id: str, kind: str, actor: str, at: datetime, **detail: Any
) -> None:
    session.add(CaseEventRow(case_id=case_id, at=at, kind=kind, actor=actor, detail=detail))


def find_submission(session: Session, keys: RequestKeys) -> CaseRow | None:
    # Nearly every submission is new: look for the id alone, load the case only if found.
    found = session.execute(
        _FIND_SUBMISSION,
        {"submitter": keys.submitter.key(), "claim": keys.claim_identifier.key()},
    ).scalar()
    return None if found is None else session.get(CaseRow, found)


def find_related(session: Session, keys: RequestKeys) -> CaseRow | None:
    """The earlier case a revision or cancellation refers to (Claim.related, else itself)."""
    target = keys.related or keys.claim_identifier
    return session.scalars(
        select(CaseRow)
        .where(CaseRow.submitter == keys.submitter.key(), CaseRow.claim_identifier == target.key())
        .with_for_update()
    ).first()


_CASES = Base.metadata.tables[CaseRow.__tablename__]
_INSERT_CASE = insert(_CASES)
_INSERT_EVENT = insert(Base.metadata.tables[CaseEventRow.__tablename__])
_FIND_SUBMISSION = select(_CASES.c.id).where(
    _CASES.c.submitter == bindparam("submitter"), _CASES.c.claim_identifier == bindparam("claim")
)


def insert_case(
    session: Session, row: CaseRow, actor: str, also: Callable[[Session], object] | None = None
) -> tuple[CaseRow, bool]:
    """Store a new case, or return the one a concurrent identical submission stored first.

    `also` runs inside the same transaction (the audit record), so both commit or neither.
    """
    # Two plain inserts rather than the ORM's unit of work, which cost a quarter of a
    # submission's CPU; `row` stays a detached object the caller reads.
    values = {k: v for k, v in vars(row).items() if k in _CASES.c}
    submitted = {
        "case_id": row.id,
        "at": row.received_at,
        "kind": "submitted",
        "actor": actor,
        "detail": {"recommendation": row.recommendation, "policy": row.policy_id},
    }
    try:
        session.execute(_INSERT_CASE, values)  # the case row first: the event refers to it
        session.execute(_INSERT_EVENT, [submitted])  # a list: no RETURNING of its id
        if also is not None:
            also(session)
        session.commit()
    except IntegrityError:
        return _existing(session, row)
    return row, True


def _existing(session: Session, row: CaseRow) -> tuple[CaseRow, bool]:
    # A concurrent identical submission committed first: answer with its case.
    session.rollback()
    existing = find_submission(session, _keys_from_json(row.keys))
    if existing is None:
        raise LookupError("the submission clashed with a case that cannot be found")
    return existing, False


def decide(
    session: Session,
    case_id: str,
    decision: Decision,
    also: Callable[[Session], object] | None = None,
    lifetime: Lifetime | None = None,
) -> CaseRow:
    """Record a Medical Director's decision. Refuses an approval beyond the lifetime limit.

    With `lifetime`, an approval takes a free slot of the member's lifetime record for
    the therapy class; the unique column makes the database refuse a concurrent one.
    """
    row = session.scalars(select(CaseRow).where(CaseRow.id == case_id).with_for_update()).first()
    if row is None:
        raise KeyError(case_id)
    if row.status != OPEN:
        raise CaseConflict(f"case {case_id} is {row.status}, not open for a decision")
    slot = None
    if decision.kind != "deny" and lifetime is not None:
        slot = _free_slot(session, lifetime, row.member_key or f"case:{row.id}")
        if slot is None:
            session.rollback()
            raise _limit_reached(lifetime)
    row.status = {"approve": "approved", "approve-modified": "modified", "deny": "denied"}[
        decision.kind
    ]
    row.decision = decision.kind
    row.decided_at = decision.decided_at
    row.decided_by = decision.decided_by
    row.decision_reason = decision.reason
    row.decision_criteria = list(decision.criteria)
    row.product_ndc = decision.product_ndc
    row.product_vials = decision.product_vials
    row.quantity = decision.quantity
    row.unit = decision.unit
    row.auth_start = decision.auth_start
    row.auth_end = decision.auth_end
    row.updated_at = decision.decided_at
    row.lifetime_key = slot
    event(
        session,
        row.id,
        "decided",
        decision.decided_by,
        decision.decided_at,
        decision=decision.kind,
        reason=decision.reason,
        criteria=list(decision.criteria),
        product_ndc=decision.product_ndc,
        quantity=decision.quantity,
        unit=decision.unit,
    )
    try:
        session.flush()  # the lifetime constraint is checked here, before the audit record
        if also is not None:
            also(session)
        session.commit()
    except IntegrityError as e:
        session.rollback()
        if lifetime is None:
            raise
        raise _limit_reached(lifetime) from e
    return row


def _free_slot(session: Session, lifetime: Lifetime, member_key: str) -> str | None:
    slots = lifetime.slots(member_key)
    taken = set(
        session.scalars(select(CaseRow.lifetime_key).where(CaseRow.lifetime_key.in_(slots)))
    )
    return next((k for k in slots if k not in taken), None)


def _limit_reached(lifetime: Lifetime) -> LifetimeLimitReached:
    times = "once" if lifetime.limit == 1 else f"{lifetime.limit} times"
    if lifetime.therapy_class.endswith("/renewal"):
        return LifetimeLimitReached(
            f"the member has used every renewal of {lifetime.therapy_class[: -len('/renewal')]}"
            f" the policy allows: renewed at most {times}"
        )
    return LifetimeLimitReached(
        f"the member already holds an approval for {lifetime.therapy_class}: "
        f"approved at most {times} per lifetime"
    )


def request_withdrawal(session: Session, row: CaseRow, actor: str, at: datetime) -> bool:
    """A provider's cancellation of a decided case: noted, the decision and lifetime record kept.

    Returns False when the withdrawal was already requested.
    """
    if row.withdrawal_requested_at is not None:
        return False
    row.withdrawal_requested_at = at
    row.updated_at = at
    event(session, row.id, "withdrawal_requested", actor, at, decision=row.decision)
    return True


def void(session: Session, case_id: str, voided: Voided) -> CaseRow:
    """A Medical Director voids an approval: the case is cancelled and the lifetime slot freed.

    Runs in the caller's transaction; the caller commits.
    """
    row = session.scalars(select(CaseRow).where(CaseRow.id == case_id).with_for_update()).first()
    if row is None:
        raise KeyError(case_id)
    if row.status not in APPROVED:
        raise CaseConflict(f"case {case_id} is {row.status}: only an approval can be voided")
    previous = row.status
    row.status = "cancelled"
    row.lifetime_key = None
    row.voided_at = voided.at
    row.voided_by = voided.by
    row.void_reason = voided.reason
    row.updated_at = voided.at
    event(session, row.id, "voided", voided.by, voided.at, reason=voided.reason, was=previous)
    return row


def list_open(session: Session, limit: int = 500) -> list[CaseRow]:
    return list(
        session.scalars(
            select(CaseRow).where(CaseRow.status == OPEN).order_by(CaseRow.due_at).limit(limit)
        )
    )


def get(session: Session, case_id: str) -> CaseRow | None:
    return session.get(CaseRow, case_id)


def find_for_inquiry(
    session: Session, member_key: str | None, submitter: str, services: tuple[str, ...]
) -> CaseRow | None:
    """The submitter's latest case for the member (normalised key) and service."""
    for row in cases_for_inquiry(session, member_key, submitter):
        if not services or set(services) & set(row.service_codes.split()):
            return row
    return None


def cases_for_inquiry(session: Session, member_key: str | None, submitter: str) -> list[CaseRow]:
    """Every case of the submitter for the member (normalised key), newest first: what a
    PAS inquiry must match before anything else (spec-53: member and provider)."""
    return list(
        session.scalars(
            select(CaseRow)
            .where(CaseRow.member_key == member_key, CaseRow.submitter == submitter)
            .order_by(CaseRow.received_at.desc())
        )
    )


def events(session: Session, case_id: str) -> list[CaseEventRow]:
    return list(
        session.scalars(
            select(CaseEventRow).where(CaseEventRow.case_id == case_id).order_by(CaseEventRow.id)
        )
    )


def to_record(
    row: CaseRow, history: list[CaseEventRow] | None = None, request: PasRequest | None = None
) -> CaseRecord:
    """The case as a record. `request`: the same request already parsed (a new submission);
    otherwise the stored bytes are decoded only if something reads the bundle."""
    decision = None
    if row.decision:
        decision = Decision(
            kind=row.decision,  # type: ignore[arg-type]
            decided_at=row.decided_at or datetime.now(UTC),
            decided_by=row.decided_by or "",
            reason=row.decision_reason,
            criteria=tuple(row.decision_criteria or ()),
            product_ndc=row.product_ndc,
            product_vials=row.product_vials,
            quantity=row.quantity,
            unit=row.unit,
            auth_start=row.auth_start,
            auth_end=row.auth_end,
        )
    return CaseRecord(
        id=row.id,
        status=row.status,  # type: ignore[arg-type]
        keys=_keys_from_json(row.keys),
        auth_number=row.auth_number,
        received_at=row.received_at,
        due_at=row.due_at,
        policy_id=row.policy_id,
        recommendation=row.recommendation,
        evaluation=Evaluation.parse(row.evaluation),
        request=request if request is not None else PasRequest(row.request_bundle),
        decision=decision,
        updated_at=row.updated_at,
        history=[
            {"at": e.at.isoformat(), "kind": e.kind, "actor": e.actor, **e.detail}
            for e in (history or [])
        ],
        withdrawal_requested_at=row.withdrawal_requested_at,
        voided=Voided(row.voided_at, row.voided_by or "", row.void_reason or "")
        if row.voided_at is not None
        else None,
        summary=_summary(row),
    )
