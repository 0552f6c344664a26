"""Errors a use case returns to its adapter. They say what went wrong, never how to answer:
the HTTP status of each is the API's (api/errors.py), the exit code the CLI's.

ServiceError
├── BadRequest       not JSON, not a PAS bundle, too large
├── Unprocessable    a request that breaks the guide's or the contract's rules
├── NotFound         no such case or subscription
├── Conflict         the case's state does not allow it (decided twice, lifetime limit)
├── Forbidden        the caller may not do this
├── Unauthorized     the caller is not known (no valid token, not signed in)
├── UnsupportedMedia the body is in a format the server does not read (FHIR XML)
└── TooManyRequests  the caller's budget is spent
"""

from __future__ import annotations

from priorauth.errors import PriorauthError


class ServiceError(PriorauthError):
    """A refused use case. `reason` names the kind of refusal in the audit trail."""

    reason = "exception"
    action: str | None = None  # the audited action, when not the use case's own (revise)

    def __init__(
        self, message: str, expression: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.expression = expression  # where in the request, a FHIRPath or a field name
        self.headers = headers or {}  # what the caller needs to retry (Retry-After, a challenge)


class BadRequest(ServiceError):
    reason = "structure"


class Unprocessable(ServiceError):
    reason = "invalid"


class NotFound(ServiceError):
    reason = "not-found"


class Conflict(ServiceError):
    reason = "conflict"


class Forbidden(ServiceError):
    reason = "forbidden"


class Unauthorized(ServiceError):
    reason = "login"


class UnsupportedMedia(ServiceError):
    reason = "not-supported"


class TooManyRequests(ServiceError):
    reason = "throttled"
