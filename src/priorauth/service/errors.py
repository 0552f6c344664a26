"""Errors a use case returns to its adapter, each with the HTTP status it maps to.

ServiceError
├── BadRequest     400: not JSON, not a PAS bundle, too large
├── Unprocessable  422: a PAS bundle that breaks the guide's or the contract's rules
├── NotFound       404: no such case or subscription
├── Conflict       409: the case's state does not allow it (decided twice, lifetime limit)
└── Forbidden      403: the caller may not do this
"""

from __future__ import annotations

from priorauth.errors import PriorauthError


class ServiceError(PriorauthError):
    status = 500
    code = "exception"  # FHIR issue type
    action: str | None = None  # the audited action, when not the use case's own (revise)

    def __init__(
        self, message: str, expression: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.expression = expression
        self.headers = headers or {}


class BadRequest(ServiceError):
    status, code = 400, "structure"


class Unprocessable(ServiceError):
    status, code = 422, "invalid"


class NotFound(ServiceError):
    status, code = 404, "not-found"


class Conflict(ServiceError):
    status, code = 409, "conflict"


class Forbidden(ServiceError):
    status, code = 403, "forbidden"


class Unauthorized(ServiceError):
    status, code = 401, "login"


class TooManyRequests(ServiceError):
    status, code = 429, "throttled"
