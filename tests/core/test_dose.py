"""The authorized service: each dosing method's product and quantity, at the edges."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from priorauth.core.dose import DoseRule
from priorauth.core.evaluator import _modified
from priorauth.core.model import Dosing
from priorauth.core.result import Requested


def rule(**dosing: object) -> DoseRule:
    return DoseRule(Dosing.model_validate(dosing))


PER_ML = {
    "unit": "mL",
    "method": "per_kg",
    "per_kg": {"amount": 3.0, "unit": "mL"},
    "vial": {"amount": 8.0, "unit": "mL"},
    "billing_code": "hcpcs|J1412",
}


@pytest.mark.parametrize(
    ("kg", "quantity", "vials"),
    [
        (88.0, 264.0, 33),  # 264 mL is exactly 33 vials
        (88.1, 272.0, 34),  # 264.3 mL needs a 34th vial, billed whole
        (2.0, 8.0, 1),
        (8 / 3, 8.0, 1),  # exactly one vial, within rounding
    ],
)
def test_per_kg_in_ml_rounds_up_to_whole_vials(kg: float, quantity: float, vials: int) -> None:
    worked = rule(**PER_ML).for_weight(kg)
    assert worked.dose is not None
    assert (worked.dose.quantity, worked.dose.unit, worked.dose.vials) == (quantity, "mL", vials)
    assert worked.dose.code == "hcpcs|J1412" and worked.dose.ndc is None


def test_per_kg_billed_by_the_vial_counts_vials() -> None:
    worked = rule(**{**PER_ML, "unit": "vial"}).for_weight(88.1)
    assert worked.dose is not None and (worked.dose.quantity, worked.dose.unit) == (34, "vial")
    assert worked.dose.describe() == "34 vials"


@pytest.mark.parametrize(
    ("round_", "increment", "kg", "quantity"),
    [
        ("up", 1, 70.2, 702.0),  # 10 mg/kg x 70.2 kg = 702 mg exactly; 70.25 -> 703
        ("up", 1, 70.25, 703.0),
        ("down", 1, 70.25, 702.0),
        ("nearest", 1, 70.25, 703.0),
        ("nearest", 1, 70.24, 702.0),
        ("up", 100, 70.0, 700.0),
        ("up", 100, 70.01, 800.0),
    ],
)
def test_per_kg_without_vials_rounds_to_the_billing_increment(
    round_: str, increment: float, kg: float, quantity: float
) -> None:
    r = rule(
        unit="mg",
        method="per_kg",
        per_kg={"amount": 10.0, "unit": "mg"},
        round=round_,
        increment=increment,
    )
    worked = r.for_weight(kg)
    assert worked.dose is not None and worked.dose.quantity == pytest.approx(quantity)


def test_fixed_needs_no_weight() -> None:
    r = rule(
        unit="mg",
        method="fixed",
        quantity=12,
        products=[{"ndc": "64406-0058-01", "label": "12 mg/5 mL vial"}],
    )
    assert not r.per_weight
    dose = r.fixed()
    assert dose is not None and (dose.quantity, dose.unit, dose.ndc) == (12, "mg", "64406-0058-01")


def test_none_leaves_the_quantity_to_the_reviewer() -> None:
    r = rule(unit="dose", method="none")
    assert r.fixed() is None and not r.per_weight


KITS = {
    "unit": "kit",
    "method": "table",
    "per_kg": {"amount": 2.0, "unit": "mL"},
    "vial": {"amount": 10.0, "unit": "mL"},
    "quantity": 1,
    "products": [
        {"ndc": "0053-0100-10", "vials": 10},
        # Two kits with the same vial count, of different vial sizes: both are kept.
        {"ndc": "00053-011-11", "vials": [{"count": 10, "size": 10}, {"count": 1, "size": 5}]},
        {"ndc": "0053-0110-1", "vials": 11},  # 4-4-1 is not an NDC layout: refused below
    ],
}


def test_an_unreadable_ndc_layout_is_refused() -> None:
    with pytest.raises(ValidationError, match="is not a 4-4-2"):
        Dosing.model_validate(KITS)


@pytest.mark.parametrize(
    ("kg", "ndc", "vials"),
    [
        (50.0, "0053-0100-10", 10),  # 100 mL
        (50.1, "00053-011-11", 11),  # 100.2 mL: the 105 mL kit, not the 110 mL one
        (52.5, "00053-011-11", 11),  # 105 mL
        (52.6, "53100-0110-11", 11),  # 105.2 mL: the 110 mL kit (5-4-2 NDC)
        (55.0, "53100-0110-11", 11),
        (55.1, None, None),  # beyond the table: the reviewer decides
        (44.9, None, None),  # below the table: more than a vial would be wasted
    ],
)
def test_table_takes_the_smallest_product_that_holds_the_dose(
    kg: float, ndc: str | None, vials: int | None
) -> None:
    products = [*KITS["products"][:2], {"ndc": "53100-0110-11", "vials": 11}]  # type: ignore[index]
    worked = rule(**{**KITS, "products": products}).for_weight(kg)
    got = worked.dose
    assert (got.ndc if got else None, got.vials if got else None) == (ndc, vials)
    if got is None:
        assert worked.note and "none is for this dose" in worked.note


def test_two_products_holding_the_same_dose_are_refused() -> None:
    twins = [{"ndc": "0053-0100-10", "vials": 10}, {"ndc": "0053-0101-10", "vials": 10}]
    with pytest.raises(ValidationError, match="hold the same dose"):
        Dosing.model_validate({**KITS, "products": twins})


@pytest.mark.parametrize(
    ("dosing", "message"),
    [
        ({"method": "per_kg", "unit": "mL"}, "needs per_kg"),
        ({"method": "fixed", "unit": "mg"}, "needs quantity"),
        ({"method": "table", "per_kg": {"amount": 2, "unit": "mL"}}, "needs products"),
        (
            {"method": "per_kg", "unit": "mg", "per_kg": {"amount": 3, "unit": "mL"}},
            "give the vial size",
        ),
        (
            {**PER_ML, "vial": {"amount": 8, "unit": "mg"}},
            "use one unit",
        ),
    ],
)
def test_incomplete_dosing_is_refused(dosing: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Dosing.model_validate(dosing)


def test_the_kit_table_of_older_files_still_loads() -> None:
    d = Dosing.model_validate(
        {"ml_per_kg": 2.0, "vial_ml": 10.0, "kits": [{"vials": 10, "ndc": "0053-0100-10"}]}
    )
    assert (d.method, d.unit, d.per_kg, d.vial) == ("table", "kit", d.per_kg, d.vial)
    assert d.per_kg is not None and d.per_kg.amount == 2.0 and d.products[0].vials == 10


@pytest.mark.parametrize(
    ("asked", "modified"),
    [
        (Requested(None, 264.0, 1, "mL"), False),
        (Requested(None, 200.0, 1, "mL"), True),  # too little for the weight
        (Requested(None, None, 1), False),  # no quantity asked: the right one is approved
        (Requested("68135-0927-01", 264.0, 1), False),  # the policy names no product
    ],
)
def test_approve_modified_compares_the_quantity_in_the_billing_unit(
    asked: Requested, modified: bool
) -> None:
    dose = rule(**PER_ML).for_weight(88.0).dose
    assert _modified(asked, dose) is modified


def test_approve_modified_compares_the_product_in_any_ndc_layout() -> None:
    dose = rule(**{**KITS, "products": KITS["products"][:2]}).for_weight(50.0).dose  # type: ignore[index]
    assert not _modified(Requested("00053-0100-10", 1.0, 1), dose)
    assert not _modified(Requested("00053010010", 1.0, 1), dose)
    assert _modified(Requested("00053-0011-11", 1.0, 1), dose)
    assert _modified(Requested("0053-0100-10", 2.0, 1), dose)  # two kits asked
    assert not _modified(Requested("0053-0100-10", 2.0, 1), None)  # nothing to compare


BY_DOSE = {
    "unit": "dose",
    "method": "per_kg",
    "per_kg": {"amount": 0.05, "unit": "mL"},
    "vial": {"amount": 1.0, "unit": "mL"},
    "quantity": 1,
}


@pytest.mark.parametrize(
    ("kg", "cm", "dose_kg", "vials"),
    [
        (80.0, 180.0, 80.0, 4),  # BMI 24.7: the body weight
        (97.2, 180.0, 97.2, 5),  # BMI 30.0 exactly: still the body weight
        (120.0, 180.0, 97.2, 5),  # BMI 37: the weight at BMI 30, 30 x 1.8^2 = 97.2 kg
        (120.0, None, 120.0, 6),  # no cap asked for
    ],
)
def test_a_bmi_cap_doses_by_the_capped_weight(
    kg: float, cm: float | None, dose_kg: float, vials: int
) -> None:
    worked = rule(**BY_DOSE).for_weight(kg, cm, 30.0 if cm else None)
    assert worked.amount == pytest.approx(0.05 * dose_kg)
    assert worked.dose is not None
    # Billed by the dose: one dose whatever it holds; the vials are what it takes.
    assert (worked.dose.quantity, worked.dose.unit, worked.dose.vials) == (1, "dose", vials)
    assert ("BMI" in worked.formula) is (dose_kg != kg)


def test_a_fixed_dose_in_small_billing_units() -> None:
    r = rule(
        unit="unit",
        method="fixed",
        billing_unit={"amount": 0.1, "unit": "mg"},
        dose={"amount": 12, "unit": "mg"},
    )
    dose = r.fixed()
    assert dose is not None and dose.quantity == 120 and dose.describe() == "120 units (12 mg)"
    with pytest.raises(ValidationError, match="is not the dose"):
        Dosing.model_validate(
            {
                "unit": "unit",
                "method": "fixed",
                "quantity": 12,
                "billing_unit": {"amount": 0.1, "unit": "mg"},
                "dose": {"amount": 12, "unit": "mg"},
            }
        )


MG_10 = {
    "unit": "unit",
    "method": "per_kg",
    "per_kg": {"amount": 10.0, "unit": "mg"},
    "billing_unit": {"amount": 10.0, "unit": "mg"},
}


@pytest.mark.parametrize(
    ("dosing", "kg", "quantity", "text"),
    [
        (MG_10, 72.4, 73, "73 units (730 mg)"),  # 724 mg in 10 mg units, rounded up
        (MG_10, 72.0, 72, "72 units (720 mg)"),
        ({**MG_10, "round": "nearest"}, 72.44, 72, "72 units (720 mg)"),
        (
            {**MG_10, "vial": {"amount": 100.0, "unit": "mg"}},
            72.4,
            80,
            "80 units (800 mg) (8 vials)",
        ),  # whole 100 mg vials billed
    ],
)
def test_per_kg_in_billing_units_of_their_own_size(
    dosing: dict[str, object], kg: float, quantity: float, text: str
) -> None:
    worked = rule(**dosing).for_weight(kg)
    assert worked.dose is not None
    assert (worked.dose.quantity, worked.dose.describe()) == (quantity, text)


def test_a_billing_unit_in_another_unit_than_the_dose_is_refused() -> None:
    with pytest.raises(ValidationError, match="use one unit"):
        Dosing.model_validate({**MG_10, "billing_unit": {"amount": 1, "unit": "mL"}})


@pytest.mark.parametrize(
    ("asked", "administrations", "up_to", "modified"),
    [
        (264.0, 1, False, False),
        (528.0, 2, False, False),  # both administrations asked at once
        (528.0, 1, False, True),
        (200.0, 1, True, False),  # "does not exceed": less stands
        (272.0, 1, True, True),  # more is still modified
        (200.0, 1, False, True),
    ],
)
def test_quantity_per_administration_or_in_total_and_up_to(
    asked: float, administrations: int, up_to: bool, modified: bool
) -> None:
    dose = rule(**PER_ML).for_weight(88.0).dose
    assert _modified(Requested(None, asked, 1), dose, administrations, up_to) is modified
