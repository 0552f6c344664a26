"""FHIR endpoints under /fhir: PAS $submit and $inquire, ClaimResponse, Subscription, metadata."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from priorauth import __version__
from priorauth.api.deps import Body, Service
from priorauth.api.responses import FhirResponse
from priorauth.api.security import require
from priorauth.auth import scopes as sc
from priorauth.auth.actors import Actor
from priorauth.errors import InvalidRequest
from priorauth.pas.capability import capability_statement
from priorauth.pas.records import CaseRecord
from priorauth.pas.response import (
    ProcessingError,
    claim_response_bundle,
    error_response_bundle,
    inquiry_parameters,
)
from priorauth.service.app_service import PriorAuthService, Rejected
from priorauth.service.errors import BadRequest, Unprocessable, UnsupportedMedia


def json_only(request: Request) -> None:
    """The FHIR API reads JSON only (the CapabilityStatement says format json): an XML
    body is refused with 415 before it is read, not parsed as broken JSON (400)."""
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind.endswith("xml") or kind.endswith("+xml"):
        raise UnsupportedMedia(f"{kind} is not supported: send application/fhir+json (FHIR JSON)")


router = APIRouter(prefix="/fhir", tags=["FHIR"], dependencies=[Depends(json_only)])

# The bodies are read raw (to enforce the size limit and answer with OperationOutcome),
# so their shape is declared here for the OpenAPI schema and its fuzzers.
FHIR_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/fhir+json": {"schema": {"type": "object"}},
            "application/json": {"schema": {"type": "object"}},
        },
    }
}


def _bundle_response(
    svc: PriorAuthService, record: CaseRecord, status: int, inquiry: bool = False
) -> FhirResponse:
    body = claim_response_bundle(
        record, now=svc.clock(), insurer_name=svc.settings.insurer_name, inquiry=inquiry
    )
    return FhirResponse(body, status_code=status)


@router.post(
    "/Claim/$submit",
    openapi_extra=FHIR_BODY,
    summary="PAS $submit: a prior authorization request Bundle",
)
async def submit(
    svc: Service, who: Annotated[Actor, Depends(require(sc.SUBMIT))], body: Body
) -> FhirResponse:
    result = await run_in_threadpool(svc.submit, body, who)
    if isinstance(result, Rejected):
        return _rejection_response(svc, result)
    return _bundle_response(svc, result.record, 201 if result.created else 200)


def _rejection_response(svc: PriorAuthService, rejected: Rejected) -> FhirResponse:
    """PAS 2.2.1 spec-40/46: a business error is a 2xx response Bundle whose ClaimResponse
    has outcome "error" and `error`; nothing was created, so 200."""
    errors = [ProcessingError(e.message, e.where, e.item_sequence) for e in rejected.errors]
    body = error_response_bundle(
        rejected.request.index,
        rejected.request.bundle,
        rejected.keys.claim_identifier,
        errors,
        now=svc.clock(),
        insurer_name=svc.settings.insurer_name,
    )
    return FhirResponse(body, status_code=200)


@router.post(
    "/Claim/$inquire",
    openapi_extra=FHIR_BODY,
    summary="PAS $inquire: the current state of a request",
)
async def inquire(
    svc: Service, who: Annotated[Actor, Depends(require(sc.INQUIRE))], body: Body
) -> FhirResponse:
    found = await run_in_threadpool(svc.inquire, body, who)
    if not found.parameters:  # PAS 2.0.1: one inquiry response Bundle, the newest match
        return _bundle_response(svc, found.records[0], 200, inquiry=True)
    now, name = svc.clock(), svc.settings.insurer_name
    bundles = [
        claim_response_bundle(r, now=now, insurer_name=name, inquiry=True) for r in found.records
    ]
    return FhirResponse(inquiry_parameters(bundles))


@router.get("/ClaimResponse/{case_id}", summary="Read a ClaimResponse (the case's current state)")
async def read_claim_response(
    svc: Service, case_id: str, who: Annotated[Actor, Depends(require(sc.CLAIM_RESPONSE_READ))]
) -> FhirResponse:
    record = await run_in_threadpool(svc.case, case_id, False, who)
    bundle = claim_response_bundle(record, now=svc.clock(), insurer_name=svc.settings.insurer_name)
    return FhirResponse(bundle["entry"][0]["resource"])


@router.post(
    "/Subscription", openapi_extra=FHIR_BODY, summary="Create a PAS rest-hook Subscription"
)
async def create_subscription(
    svc: Service, who: Annotated[Actor, Depends(require(sc.SUBSCRIPTION))], body: Body
) -> FhirResponse:
    try:
        resource = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise BadRequest(f"the body is not JSON: {e}") from e
    try:
        created = await run_in_threadpool(svc.subscribe, resource, who)
    except InvalidRequest as e:
        raise Unprocessable(str(e)) from e
    return FhirResponse(created, status_code=201)


@router.put("/Subscription/{sub_id}", openapi_extra=FHIR_BODY, summary="Update a PAS Subscription")
async def update_subscription(
    svc: Service,
    sub_id: str,
    who: Annotated[Actor, Depends(require(sc.SUBSCRIPTION))],
    body: Body,
) -> FhirResponse:
    try:
        resource = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise BadRequest(f"the body is not JSON: {e}") from e
    if not isinstance(resource, dict):
        raise BadRequest("the body is not a FHIR Subscription")
    updated = await run_in_threadpool(svc.update_subscription, sub_id, resource, who)
    return FhirResponse(updated)


@router.post("/Subscription/{sub_id}/$status", summary="Backport $status of a Subscription")
@router.get("/Subscription/{sub_id}/$status", summary="Backport $status of a Subscription")
async def subscription_status(
    svc: Service, sub_id: str, who: Annotated[Actor, Depends(require(sc.SUBSCRIPTION))]
) -> FhirResponse:
    return FhirResponse(await run_in_threadpool(svc.subscription_status, sub_id, who))


@router.get("/Subscription/{sub_id}")
async def read_subscription(
    svc: Service, sub_id: str, who: Annotated[Actor, Depends(require(sc.SUBSCRIPTION))]
) -> FhirResponse:
    return FhirResponse(await run_in_threadpool(svc.subscription, sub_id, who))


@router.delete("/Subscription/{sub_id}", status_code=204)
async def delete_subscription(
    svc: Service, sub_id: str, who: Annotated[Actor, Depends(require(sc.SUBSCRIPTION))]
) -> Response:
    await run_in_threadpool(svc.unsubscribe, sub_id, who)
    # No body at all: a 204 with one ("null") made uvicorn raise RuntimeError on every delete.
    return Response(status_code=204)


@router.get("/metadata", summary="CapabilityStatement")
async def metadata(svc: Service) -> FhirResponse:
    return FhirResponse(
        capability_statement(svc.settings.base_url, version=__version__, now=svc.clock())
    )
