"""The one table from an error's class to its HTTP status and FHIR issue type.

Errors say what went wrong (service/errors.py); only this layer knows how HTTP answers it.
The web app's pages read the same table (create_app hands it over as `app.state.http_status`).
"""

from __future__ import annotations

from priorauth.auth.tokens import TokenError
from priorauth.crd.hooks import PrefetchUnavailable
from priorauth.service.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    TooManyRequests,
    Unauthorized,
    Unprocessable,
    UnsupportedMedia,
)

# Looked up along the class's MRO: a subclass answers as its nearest listed ancestor.
STATUS: dict[type[BaseException], tuple[int, str]] = {
    BadRequest: (400, "structure"),
    Unauthorized: (401, "login"),
    Forbidden: (403, "forbidden"),
    NotFound: (404, "not-found"),
    Conflict: (409, "conflict"),
    PrefetchUnavailable: (412, "incomplete"),  # CDS Hooks: the client should send prefetch
    UnsupportedMedia: (415, "not-supported"),
    Unprocessable: (422, "invalid"),
    TooManyRequests: (429, "throttled"),
}
UNEXPECTED = (500, "exception")
# RFC 6749 section 5.2: a client that cannot be authenticated gets 401, any other error 400.
OAUTH_STATUS = {"invalid_client": 401}


def status_and_issue(exc: BaseException) -> tuple[int, str]:
    """The HTTP status and FHIR issue type (OperationOutcome.issue.code) of an error."""
    if isinstance(exc, TokenError):
        return OAUTH_STATUS.get(exc.error, 400), "login"
    for cls in type(exc).__mro__:
        found = STATUS.get(cls)
        if found is not None:
            return found
    return UNEXPECTED


def http_status(exc: BaseException) -> int:
    """The HTTP status an error is answered with."""
    return status_and_issue(exc)[0]
