"""CMS-0057-F prior authorization metrics from the cases table, and a server-rendered SVG chart."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from html import escape
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from priorauth.service.notifier import counts as outbox_counts
from priorauth.store.models import CaseRow

APPROVED = ("approved", "modified")
DECIDED = (*APPROVED, "denied")
CHART_DAYS = 30
COLORS = {"approved": "#17702f", "modified": "#0b5cad", "denied": "#b42318"}
LABELS = {"approved": "Approved", "modified": "Approved, kit modified", "denied": "Denied"}


def _utc(dt: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; the store writes UTC.
    return None if dt is None else dt if dt.tzinfo else dt.replace(tzinfo=UTC)


@dataclass(frozen=True)
class _Case:
    status: str
    expedited: bool
    received_at: datetime
    due_at: datetime
    decided_at: datetime | None


def _load(sessions: sessionmaker[Session]) -> list[_Case]:
    q = select(
        CaseRow.status, CaseRow.expedited, CaseRow.received_at, CaseRow.due_at, CaseRow.decided_at
    )
    with sessions() as s:
        return [
            _Case(st, bool(ex), _utc(r), _utc(d), _utc(dec))  # type: ignore[arg-type]
            for st, ex, r, d, dec in s.execute(q)
        ]


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _times(cases: list[_Case]) -> dict[str, Any]:
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


def compute(sessions: sessionmaker[Session], now: datetime) -> dict[str, Any]:
    """The published figures. "Approved after an extended timeframe": an approval decided
    after the case's decision deadline (24 h expedited, 72 h standard from receipt)."""
    cases = _load(sessions)
    decided = [c for c in cases if c.status in DECIDED and c.decided_at is not None]
    approved = [c for c in decided if c.status in APPROVED]
    late = [c for c in approved if c.decided_at > c.due_at]  # type: ignore[operator]
    denied = [c for c in decided if c.status == "denied"]
    open_ = [c for c in cases if c.status == "pended"]
    today = now.date()
    days = [today - timedelta(days=CHART_DAYS - 1 - i) for i in range(CHART_DAYS)]
    per_day: dict[date, dict[str, int]] = {d: dict.fromkeys(COLORS, 0) for d in days}
    for c in decided:
        day = c.decided_at.date()  # type: ignore[union-attr]
        if day in per_day:
            per_day[day][c.status] += 1
    return {
        "as_of": now.isoformat(),
        "definitions": {
            "approved": "approved as requested or with a modified kit, over all decisions",
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
        "notifications": outbox_counts(sessions),
    }


def chart_svg(by_day: list[dict[str, Any]]) -> str:
    """Stacked bars of decisions per day; titles give exact numbers, a table beside it too."""
    width, height, left, bottom, top = 720, 240, 36, 36, 12
    plot_w, plot_h = width - left - 8, height - bottom - top
    peak = max((sum(d[k] for k in COLORS) for d in by_day), default=0) or 1
    bar = plot_w / max(len(by_day), 1)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'role="img" aria-labelledby="chart-title" class="chart">',
        f'<title id="chart-title">Decisions per day, last {len(by_day)} days</title>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 8}" y2="{top + plot_h}" '
        'stroke="#333" />',
    ]
    for tick in sorted({0, peak // 2, peak}):
        y = top + plot_h - plot_h * tick / peak
        out.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{tick}</text>'
        )
    for i, d in enumerate(by_day):
        x, y = left + i * bar, top + plot_h
        for k, color in COLORS.items():
            if not d[k]:
                continue
            h = plot_h * d[k] / peak
            y -= h
            out.append(
                f'<rect x="{x + 1:.1f}" y="{y:.1f}" width="{bar - 2:.1f}" height="{h:.1f}" '
                f'fill="{color}"><title>{escape(d["date"])}: {d[k]} {LABELS[k].lower()}'
                "</title></rect>"
            )
        if i % 5 == 0 or i == len(by_day) - 1:
            out.append(
                f'<text x="{x + bar / 2:.1f}" y="{height - bottom + 16}" text-anchor="middle" '
                f'font-size="11">{escape(d["date"][5:])}</text>'
            )
    out.append("</svg>")
    return "".join(out)
