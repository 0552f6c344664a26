"""Checks that compute: Cockcroft-Gault creatinine clearance and the kit for a body weight."""

from __future__ import annotations

import math
from datetime import date, timedelta

from priorauth.core.checks import CheckFn, CompileContext, State, compiler
from priorauth.core.checks.common import (
    EPS,
    convert,
    lab_codes,
    latest_within,
    passes,
    show,
    within,
)
from priorauth.core.facts import Facts, Observation
from priorauth.core.model import CreatinineClearanceCheck, KitByWeightCheck
from priorauth.core.result import (
    MET,
    NOT_MET,
    UNKNOWN,
    Derived,
    Evidence,
    Explanation,
    KitChoice,
    Raw,
    Status,
    explain,
)


def _refs(evidence: tuple[Evidence, ...]) -> tuple[str, ...]:
    return tuple(e.ref for e in evidence if hasattr(e, "ref"))


def _when(o: Observation) -> date:
    return o.when  # type: ignore[return-value]  # only dated results are in a window


def _clearance_deps(c: CreatinineClearanceCheck) -> list[str]:
    return [c.weight_from, c.sex_from]


@compiler("creatinine_clearance", depends=_clearance_deps)
def creatinine_clearance(cid: str, c: CreatinineClearanceCheck, ctx: CompileContext) -> CheckFn:
    measured = lab_codes(c.measured_codes, ctx.policy.systems)[0]
    creat = lab_codes(c.creatinine_codes, ctx.policy.systems)[0]
    window = c.window_days
    delta = timedelta(days=window)
    t = c.threshold
    ff = c.female_factor
    no_weight = "Cockcroft-Gault needs a current body weight, and there is none."

    def check(facts: Facts, st: State) -> Raw:
        as_of = st.as_of
        since = as_of - delta
        observations = facts.observations
        for code in measured:
            o = latest_within(observations.get(code, ()), since, as_of)
            if o is not None:
                return measured_result(o)
        crs = [o for code in creat for o in within(observations.get(code, ()), since, as_of)]
        return estimated(facts, st, crs)

    def measured_result(o: Observation) -> Raw:
        v = convert(o, c.measured_units)
        if v is None:
            return (
                UNKNOWN,
                None,
                lambda: (f"Creatinine clearance {show(o)} is not in mL/min.", (o,)),
            )
        ok = passes("ge", v, t, o.comparator)
        if ok is None:
            return (
                UNKNOWN,
                None,
                lambda: (
                    f"Creatinine clearance {show(o)} is only a bound below {t:g}.",
                    (o,),
                ),
            )
        return (
            MET if ok else NOT_MET,
            v,
            lambda: (
                f"Measured creatinine clearance {show(o)} ({'≥' if ok else '<'} {t:g} mL/min).",
                (o,),
            ),
        )

    def estimated(facts: Facts, st: State, crs: list[Observation]) -> Raw:
        as_of = st.as_of
        if not crs:
            return (
                UNKNOWN,
                None,
                (f"No creatinine clearance or serum creatinine within {window} days.", ()),
            )
        cr = crs[0]
        if len(crs) > 1:
            cr = max(crs, key=_when)
        scr = convert(cr, c.creatinine_units)
        if scr is None or scr <= 0 or cr.comparator is not None:
            return (UNKNOWN, None, (unusable, cr))
        weight = st.findings[c.weight_from]
        kg = weight[1]
        if weight[0] != MET or kg is None:
            return (UNKNOWN, None, (no_weight, (cr,)))
        b = facts.patient.birth_date
        if b is None:
            return (UNKNOWN, None, ("Cockcroft-Gault needs the patient's age.", (cr,)))
        age = as_of.year - b.year - ((as_of.month, as_of.day) < (b.month, b.day))
        male = (140 - age) * kg / (72 * scr)
        sex = st.findings[c.sex_from][0]
        female = male * ff
        if sex == MET:
            low = high = male
        elif sex == NOT_MET:
            low = high = female
        else:
            low, high = female, male
        status: Status = MET if low >= t - EPS else NOT_MET if high < t - EPS else UNKNOWN
        # The conservative estimate (low) is the one reported.
        return (status, low, (explained, status, cr, weight, age, kg, scr, sex, low, female, male))

    def unusable(cr: Observation) -> Explanation:
        return f"Serum creatinine {show(cr)} is not usable.", (cr,)

    def explained(
        status: Status,
        cr: Observation,
        weight: Raw,
        age: int,
        kg: float,
        scr: float,
        sex: Status,
        est: float,
        female: float,
        male: float,
    ) -> Explanation:
        inputs = (cr.ref, *_refs(explain(weight[2])[1]))
        formula = f"(140 − {age}) × {kg:.1f} kg / (72 × {scr:.2f} mg/dL)" + (
            f" × {ff:g}" if sex == NOT_MET else ""
        )
        ev = Derived(
            "Cockcroft-Gault creatinine clearance", round(est, 1), "mL/min", inputs, formula
        )
        if status == UNKNOWN:
            reason = (
                f"Estimated creatinine clearance is {female:.1f} to {male:.1f} mL/min "
                f"depending on sex, which is not known; threshold {t:g}."
            )
        else:
            reason = (
                f"Estimated (Cockcroft-Gault) creatinine clearance {est:.1f} mL/min "
                f"({'≥' if status == MET else '<'} {t:g}) from {formula}."
            )
        return reason, (cr, ev)

    return check


def _weight_dep(c: KitByWeightCheck) -> list[str]:
    return [c.weight_from]


@compiler("kit_by_weight", depends=_weight_dep)
def kit_by_weight(cid: str, c: KitByWeightCheck, ctx: CompileContext) -> CheckFn:
    dosing = ctx.policy.dosing
    if dosing is None:
        raise ValueError(f"{cid}: kit_by_weight needs the policy's dosing table")
    per_kg, vial = dosing.ml_per_kg, dosing.vial_ml
    kits = ctx.kits
    lo, hi = min(kits), max(kits)
    no_weight: Raw = (UNKNOWN, None, ("No current body weight, so no kit can be chosen.", ()))
    weight_from = c.weight_from

    def check(facts: Facts, st: State) -> Raw:
        w = st.findings[weight_from]
        kg = w[1]
        if w[0] != MET or kg is None:
            return no_weight
        # The weight is not rounded; the vial count is rounded up (50.0 kg -> 10, 50.1 -> 11).
        vials = math.ceil(per_kg * kg / vial - EPS)
        kit = kits.get(vials)
        if kit is None:
            return (UNKNOWN, float(vials), (no_kit, w, kg, vials))
        return (MET, float(vials), (chosen, w, kg, vials, kit))

    def calc(w: Raw, kg: float, vials: int) -> Derived:
        return Derived(
            "vials",
            vials,
            None,
            _refs(explain(w[2])[1]),
            f"ceil({per_kg:g} mL/kg × {kg:g} kg / {vial:g} mL)",
        )

    def no_kit(w: Raw, kg: float, vials: int) -> Explanation:
        return (
            f"{kg:g} kg needs {vials} vials; kits hold {lo} to {hi}: "
            "the Medical Director must decide the dose.",
            (calc(w, kg, vials),),
        )

    def chosen(w: Raw, kg: float, vials: int, kit: KitChoice) -> Explanation:
        return (
            f"{kg:g} kg → {vials} vials → kit NDC {kit.ndc}.",
            (calc(w, kg, vials), Derived("kit NDC", kit.ndc)),
        )

    return check
