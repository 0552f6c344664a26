"""Read-only queries for the reviewer's lists and the published metrics."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from priorauth.store.models import CaseRow


def cases_by_status(
    session: Session, statuses: Sequence[str] | None, limit: int = 500
) -> list[CaseRow]:
    """Cases in any of `statuses` (every case when None), soonest deadline first."""
    q = select(CaseRow)
    if statuses is not None:
        q = q.where(CaseRow.status.in_(tuple(statuses)))
    return list(session.scalars(q.order_by(CaseRow.due_at).limit(limit)))


@dataclass(frozen=True)
class CaseTimes:
    """What the metrics need of one case: no member data."""

    status: str
    expedited: bool
    received_at: datetime
    due_at: datetime
    decided_at: datetime | None


def case_times(session: Session) -> list[CaseTimes]:
    """Every case's status, urgency and times (receipt, deadline, decision)."""
    q = select(
        CaseRow.status, CaseRow.expedited, CaseRow.received_at, CaseRow.due_at, CaseRow.decided_at
    )
    return [CaseTimes(st, bool(ex), r, d, dec) for st, ex, r, d, dec in session.execute(q)]
