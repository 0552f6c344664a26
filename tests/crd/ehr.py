"""An EHR's view of a Hemgenix patient (from samples.hemgenix_request), as CDS Hooks sends it."""

from __future__ import annotations

import copy
from typing import Any

from priorauth.demo.samples import hemgenix_request

Json = dict[str, Any]
MR_PROFILE = "http://hl7.org/fhir/us/davinci-crd/StructureDefinition/profile-medicationrequest"


def _relink(value: Any, urls: dict[str, str]) -> Any:
    """urn:uuid references (bundle-internal) become Type/id, as an EHR's FHIR API has them."""
    if isinstance(value, dict):
        return {
            k: (urls.get(v, v) if k == "reference" and isinstance(v, str) else _relink(v, urls))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_relink(v, urls) for v in value]
    return value


def ehr_resources(bundle: Json) -> dict[str, list[Json]]:
    """resourceType -> resources of a PAS bundle, with EHR-style references."""
    urls = {
        e["fullUrl"]: f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in bundle["entry"]
    }
    out: dict[str, list[Json]] = {}
    for e in bundle["entry"]:
        r = _relink(copy.deepcopy(e["resource"]), urls)
        out.setdefault(r["resourceType"], []).append(r)
    return out


def search(resources: list[Json]) -> Json:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [{"resource": r} for r in resources],
    }


def prefetch_for(res: dict[str, list[Json]], drop_labs: tuple[str, ...] = ()) -> Json:
    observations = [
        o for o in res.get("Observation", []) if o["code"]["coding"][0]["code"] not in drop_labs
    ]
    statements = res.get("MedicationStatement", [])
    return {
        "patient": res["Patient"][0],
        "coverage": search(res["Coverage"] + res.get("Organization", [])),
        "observations": search(observations),
        "conditions": search(res.get("Condition", [])),
        "medicationStatements": search(statements),
        "medicationRequests": search([]),
        "practitionerRoles": search(res.get("PractitionerRole", [])),
        "procedures": search(res.get("Procedure", [])),
        "diagnosticReports": search(res.get("DiagnosticReport", [])),
        "imagingStudies": search(res.get("ImagingStudy", [])),
        "documentReferences": search(res.get("DocumentReference", [])),
    }


def order_sign(
    name: str = "crd",
    *,
    hook: str = "order-sign",
    drop_labs: tuple[str, ...] = (),
    prefetch: bool = True,
    **kw: Any,
) -> tuple[Json, dict[str, list[Json]]]:
    """An order-sign request for a Hemgenix kit, and the EHR's resources behind it."""
    res = ehr_resources(hemgenix_request(name=name, **kw))
    order = res["MedicationRequest"][0]
    order["status"] = "draft"
    order["meta"] = {"profile": [MR_PROFILE]}
    order["requester"] = {"reference": f"Practitioner/{res['Practitioner'][0]['id']}"}
    patient_id = res["Patient"][0]["id"]
    body: Json = {
        "hook": hook,
        "hookInstance": f"hook-{name}",
        "context": {
            "userId": f"Practitioner/{res['Practitioner'][0]['id']}",
            "patientId": patient_id,
            "draftOrders": {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": order}],
            },
        },
    }
    if hook == "order-select":
        body["context"]["selections"] = [f"MedicationRequest/{order['id']}"]
    if prefetch:
        body["prefetch"] = prefetch_for(res, drop_labs)
    return body, res
