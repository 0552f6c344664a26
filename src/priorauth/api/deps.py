"""Typed dependencies: the service, and a request body read within the size limit."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from priorauth.service.app_service import PriorAuthService
from priorauth.service.errors import BadRequest


def get_service(request: Request) -> PriorAuthService:
    return request.app.state.service  # type: ignore[no-any-return]


Service = Annotated[PriorAuthService, Depends(get_service)]


async def limited_body(request: Request) -> bytes:
    """The body, refused with 400 once it passes the limit (declared or actual size)."""
    limit = get_service(request).settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise BadRequest(f"the body is larger than the limit of {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadRequest(f"the body is larger than the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


Body = Annotated[bytes, Depends(limited_body)]
