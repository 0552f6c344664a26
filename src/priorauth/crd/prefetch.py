"""Prefetch templates built from the policies' evidence, and fetching what the EHR did not send."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import httpx

from priorauth.core.codes import parse_code
from priorauth.core.evaluator import CompiledPolicy
from priorauth.core.facts import LOINC
from priorauth.coverage.references import reference_id
from priorauth.crd.hooks import HookRequest, PrefetchUnavailable
from priorauth.service.outbound import OutboundPolicy, OutboundRefused, new_client

Json = dict[str, Any]
log = logging.getLogger("priorauth.crd")
# CRD answers within seconds; an EHR that takes longer than this will not be waited for.
FETCH_TIMEOUT = 4.0
_LAB_FIELDS = ("codes", "measured_codes", "creatinine_codes")
_LAB_KINDS = frozenset(
    {
        "lab_threshold",
        "lab_present",
        "lab_negative",
        "lab_series",
        "history_of_positive",
        "creatinine_clearance",
        "infection_screen",
    }
)


def observation_codes(policies: Iterable[CompiledPolicy]) -> list[str]:
    """Every observation code a lab criterion of the policies reads, as search tokens.

    A token is "SYSTEM-URL|code" (a bare code in a policy is LOINC), in policy order.
    """
    codes: dict[str, None] = {}
    for policy in policies:
        systems = policy.policy.systems
        for c in policy.criteria.values():
            check = c.check
            if check is None or check.kind not in _LAB_KINDS:
                continue
            listed: list[str] = []
            for name in _LAB_FIELDS:
                listed.extend(getattr(check, name, ()) or ())
            for panel in getattr(check, "panels", ()) or ():
                listed.extend(panel.codes)
            for token in listed:
                system, code = parse_code(token, LOINC, systems)
                codes[f"{system}|{code}"] = None
    return list(codes)


def templates(policies: Iterable[CompiledPolicy]) -> dict[str, str]:
    """The prefetch keys a CRD service asks for (CDS Hooks 2.0 template syntax)."""
    loinc = ",".join(observation_codes(policies))
    patient = "{{context.patientId}}"
    return {
        "patient": f"Patient/{patient}",
        # The payer Organization comes along: its identifier routes to the payer's policies.
        "coverage": f"Coverage?patient={patient}&status=active&_include=Coverage:payor",
        "observations": f"Observation?patient={patient}&code={loinc}",
        "conditions": f"Condition?patient={patient}",
        "medicationStatements": f"MedicationStatement?patient={patient}&status=active",
        "medicationRequests": f"MedicationRequest?patient={patient}&status=active",
        "practitionerRoles": "PractitionerRole?practitioner={{userPractitionerId}}",
        # Evidence beyond Observations (procedures, reports, imaging, documents): optional.
        "procedures": f"Procedure?patient={patient}",
        "diagnosticReports": f"DiagnosticReport?patient={patient}",
        "imagingStudies": f"ImagingStudy?patient={patient}",
        "documentReferences": f"DocumentReference?patient={patient}&status=current",
    }


# Keys an EHR may leave out with no fhirServer to fetch them from: the criteria that read
# them are then unknown, and the card names what is missing, instead of a 412.
OPTIONAL = frozenset({"procedures", "diagnosticReports", "imagingStudies", "documentReferences"})


def fill(template: str, req: HookRequest) -> str | None:
    """A template with the context tokens replaced; None when a token has no value."""
    practitioner = reference_id(req.user_id, "Practitioner")
    out = template.replace("{{context.patientId}}", req.patient_id)
    out = out.replace("{{context.userId}}", req.user_id or "")
    if "{{userPractitionerId}}" in out:
        if practitioner is None:
            return None
        out = out.replace("{{userPractitionerId}}", practitioner)
    return out


# One answer whatever went wrong (refused address, closed port, timeout, an error status,
# not JSON): the caller must not learn what is listening where. The log says which.
FETCH_FAILED = "the prefetch could not be fetched from fhirServer"


def resolve(
    req: HookRequest,
    wanted: dict[str, str],
    policy: OutboundPolicy,
    client: httpx.Client | None = None,
) -> dict[str, list[Json]]:
    """Key -> resources: from the prefetch, else fetched from fhirServer with the token.

    A key the EHR sent as null or left out is fetched; when that is impossible
    (no fhirServer or no token) the answer is 412, as CRD asks. fhirServer must pass
    the outbound address policy, checked on the address each fetch connects to.
    """
    out: dict[str, list[Json]] = {}
    missing: list[tuple[str, str]] = []
    for key, template in wanted.items():
        value = req.prefetch.get(key)
        if value is not None:
            out[key] = resources_of(value)
            continue
        query = fill(template, req)
        if key in OPTIONAL and (req.fhir_server is None or req.token is None):
            out[key] = []
            continue
        if query is None:
            out[key] = []  # the user is not a Practitioner: nothing to look up
        else:
            missing.append((key, query))
    if not missing:
        return out
    if req.fhir_server is None or req.token is None:
        names = ", ".join(k for k, _ in missing)
        raise PrefetchUnavailable(
            f"prefetch {names} is missing and no fhirServer with fhirAuthorization was given",
            "prefetch",
        )
    own = client is None
    http = client or new_client(FETCH_TIMEOUT)
    try:
        base = req.fhir_server.rstrip("/")
        headers = {"Authorization": f"Bearer {req.token}", "Accept": "application/fhir+json"}
        for key, query in missing:
            out[key] = _fetch(http, policy, f"{base}/{query}", headers, key)
    finally:
        if own:
            http.close()
    return out


def _fetch(
    http: httpx.Client, policy: OutboundPolicy, url: str, headers: dict[str, str], key: str
) -> list[Json]:
    why: str
    try:
        r = policy.send(http, "GET", url, headers=headers, timeout=FETCH_TIMEOUT)
    except OutboundRefused as e:
        why = f"refused: {e}"
    except httpx.HTTPError as e:
        why = type(e).__name__
    else:
        if r.status_code == 404 and key != "patient":
            return []
        if r.status_code != 200:
            why = f"HTTP {r.status_code}"
        else:
            try:
                return resources_of(r.json())
            except ValueError:
                why = "not JSON"
    # The key and the failure's kind only: the URL carries the patient's id.
    log.warning("CRD prefetch %s from fhirServer failed: %s", key, why)
    raise PrefetchUnavailable(FETCH_FAILED, "fhirServer")


def resources_of(value: Any) -> list[Json]:
    """The resources of a prefetch value: a search Bundle's entries, or the resource itself."""
    if not isinstance(value, dict):
        return []
    if value.get("resourceType") == "Bundle":
        return [
            e["resource"]
            for e in value.get("entry") or ()
            if isinstance(e, dict) and isinstance(e.get("resource"), dict)
        ]
    return [value] if isinstance(value.get("resourceType"), str) else []
