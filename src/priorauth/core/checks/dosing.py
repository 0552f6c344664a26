"""Checks that compute: Cockcroft-Gault creatinine clearance and the dose for a body weight."""

from __future__ import annotations

from datetime import date, timedelta
from typing import get_args

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
from priorauth.core.dose import DoseRule, Worked
from priorauth.core.facts import Facts, Observation
from priorauth.core.model import CreatinineClearanceCheck, DoseByWeightCheck
from priorauth.core.result import (
    MET,
    NOT_MET,
    UNKNOWN,
    Derived,
    Evidence,
    Explanation,
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


def _dose_deps(c: DoseByWeightCheck) -> list[str]:
    return [x for x in (c.weight_from, c.height_from) if x is not None]


def _dose(cid: str, c: DoseByWeightCheck, ctx: CompileContext) -> CheckFn:
    rule = ctx.dose
    if rule is None:
        raise ValueError(f"{cid}: {c.kind} needs the policy's dosing")
    if rule.per_weight and c.weight_from is None:
        raise ValueError(f"{cid}: dosing by weight ({rule.method}) needs weight_from")
    if not rule.per_weight:
        return _fixed(cid, rule)
    no_weight: Raw = (
        UNKNOWN,
        None,
        ("No current body weight, so the dose cannot be worked out.", ()),
    )
    no_height: Raw = (
        UNKNOWN,
        None,
        (f"No height, so the dose weight (body mass index above {c.bmi_cap}) is not known.", ()),
    )
    weight_from, height_from, cap = c.weight_from, c.height_from, c.bmi_cap
    unit = rule.unit

    def check(facts: Facts, st: State) -> Raw:
        w = st.findings[weight_from]  # type: ignore[index]  # per_weight has weight_from
        kg = w[1]
        if w[0] != MET or kg is None:
            return no_weight
        cm = None
        h: Raw | None = None
        if height_from is not None:
            h = st.findings[height_from]
            cm = h[1]
            if h[0] != MET or cm is None:
                return no_height
        worked = rule.for_weight(kg, cm, cap)
        if worked.dose is None:
            return (UNKNOWN, None, (out_of_range, w, h, worked))
        return (MET, worked.dose.quantity, (chosen, w, h, worked))

    def calc(w: Raw, h: Raw | None, worked: Worked) -> Derived:
        inputs = _refs(explain(w[2])[1]) + (_refs(explain(h[2])[1]) if h else ())
        return Derived("dose", round(worked.amount, 3), _dose_unit(rule), inputs, worked.formula)

    def out_of_range(w: Raw, h: Raw | None, worked: Worked) -> Explanation:
        return (
            f"{worked.worded()}: {worked.note}, so the reviewer must decide the dose.",
            (calc(w, h, worked),),
        )

    def chosen(w: Raw, h: Raw | None, worked: Worked) -> Explanation:
        dose = worked.dose
        assert dose is not None
        evidence = [calc(w, h, worked), Derived("quantity", dose.quantity, unit)]
        if dose.ndc:
            evidence.append(Derived("product NDC", dose.ndc))
        if dose.vials is not None:
            evidence.append(Derived("vials", dose.vials))
        said = dose.describe()
        if said == f"{worked.amount:g} {_dose_unit(rule)}":
            return f"{worked.worded()}.", tuple(evidence)  # the dose is its own quantity
        return f"{worked.worded()} → {said}.", tuple(evidence)

    return check


def _fixed(cid: str, rule: DoseRule) -> CheckFn:
    dose = rule.fixed()
    if dose is None:
        # method none: no rule to verify against; a person decides, never the engine.
        left: Raw = (
            UNKNOWN,
            None,
            ("The policy sets no dose rule: the reviewer decides the quantity.", ()),
        )
        return lambda facts, st: left
    found: Raw = (
        MET,
        dose.quantity,
        (
            f"The policy's dose: {dose.describe()}.",
            (Derived("quantity", dose.quantity, dose.unit),),
        ),
    )
    return lambda facts, st: found


def _dose_unit(rule: DoseRule) -> str | None:
    per_kg = rule.dosing.per_kg
    return per_kg.unit if per_kg else None


for _kind in get_args(DoseByWeightCheck.model_fields["kind"].annotation):
    compiler(_kind, depends=_dose_deps)(_dose)
