"""Parsing helpers for FHIR primitive values: dates, numbers, codings.

Error messages name the FHIR path but never echo the offending value: values in
a request are patient data and end up in logs and HTTP responses. Helpers take
the path as (ref, path) and join them only on failure, because building an
f-string per field would dominate the cost of a 25-resource bundle.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar

from priorauth.errors import InvalidRequest

Coding = tuple[str, str]
T = TypeVar("T")

# The longest member id kept (member ids are rarely over 20 characters); a longer one
# is refused at the door rather than by the database (PostgreSQL enforces lengths).
MAX_MEMBER_ID = 64

# FHIR R4 dateTime: a time needs seconds and a zone; the date may be partial.
_DATETIME = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})"
    r"(?:T(?:[01]\d|2[0-3]):[0-5]\d:(?:[0-5]\d|60)(?:\.\d{1,9})?"
    r"(?:Z|[+-](?:(?:0\d|1[0-3]):[0-5]\d|14:00)))?)?)?"
)
_DATE = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")


def at(ref: str, path: str) -> str:
    """The `where` of an error: a resource citation and a path inside it."""
    return f"{ref}.{path}" if path else ref


def parse_date(
    value: object,
    ref: str,
    path: str = "",
    *,
    time_allowed: bool = True,
    error: Callable[[str, str], Exception] = InvalidRequest,
) -> date | None:
    """Date part of a FHIR date/dateTime/instant; None when only "YYYY" or "YYYY-MM" is given.

    Partial dates are legal FHIR but cannot be placed against a 30-day window or
    an 18th birthday, so callers decide what a partial date means for them.
    """
    if type(value) is str:
        # The common case, a plain full date, skips the regex.
        if len(value) == 10 and value[4] == "-" and value[7] == "-":
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        else:
            match = (_DATETIME if time_allowed else _DATE).fullmatch(value)
            if match is not None:
                year, month, day = match.groups()
                try:
                    full = date(int(year), int(month or 1), int(day or 1))
                except ValueError:
                    pass
                else:
                    return full if day is not None else None
    kind = "dateTime (YYYY-MM-DD or YYYY-MM-DDThh:mm:ss+zz:zz)" if time_allowed else "date"
    raise error(f"not a valid FHIR {kind}", at(ref, path))


def number(value: object, ref: str, path: str = "") -> float:
    """A JSON number (not a boolean, not a string), as float."""
    if type(value) is int or type(value) is float:
        try:
            result = float(value)
        except OverflowError:  # a Python int beyond float range (dict input only)
            result = math.inf
        if math.isfinite(result):
            return result
    raise InvalidRequest("must be a number", at(ref, path))


def codings(concept: Any) -> tuple[Coding, ...]:
    """(system, code) pairs of a CodeableConcept; codings without a code are skipped."""
    if type(concept) is not dict:
        return ()
    found = concept.get("coding")
    if type(found) is not list:
        return ()
    if len(found) == 1:  # the usual concept: one coding, read without a list
        coding = found[0]
        if type(coding) is dict:
            code = coding.get("code")
            if type(code) is str and code:
                system = coding.get("system")
                return ((system if type(system) is str else "", code),)
        return ()
    out = []
    for coding in found:
        if type(coding) is dict:
            code = coding.get("code")
            if type(code) is str and code:
                system = coding.get("system")
                out.append((system if type(system) is str else "", code))
    return tuple(out)


def codes_in(concept: Any, system: str) -> list[str]:
    """Codes of one system in a CodeableConcept."""
    if type(concept) is not dict or type(found := concept.get("coding")) is not list:
        return []
    return [
        code
        for coding in found
        if type(coding) is dict
        and coding.get("system") == system
        and type(code := coding.get("code")) is str
        and code
    ]


def first_code(concept: Any) -> str | None:
    """The first coding's code of a CodeableConcept, any system."""
    found = codings(concept)
    return found[0][1] if found else None


def as_list(value: Any, ref: str, path: str = "") -> list[Any]:
    """A repeating element; absent means empty, anything but a JSON array is malformed."""
    if type(value) is list:
        return value
    if value is None:
        return []
    raise InvalidRequest("must be a JSON array", at(ref, path))


def as_objects(value: Any, ref: str, path: str) -> list[dict[str, Any]]:
    """A repeating complex element: a JSON array of objects (absent means empty)."""
    found = value if type(value) is list else as_list(value, ref, path)
    for element in found:
        if type(element) is not dict:
            i = next(i for i, e in enumerate(found) if type(e) is not dict)
            raise InvalidRequest("must be a JSON object", at(ref, f"{path}[{i}]"))
    return found


def as_object(value: Any, ref: str, path: str = "") -> dict[str, Any]:
    """A complex element (or array member) that must be a JSON object."""
    if type(value) is dict:
        return value
    problem = "is missing" if value is None else "must be a JSON object"
    raise InvalidRequest(problem, at(ref, path))
