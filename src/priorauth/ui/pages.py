"""The pages: queue, case (with the decision form), determination letters and metrics."""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, RedirectResponse, Response

from priorauth.auth.actors import Actor
from priorauth.pas.records import CaseRecord
from priorauth.service import metrics, reviews, users
from priorauth.service.errors import Conflict, Forbidden, NotFound, ServiceError
from priorauth.service.users import User
from priorauth.ui import charts
from priorauth.ui.app import HEADERS, finish, now_of, render, service_of, status_of
from priorauth.ui.auth import check_csrf, require_director, require_user
from priorauth.ui.letters import letter_for, letter_pdf
from priorauth.ui.views import (
    CASE_STATUS,
    DECISION,
    RECOMMENDATION,
    checklist,
    clock_of,
    decider_of,
    dose_of,
    history_of,
    member_of,
    policy_of,
)

router = APIRouter(prefix="/ui", include_in_schema=False)

STATUS_FILTERS = {
    "open": "Open",
    "overdue": "Open and past the deadline",
    "decided": "Decided",
    "cancelled": "Cancelled",
    "all": "All",
}
REC_FILTERS = {"": "Any recommendation", **{k or "none": v for k, v in RECOMMENDATION.items()}}


def who(request: Request, user: User) -> Actor:
    """The signed-in reviewer as the audit trail records them."""
    return Actor(user.username, "user", request.client.host if request.client else None)


@router.get("/queue")
def queue(request: Request, status: str = "open", recommendation: str = "") -> Response:
    user = require_user(request)
    service, now = service_of(request), now_of(request)
    status = status if status in STATUS_FILTERS else "open"
    recommendation = recommendation if recommendation in REC_FILTERS else ""
    rows = []
    for r in reviews.cases(service, status, who(request, user)):
        if recommendation and (r.recommendation or "none") != recommendation:
            continue
        rows.append(
            {
                "record": r,
                "member": member_of(r),
                "clock": clock_of(r, now, service.settings),
                "recommendation": RECOMMENDATION.get(r.recommendation, r.recommendation),
                "status": _status_label(r),
            }
        )
    return render(
        request,
        "queue.html",
        rows=rows,
        now=now,
        status=status,
        recommendation=recommendation,
        status_filters=STATUS_FILTERS,
        rec_filters=REC_FILTERS,
    )


def _status_label(record: CaseRecord) -> str:
    """The case's status in words; a withdrawal request is shown until a director acts."""
    if record.voided:
        return "Approval voided"
    label = CASE_STATUS.get(record.status, record.status)
    if record.withdrawal_requested_at is not None:
        label += " (withdrawal requested)"
    return label


def _case(request: Request, case_id: str, user: User) -> CaseRecord:
    try:
        return service_of(request).case(case_id, with_history=True, who=who(request, user))
    except NotFound as e:
        raise NotFound(f"There is no case {case_id}.") from e


def _case_page(request: Request, record: CaseRecord, code: int = 200, **extra: Any) -> Response:
    service, now = service_of(request), now_of(request)
    policy = policy_of(service, record)
    items = checklist(record, policy)
    names = users.names(service)
    ev = record.evaluation
    return render(
        request,
        "case.html",
        code,
        record=record,
        member=member_of(record),
        clock=clock_of(record, now, service.settings),
        items=items,
        unmet=[i for i in items if i.decisive],
        missing=list(ev.missing) if ev else [],
        reasons=list(ev.reasons) if ev else [],
        dose=dose_of(record, policy),
        recommendation=RECOMMENDATION.get(record.recommendation, record.recommendation),
        status_label=_status_label(record),
        decision_label=DECISION.get(record.decision.kind, "") if record.decision else "",
        decided_by=decider_of(record.decision.decided_by, names) if record.decision else "",
        voided_by=decider_of(record.voided.by, names) if record.voided else "",
        history=history_of(record, names),
        policy=ev.policy if ev else None,
        form=extra.pop("form", {}),
        **extra,
    )


@router.get("/cases/{case_id}")
def case_page(request: Request, case_id: str) -> Response:
    user = require_user(request)
    return _case_page(request, _case(request, case_id, user))


def _decide(request: Request, case_id: str, form: dict[str, Any]) -> Response:
    user = require_user(request)
    require_director(user)
    record = _case(request, case_id, user)
    kind = form["decision"]
    try:
        service_of(request).decide(
            case_id,
            kind,
            form["reason"],
            tuple(form["criteria"]) if kind == "deny" else (),
            form["product_ndc"] if kind == "approve-modified" else None,
            who=who(request, user),
            quantity=form["quantity"] if kind == "approve-modified" else None,
        )
    except ServiceError as e:
        # Show the form again with what was entered and why it was refused.
        return _case_page(request, record, status_of(request, e), error=e.message, form=form)
    return RedirectResponse(f"/ui/cases/{case_id}", status_code=303)


@router.post("/cases/{case_id}/decision")
async def decide(request: Request, case_id: str) -> Response:
    # Signed in before the form is read: a stranger's post costs no parsing.
    await run_in_threadpool(require_user, request)
    raw = await request.form()
    check_csrf(request, raw)
    quantity_text = str(raw.get("quantity", "")).strip()[:20]
    form: dict[str, Any] = {
        "decision": str(raw.get("decision", "")),
        "reason": str(raw.get("reason", ""))[:4000],
        "criteria": [str(c) for c in raw.getlist("criteria")][:50],
        "product_ndc": str(raw.get("product_ndc", "")).strip()[:20] or None,
        "quantity_text": quantity_text,
        "quantity": _quantity(quantity_text),
    }
    response = await run_in_threadpool(_decide, request, case_id, form)
    return finish(response, request)


def _void(request: Request, case_id: str, reason: str) -> Response:
    user = require_user(request)
    if not user.is_director:
        raise Forbidden("Only a Medical Director can void an approval.")
    record = _case(request, case_id, user)
    try:
        service_of(request).void(case_id, reason, who(request, user))
    except ServiceError as e:
        return _case_page(
            request, record, status_of(request, e), void_error=e.message, void_reason=reason
        )
    return RedirectResponse(f"/ui/cases/{case_id}", status_code=303)


@router.post("/cases/{case_id}/void")
async def void(request: Request, case_id: str) -> Response:
    raw = await request.form()
    check_csrf(request, raw)
    reason = str(raw.get("reason", "")).strip()[:4000]
    response = await run_in_threadpool(_void, request, case_id, reason)
    return finish(response, request)


def _request_documentation(request: Request, case_id: str, items: list[str], note: str) -> None:
    user = require_user(request)
    reviews.request_documentation(service_of(request), case_id, items, note, who(request, user))


@router.post("/cases/{case_id}/documentation-request")
async def request_documentation(request: Request, case_id: str) -> Response:
    await run_in_threadpool(require_user, request)
    raw = await request.form()
    check_csrf(request, raw)
    items = [str(i)[:500] for i in raw.getlist("items")][:50]
    note = str(raw.get("note", "")).strip()[:2000]
    await run_in_threadpool(_request_documentation, request, case_id, items, note)
    return finish(RedirectResponse(f"/ui/cases/{case_id}#history", status_code=303), request)


def _letter(request: Request, case_id: str) -> Any:
    user = require_user(request)
    service = service_of(request)
    record = _case(request, case_id, user)
    letter = letter_for(service, record, users.names(service))
    if letter is None:
        raise Conflict("The case is not decided yet: there is no letter.")
    return letter


@router.get("/cases/{case_id}/letter")
def letter_html(request: Request, case_id: str) -> Response:
    return render(request, "letter.html", letter=_letter(request, case_id), case_id=case_id)


@router.get("/cases/{case_id}/letter.pdf")
def letter_pdf_page(request: Request, case_id: str) -> Response:
    letter = _letter(request, case_id)
    name = f"determination-{letter.auth_number}.pdf"
    response = Response(
        letter_pdf(letter),
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{name}"'},
    )
    response.headers.update({k: v for k, v in HEADERS.items() if k != "Content-Security-Policy"})
    return response


# Aggregates only, no PHI: CMS-0057-F has payers publish them, so no sign-in is needed.
@router.get("/metrics")
def metrics_page(request: Request) -> Response:
    figures = metrics.compute(service_of(request))
    return render(
        request,
        "metrics.html",
        m=figures,
        chart=charts.chart_svg(figures["decisions_by_day"]),
        labels=charts.LABELS,
        colors=charts.COLORS,
    )


@router.get("/metrics.json")
def metrics_json(request: Request) -> Response:
    return JSONResponse(metrics.compute(service_of(request)))


def _quantity(text: str) -> float | None:
    """The quantity typed in the decision form; an unreadable one is refused by the service."""
    if not text:
        return None
    try:
        q = float(text)
    except ValueError:
        return -1.0  # "must be greater than 0", shown next to the form
    return q if math.isfinite(q) else -1.0
