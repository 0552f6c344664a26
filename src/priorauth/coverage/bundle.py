"""A PAS-shaped Bundle of an order and the EHR's resources, so intake reads it as for $submit."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from datetime import date
from typing import Any

from priorauth.core.evaluator import CompiledPolicy
from priorauth.core.facts import HCPCS
from priorauth.coverage.references import reference_id
from priorauth.intake.pas_bundle import REQUESTED_SERVICE

Json = dict[str, Any]
CLAIM_ID = "crd-order"


def order_bundle(
    *,
    order: Json,
    policy: CompiledPolicy,
    patient: Json,
    coverage: Json | None,
    resources: Iterable[Json],
    as_of: date,
) -> Json:
    """A collection Bundle: a preauthorization Claim for the order, then every resource.

    Only references intake must resolve are rewritten: an EHR's order may name a
    requester that was not prefetched, and a PAS request may not point outside itself.
    """
    kept: dict[str, Json] = {}
    for resource in resources:
        key = _key(resource)
        if key is not None and key not in kept:
            kept[key] = resource
    pid = patient.get("id") or "patient"
    patient = {**patient, "id": pid}
    kept[f"Patient/{pid}"] = patient
    order = copy.deepcopy(order)
    order.setdefault("id", "order")
    kept.pop(f"MedicationRequest/{order['id']}", None)
    roles = [r for r in kept.values() if r["resourceType"] == "PractitionerRole"]
    for role in roles:
        if role.get("practitioner", {}).get("reference") not in kept:
            kept[_key(role) or ""] = {k: v for k, v in role.items() if k != "practitioner"}
    order["requester"] = _prescriber(order.get("requester"), kept, roles)
    if order["requester"] is None:
        del order["requester"]
    order["subject"] = {"reference": f"Patient/{pid}"}
    item: Json = {
        "sequence": 1,
        "productOrService": {
            "coding": [{"system": HCPCS, "code": code} for code in policy.policy.service.hcpcs]
        },
        "extension": [
            {
                "url": REQUESTED_SERVICE,
                "valueReference": {"reference": f"MedicationRequest/{order['id']}"},
            }
        ],
    }
    claim: Json = {
        "resourceType": "Claim",
        "id": CLAIM_ID,
        "status": "active",
        "use": "preauthorization",
        "patient": {"reference": f"Patient/{pid}"},
        "created": as_of.isoformat(),
        "item": [item],
    }
    if coverage is not None:
        cid = coverage.get("id") or "coverage"
        kept[f"Coverage/{cid}"] = {**coverage, "id": cid}
        claim["insurance"] = [
            {"sequence": 1, "focal": True, "coverage": {"reference": f"Coverage/{cid}"}}
        ]
    entries = [claim, order, *kept.values()]
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in entries],
    }


def with_response(bundle: Json, response: Json) -> Json:
    """The bundle plus a QuestionnaireResponse, counted as the prescriber's answers."""
    qr = {**response, "status": "completed", "id": response.get("id") or "dtr-response"}
    patient = bundle["entry"][0]["resource"]["patient"]
    qr["subject"] = patient
    kept = [
        e for e in bundle["entry"] if e["resource"].get("resourceType") != "QuestionnaireResponse"
    ]
    return {**bundle, "entry": [*kept, {"resource": qr}]}


def _key(resource: Json) -> str | None:
    kind, rid = resource.get("resourceType"), resource.get("id")
    return f"{kind}/{rid}" if isinstance(kind, str) and isinstance(rid, str) and rid else None


def _prescriber(requester: Any, kept: dict[str, Json], roles: list[Json]) -> Json | None:
    """The order's requester, pointed at a prefetched PractitionerRole when one exists.

    EHRs usually name the Practitioner; the specialty criterion reads the role.
    """
    target = requester.get("reference") if isinstance(requester, dict) else None
    practitioner = reference_id(target, "Practitioner")
    if practitioner is not None:
        for role in roles:
            if reference_id(role.get("practitioner", {}).get("reference"), "Practitioner") == (
                practitioner
            ):
                return {"reference": f"PractitionerRole/{role['id']}"}
    if isinstance(target, str):
        tail = "/".join(target.rstrip("/").split("/")[-2:])
        if tail in kept:
            return {"reference": tail}
    return None
