"""Build the FastAPI application around one PriorAuthService."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from priorauth import __version__, ui
from priorauth.api import cases, cds, dtr, fhir, outbox, security
from priorauth.api.errors import http_status, status_and_issue
from priorauth.api.limits import BodyLimit
from priorauth.api.responses import outcome_response
from priorauth.api.security import warn_if_open
from priorauth.service.app_service import PriorAuthService
from priorauth.service.errors import ServiceError

log = logging.getLogger("priorauth.api")
# How the web app renders a refused page: (request, error, HTTP status) -> response.
ErrorPage = Callable[[Request, ServiceError, int], Awaitable[Response]]


class NoStore:
    """`Cache-Control: no-store` on every answer that does not set its own: they carry PHI.

    Plain ASGI rather than BaseHTTPMiddleware: it only touches the response's first message.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/ui/static/"):
            await self.app(scope, receive, send)
            return

        async def send_no_store(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_no_store)


def create_app(service: PriorAuthService) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.notifier.start()  # the outbox delivery worker
        yield
        # The refusals counted in the last minute still get their audit record.
        with suppress(Exception):
            service.record_refusals(service.refusals.drain())
        service.notifier.close()

    # The API's own description is off in production unless asked for (PRIORAUTH_API_DOCS).
    docs = service.settings.docs_enabled
    app = FastAPI(
        lifespan=lifespan,
        title="priorauth",
        version=__version__,
        description="Prior authorization engine: Da Vinci PAS endpoints and the case API.",
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.add_middleware(NoStore)
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

    app.state.http_status = http_status  # the web app's pages answer by the same table

    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> Response:
        status, issue = status_and_issue(exc)
        page: ErrorPage | None = getattr(request.app.state, "error_page", None)
        response: Response
        if page is not None and request.url.path.startswith("/ui/"):
            response = await page(request, exc, status)  # the web app's own HTML page
        else:
            response = outcome_response(status, issue, exc.message, exc.expression)
        response.headers.update(exc.headers)
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return outcome_response(422, "invalid", f"{where}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not-found", 405: "not-supported", 408: "timeout", 413: "too-long"}.get(
            exc.status_code, "processing"
        )
        return outcome_response(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # A bug, not the client's fault: log the type only (no request data, no PHI).
        log.error("unexpected %s on %s %s", type(exc).__name__, request.method, request.url.path)
        return outcome_response(500, "exception", "internal error; the request was not processed")

    return app
