"""DTR endpoints: Questionnaire $questionnaire-package and $next-question under /fhir."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI
from starlette.concurrency import run_in_threadpool

from priorauth.api.deps import Body, Dtr
from priorauth.api.responses import FhirResponse
from priorauth.api.security import require
from priorauth.auth import scopes as sc
from priorauth.auth.actors import Actor
from priorauth.dtr.service import DtrService
from priorauth.service.app_service import PriorAuthService

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


def install(app: FastAPI, service: PriorAuthService) -> None:
    """Add the DTR routes to an app built by create_app(service)."""
    app.state.service = service
    app.state.dtr = DtrService(service)
    app.include_router(router)
