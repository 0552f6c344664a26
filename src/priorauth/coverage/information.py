"""The CRD coverage-information extension from a determination, and its STU 2 consistency rules."""

from __future__ import annotations

from datetime import date
from typing import Any

import orjson

from priorauth.core.result import Determination

Json = dict[str, Any]
COVERAGE_INFORMATION = (
    "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/ext-coverage-information"
)
_REQUIRED = ("coverage", "covered", "date", "coverage-assertion-id")
_SINGLE = (*_REQUIRED, "pa-needed", "satisfied-pa-id")
# The required bindings of CRD 2.0.1 (ValueSet coverageInfo, coveragePaDetail,
# AdditionalDocumentation, DocReason, informationNeeded).
_CODES = {
    "covered": {"covered", "not-covered", "conditional"},
    "pa-needed": {"auth-needed", "no-auth", "satisfied", "performpa", "conditional"},
    "doc-needed": {"clinical", "admin", "both", "conditional"},
    "doc-purpose": {"withpa", "withclaim", "withorder", "retain-doc", "OTH"},
    "info-needed": {"performer", "location", "timeframe", "contract-window", "OTH"},
}
# Parts that say when and under which id, not what: two answers differing only there agree.
_BOOKKEEPING = frozenset({"date", "coverage-assertion-id"})


def coverage_information(
    *,
    coverage_ref: str,
    determination: Determination,
    final_denial: bool,
    questionnaire: str | None,
    assertion_id: str,
    on: date,
    documentation: bool = True,
) -> Json:
    """What the payer asserts about one order.

    `documentation` False (CRD order-select) states coverage and prior authorization only:
    no documentation is asked for while orders are still being chosen.

    A service a policy governs always needs prior authorization (the policy's
    reviews go to a person), so the engine decides only what documentation is still
    needed, or that the order is not covered when no answer could change a denial.
    """
    parts: list[Json] = [{"url": "coverage", "valueReference": {"reference": coverage_ref}}]
    if final_denial:
        parts.append({"url": "covered", "valueCode": "not-covered"})
        unmet = "; ".join(f"{u.id}: {u.text}" for u in determination.reasons)
        parts.append({"url": "reason", "valueCodeableConcept": {"text": f"Not met: {unmet}"}})
    else:
        parts.append({"url": "covered", "valueCode": "covered"})
        parts.append({"url": "pa-needed", "valueCode": "auth-needed"})
        # Nothing more to document: doc-needed is left out (AdditionalDocumentation has
        # no "no documentation" code).
        if documentation and determination.recommendation not in ("approve", "approve-modified"):
            parts.append({"url": "doc-needed", "valueCode": "clinical"})
            parts.append({"url": "doc-purpose", "valueCode": "withpa"})
            if questionnaire is not None:
                parts.append({"url": "questionnaire", "valueCanonical": questionnaire})
    parts.append({"url": "date", "valueDate": on.isoformat()})
    parts.append({"url": "coverage-assertion-id", "valueString": assertion_id})
    return {"url": COVERAGE_INFORMATION, "extension": parts}


def plain_information(
    *, coverage: Json, covered: bool, reason: str | None, assertion_id: str, on: date
) -> Json:
    """An answer without a policy: covered with no prior authorization (no policy governs the
    service), or not covered (no active coverage). `coverage` is the Reference to state."""
    parts: list[Json] = [{"url": "coverage", "valueReference": coverage}]
    if covered:
        parts.append({"url": "covered", "valueCode": "covered"})
        parts.append({"url": "pa-needed", "valueCode": "no-auth"})
    else:
        parts.append({"url": "covered", "valueCode": "not-covered"})
    if reason is not None:
        parts.append({"url": "reason", "valueCodeableConcept": {"text": reason}})
    parts.append({"url": "date", "valueDate": on.isoformat()})
    parts.append({"url": "coverage-assertion-id", "valueString": assertion_id})
    return {"url": COVERAGE_INFORMATION, "extension": parts}


def carried(resource: Json) -> list[Json]:
    """The coverage-information extensions an order already carries."""
    found = resource.get("extension")
    if not isinstance(found, list):
        return []
    return [e for e in found if isinstance(e, dict) and e.get("url") == COVERAGE_INFORMATION]


def assertion_id_of(extension: Json) -> str | None:
    parts = extension.get("extension")
    for part in parts if isinstance(parts, list) else ():
        if isinstance(part, dict) and part.get("url") == "coverage-assertion-id":
            value = part.get("valueString")
            return value if isinstance(value, str) else None
    return None


def same_answer(a: Json, b: Json) -> bool:
    """Whether two coverage-information extensions say the same (date and id aside)."""

    def content(ext: Json) -> list[str]:
        found = ext.get("extension")
        parts = [p for p in (found if isinstance(found, list) else ()) if isinstance(p, dict)]
        kept = [p for p in parts if p.get("url") not in _BOOKKEEPING]
        return sorted(orjson.dumps(p, option=orjson.OPT_SORT_KEYS).decode() for p in kept)

    return a.get("url") == b.get("url") and content(a) == content(b)


def with_coverage_information(resource: Json, extension: Json) -> Json:
    """A copy of the order carrying the extension (an earlier assertion is replaced)."""
    found = resource.get("extension")
    kept = [
        e
        for e in (found if isinstance(found, list) else ())
        if not (isinstance(e, dict) and e.get("url") == COVERAGE_INFORMATION)
    ]
    return {**resource, "extension": [*kept, extension]}


def violations(extension: Json) -> list[str]:
    """Every CRD STU 2 rule the extension breaks (cardinalities, codes, crd-ci-q1..q5)."""
    out: list[str] = []
    if extension.get("url") != COVERAGE_INFORMATION:
        out.append("url is not ext-coverage-information")
    parts = extension.get("extension") or []
    if any(key.startswith("value") for key in extension):
        out.append("a complex extension has no value[x]")
    by: dict[str, list[Any]] = {}
    for part in parts:
        values = [v for k, v in part.items() if k.startswith("value")]
        if len(values) != 1 or ("extension" in part and part["url"] != "detail"):
            out.append(f"{part.get('url')}: needs exactly one value")
        by.setdefault(part.get("url", ""), []).append(values[0] if values else None)
    for name in _REQUIRED:
        if name not in by:
            out.append(f"{name} is required")
    for name in _SINGLE:
        if len(by.get(name, ())) > 1:
            out.append(f"{name} appears more than once")
    for name, allowed in _CODES.items():
        out.extend(
            f"{name}: {v!r} is not a known code" for v in by.get(name, ()) if v not in allowed
        )
    covered = set(by.get("covered", ()))
    pa, doc = set(by.get("pa-needed", ())), set(by.get("doc-needed", ()))
    if "questionnaire" in by and not doc:
        out.append("crd-ci-q1: questionnaire only when doc-needed is present")
    if "not-covered" in covered and pa:
        out.append("crd-ci-q2: not-covered carries no pa-needed")
    conditional = "conditional" in covered | pa | doc
    if ("info-needed" in by) != conditional:
        out.append("crd-ci-q3: info-needed exactly when something is conditional")
    if "satisfied" in pa and "withpa" in by.get("doc-purpose", ()):
        out.append("crd-ci-q4: a satisfied PA needs no documentation for a PA")
    if ("satisfied-pa-id" in by) != ("satisfied" in pa):
        out.append("crd-ci-q5: satisfied-pa-id exactly when pa-needed is satisfied")
    if "doc-purpose" in by and not doc:
        out.append("doc-purpose without documentation needed")
    return out
