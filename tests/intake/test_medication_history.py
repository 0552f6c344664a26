"""Medication history in a PAS bundle: codes and the documented period of use."""

from __future__ import annotations

from datetime import date
from typing import Any

import orjson
import pytest

from priorauth.core.facts import NDC, RXNORM
from priorauth.demo.samples import hemgenix_request
from priorauth.intake.pas_bundle import read_bundle
from tests.intake.bundles import add_entry, patient_ref

CONCEPT = {
    "text": "Factor product",
    "coding": [
        {"system": RXNORM, "code": "1234", "display": "Brand X"},
        {"system": NDC, "code": "0053-0150-15"},
    ],
}


def _read(res: dict[str, Any]) -> Any:
    bundle = hemgenix_request(name="t-med-history")
    add_entry(bundle, {"id": "m1", "subject": patient_ref(bundle), **res})
    facts = read_bundle(orjson.dumps(bundle))
    (m,) = facts.medications
    return m, facts.notes


@pytest.mark.parametrize(
    ("res", "start", "end"),
    [
        (
            {
                "resourceType": "MedicationStatement",
                "status": "completed",
                "effectivePeriod": {"start": "2024-01-02", "end": "2025-01-02T10:00:00Z"},
            },
            date(2024, 1, 2),
            date(2025, 1, 2),
        ),
        (
            {
                "resourceType": "MedicationStatement",
                "status": "active",
                "effectivePeriod": {"start": "2024-01-02"},
            },
            date(2024, 1, 2),
            None,
        ),
        (
            {
                "resourceType": "MedicationStatement",
                "status": "completed",
                "effectiveDateTime": "2025-03-04",
            },
            date(2025, 3, 4),
            date(2025, 3, 4),
        ),
        (
            {
                "resourceType": "MedicationRequest",
                "status": "completed",
                "intent": "order",
                "authoredOn": "2023-06-01",
                "dispenseRequest": {"validityPeriod": {"start": "2023-06-01", "end": "2024-06-01"}},
            },
            date(2023, 6, 1),
            date(2024, 6, 1),
        ),
        (
            {
                "resourceType": "MedicationRequest",
                "status": "active",
                "intent": "order",
                "authoredOn": "2023-06-01",
            },
            date(2023, 6, 1),
            date(2023, 6, 1),
        ),
        ({"resourceType": "MedicationStatement", "status": "completed"}, None, None),
        # a partial date cannot be placed: undated
        (
            {
                "resourceType": "MedicationStatement",
                "status": "completed",
                "effectiveDateTime": "2024-05",
            },
            None,
            None,
        ),
    ],
)
def test_the_period_of_use_and_codes(
    res: dict[str, Any], start: date | None, end: date | None
) -> None:
    m, notes = _read({**res, "medicationCodeableConcept": CONCEPT})
    assert (m.start, m.end) == (start, end)
    assert m.status == res["status"]
    assert m.active == (res["status"] == "active")
    assert m.codes == ((RXNORM, "1234"), (NDC, "0053-0150-15"))
    assert m.names == "factor product | brand x"
    assert notes == ()


def test_an_unreadable_date_leaves_the_use_undated_with_a_note() -> None:
    m, notes = _read(
        {
            "resourceType": "MedicationStatement",
            "status": "completed",
            "medicationCodeableConcept": CONCEPT,
            "effectivePeriod": {"start": "last spring"},
        }
    )
    assert (m.start, m.end) == (None, None)
    assert notes == ("MedicationStatement/m1: a date of use cannot be read, so the use is undated",)
