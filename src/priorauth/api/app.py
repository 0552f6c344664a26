"""Build the FastAPI application around one PriorAuthService."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from priorauth import __version__, ui
from priorauth.api import cases, cds, dtr, fhir, outbox, security
from priorauth.api.limits import BodyLimit
from priorauth.api.responses import outcome_response
from priorauth.api.security import warn_if_open
from priorauth.service.app_service import PriorAuthService
from priorauth.service.errors import ServiceError

log = logging.getLogger("priorauth.api")


def create_app(service: PriorAuthService) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.notifier.start()  # the outbox delivery worker
        yield
        service.notifier.close()

    app = FastAPI(
        lifespan=lifespan,
        title="priorauth",
        version=__version__,
        description="Prior authorization engine: Da Vinci PAS endpoints and the case API.",
    )
    app.state.service = service
    app.add_middleware(
        BodyLimit,
        max_body_bytes=service.settings.max_body_bytes,
        max_form_bytes=service.settings.max_form_bytes,
        body_timeout=service.settings.timeout_request_body,
    )
    app.include_router(security.router)
    app.include_router(fhir.router)
    app.include_router(cases.router)
    app.include_router(outbox.router)
    cds.install(app, service)
    dtr.install(app, service)
    ui.install(app, service)
    warn_if_open(service.settings.auth_enabled)

    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError):  # type: ignore[no-untyped-def]
        response = outcome_response(exc.status, exc.code, exc.message, exc.expression)
        response.headers.update(exc.headers)
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):  # type: ignore[no-untyped-def]
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return outcome_response(422, "invalid", f"{where}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):  # type: ignore[no-untyped-def]
        code = {404: "not-found", 405: "not-supported", 408: "timeout", 413: "too-long"}.get(
            exc.status_code, "processing"
        )
        return outcome_response(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):  # type: ignore[no-untyped-def]
        # A bug, not the client's fault: log the type only (no request data, no PHI).
        log.error("unexpected %s on %s %s", type(exc).__name__, request.method, request.url.path)
        return outcome_response(500, "exception", "internal error; the request was not processed")

    return app
