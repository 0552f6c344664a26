"""Laboratory checks: thresholds, presence in a window, negative results, screens, history."""

from __future__ import annotations

from datetime import date, timedelta

from priorauth.core.checks import INLINE, CheckFn, CompileContext, State, compiler
from priorauth.core.checks.common import (
    EPS,
    TESTS,
    Classifier,
    attested,
    convert,
    lab_codes,
    latest_up_to,
    latest_within,
    passes,
    results_for,
    show,
    then,
    up_to,
    within,
)
from priorauth.core.codes import IcdPatterns
from priorauth.core.facts import ICD10CM, Condition, Facts, Observation
from priorauth.core.model import (
    HistoryOfPositiveCheck,
    InfectionScreenCheck,
    LabNegativeCheck,
    LabPresentCheck,
    LabThresholdCheck,
)
from priorauth.core.result import MET, NOT_MET, UNKNOWN, Explanation, Raw

_SYMBOL = {"le": "≤", "lt": "<", "ge": "≥", "gt": ">"}


def _bound_unsettled(label: str, o: Observation, rule: str) -> Raw:
    return (
        UNKNOWN,
        None,
        lambda: (f"{label} {show(o)} is only a bound; it does not settle {rule}.", (o,)),
    )


@compiler("lab_threshold")
def lab_threshold(cid: str, c: LabThresholdCheck, ctx: CompileContext) -> CheckFn:
    keys, codes = lab_codes(c.codes, ctx.policy.systems)
    read = results_for(keys)
    window = c.window_days
    delta = timedelta(days=window) if window is not None else None
    op = c.op
    test = TESTS[op]
    sym = _SYMBOL[op]
    label = c.label
    rule = (
        f"{sym} {c.uln_multiple:g} × ULN"
        if c.uln_multiple is not None
        else f"{sym} {c.value:g} {c.units.canonical if c.units else ''}".rstrip()
    )
    scope = f"within {window} days" if window is not None else "of any date"
    multiple = c.uln_multiple
    factors = c.units.factors if c.units is not None else {}
    limit_value = c.value if c.value is not None else 0.0
    latest = c.pick == "latest"

    # The sentences of a judged result, written when read.
    def explained(o: Observation, v: float, ok: bool) -> Explanation:
        return (f"{label} {show(o)} {'meets' if ok else 'does not meet'} {rule}.", (o,))

    def explained_uln(o: Observation, ratio: float, uln: float, ok: bool) -> Explanation:
        return (
            f"{label} {show(o)} is {ratio:.2f} × ULN {uln:g} "
            f"({'within' if ok else 'outside'} {rule}).",
            (o,),
        )

    def by_uln(o: Observation, m: float) -> Raw:
        value, uln = o.value, o.uln
        if value is None:
            return (UNKNOWN, None, lambda: (f"{label} {show(o)} has no numeric value.", (o,)))
        if uln is None or uln <= 0:
            return (
                UNKNOWN,
                None,
                lambda: (f"{label} {show(o)} has no upper limit of normal.", (o,)),
            )
        if o.uln_unit and o.unit and o.uln_unit != o.unit:
            return (
                UNKNOWN,
                None,
                lambda: (f"{label} {show(o)}: ULN is in {o.uln_unit}, not {o.unit}.", (o,)),
            )
        limit = m * uln
        comparator = o.comparator
        ok = test(value, limit) if comparator is None else passes(op, value, limit, comparator)
        if ok is None:
            return _bound_unsettled(label, o, rule)
        ratio = value / uln
        return (MET if ok else NOT_MET, ratio, (explained_uln, o, ratio, uln, ok))

    def judge(o: Observation) -> Raw:
        if multiple is not None:
            return by_uln(o, multiple)
        f = factors.get(o.unit or "") if o.value is not None else None
        if f is None:
            return (
                UNKNOWN,
                None,
                lambda: (f"{label} {show(o)} is not in an accepted unit.", (o,)),
            )
        v = o.value * f  # type: ignore[operator]
        comparator = o.comparator
        ok = test(v, limit_value) if comparator is None else passes(op, v, limit_value, comparator)
        if ok is None:
            return _bound_unsettled(label, o, rule)
        return (MET if ok else NOT_MET, v, (explained, o, v, ok))

    def nothing(allr: tuple[Observation, ...]) -> Raw:
        if allr:
            return (
                UNKNOWN,
                None,
                lambda: (
                    f"No {label} ({codes}) {scope}; the latest is {show(allr[0])}.",
                    (allr[0],),
                ),
            )
        return (UNKNOWN, None, lambda: (f"No {label} result ({codes}) {scope}.", ()))

    single = keys[0] if len(keys) == 1 else None

    def latest_in_window(facts: Facts, st: State) -> Raw:
        # The common case inlined: the latest result in the window, a plain
        # measurement with its ULN (or in an accepted unit). Anything else is
        # judged by `judge`, which names what is wrong.
        allr = facts.observations.get(single, ()) if single is not None else read(facts)
        as_of = st.as_of
        since = as_of - delta  # type: ignore[operator]
        for o in allr:
            w = o.when
            if w is None or w < since:
                break
            if w <= as_of:
                value = o.value
                if value is None or o.comparator is not None:
                    return judge(o)
                if multiple is not None:
                    uln = o.uln
                    if uln is None or uln <= 0 or (o.uln_unit and o.unit and o.uln_unit != o.unit):
                        return judge(o)
                    ok = test(value, multiple * uln)
                    ratio = value / uln
                    return (MET if ok else NOT_MET, ratio, (explained_uln, o, ratio, uln, ok))
                f = factors.get(o.unit or "")
                if f is None:
                    return judge(o)
                v = value * f
                ok = test(v, limit_value)
                return (MET if ok else NOT_MET, v, (explained, o, v, ok))
        return nothing(allr)

    if latest and delta is not None:
        # The policy's generated code reads the usual case inline (see INLINE).
        INLINE[latest_in_window] = (
            "lab",
            single if single is not None else read,
            delta,
            op,
            multiple,
            factors,
            limit_value,
            explained if multiple is None else explained_uln,
        )
        return latest_in_window

    def check(facts: Facts, st: State) -> Raw:
        allr = read(facts)
        as_of = st.as_of
        if latest:
            if delta is None:
                o = latest_up_to(allr, as_of)
            else:
                o = latest_within(allr, as_of - delta, as_of)
            return nothing(allr) if o is None else judge(o)
        rs = up_to(allr, as_of) if delta is None else within(allr, as_of - delta, as_of)
        if not rs:
            return nothing(allr)
        if len(rs) == 1:
            (o,) = rs
            if (convert(o, c.units) if c.units else o.value) is not None:
                return judge(o)
        readable = [
            (v, o) for o in rs if (v := (convert(o, c.units) if c.units else o.value)) is not None
        ]
        if not readable:
            return (
                UNKNOWN,
                None,
                lambda: (f"No readable {label} value {scope}.", tuple(rs)),
            )
        pick = min if c.pick == "lowest" else max
        _, o = pick(readable, key=lambda t: t[0])
        status, value, detail = judge(o)
        n = len(readable)
        if n > 1:
            detail = then(detail, lambda reason: f"{reason[:-1]}; the {c.pick} of {n} results.")
        return (status, value, detail)

    return check


def _latest(
    obs: tuple[Observation, ...], delta: timedelta | None, as_of: date
) -> Observation | None:
    """The latest result in the window (or of any date not after the review date)."""
    if delta is None:
        return latest_up_to(obs, as_of)
    return latest_within(obs, as_of - delta, as_of)


def _scope(window: int | None) -> str:
    return f"within {window} days" if window is not None else "of any date"


@compiler("lab_present")
def lab_present(cid: str, c: LabPresentCheck, ctx: CompileContext) -> CheckFn:
    keys, codes = lab_codes(c.codes, ctx.policy.systems)
    read = results_for(keys)
    window = c.window_days
    delta = timedelta(days=window) if window is not None else None
    scope = _scope(window)
    label = c.label
    units = c.units
    factors = units.factors if units is not None else {}
    canonical = units.canonical if units is not None else ""

    def check(facts: Facts, st: State) -> Raw:
        allr = read(facts)
        as_of = st.as_of
        o = _latest(allr, delta, as_of)
        if o is None:
            if allr:
                return (UNKNOWN, None, (none_in_window, allr[0]))
            return (UNKNOWN, None, (f"No {label} ({codes}) {scope}.", ()))
        if units is None:
            return (MET, None, (present, o))
        f = factors.get(o.unit or "") if o.value is not None else None
        v = None if f is None else o.value * f  # type: ignore[operator]
        if v is None or v <= 0 or o.comparator is not None:
            return (UNKNOWN, None, (unusable, o))
        return (MET, v, (usable, o, v))

    def none_in_window(latest: Observation) -> Explanation:
        return (
            f"No {label} ({codes}) {scope}; the latest is {show(latest)}.",
            (latest,),
        )

    def present(o: Observation) -> Explanation:
        return f"{label} {show(o)}, {scope}.", (o,)

    def unusable(o: Observation) -> Explanation:
        return f"{label} {show(o)} is not a usable value in an accepted unit.", (o,)

    def usable(o: Observation, v: float) -> Explanation:
        return (
            f"{label} {show(o)}"
            + ("" if o.unit == canonical else f" = {v:.1f} {canonical}")
            + f", {scope}.",
            (o,),
        )

    return check


@compiler("lab_negative")
def lab_negative(cid: str, c: LabNegativeCheck, ctx: CompileContext) -> CheckFn:
    keys, _ = lab_codes(c.codes, ctx.policy.systems)
    read = results_for(keys)
    classify = Classifier(ctx.policy.qualitative)
    window = c.window_days
    delta = timedelta(days=window) if window is not None else None
    scope = _scope(window)
    units = c.units
    unit = units.canonical if units else ""
    label = c.label
    cutoff = c.cutoff if c.cutoff is not None else 0.0

    def check(facts: Facts, st: State) -> Raw:
        o = _latest(read(facts), delta, st.as_of)
        if o is None:
            return (UNKNOWN, None, (f"No {label} result {scope}.", ()))
        q = classify(o)
        if q is None and o.value is not None and units is None:
            # A qualitative test: a number alone, with no cutoff in the policy, says neither.
            return (UNKNOWN, None, (neither, o))
        if q is None and o.value is not None and units is not None:
            v = convert(o, units)
            if v is None:
                return (UNKNOWN, None, (not_accepted, o))
            below = passes("lt", v, cutoff, o.comparator)
            if below is None:
                return _bound_unsettled(label, o, f"the cutoff {cutoff:g} {unit}")
            return (MET if below else NOT_MET, v, (by_cutoff, o, below))
        if q is None:
            return (UNKNOWN, None, (neither, o))
        return (MET if q == "negative" else NOT_MET, None, (classified, o, q))

    def not_accepted(o: Observation) -> Explanation:
        return f"{label} {show(o)} is not in an accepted unit.", (o,)

    def by_cutoff(o: Observation, below: bool) -> Explanation:
        return (
            f"{label} {show(o)} is {'negative' if below else 'positive'} "
            f"(cutoff {cutoff:g} {unit}).",
            (o,),
        )

    def neither(o: Observation) -> Explanation:
        return f"{label} {show(o)} is neither negative nor positive.", (o,)

    def classified(o: Observation, q: str) -> Explanation:
        return f"{label} {show(o)} is {q}.", (o,)

    return check


@compiler("infection_screen")
def infection_screen(cid: str, c: InfectionScreenCheck, ctx: CompileContext) -> CheckFn:
    classify = Classifier(ctx.policy.qualitative)
    aliases = ctx.policy.systems
    panels = [
        (p.name, lab_codes(p.codes, aliases)[0], frozenset(lab_codes(p.viral_load, aliases)[0]))
        for p in c.panels
    ]
    conditions = IcdPatterns.of(c.conditions, aliases)
    # A panel of viral-load tests only is "not detected"; any other is "negative".
    results = [
        f"{p.name} {'not detected' if set(p.codes) <= set(p.viral_load) else 'negative'}"
        for p in c.panels
    ]
    said = results[0] if len(results) == 1 else f"{', '.join(results[:-1])} and {results[-1]}"
    all_negative = f"{said[:1].upper()}{said[1:]}."
    condition_label = f"{c.label} " if c.label else ""

    def active(cond: Condition) -> Raw | None:
        for s, k in cond.codes:
            if s == ICD10CM and conditions.match(k):
                return (NOT_MET, None, (active_explained, cond))
        return None

    def active_explained(cond: Condition) -> Explanation:
        return f"Active {condition_label}Condition {cond.ref}.", (cond,)

    def positive_explained(
        positive: list[tuple[str, Observation]], evidence: list[Observation]
    ) -> Explanation:
        shown = "; ".join(f"{n} {show(o)}" for n, o in positive)
        return f"Positive or detected: {shown}.", tuple(evidence)

    def missing_explained(missing: list[str], evidence: list[Observation]) -> Explanation:
        return f"No negative {' or '.join(missing)} result.", tuple(evidence)

    def check(facts: Facts, st: State) -> Raw:
        for cond in facts.conditions:
            if cond.active and (found := active(cond)) is not None:
                return found
        as_of = st.as_of
        observations = facts.observations
        evidence: list[Observation] = []
        positive: list[tuple[str, Observation]] = []
        missing: list[str] = []
        for name, codes, viral in panels:
            negative = False
            for code in codes:
                rs = observations.get(code)
                if not rs:
                    continue
                first = rs[0]
                w = first.when
                o = first if w is None or w <= as_of else latest_up_to(rs, as_of)
                if o is None:
                    continue
                evidence.append(o)  # the most recent of each test is judged
                q = classify(o)
                if q is None and o.code in viral and o.value is not None:
                    q = "positive" if o.value > 0 else "negative"
                if q == "positive":
                    positive.append((name, o))
                elif q == "negative":
                    negative = True
            if not negative:
                missing.append(name)
        if positive:
            return (NOT_MET, None, (positive_explained, positive, evidence))
        if missing:
            return (UNKNOWN, None, (missing_explained, missing, evidence))
        return (MET, None, (all_negative, tuple(evidence)))

    return check


@compiler("history_of_positive")
def history_of_positive(cid: str, c: HistoryOfPositiveCheck, ctx: CompileContext) -> CheckFn:
    read = results_for(lab_codes(c.codes, ctx.policy.systems)[0])
    classify = Classifier(ctx.policy.qualitative)
    unit = c.units.canonical
    cutoff = c.cutoff
    attestation = c.attestation
    none_positive: Raw = (NOT_MET, None, ("No positive result on record.", ()))
    factors = c.units.factors
    at_cutoff = cutoff - EPS  # a plain measurement is positive at or above the cutoff

    def check(facts: Facts, st: State) -> Raw:
        as_of = st.as_of
        for o in read(facts):
            w = o.when
            if w is not None and w > as_of:
                continue
            q = classify(o) if o.coded or o.interpretation else None
            if q == "positive":
                return (MET, None, (positive, o))
            if q is None and o.value is not None and (f := factors.get(o.unit or "")) is not None:
                v = o.value * f
                if o.comparator is None:
                    if v >= at_cutoff:
                        return (MET, None, (positive, o))
                elif passes("ge", v, cutoff, o.comparator):
                    return (MET, None, (positive, o))
        if attestation is None:
            return none_positive
        return attested(facts, attestation, "No positive result on record")

    def positive(o: Observation) -> Explanation:
        return f"Positive result {show(o)} (cutoff {cutoff:g} {unit}).", (o,)

    return check
