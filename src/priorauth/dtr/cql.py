"""CQL and ELM pre-population Libraries generated from a policy's criteria (no translator)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from priorauth.core.codes import codes_of, parse_codes
from priorauth.core.evaluator import CompiledPolicy
from priorauth.core.facts import ICD10CM, LOINC, NUCC
from priorauth.core.model import Criterion
from priorauth.intake.pas_bundle import BIRTH_SEX

Json = dict[str, Any]
FHIR_NS = "{http://hl7.org/fhir}"
SYS_NS = "{urn:hl7-org:elm-types:r1}"
CQF_LIBRARY = "http://hl7.org/fhir/StructureDefinition/cqf-library"
INITIAL_EXPRESSION = (
    "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-initialExpression"
)
LIBRARY_TYPE = "http://terminology.hl7.org/CodeSystem/library-type"
CQL_PROFILE = "http://hl7.org/fhir/uv/cql/StructureDefinition/cql-library"
# The kinds a Library expression pre-fills; the form's other pre-fills stay FHIRPath.
_LAB_KINDS = frozenset(
    {"lab_threshold", "lab_present", "lab_negative", "lab_series", "history_of_positive"}
)
COVERED_KINDS = _LAB_KINDS | {
    "creatinine_clearance",
    "diagnosis",
    "sex",
    "min_age",
    "age",
    "prescriber_specialty",
}
_COUNTS = ("final", "amended", "corrected")
_ACTIVE = ("active", "recurrence", "relapse")
_NOT_TRUE = ("entered-in-error", "refuted")


@dataclass(frozen=True, slots=True)
class E:
    """One expression, as CQL text and as the ELM node of the same logic.

    Every builder below makes both at once, so the two cannot drift apart.
    """

    cql: str
    elm: Json


# --- builders: each returns the CQL text and its ELM node --------------------------------


def _quote(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def string(s: str) -> E:
    return E(_quote(s), {"type": "Literal", "valueType": f"{SYS_NS}String", "value": s})


def boolean(b: bool) -> E:
    text = "true" if b else "false"
    return E(text, {"type": "Literal", "valueType": f"{SYS_NS}Boolean", "value": text})


def alias(name: str) -> E:
    return E(name, {"type": "AliasRef", "name": name})


def ref(name: str) -> E:
    return E(f'"{name}"', {"type": "ExpressionRef", "name": name})


def prop(source: E, path: str) -> E:
    node: Json = {"type": "Property", "path": path}
    if source.elm["type"] == "AliasRef":
        node["scope"] = source.elm["name"]  # the translator's form for alias.property
    else:
        node["source"] = source.elm
    return E(f"{source.cql}.{path}", node)


def as_type(operand: E, fhir_type: str) -> E:
    node = {"type": "As", "operand": operand.elm, "asType": FHIR_NS + fhir_type, "strict": False}
    return E(f"({operand.cql} as FHIR.{fhir_type})", node)


def _unary(op: str, operand: E, cql: str) -> E:
    return E(cql, {"type": op, "operand": operand.elm})


def _binary(op: str, a: E, b: E, cql: str) -> E:
    return E(cql, {"type": op, "operand": [a.elm, b.elm]})


def equal(a: E, b: E) -> E:
    return _binary("Equal", a, b, f"{a.cql} = {b.cql}")


def is_in(a: E, values: Sequence[str]) -> E:
    items = [string(v) for v in values]
    lst = E(
        "{" + ", ".join(i.cql for i in items) + "}",
        {"type": "List", "element": [i.elm for i in items]},
    )
    return _binary("In", a, lst, f"{a.cql} in {lst.cql}")


def and_(*parts: E) -> E:
    out = parts[0]
    for p in parts[1:]:
        out = _binary("And", out, p, f"({out.cql} and {p.cql})")
    return out


def or_(*parts: E) -> E:
    out = parts[0]
    for p in parts[1:]:
        out = _binary("Or", out, p, f"({out.cql} or {p.cql})")
    return out


def not_(a: E) -> E:
    return _unary("Not", a, f"not ({a.cql})")


def is_not_null(a: E) -> E:
    return not_(_unary("IsNull", a, f"{a.cql} is null"))


def exists(a: E) -> E:
    return _unary("Exists", a, f"exists ({a.cql})")


def upper(a: E) -> E:
    return _unary("Upper", a, f"Upper({a.cql})")


def to_string(a: E) -> E:
    return _unary("ToString", a, f"ToString({a.cql})")


def flatten(a: E) -> E:
    return _unary("Flatten", a, f"Flatten({a.cql})")


def starts_with(a: E, prefix: str) -> E:
    p = string(prefix)
    return _binary("StartsWith", a, p, f"StartsWith({a.cql}, {p.cql})")


def without_dots(a: E) -> E:
    pattern, empty = string("[.]"), string("")
    node = {"type": "ReplaceMatches", "operand": [a.elm, pattern.elm, empty.elm]}
    return E(f"ReplaceMatches({a.cql}, {pattern.cql}, {empty.cql})", node)


def coalesce(*parts: E) -> E:
    node = {"type": "Coalesce", "operand": [p.elm for p in parts]}
    return E(f"Coalesce({', '.join(p.cql for p in parts)})", node)


def first(source: E) -> E:
    return E(f"First({source.cql})", {"type": "First", "source": source.elm})


def aggregate(op: str, source: E) -> E:
    return E(f"{op}({source.cql})", {"type": op, "source": source.elm})


def singleton(a: E) -> E:
    return _unary("SingletonFrom", a, f"singleton from ({a.cql})")


def retrieve(resource: str) -> E:
    return E(f"[{resource}]", {"type": "Retrieve", "dataType": FHIR_NS + resource})


def tuple_(**elements: E) -> E:
    node = {"type": "Tuple", "element": [{"name": k, "value": v.elm} for k, v in elements.items()]}
    return E(
        "Tuple { " + ", ".join(f"{k}: {v.cql}" for k, v in elements.items()) + " }",
        node,
    )


def query(
    source: E,
    name: str,
    where: E | None = None,
    returns: E | None = None,
    sort_by: str | None = None,
) -> E:
    """A single-source query; `sort_by` sorts the returned tuples by a column, newest first."""
    node: Json = {
        "type": "Query",
        "source": [{"alias": name, "expression": source.elm}],
        "relationship": [],
    }
    text = f"({source.cql} {name}"
    if where is not None:
        node["where"] = where.elm
        text += f" where {where.cql}"
    if returns is not None:
        # `return all`: ELM's return is distinct unless told otherwise.
        node["return"] = {"distinct": False, "expression": returns.elm}
        text += f" return all {returns.cql}"
    if sort_by is not None:
        node["sort"] = {"by": [{"type": "ByColumn", "direction": "desc", "path": sort_by}]}
        text += f" sort by {sort_by} desc"
    return E(text + ")", node)


# --- the pre-fill expressions of each covered check kind ---------------------------------


def _value(e: E) -> E:
    """A FHIR primitive's System value (what FHIRHelpers.To* returns)."""
    return prop(e, "value")


def _has_coding(concept: E, pairs: Sequence[tuple[str, str]], name: str) -> E:
    """The concept has a coding among (system, code) pairs."""
    by_system: dict[str, list[str]] = {}
    for system, code in pairs:
        by_system.setdefault(system, []).append(code)
    c = alias(name)
    tests = [
        and_(equal(_value(prop(c, "system")), string(s)), is_in(_value(prop(c, "code")), codes))
        for s, codes in by_system.items()
    ]
    if not tests:
        return boolean(False)
    return exists(query(prop(concept, "coding"), name, or_(*tests)))


def _observations(pairs: Sequence[tuple[str, str]], value_present: bool) -> E:
    """[Observation] that count (final/amended/corrected) with one of the codes."""
    o = alias("O")
    where = [is_in(_value(prop(o, "status")), _COUNTS), _has_coding(prop(o, "code"), pairs, "C")]
    if value_present:
        where.append(is_not_null(_quantity_value(o)))
    return query(retrieve("Observation"), "O", and_(*where))


def _quantity_value(o: E) -> E:
    return _value(prop(as_type(prop(o, "value"), "Quantity"), "value"))


def _stamp(o: E) -> E:
    """What intake sorts results by: effectiveDateTime, else effectivePeriod.end, else issued."""
    effective = prop(o, "effective")
    return coalesce(
        to_string(_value(as_type(effective, "dateTime"))),
        to_string(_value(prop(as_type(effective, "Period"), "end"))),
        to_string(_value(prop(o, "issued"))),
    )


def lab_value(pairs: Sequence[tuple[str, str]], pick: str) -> E:
    """The latest (newest first, undated last), lowest or highest quantity value."""
    counted = _observations(pairs, value_present=True)
    o = alias("R")
    if pick in ("lowest", "highest"):
        values = query(counted, "R", returns=_quantity_value(o))
        return aggregate("Min" if pick == "lowest" else "Max", values)
    dated = query(counted, "R", returns=tuple_(v=_quantity_value(o), d=_stamp(o)), sort_by="d")
    return prop(first(dated), "v")


def has_condition(icd: Sequence[str]) -> E:
    """An active, not refuted Condition with an ICD-10-CM code (dots ignored, `X*` a prefix)."""
    flat = [code.strip().upper().replace(".", "") for code in icd]
    exact = [code for code in flat if not code.endswith("*")]
    prefixes = [code[:-1] for code in flat if code.endswith("*")]
    if not exact and not prefixes:
        return boolean(False)
    k = alias("K")
    code = upper(without_dots(_value(prop(k, "code"))))
    tests = ([is_in(code, exact)] if exact else []) + [starts_with(code, p) for p in prefixes]
    d = alias("D")
    system_is = equal(_value(prop(k, "system")), string(ICD10CM))
    coded = exists(query(prop(prop(d, "code"), "coding"), "K", and_(system_is, or_(*tests))))
    verification = prop(prop(d, "verificationStatus"), "coding")
    clinical = prop(prop(d, "clinicalStatus"), "coding")
    refuted = is_in(_value(prop(alias("V"), "code")), _NOT_TRUE)
    true_ = not_(exists(query(verification, "V", refuted)))
    active = or_(
        not_(exists(clinical)),
        exists(query(clinical, "S", is_in(_value(prop(alias("S"), "code")), _ACTIVE))),
    )
    return exists(query(retrieve("Condition"), "D", and_(true_, active, coded)))


def birth_date() -> E:
    return _value(prop(ref("Patient"), "birthDate"))


def birth_sex_or_gender() -> E:
    """US Core birth sex when recorded, else the administrative gender."""
    x = alias("X")
    recorded = query(
        prop(ref("Patient"), "extension"),
        "X",
        equal(_value(prop(x, "url")), string(BIRTH_SEX)),
        returns=_value(as_type(prop(x, "value"), "code")),
    )
    return coalesce(first(recorded), _value(prop(ref("Patient"), "gender")))


def specialty() -> E:
    """The first NUCC taxonomy of a PractitionerRole, else of a Practitioner's qualification."""

    def nucc(concept: E, name: str) -> E:
        c = alias(name)
        return query(
            prop(concept, "coding"),
            name,
            equal(_value(prop(c, "system")), string(NUCC)),
            returns=_value(prop(c, "code")),
        )

    roles = query(
        retrieve("PractitionerRole"),
        "R",
        returns=flatten(query(prop(alias("R"), "specialty"), "S", returns=nucc(alias("S"), "T"))),
    )
    quals = query(
        retrieve("Practitioner"),
        "P",
        returns=flatten(
            query(
                prop(alias("P"), "qualification"),
                "Q",
                returns=nucc(prop(alias("Q"), "code"), "U"),
            )
        ),
    )
    return coalesce(first(flatten(roles)), first(flatten(quals)))


def expression_of(c: Criterion, systems: Mapping[str, str] | None = None) -> tuple[str, E] | None:
    """(FHIR answer type, expression) pre-filling a documentation criterion; None: not covered."""
    check = c.check
    if check is None or check.kind not in COVERED_KINDS:
        return None
    if check.kind in _LAB_KINDS or check.kind == "creatinine_clearance":
        codes = getattr(check, "codes", None) or getattr(check, "measured_codes", [])
        pairs = parse_codes(codes, LOINC, systems)
        if check.kind == "history_of_positive":
            pick = "highest"
        else:
            pick = getattr(check, "pick", "latest")
        return "decimal", lab_value(pairs, pick)
    if check.kind == "diagnosis":
        return "boolean", has_condition(codes_of(check.codes, ICD10CM, systems))
    if check.kind == "sex":
        return "string", birth_sex_or_gender()
    if check.kind in ("min_age", "age"):
        return "date", birth_date()
    return "string", specialty()


# --- the Library -------------------------------------------------------------------------


def define_name(criterion_id: str) -> str:
    """A CQL identifier for a criterion's pre-fill (no quoting needed): doc_I_i for I.i."""
    return "doc_" + criterion_id.replace(".", "_").replace("-", "_")


def library_name(policy: CompiledPolicy) -> str:
    """The CQL library name: PascalCase of the policy id, e.g. PayerX123Prefill."""
    return "".join(part.capitalize() for part in policy.policy.id.split("-")) + "Prefill"


def library_id(policy: CompiledPolicy) -> str:
    p = policy.policy
    return f"{p.id}-{p.version}"


def library_url(policy: CompiledPolicy, base_url: str) -> str:
    return f"{base_url.rstrip('/')}/fhir/Library/{policy.policy.id}"


@lru_cache(maxsize=64)
def prefills(policy: CompiledPolicy) -> tuple[tuple[Criterion, str, str, E], ...]:
    """(criterion, form linkId, define name, expression) for each documentation criterion the
    Library pre-fills, in the form's order (built once per policy version: every form uses it)."""
    from priorauth.dtr.expressions import prefill

    p = policy.policy
    out = []
    for c in policy.criteria.values():
        if c.children or c.evidence != "documentation" or prefill(c, p.systems) is None:
            continue
        found = expression_of(c, p.systems)
        if found is not None:
            out.append((c, f"doc-{c.id}", define_name(c.id), found[1]))
    return tuple(out)


def cql_text(policy: CompiledPolicy) -> str:
    p = policy.policy
    lines = [
        f"library {library_name(policy)} version '{p.version}'",
        "",
        "// Generated from the policy's criteria; the ELM beside it is the same tree.",
        "using FHIR version '4.0.1'",
        "",
        "context Patient",
        "",
    ]
    for c, _, name, e in prefills(policy):
        lines += [f"// {c.id}: {(c.request or c.text).splitlines()[0][:100]}"]
        lines += [f'define "{name}":', f"  {e.cql}", ""]
    return "\n".join(lines)


def elm(policy: CompiledPolicy) -> Json:
    """The ELM (JSON) library cql-execution and other ELM engines run."""
    p = policy.policy
    patient = {
        "name": "Patient",
        "context": "Patient",
        "expression": singleton(retrieve("Patient")).elm,
    }
    defines = [
        {"name": name, "context": "Patient", "accessLevel": "Public", "expression": e.elm}
        for _, _, name, e in prefills(policy)
    ]
    return {
        "library": {
            "identifier": {"id": library_name(policy), "version": p.version},
            "schemaIdentifier": {"id": "urn:hl7-org:elm", "version": "r1"},
            "usings": {
                "def": [
                    {"localIdentifier": "System", "uri": "urn:hl7-org:elm-types:r1"},
                    {"localIdentifier": "FHIR", "uri": "http://hl7.org/fhir", "version": "4.0.1"},
                ]
            },
            "contexts": {"def": [{"name": "Patient"}]},
            "statements": {"def": [patient, *defines]},
        }
    }


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@lru_cache(maxsize=64)
def _library(policy: CompiledPolicy, base_url: str) -> str:
    p = policy.policy
    lib = {
        "resourceType": "Library",
        "id": library_id(policy),
        "meta": {"profile": [CQL_PROFILE]},
        "url": library_url(policy, base_url),
        "version": p.version,
        "name": library_name(policy),
        "title": f"{p.payer} {p.number}: pre-population logic",
        "status": "active",
        "type": {"coding": [{"system": LIBRARY_TYPE, "code": "logic-library"}]},
        "description": f"Pre-fill expressions of the {p.id} {p.version} form, from {p.source}.",
        "content": [
            {"contentType": "text/cql", "data": _b64(cql_text(policy))},
            {
                "contentType": "application/elm+json",
                "data": _b64(json.dumps(elm(policy), separators=(",", ":"))),
            },
        ],
    }
    return json.dumps(lib)


def library(policy: CompiledPolicy, base_url: str) -> Json:
    """The FHIR Library (a fresh copy) of a policy version: CQL text and ELM JSON."""
    found: Json = json.loads(_library(policy, base_url))
    return found


def attach(form: Json, policy: CompiledPolicy, base_url: str) -> Json:
    """Point a Questionnaire at its Library: cqf-library, and a text/cql-identifier
    initialExpression on each item the Library pre-fills (the others keep their FHIRPath)."""
    lib = library(policy, base_url)
    canonical = f"{lib['url']}|{lib['version']}"
    form.setdefault("extension", []).append({"url": CQF_LIBRARY, "valueCanonical": canonical})
    names = {link: name for _, link, name, _ in prefills(policy)}

    def walk(items: list[Json]) -> None:
        for item in items:
            name = names.get(item.get("linkId", ""))
            if name is not None:
                for ext in item.get("extension", []):
                    if ext.get("url") == INITIAL_EXPRESSION:
                        ext["valueExpression"] = {
                            "language": "text/cql-identifier",
                            "expression": name,
                            "reference": canonical,
                        }
            walk(item.get("item", []))

    walk(form.get("item", []))
    return form


def find(policies: Iterable[CompiledPolicy], wanted: str, base_url: str) -> Json | None:
    """The Library whose id is `wanted` among the loaded policy versions, or None."""
    for policy in policies:
        if library_id(policy) == wanted:
            return library(policy, base_url)
    return None
