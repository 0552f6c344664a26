"""SDC launch context, x-fhir-query variables and FHIRPath initialExpressions over US Core data."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from priorauth.core.codes import codes_of, parse_codes
from priorauth.core.facts import ICD10CM, LOINC, NUCC
from priorauth.core.model import Criterion
from priorauth.intake.pas_bundle import BIRTH_SEX

Json = dict[str, Any]
SDC = "http://hl7.org/fhir/uv/sdc/StructureDefinition"
LAUNCH_CONTEXT = f"{SDC}/sdc-questionnaire-launchContext"
INITIAL_EXPRESSION = f"{SDC}/sdc-questionnaire-initialExpression"
VARIABLE = "http://hl7.org/fhir/StructureDefinition/variable"
_COUNTS = "where(status in ('final' | 'amended' | 'corrected'))"
# FHIRPath has no min()/max() in R4-era engines; aggregate() is portable.
_LOWEST = "aggregate(iif($total.empty() or $this < $total, $this, $total))"
_HIGHEST = "aggregate(iif($total.empty() or $this > $total, $this, $total))"
_LAB_KINDS = frozenset(
    {"lab_threshold", "lab_present", "lab_negative", "lab_series", "history_of_positive"}
)


def launch_context() -> list[Json]:
    """The EHR hands the form its patient and user (SDC launch context)."""
    out = []
    for name, kind in (("patient", "Patient"), ("user", "Practitioner")):
        out.append(
            {
                "url": LAUNCH_CONTEXT,
                "extension": [
                    {
                        "url": "name",
                        "valueCoding": {
                            "system": "http://hl7.org/fhir/uv/sdc/CodeSystem/launchContext",
                            "code": name,
                        },
                    },
                    {"url": "type", "valueCode": kind},
                ],
            }
        )
    return out


def libraries(policy: Any, base_url: str) -> list[Json]:
    """The form's `cqf-library` extensions: none while the pre-fill is FHIRPath.

    The hook for CQL: a Library per policy version, named here by its canonical; `initial`
    then names a `text/cql-identifier` of it instead of a FHIRPath expression.
    """
    return []


def variable(name: str, query: str) -> Json:
    return {
        "url": VARIABLE,
        "valueExpression": {
            "name": name,
            "language": "application/x-fhir-query",
            "expression": query,
        },
    }


def initial(expression: str) -> Json:
    return {
        "url": INITIAL_EXPRESSION,
        "valueExpression": {"language": "text/fhirpath", "expression": expression},
    }


def var_name(criterion_id: str) -> str:
    # An Expression.name is an `id` and a FHIRPath identifier: letters and digits only.
    return "ev" + criterion_id.replace(".", "x")


def _tokens(codes: list[str], systems: Mapping[str, str] | None) -> str:
    # A search token per code, in the system the policy names (a bare code is LOINC).
    return ",".join(f"{s}|{code}" for s, code in parse_codes(codes, LOINC, systems))


def prefill(
    c: Criterion, systems: Mapping[str, str] | None = None
) -> tuple[str, Json | None, str] | None:
    """(item type, the variable it needs or None, FHIRPath) for a documentation criterion.

    None when the EHR's US Core data cannot answer it (claims, dosing, statements).
    `systems` are the policy's code system aliases.
    """
    check = c.check
    if check is None:
        return None
    name = var_name(c.id)
    if check.kind in _LAB_KINDS or check.kind == "creatinine_clearance":
        codes = getattr(check, "codes", None) or getattr(check, "measured_codes", [])
        query = "Observation?patient={{%patient.id}}&code=" + _tokens(codes, systems)
        values = f"%{name}.entry.resource.{_COUNTS}.valueQuantity.value"
        pick = getattr(check, "pick", "latest")
        if check.kind == "history_of_positive":
            return "decimal", variable(name, query), f"{values}.{_HIGHEST}"
        if pick == "lowest":
            return "decimal", variable(name, query), f"{values}.{_LOWEST}"
        # Sorted newest first by the server, so the first result is the latest.
        return "decimal", variable(name, query + "&_sort=-date"), f"{values}.first()"
    if check.kind == "infection_screen":
        codes = [code for panel in check.panels for code in panel.codes]
        query = "Observation?patient={{%patient.id}}&_sort=-date&code=" + _tokens(codes, systems)
        results = f"%{name}.entry.resource.{_COUNTS}.valueCodeableConcept"
        return (
            "string",
            variable(name, query),
            f"({results}.text | {results}.coding.display).first()",
        )
    if check.kind == "diagnosis":
        icd = codes_of(check.codes, ICD10CM, systems)
        exact = [code for code in icd if not code.endswith("*")]
        prefixes = [code[:-1] for code in icd if code.endswith("*")]
        tests = [f"code = '{code}'" for code in exact] + [
            f"code.startsWith('{p}')" for p in prefixes
        ]
        coded = f"code.coding.where(system = '{ICD10CM}' and ({' or '.join(tests)})).exists()"
        active = "(clinicalStatus.exists().not() or clinicalStatus.coding.code = 'active')"
        expression = f"%{name}.entry.resource.where({active} and {coded}).exists()"
        return "boolean", variable(name, "Condition?patient={{%patient.id}}"), expression
    if check.kind == "sex":
        birth_sex = f"%patient.extension.where(url = '{BIRTH_SEX}').valueCode"
        return "string", None, f"iif({birth_sex}.exists(), {birth_sex}.first(), %patient.gender)"
    if check.kind in ("min_age", "age"):
        return "date", None, "%patient.birthDate"
    if check.kind == "prescriber_specialty":
        query = "PractitionerRole?practitioner={{%user.id}}"
        path = f"%{name}.entry.resource.specialty.coding.where(system = '{NUCC}').code.first()"
        return "string", variable(name, query), path
    return None
