"""Helpers for tests that edit PAS request bundles built by priorauth.demo.samples."""

from __future__ import annotations

from typing import Any

Bundle = dict[str, Any]


def resource(bundle: Bundle, kind: str, n: int = 0) -> dict[str, Any]:
    """The n-th resource of a type in the bundle (mutable: tests edit it in place)."""
    found: list[dict[str, Any]] = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind
    ]
    return found[n]


def observation(bundle: Bundle, loinc: str) -> dict[str, Any]:
    for entry in bundle["entry"]:
        res: dict[str, Any] = entry["resource"]
        if res["resourceType"] == "Observation" and res["code"]["coding"][0]["code"] == loinc:
            return res
    raise AssertionError(f"no Observation {loinc}")


def qr_item(bundle: Bundle, link_id: str) -> dict[str, Any]:
    def walk(items: list[dict[str, Any]]) -> dict[str, Any] | None:
        for item in items:
            if item["linkId"] == link_id:
                return item
            found = walk(item.get("item", []))
            if found is not None:
                return found
        return None

    found = walk(resource(bundle, "QuestionnaireResponse")["item"])
    assert found is not None
    return found


def add_entry(bundle: Bundle, res: dict[str, Any]) -> None:
    bundle["entry"].append({"fullUrl": f"urn:uuid:{res['id']}", "resource": res})


def patient_ref(bundle: Bundle) -> dict[str, str]:
    return dict(resource(bundle, "Claim")["patient"])
