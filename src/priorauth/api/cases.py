"""The case API, the payer's own: open cases, one case with its trace, a decision or a void.

Only payer-system clients may use it (a provider's client gets 403): providers follow their
requests through PAS ($inquire, ClaimResponse, Subscriptions). A decision or void is recorded
under the authenticated client's id; the body cannot name anyone else.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from priorauth.api.deps import Body, Service
from priorauth.api.responses import JsonResponse
from priorauth.api.security import require_payer
from priorauth.auth import scopes as sc
from priorauth.auth.actors import Actor
from priorauth.pas.records import CaseRecord
from priorauth.service.errors import Unprocessable

router = APIRouter(prefix="/api/cases", tags=["cases"])


def summary(r: CaseRecord, now: datetime) -> dict[str, Any]:
    dose = r.evaluation.dose if r.evaluation else None
    return {
        "id": r.id,
        "auth_number": r.auth_number,
        "status": r.status,
        "member_id": r.keys.member_id,
        "submitter": r.keys.submitter.value,
        "expedited": r.keys.expedited,
        "received_at": r.received_at.isoformat(),
        "due_at": r.due_at.isoformat(),
        "overdue": r.status == "pended" and now > r.due_at,
        "policy": r.policy_id,
        "recommendation": r.recommendation,
        "dose": None
        if dose is None
        else {
            "quantity": dose.quantity,
            "unit": dose.unit,
            "ndc": dose.ndc,
            "vials": dose.vials,
            "text": dose.describe(),
        },
    }


def detail(r: CaseRecord, now: datetime) -> dict[str, Any]:
    d = r.decision
    return {
        **summary(r, now),
        "evaluation": r.evaluation.data if r.evaluation else None,
        "decision": None
        if d is None
        else {
            "kind": d.kind,
            "decided_at": d.decided_at.isoformat(),
            "decided_by": d.decided_by,
            "reason": d.reason,
            "criteria": list(d.criteria),
            "product_ndc": d.product_ndc,
            "quantity": d.quantity,
            "unit": d.unit,
            "authorization": {"start": d.auth_start.isoformat(), "end": d.auth_end.isoformat()}
            if d.auth_start and d.auth_end
            else None,
        },
        "withdrawal_requested_at": r.withdrawal_requested_at.isoformat()
        if r.withdrawal_requested_at
        else None,
        "voided": None
        if r.voided is None
        else {"at": r.voided.at.isoformat(), "by": r.voided.by, "reason": r.voided.reason},
        "history": r.history,
    }


@router.get("", summary="Open cases, soonest deadline first")
async def open_cases(
    svc: Service, who: Annotated[Actor, Depends(require_payer(sc.CASES_READ))]
) -> JsonResponse:
    records = await run_in_threadpool(svc.open_cases, who)
    now = svc.clock()
    return JsonResponse([summary(r, now) for r in records])


@router.get("/{case_id}", summary="One case with the engine's trace and its history")
async def read_case(
    svc: Service, case_id: str, who: Annotated[Actor, Depends(require_payer(sc.CASES_READ))]
) -> JsonResponse:
    record = await run_in_threadpool(svc.case, case_id, True, who)
    return JsonResponse(detail(record, svc.clock()))


class DecisionIn(BaseModel):
    decision: Literal["approve", "approve-modified", "deny"]
    # Accepted only to refuse it by name: the decider is the authenticated client.
    decided_by: str | None = Field(None, max_length=200)
    reason: str | None = Field(None, max_length=4000)
    criteria: list[str] = Field(default_factory=list, max_length=50)
    product_ndc: str | None = Field(
        None, max_length=20, description="the product to authorize (approve-modified)"
    )
    quantity: float | None = Field(
        None, gt=0, le=1e6, description="the quantity to authorize, in the policy's billing unit"
    )


M = TypeVar("M", bound=BaseModel)


def json_body(model: type[M]) -> tuple[Callable[[bytes], M], dict[str, Any]]:
    """A JSON body read as a dependency, and its OpenAPI description.

    Not a body parameter: FastAPI reads body parameters before any dependency, so the
    token would be checked only after the whole body arrived.
    """

    def read(raw: Body) -> M:
        try:
            return model.model_validate_json(raw)
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in ("body", *first.get("loc", ())))
            raise Unprocessable(f"{where}: {first.get('msg', 'invalid')}") from e

    described = {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }
    return read, described


_decision_in, DECISION_BODY = json_body(DecisionIn)


@router.post(
    "/{case_id}/decision",
    openapi_extra=DECISION_BODY,
    summary="A decision, recorded under the calling client",
)
async def decide(
    svc: Service,
    case_id: str,
    who: Annotated[Actor, Depends(require_payer(sc.CASES_DECIDE))],
    body: Annotated[DecisionIn, Depends(_decision_in)],
) -> JsonResponse:
    if body.decided_by is not None:
        raise Unprocessable(
            "decided_by is not accepted: a decision is recorded under the authenticated "
            "client; a Medical Director decides in the web app, signed in",
            "decided_by",
        )
    record = await run_in_threadpool(
        lambda: svc.decide(
            case_id,
            body.decision,
            body.reason,
            tuple(body.criteria),
            body.product_ndc,
            who=who,
            quantity=body.quantity,
        )
    )
    return JsonResponse(detail(record, svc.clock()))


class VoidIn(BaseModel):
    reason: str = Field(min_length=1, max_length=4000)


_void_in, VOID_BODY = json_body(VoidIn)


@router.post(
    "/{case_id}/void",
    openapi_extra=VOID_BODY,
    summary="A Medical Director voids an approval, with a reason",
)
async def void(
    svc: Service,
    case_id: str,
    who: Annotated[Actor, Depends(require_payer(sc.CASES_DECIDE))],
    body: Annotated[VoidIn, Depends(_void_in)],
) -> JsonResponse:
    """The only way to free the member's lifetime record; a provider's cancellation of a
    decided case is only a request to withdraw."""
    record = await run_in_threadpool(svc.void, case_id, body.reason, who)
    return JsonResponse(detail(record, svc.clock()))
