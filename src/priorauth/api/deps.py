"""Typed dependencies: the service, and a request body read within the size limit."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from priorauth.api.limits import BodyTooLarge
from priorauth.service.app_service import PriorAuthService


def get_service(request: Request) -> PriorAuthService:
    return request.app.state.service  # type: ignore[no-any-return]


Service = Annotated[PriorAuthService, Depends(get_service)]


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
