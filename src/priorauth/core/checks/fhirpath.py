"""The escape hatch: a FHIRPath expression over the request Bundle (fhirpathpy, optional)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from priorauth.core.checks import CheckFn, CompileContext, State, compiler
from priorauth.core.facts import Facts
from priorauth.core.model import FhirPathCheck
from priorauth.core.result import MET, NOT_MET, UNKNOWN, Explanation, Raw, Recorded
from priorauth.errors import PolicyInvalid

# A trial run at compile time: fhirpathpy parses leniently and finds a wrong arity or an
# unknown function only when it evaluates.
_EMPTY_BUNDLE: Mapping[str, Any] = {"resourceType": "Bundle", "type": "collection", "entry": []}
_SHOWN = 80  # characters of a result value in the evidence


def _compiled(cid: str, expression: str) -> Callable[..., list[Any]]:
    try:
        # Imported here, when a policy uses the kind: evaluating the shipped policies (and
        # `import priorauth`) never loads it, and it is an optional extra.
        import fhirpathpy
        from fhirpathpy.models import models
    except ImportError as e:
        raise PolicyInvalid(
            f"{cid}: the fhirpath kind needs the fhirpathpy package: install priorauth[fhirpath]"
        ) from e
    try:
        fn = fhirpathpy.compile(expression, models["r4"])
        fn(dict(_EMPTY_BUNDLE), {"reviewDate": "2000-01-01"})
    except Exception as e:  # fhirpathpy raises bare Exceptions
        raise PolicyInvalid(f"{cid}: the FHIRPath expression cannot be used: {e}") from e
    return fn


@compiler("fhirpath")
def fhirpath(cid: str, c: FhirPathCheck, ctx: CompileContext) -> CheckFn:
    run = _compiled(cid, c.expression)
    label = c.label
    unavailable: Raw = (
        UNKNOWN,
        None,
        (f"The request bundle is not available to the FHIRPath expression for {label}.", ()),
    )

    def check(facts: Facts, st: State) -> Raw:
        bundle = facts.bundle
        if bundle is None:
            return unavailable
        try:
            found = run(bundle, {"reviewDate": st.as_of.isoformat()})
        except Exception as e:  # an expression that fails on this bundle decides nothing
            name = type(e).__name__  # not the message: it may quote the patient's data
            return (
                UNKNOWN,
                None,
                (f"The FHIRPath expression for {label} could not be evaluated ({name}).", ()),
            )
        if not found:
            return (
                UNKNOWN,
                None,
                (f"The FHIRPath expression for {label} finds nothing in the request.", ()),
            )
        # FHIRPath's truth of a collection: a boolean is itself, anything else exists.
        ok = all(v is not False for v in found)
        return (MET if ok else NOT_MET, None, (judged, tuple(found), ok))

    def judged(found: tuple[Any, ...], ok: bool) -> Explanation:
        return (
            f"The FHIRPath expression for {label} is {'true' if ok else 'false'} "
            f"({len(found)} result(s)).",
            tuple(_evidence(v, label) for v in found),
        )

    return check


def _evidence(value: Any, label: str) -> Recorded:
    """A result as evidence: a resource by its reference, a value as it reads."""
    if isinstance(value, Mapping) and isinstance(value.get("resourceType"), str):
        rid = value.get("id")
        ref = f"{value['resourceType']}/{rid}" if isinstance(rid, str) else value["resourceType"]
        return Recorded(ref, f"FHIRPath result for {label}", "found")
    if isinstance(value, bool):
        shown: str | float = "true" if value else "false"
    elif isinstance(value, int | float | Decimal):
        shown = float(value)
    else:
        shown = str(value)[:_SHOWN]
    return Recorded("Bundle", f"FHIRPath result for {label}", shown)
