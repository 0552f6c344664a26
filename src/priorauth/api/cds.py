"""CDS Hooks endpoints (CRD): GET /cds-services and POST /cds-services/{id}."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI
from starlette.concurrency import run_in_threadpool

from priorauth.api.deps import Body, Crd
from priorauth.api.responses import JsonResponse
from priorauth.api.security import require
from priorauth.auth import scopes as sc
from priorauth.auth.actors import Actor
from priorauth.crd.service import CrdService
from priorauth.service.app_service import PriorAuthService

router = APIRouter(tags=["CDS Hooks (CRD)"])


# Discovery is public (CDS Hooks): it lists services and prefetch templates, no patient data.
@router.get("/cds-services", summary="CDS Hooks discovery")
async def discovery(crd: Crd) -> JsonResponse:
    return JsonResponse(crd.discovery())


# The caller: a client's access token, or the JWT a registered EHR signs per call.
EhrOrClient = Annotated[Actor, Depends(require(sc.CDS, hooks=True))]


@router.post("/cds-services/{service_id}", summary="Call a CRD service (a CDS hook)")
async def call(crd: Crd, service_id: str, who: EhrOrClient, body: Body) -> JsonResponse:
    return JsonResponse(await run_in_threadpool(crd.call, service_id, body, who))


# Public like discovery: the payer's published policy criteria, no patient data.
@router.get("/crd/policies/{policy_id}/{version}", summary="A policy version's text (CRD links)")
async def policy_text(crd: Crd, policy_id: str, version: str) -> JsonResponse:
    return JsonResponse(crd.policy_text(policy_id, version))


def install(app: FastAPI, service: PriorAuthService) -> None:
    """Add the CDS Hooks routes to an app built by create_app(service)."""
    app.state.service = service
    app.state.crd = CrdService(service)
    app.include_router(router)
