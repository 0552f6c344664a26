"""DTR endpoints under /fhir: $questionnaire-package, $next-question, the pre-fill Libraries."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI
from starlette.concurrency import run_in_threadpool

from priorauth.api.deps import Body, Dtr
from priorauth.api.responses import FhirResponse
from priorauth.api.security import require
from priorauth.auth import scopes as sc
from priorauth.auth.actors import Actor
from priorauth.dtr import cql
from priorauth.dtr.service import DtrService
from priorauth.service.app_service import PriorAuthService
from priorauth.service.errors import NotFound

router = APIRouter(prefix="/fhir", tags=["DTR"])


@router.post("/Questionnaire/$questionnaire-package", summary="DTR questionnaire package")
async def questionnaire_package(
    dtr: Dtr, who: Annotated[Actor, Depends(require(sc.DTR))], body: Body
) -> FhirResponse:
    return FhirResponse(await run_in_threadpool(dtr.package, body, who))


@router.post("/Questionnaire/$next-question", summary="SDC adaptive form: the next question")
async def next_question(
    dtr: Dtr, who: Annotated[Actor, Depends(require(sc.DTR))], body: Body
) -> FhirResponse:
    return FhirResponse(await run_in_threadpool(dtr.next_question, body, who))


@router.get("/Library/{library_id}", summary="DTR pre-population Library (CQL and ELM)")
async def read_library(
    dtr: Dtr, library_id: str, who: Annotated[Actor, Depends(require(sc.DTR))]
) -> FhirResponse:
    svc = dtr.svc
    versions = (v for vs in svc.library.versions.values() for v in vs)
    found = cql.find(versions, library_id, svc.settings.base_url)
    if found is None:
        raise NotFound(f"no Library {library_id}")
    return FhirResponse(found)


def install(app: FastAPI, service: PriorAuthService) -> None:
    """Add the DTR routes to an app built by create_app(service)."""
    app.state.service = service
    app.state.dtr = DtrService(service)
    app.include_router(router)
