"""Typed dependencies: the service, its CRD and DTR front ends, and a size-limited body."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from priorauth.api.limits import BodyTooLarge
from priorauth.crd.service import CrdService
from priorauth.dtr.service import DtrService
from priorauth.service.app_service import PriorAuthService


def get_service(request: Request) -> PriorAuthService:
    return request.app.state.service  # type: ignore[no-any-return]


Service = Annotated[PriorAuthService, Depends(get_service)]


def get_crd(request: Request) -> CrdService:
    return request.app.state.crd  # type: ignore[no-any-return]


def get_dtr(request: Request) -> DtrService:
    return request.app.state.dtr  # type: ignore[no-any-return]


# Built once in create_app beside the service they wrap; they hold no request state.
Crd = Annotated[CrdService, Depends(get_crd)]
Dtr = Annotated[DtrService, Depends(get_dtr)]


async def limited_body(request: Request) -> bytes:
    """The body, refused with 413 once it passes the limit (declared or actual size).

    The BodyLimit middleware enforces the same limit on every route; this is its
    second line for the routes that read raw bodies. Declare it AFTER the route's
    `require(...)` dependency: dependencies run in order, so the token is checked
    before a byte of the body is read.
    """
    limit = get_service(request).settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


Body = Annotated[bytes, Depends(limited_body)]
