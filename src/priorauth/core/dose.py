"""The authorized service's rule: from a policy's `dosing` to the right product and quantity."""

from __future__ import annotations

import math
from dataclasses import dataclass

from priorauth.core.model import Dosing, Product

EPS = 1e-9


@dataclass(frozen=True, slots=True)
class Dose:
    """The right product and quantity for one request, in the policy's billing unit."""

    quantity: float
    unit: str  # the billing unit: kit, vial, mL, mg, dose ...
    ndc: str | None = None  # the product, where the policy names products
    vials: int | None = None  # vials the dose takes (or the product holds)
    label: str | None = None  # the product's name, where the policy gives one
    code: str | None = None  # the billing code, as SYSTEM|CODE, where the policy names one
    amount: str | None = None  # the dose itself where the unit does not say it: "12 mg"

    def describe(self) -> str:
        """'1 kit, NDC 12345-0180-18 (18 vials)' / '264 mL (33 vials)' / '120 units (12 mg)'."""
        what = f"{self.quantity:g} {_plural(self.unit, self.quantity)}"
        if self.amount:
            what += f" ({self.amount})"
        if self.ndc:
            what += f", NDC {self.ndc}"
        if self.label:
            what += f", {self.label}"
        if self.vials is not None and self.unit != "vial":
            what += f" ({self.vials} vials)"
        return what


@dataclass(frozen=True, slots=True)
class Worked:
    """How a weight became a dose: the arithmetic a reviewer checks."""

    dose: Dose | None  # None: the dose is outside what the policy's products hold
    amount: float  # the dose in the dose unit (per_kg * kg)
    formula: str  # "2 mL/kg x 88 kg"
    steps: str  # "= 176 mL", and the rounding to vials or to the billing unit
    note: str | None = None  # why there is no dose

    def worded(self) -> str:
        return f"{self.formula} {self.steps}"


class DoseRule:
    """A policy's dosing, compiled once: per-weight or fixed, with its products in order."""

    def __init__(self, dosing: Dosing) -> None:
        self.dosing = dosing
        self.unit = dosing.unit
        self.method = dosing.method
        self.per_weight = dosing.method in ("table", "per_kg")
        # Products by what they hold, smallest first: a dose takes the first that holds it.
        held = [(dosing.contents(p), p) for p in dosing.products]
        self._table: list[tuple[float, Product]] = sorted(
            ((v, p) for v, p in held if v is not None), key=lambda vp: vp[0]
        )

    def _smallest_vial(self, p: Product) -> float:
        if isinstance(p.vials, list):
            return min(v.size for v in p.vials)
        return self.dosing.vial.amount if self.dosing.vial else math.inf

    def fixed(self) -> Dose | None:
        """The dose that needs no weight (method fixed), else None."""
        d = self.dosing
        if d.method != "fixed":
            return None
        quantity = d.quantity
        if quantity is None and d.dose is not None and d.billing_unit is not None:
            quantity = round(d.dose.amount / d.billing_unit.amount, 9)
        if quantity is None:
            return None
        product = d.products[0] if len(d.products) == 1 else None
        return Dose(
            quantity,
            d.unit,
            product.ndc if product else None,
            d.vial_count(product) if product else None,
            product.label if product else None,
            d.billing_code,
            f"{d.dose.amount:g} {d.dose.unit}" if d.dose else None,
        )

    def for_weight(
        self, kg: float, height_cm: float | None = None, bmi_cap: float | None = None
    ) -> Worked:
        d = self.dosing
        assert d.per_kg is not None  # the model requires it for a per-weight method
        per, unit = d.per_kg.amount, d.per_kg.unit
        capped = ""
        if bmi_cap is not None and height_cm is not None and height_cm > 0:
            m2 = (height_cm / 100) ** 2
            bmi = kg / m2
            if bmi > bmi_cap + EPS:
                # Dosed by the weight the patient would have at the capped body mass index.
                capped = f" (BMI {bmi:.1f} > {bmi_cap:g}: dose weight {bmi_cap:g} × {m2:.4g} m²)"
                kg = round(bmi_cap * m2, 3)
        amount = per * kg
        formula = f"{per:g} {unit}/kg × {kg:g} kg{capped}"
        steps = f"= {amount:g} {unit}"
        if d.method == "table":
            for volume, p in self._table:
                # The weight is not rounded; the dose takes the smallest product that holds
                # it, and only one that wastes less than a whole vial: a dose below the
                # table's first row is not the first row's (the policy lists no product).
                if volume >= amount - EPS:
                    if volume - amount > self._smallest_vial(p) - EPS:
                        break
                    q = d.quantity or 1
                    return Worked(
                        Dose(q, d.unit, p.ndc, d.vial_count(p), p.label, d.billing_code),
                        amount,
                        formula,
                        steps,
                    )
            lo, hi = self._table[0][0], self._table[-1][0]
            note = f"the products hold {lo:g} to {hi:g} {unit}, and none is for this dose"
            return Worked(None, amount, formula, steps, note)
        by_dose = d.unit not in (unit, "vial") and d.quantity is not None
        units = d.billing_unit  # HCPCS units of their own size (10 mg a unit, say)
        if d.vial is not None:
            vials = math.ceil(amount / d.vial.amount - EPS)
            steps += f" → {vials} vials of {d.vial.amount:g} {unit}"
            q = float(vials) if d.unit == "vial" else vials * d.vial.amount
            if units is not None:
                q = round(vials * d.vial.amount / units.amount, 9)
                steps += f" = {q:g} units of {units.amount:g} {units.unit}"
                full = f"{vials * d.vial.amount:g} {unit}"
                dose = Dose(q, d.unit, None, vials, None, d.billing_code, full)
                return Worked(dose, amount, formula, steps)
            if by_dose:
                # Billed by the dose (one therapeutic dose, whatever it holds).
                q = d.quantity or 1
            held = f"{amount:g} {unit}" if by_dose else None
            dose = Dose(q, d.unit, None, vials, None, d.billing_code, held)
            return Worked(dose, amount, formula, steps)
        if by_dose:
            dose = Dose(
                d.quantity or 1, d.unit, None, None, None, d.billing_code, f"{amount:g} {unit}"
            )
            return Worked(dose, amount, formula, steps)
        step = d.increment
        if units is not None:
            # The dose in billing units, rounded as `round` says to `increment` units.
            n = amount / (units.amount * step)
            whole = _rounded(n, d.round)
            q = whole * step
            steps += f" = {q:g} units of {units.amount:g} {units.unit}"
            billed = f"{q * units.amount:g} {units.unit}"
            dose = Dose(q, d.unit, None, None, None, d.billing_code, billed)
            return Worked(dose, amount, formula, steps)
        q = _rounded(amount / step, d.round) * step
        if abs(q - amount) > EPS:
            steps += f", rounded {d.round} to {q:g} {d.unit}"
        return Worked(Dose(q, d.unit, None, None, None, d.billing_code), amount, formula, steps)


def _rounded(n: float, how: str) -> int:
    if how == "up":
        return math.ceil(n - EPS)
    if how == "down":
        return math.floor(n + EPS)
    return math.floor(n + 0.5)


def _plural(unit: str, q: float) -> str:
    # Words pluralise ("kits", "vials", "doses"); symbols ("mL", "mg") do not.
    if unit.isalpha() and unit.islower() and len(unit) > 2 and abs(q - 1) > EPS:
        return unit + "s"
    return unit
