"""CMS-0057-F prior authorization metrics: the published figures, computed from the cases."""

from __future__ import annotations

import statistics
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from priorauth.service.notifier import counts as outbox_counts
from priorauth.store.queries import CaseTimes, case_times

if TYPE_CHECKING:
    from priorauth.service.app_service import PriorAuthService

APPROVED = ("approved", "modified")
DECIDED = (*APPROVED, "denied")
CHART_DAYS = 30
STATUSES = ("approved", "modified", "denied")  # the chart's series, in stacking order


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _times(cases: list[CaseTimes]) -> dict[str, Any]:
    hours = [
        (c.decided_at - c.received_at).total_seconds() / 3600
        for c in cases
        if c.decided_at is not None
    ]
    return {
        "decided": len(hours),
        "mean_hours": round(statistics.fmean(hours), 2) if hours else None,
        "median_hours": round(statistics.median(hours), 2) if hours else None,
    }


def compute(service: PriorAuthService) -> dict[str, Any]:
    """The published figures, as of the service's clock. "Approved after an extended
    timeframe": an approval decided after the case's decision deadline (24 h expedited,
    72 h standard from receipt). Aggregates only: no PHI, so the read is not audited."""
    now = service.clock()
    with service.sessions() as s:
        cases = case_times(s)
    decided = [c for c in cases if c.status in DECIDED and c.decided_at is not None]
    approved = [c for c in decided if c.status in APPROVED]
    late = [c for c in approved if c.decided_at is not None and c.decided_at > c.due_at]
    denied = [c for c in decided if c.status == "denied"]
    open_ = [c for c in cases if c.status == "pended"]
    today = now.date()
    days = [today - timedelta(days=CHART_DAYS - 1 - i) for i in range(CHART_DAYS)]
    per_day: dict[date, dict[str, int]] = {d: dict.fromkeys(STATUSES, 0) for d in days}
    for c in decided:
        day = c.decided_at.date() if c.decided_at is not None else None
        if day in per_day:
            per_day[day][c.status] += 1
    return {
        "as_of": now.isoformat(),
        "definitions": {
            "approved": (
                "approved as requested or modified (another product or quantity), "
                "over all decisions"
            ),
            "approved_after_extended_timeframe": (
                "approvals decided after the decision deadline (expedited 24 h, standard 72 h "
                "from receipt), over all decisions"
            ),
            "time_to_decision": "hours from receipt of the request to the decision",
        },
        "requests": {
            "received": len(cases),
            "decided": len(decided),
            "open": len(open_),
            "open_overdue": sum(1 for c in open_ if now > c.due_at),
            "cancelled": sum(1 for c in cases if c.status == "cancelled"),
        },
        "share": {
            "approved": _share(len(approved), len(decided)),
            "denied": _share(len(denied), len(decided)),
            "approved_after_extended_timeframe": _share(len(late), len(decided)),
        },
        "counts": {"approved": len(approved), "denied": len(denied), "approved_late": len(late)},
        "time_to_decision": {
            "standard": _times([c for c in decided if not c.expedited]),
            "expedited": _times([c for c in decided if c.expedited]),
        },
        "decisions_by_day": [{"date": d.isoformat(), **per_day[d]} for d in days],
        # Subscription notifications still to deliver, and those given up on (`/api/outbox`).
        "notifications": outbox_counts(service.sessions),
    }
