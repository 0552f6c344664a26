"""Checks that compute: Cockcroft-Gault creatinine clearance and the kit for a body weight."""

from __future__ import annotations

import math

from priorauth.core.checks import CheckFn, CompileContext, State, compiler
from priorauth.core.checks.common import EPS, convert, passes, show, within
from priorauth.core.facts import Facts
from priorauth.core.model import CreatinineClearanceCheck, KitByWeightCheck
from priorauth.core.result import MET, NOT_MET, UNKNOWN, Derived, Finding, Status


def _clearance_deps(c: CreatinineClearanceCheck) -> list[str]:
    return [c.weight_from, c.sex_from]


@compiler("creatinine_clearance", depends=_clearance_deps)
def creatinine_clearance(cid: str, c: CreatinineClearanceCheck, ctx: CompileContext) -> CheckFn:
    measured = tuple(c.measured_codes)
    creat = tuple(c.creatinine_codes)
    window = c.window_days
    t = c.threshold

    def check(facts: Facts, st: State) -> Finding:
        since = st.since(window)
        for code in measured:
            rs = within(facts.observations.get(code, ()), since, st.as_of)
            if rs:
                o = rs[0]
                v = convert(o, c.measured_units)
                if v is None:
                    return Finding(
                        cid,
                        UNKNOWN,
                        lambda: f"Creatinine clearance {show(o)} is not in mL/min.",
                        (o,),
                    )
                ok = passes("ge", v, t, o.comparator)
                if ok is None:
                    return Finding(
                        cid,
                        UNKNOWN,
                        lambda: f"Creatinine clearance {show(o)} is only a bound below {t:g}.",
                        (o,),
                    )
                return Finding(
                    cid,
                    MET if ok else NOT_MET,
                    lambda: (
                        f"Measured creatinine clearance {show(o)} "
                        f"({'≥' if ok else '<'} {t:g} mL/min)."
                    ),
                    (o,),
                    v,
                )
        crs = [
            o for code in creat for o in within(facts.observations.get(code, ()), since, st.as_of)
        ]
        if not crs:
            return Finding(
                cid,
                UNKNOWN,
                lambda: f"No creatinine clearance or serum creatinine within {window} days.",
            )
        cr = max(crs, key=lambda o: o.when)  # type: ignore[arg-type, return-value]
        scr = convert(cr, c.creatinine_units)
        if scr is None or scr <= 0 or cr.comparator is not None:
            return Finding(
                cid, UNKNOWN, lambda: f"Serum creatinine {show(cr)} is not usable.", (cr,)
            )
        weight = st.findings[c.weight_from]
        if weight.status != MET or weight.value is None:
            return Finding(
                cid,
                UNKNOWN,
                "Cockcroft-Gault needs a current body weight, and there is none.",
                (cr,),
            )
        b = facts.patient.birth_date
        if b is None:
            return Finding(cid, UNKNOWN, "Cockcroft-Gault needs the patient's age.", (cr,))
        a = st.as_of
        age = a.year - b.year - ((a.month, a.day) < (b.month, b.day))
        male = (140 - age) * weight.value / (72 * scr)
        sex = st.findings[c.sex_from].status
        female = male * c.female_factor
        low, high = {MET: (male, male), NOT_MET: (female, female)}.get(sex, (female, male))
        status: Status = MET if low >= t - EPS else NOT_MET if high < t - EPS else UNKNOWN
        est = low  # the conservative estimate is the one reported
        inputs = (cr.ref, *(e.ref for e in weight.evidence if hasattr(e, "ref")))
        formula = f"(140 − {age}) × {weight.value:.1f} kg / (72 × {scr:.2f} mg/dL)" + (
            f" × {c.female_factor:g}" if sex == NOT_MET else ""
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
        return Finding(cid, status, reason, (cr, ev), est)

    return check


def _weight_dep(c: KitByWeightCheck) -> list[str]:
    return [c.weight_from]


@compiler("kit_by_weight", depends=_weight_dep)
def kit_by_weight(cid: str, c: KitByWeightCheck, ctx: CompileContext) -> CheckFn:
    dosing = ctx.policy.dosing
    if dosing is None:
        raise ValueError(f"{cid}: kit_by_weight needs the policy's dosing table")
    per_kg, vial = dosing.ml_per_kg, dosing.vial_ml
    lo, hi = min(ctx.kits), max(ctx.kits)

    def check(facts: Facts, st: State) -> Finding:
        w = st.findings[c.weight_from]
        if w.status != MET or w.value is None:
            return Finding(cid, UNKNOWN, "No current body weight, so no kit can be chosen.")
        volume = per_kg * w.value
        # The weight is not rounded; the vial count is rounded up (50.0 kg -> 10, 50.1 -> 11).
        vials = math.ceil(volume / vial - EPS)
        calc = Derived(
            "vials",
            vials,
            None,
            tuple(e.ref for e in w.evidence if hasattr(e, "ref")),
            f"ceil({per_kg:g} mL/kg × {w.value:g} kg / {vial:g} mL)",
        )
        kit = ctx.kits.get(vials)
        if kit is None:
            return Finding(
                cid,
                UNKNOWN,
                lambda: (
                    f"{w.value:g} kg needs {vials} vials; kits hold {lo} to {hi}: "
                    "the Medical Director must decide the dose."
                ),
                (calc,),
                float(vials),
            )
        return Finding(
            cid,
            MET,
            lambda: f"{w.value:g} kg → {vials} vials → kit NDC {kit.ndc}.",
            (calc, Derived("kit NDC", kit.ndc)),
            float(vials),
        )

    return check
