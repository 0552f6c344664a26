"""Laboratory checks: thresholds, presence in a window, negative results, screens, history."""

from __future__ import annotations

from priorauth.core.checks import CheckFn, CompileContext, State, compiler
from priorauth.core.checks.common import (
    Classifier,
    attested,
    convert,
    passes,
    results_for,
    show,
    up_to,
    within,
)
from priorauth.core.codes import IcdPatterns
from priorauth.core.facts import ICD10CM, Facts, Observation
from priorauth.core.model import (
    HistoryOfPositiveCheck,
    InfectionScreenCheck,
    LabNegativeCheck,
    LabPresentCheck,
    LabThresholdCheck,
)
from priorauth.core.result import MET, NOT_MET, UNKNOWN, Finding

_SYMBOL = {"le": "≤", "lt": "<", "ge": "≥", "gt": ">"}


def _bound_unsettled(cid: str, label: str, o: Observation, rule: str) -> Finding:
    return Finding(
        cid, UNKNOWN, lambda: f"{label} {show(o)} is only a bound; it does not settle {rule}.", (o,)
    )


@compiler("lab_threshold")
def lab_threshold(cid: str, c: LabThresholdCheck, ctx: CompileContext) -> CheckFn:
    read = results_for(tuple(c.codes))
    codes = "/".join(c.codes)
    window = c.window_days
    sym = _SYMBOL[c.op]
    rule = (
        f"{sym} {c.uln_multiple:g} × ULN"
        if c.uln_multiple is not None
        else f"{sym} {c.value:g} {c.units.canonical if c.units else ''}".rstrip()
    )
    scope = f"within {window} days" if window is not None else "of any date"

    def judge(o: Observation) -> Finding:
        if c.uln_multiple is not None:
            if o.value is None:
                return Finding(
                    cid, UNKNOWN, lambda: f"{c.label} {show(o)} has no numeric value.", (o,)
                )
            if o.uln is None or o.uln <= 0:
                return Finding(
                    cid, UNKNOWN, lambda: f"{c.label} {show(o)} has no upper limit of normal.", (o,)
                )
            if o.uln_unit and o.unit and o.uln_unit != o.unit:
                return Finding(
                    cid,
                    UNKNOWN,
                    lambda: f"{c.label} {show(o)}: ULN is in {o.uln_unit}, not {o.unit}.",
                    (o,),
                )
            limit = c.uln_multiple * o.uln
            ok = passes(c.op, o.value, limit, o.comparator)
            if ok is None:
                return _bound_unsettled(cid, c.label, o, rule)
            ratio = o.value / o.uln
            return Finding(
                cid,
                MET if ok else NOT_MET,
                lambda: (
                    f"{c.label} {show(o)} is {ratio:.2f} × ULN {o.uln:g} "
                    f"({'within' if ok else 'outside'} {rule})."
                ),
                (o,),
                ratio,
            )
        assert c.units is not None and c.value is not None
        v = convert(o, c.units)
        if v is None:
            return Finding(
                cid, UNKNOWN, lambda: f"{c.label} {show(o)} is not in an accepted unit.", (o,)
            )
        ok = passes(c.op, v, c.value, o.comparator)
        if ok is None:
            return _bound_unsettled(cid, c.label, o, rule)
        return Finding(
            cid,
            MET if ok else NOT_MET,
            lambda: f"{c.label} {show(o)} {'meets' if ok else 'does not meet'} {rule}.",
            (o,),
            v,
        )

    def check(facts: Facts, st: State) -> Finding:
        allr = read(facts)
        rs = up_to(allr, st.as_of) if window is None else within(allr, st.since(window), st.as_of)
        if not rs:
            if allr:
                return Finding(
                    cid,
                    UNKNOWN,
                    lambda: f"No {c.label} (LOINC {codes}) {scope}; the latest is {show(allr[0])}.",
                    (allr[0],),
                )
            return Finding(cid, UNKNOWN, lambda: f"No {c.label} result (LOINC {codes}) {scope}.")
        if c.pick == "latest":
            return judge(rs[0])
        readable = [
            (v, o) for o in rs if (v := (convert(o, c.units) if c.units else o.value)) is not None
        ]
        if not readable:
            return Finding(cid, UNKNOWN, lambda: f"No readable {c.label} value {scope}.", tuple(rs))
        pick = min if c.pick == "lowest" else max
        _, o = pick(readable, key=lambda t: t[0])
        f = judge(o)
        if len(readable) > 1:
            f.reason = f"{f.reason[:-1]}; the {c.pick} of {len(readable)} results."
        return f

    return check


@compiler("lab_present")
def lab_present(cid: str, c: LabPresentCheck, ctx: CompileContext) -> CheckFn:
    read = results_for(tuple(c.codes))
    codes = "/".join(c.codes)
    window = c.window_days

    def check(facts: Facts, st: State) -> Finding:
        allr = read(facts)
        rs = within(allr, st.since(window), st.as_of)
        if not rs:
            if allr:
                return Finding(
                    cid,
                    UNKNOWN,
                    lambda: (
                        f"No {c.label} (LOINC {codes}) within {window} days; "
                        f"the latest is {show(allr[0])}."
                    ),
                    (allr[0],),
                )
            return Finding(
                cid, UNKNOWN, lambda: f"No {c.label} (LOINC {codes}) within {window} days."
            )
        o = rs[0]
        if c.units is None:
            return Finding(cid, MET, lambda: f"{c.label} {show(o)}, within {window} days.", (o,))
        v = convert(o, c.units)
        if v is None or v <= 0 or o.comparator is not None:
            return Finding(
                cid,
                UNKNOWN,
                lambda: f"{c.label} {show(o)} is not a usable value in an accepted unit.",
                (o,),
            )
        note = "" if o.unit == c.units.canonical else f" = {v:.1f} {c.units.canonical}"
        return Finding(
            cid, MET, lambda: f"{c.label} {show(o)}{note}, within {window} days.", (o,), v
        )

    return check


@compiler("lab_negative")
def lab_negative(cid: str, c: LabNegativeCheck, ctx: CompileContext) -> CheckFn:
    read = results_for(tuple(c.codes))
    classify = Classifier(ctx.policy.qualitative)
    window = c.window_days
    unit = c.units.canonical

    def check(facts: Facts, st: State) -> Finding:
        rs = within(read(facts), st.since(window), st.as_of)
        if not rs:
            return Finding(cid, UNKNOWN, lambda: f"No {c.label} result within {window} days.")
        o = rs[0]
        q = classify(o)
        if q is None and o.value is not None:
            v = convert(o, c.units)
            if v is None:
                return Finding(
                    cid, UNKNOWN, lambda: f"{c.label} {show(o)} is not in an accepted unit.", (o,)
                )
            below = passes("lt", v, c.cutoff, o.comparator)
            if below is None:
                return _bound_unsettled(cid, c.label, o, f"the cutoff {c.cutoff:g} {unit}")
            q = "negative" if below else "positive"
            return Finding(
                cid,
                MET if q == "negative" else NOT_MET,
                lambda: f"{c.label} {show(o)} is {q} (cutoff {c.cutoff:g} {unit}).",
                (o,),
                v,
            )
        if q is None:
            return Finding(
                cid, UNKNOWN, lambda: f"{c.label} {show(o)} is neither negative nor positive.", (o,)
            )
        return Finding(
            cid, MET if q == "negative" else NOT_MET, lambda: f"{c.label} {show(o)} is {q}.", (o,)
        )

    return check


@compiler("infection_screen")
def infection_screen(cid: str, c: InfectionScreenCheck, ctx: CompileContext) -> CheckFn:
    classify = Classifier(ctx.policy.qualitative)
    panels = [(p.name, tuple(p.codes), frozenset(p.viral_load)) for p in c.panels]
    conditions = IcdPatterns.of(c.conditions)

    def reading(o: Observation, viral: frozenset[str]) -> str | None:
        q = classify(o)
        if q is None and o.code in viral and o.value is not None:
            q = "positive" if o.value > 0 else "negative"
        return q

    def check(facts: Facts, st: State) -> Finding:
        for cond in facts.conditions:
            if cond.active and any(s == ICD10CM and conditions.match(k) for s, k in cond.codes):
                return Finding(
                    cid, NOT_MET, lambda: f"Active hepatitis Condition {cond.ref}.", (cond,)
                )
        evidence: list[Observation] = []
        positive: list[str] = []
        missing: list[str] = []
        for name, codes, viral in panels:
            negative = False
            for code in codes:
                rs = up_to(facts.observations.get(code, ()), st.as_of)
                if not rs:
                    continue
                o = rs[0]  # the most recent of each test is judged
                evidence.append(o)
                q = reading(o, viral)
                if q == "positive":
                    positive.append(f"{name} {show(o)}")
                elif q == "negative":
                    negative = True
            if not negative:
                missing.append(name)
        ev = tuple(evidence)
        if positive:
            return Finding(
                cid, NOT_MET, lambda: f"Positive or detected: {'; '.join(positive)}.", ev
            )
        if missing:
            return Finding(cid, UNKNOWN, lambda: f"No negative {' or '.join(missing)} result.", ev)
        return Finding(cid, MET, "Hepatitis B negative and hepatitis C not detected.", ev)

    return check


@compiler("history_of_positive")
def history_of_positive(cid: str, c: HistoryOfPositiveCheck, ctx: CompileContext) -> CheckFn:
    read = results_for(tuple(c.codes))
    classify = Classifier(ctx.policy.qualitative)
    unit = c.units.canonical

    def check(facts: Facts, st: State) -> Finding:
        for o in up_to(read(facts), st.as_of):
            q = classify(o)
            v = convert(o, c.units)
            at_least = None if v is None else passes("ge", v, c.cutoff, o.comparator)
            if q == "positive" or (q is None and at_least):
                return Finding(
                    cid,
                    MET,
                    lambda: f"Positive result {show(o)} (cutoff {c.cutoff:g} {unit}).",
                    (o,),
                )
        if c.attestation is None:
            return Finding(cid, NOT_MET, "No positive result on record.")
        return attested(cid, facts, c.attestation, "No positive result on record")

    return check
