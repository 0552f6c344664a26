"""`GET /api/outbox`: the payer sees which notifications are pending, delivered or failed."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from starlette.concurrency import run_in_threadpool

from priorauth.api.deps import Service
from priorauth.api.responses import JsonResponse
from priorauth.api.security import require
from priorauth.auth import scopes as sc
from priorauth.auth.actors import Actor

router = APIRouter(prefix="/api/outbox", tags=["cases"])


@router.get("", summary="Subscription notifications, newest first, with their delivery state")
async def outbox(
    svc: Service,
    who: Annotated[Actor, Depends(require(sc.CASES_READ))],
    status: Literal["pending", "delivered", "failed", "cancelled"] | None = None,
) -> JsonResponse:
    # Ids, states and error kinds only: never the notification's content or its headers.
    return JsonResponse(await run_in_threadpool(svc.outbox, who, status))
