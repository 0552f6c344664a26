"""FHIR JSON responses and OperationOutcome errors."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import Response

from priorauth.pas.response import operation_outcome

FHIR_JSON = "application/fhir+json"


class FhirResponse(Response):
    media_type = FHIR_JSON

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class JsonResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def outcome_response(
    status: int, code: str, message: str, expression: str | None = None
) -> FhirResponse:
    severity = "error" if status < 500 else "fatal"
    return FhirResponse(
        operation_outcome(code, message, severity=severity, expression=expression),
        status_code=status,
    )
