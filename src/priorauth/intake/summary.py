"""Who and what a request is about, in words, read once at submission for the case lists.

The queue lists hundreds of cases: it reads these columns, never the stored bundles.
Read defensively (the words are for display only): an element of the wrong JSON type
reads as absent, and nothing here raises.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from priorauth.intake.request import PasRequest

# The width of the case table's summary columns (store/models.py).
MAX_WORDS = 200

__all__ = ["MAX_WORDS", "RequestSummary", "summarize"]


@dataclass(frozen=True, slots=True)
class RequestSummary:
    member_name: str | None = None
    member_birth_date: str | None = None
    provider_name: str | None = None  # the first Organization that carries an identifier
    prescriber_name: str | None = None
    service_name: str | None = None  # the requested medication's text or display


def summarize(request: PasRequest) -> RequestSummary:
    """The summary of a request's first Patient, Organization, Practitioner and medication."""
    try:
        index = request.index
    except ValueError:  # stored bytes that are not JSON (orjson.JSONDecodeError)
        return RequestSummary()
    first: dict[str, dict[str, Any]] = {}
    org: dict[str, Any] = {}
    for resource, _ in index.entries:
        kind = resource["resourceType"]
        first.setdefault(kind, resource)
        if kind == "Organization" and not org and resource.get("identifier"):
            org = resource
    patient = first.get("Patient", {})
    concept = first.get("MedicationRequest", {}).get("medicationCodeableConcept")
    concept = concept if isinstance(concept, dict) else {}
    codings = concept.get("coding")
    service = _text(concept.get("text")) or next(
        (
            c["display"]
            for c in (codings if isinstance(codings, list) else ())
            if isinstance(c, dict) and _text(c.get("display"))
        ),
        None,
    )
    return RequestSummary(
        member_name=_fit(_name(patient)),
        member_birth_date=_fit(_text(patient.get("birthDate"))),
        provider_name=_fit(_text(org.get("name"))),
        prescriber_name=_fit(_name(first.get("Practitioner", {}))),
        service_name=_fit(service),
    )


def _fit(text: str | None) -> str | None:
    return text[:MAX_WORDS] if text else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _name(resource: dict[str, Any]) -> str | None:
    names = resource.get("name")
    for n in names if isinstance(names, list) else ():
        if isinstance(n, str):
            return n
        if not isinstance(n, dict):
            continue
        if _text(n.get("text")):
            return str(n["text"])
        given = n.get("given")
        parts = [g for g in (given if isinstance(given, list) else ()) if _text(g)]
        if _text(n.get("family")):
            parts.append(n["family"])
        if parts:
            return " ".join(parts)
    return None
