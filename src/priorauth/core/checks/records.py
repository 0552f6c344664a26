"""Record checks: a series of results, and Procedures, reports, imaging and documents on file."""

from __future__ import annotations

from datetime import date, timedelta
from itertools import pairwise

from priorauth.core.checks import CheckFn, CompileContext, State, compiler
from priorauth.core.checks.common import (
    Classifier,
    attested,
    convert,
    lab_codes,
    passes,
    results_for,
    show,
)
from priorauth.core.codes import code_keys, parse_codes, shown_codes
from priorauth.core.facts import LOINC, Facts, Observation, Record
from priorauth.core.model import ClinicalRecordCheck, DocumentCheck, LabSeriesCheck
from priorauth.core.result import MET, NOT_MET, UNKNOWN, Evidence, Explanation, Raw

# The statuses that make a record current, per resource type.
CURRENT: dict[str, frozenset[str]] = {
    "Procedure": frozenset({"completed"}),
    "DiagnosticReport": frozenset({"final", "amended", "corrected", "appended"}),
    "ImagingStudy": frozenset({"available"}),
    "DocumentReference": frozenset({"current"}),
}


def _scope(window: int | None) -> str:
    return f"within {window} days" if window is not None else "of any date"


def _in_window(when: date | None, since: date | None, as_of: date) -> bool:
    """Dated inside [since, as_of]; with no window, any date not after the review date."""
    if when is None:
        return since is None
    return when <= as_of and (since is None or when >= since)


@compiler("lab_series")
def lab_series(cid: str, c: LabSeriesCheck, ctx: CompileContext) -> CheckFn:
    keys, codes = lab_codes(c.codes, ctx.policy.systems)
    read = results_for(keys)
    classify = Classifier(ctx.policy.qualitative)
    window = c.window_days
    delta = timedelta(days=window) if window is not None else None
    scope = _scope(window)
    count, gap, cutoff = c.count, c.min_gap_days, c.cutoff
    unit = c.units.canonical
    label = c.label
    plural = "result" if count == 1 else f"{count} results"
    are = "is" if count == 1 else "are"

    def reading(o: Observation) -> str | None:
        """'negative', 'positive', or None when the result cannot be read against the cutoff."""
        q = classify(o)
        if q is not None or o.value is None:
            return q
        v = convert(o, c.units)
        if v is None:
            return None
        below = passes("lt", v, cutoff, o.comparator)
        return None if below is None else "negative" if below else "positive"

    def check(facts: Facts, st: State) -> Raw:
        as_of = st.as_of
        since = as_of - delta if delta is not None else None
        # Spacing needs dates: only dated results count.
        rs = [o for o in read(facts) if o.when is not None and _in_window(o.when, since, as_of)]
        latest = rs[:count]
        readings = [reading(o) for o in latest]
        for o, q in zip(latest, readings, strict=True):
            if q == "positive":
                return (NOT_MET, None, (positive, o, latest))
        for o, q in zip(latest, readings, strict=True):
            if q is None:
                return (UNKNOWN, None, (unreadable, o, latest))
        if len(latest) < count:
            return (UNKNOWN, None, (too_few, latest))
        for newer, older in pairwise(latest):
            apart = (newer.when - older.when).days  # type: ignore[operator]
            if apart < gap:
                return (UNKNOWN, None, (too_close, newer, older, apart, latest))
        return (MET, None, (all_negative, latest))

    def positive(o: Observation, latest: list[Observation]) -> Explanation:
        return (
            f"{label} {show(o)} is positive (cutoff {cutoff:g} {unit}), among the latest "
            f"{plural} {scope}.",
            tuple(latest),
        )

    def unreadable(o: Observation, latest: list[Observation]) -> Explanation:
        return (
            f"{label} {show(o)} cannot be read as negative or positive "
            f"(not in an accepted unit, or a bound that does not settle the cutoff).",
            tuple(latest),
        )

    def too_few(latest: list[Observation]) -> Explanation:
        found = "none" if not latest else f"only {len(latest)}"
        return (
            f"The latest {plural} of {label} ({codes}) {scope} {are} needed; {found} found.",
            tuple(latest),
        )

    def too_close(
        newer: Observation, older: Observation, apart: int, latest: list[Observation]
    ) -> Explanation:
        return (
            f"{label} results on {newer.when} and {older.when} are {apart} days apart; "
            f"consecutive results must be at least {gap} days apart (another test is needed).",
            tuple(latest),
        )

    def all_negative(latest: list[Observation]) -> Explanation:
        dates = ", ".join(str(o.when) for o in latest)
        spaced = f", at least {gap} days apart" if gap and count > 1 else ""
        return (
            f"The latest {plural} of {label} {scope} {are} negative "
            f"(cutoff {cutoff:g} {unit}; {dates}){spaced}.",
            tuple(latest),
        )

    return check


def _records(facts: Facts, keys: tuple[str, ...], kinds: frozenset[str]) -> list[Record]:
    """Records of those types carrying one of the keys, most recent first (undated last)."""
    found = facts.records
    if not found:
        return []
    if len(keys) == 1:
        return [r for r in found.get(keys[0], ()) if r.resource_type in kinds]
    seen: dict[str, Record] = {}
    for key in keys:
        for r in found.get(key, ()):
            if r.resource_type in kinds:
                seen.setdefault(r.ref, r)
    return sorted(seen.values(), key=_recency)


def _recency(r: Record) -> tuple[int, int]:
    return (0, -r.when.toordinal()) if r.when else (1, 0)


def when(r: Record) -> str:
    return r.when.isoformat() if r.when else "undated"


def shown(r: Record) -> str:
    """A record as a reviewer reads it: 'DiagnosticReport/us1 (Liver US) on 2026-04-01'."""
    title = f" ({r.title})" if r.title else ""
    return f"{r.ref}{title} on {when(r)}"


class _Records:
    """What clinical_record and document share: finding the current record in the window."""

    def __init__(
        self,
        label: str,
        keys: tuple[str, ...],
        kinds: frozenset[str],
        window: int | None,
        attestation: str | None,
        codes: str,
        needs_attachment: bool,
    ) -> None:
        self.label, self.keys, self.kinds = label, keys, kinds
        self.delta = timedelta(days=window) if window is not None else None
        self.scope = _scope(window)
        self.attestation = attestation
        self.codes = codes
        self.needs_attachment = needs_attachment

    def current(self, r: Record) -> bool:
        if r.status not in CURRENT[r.resource_type]:
            return False
        return not self.needs_attachment or any(a.usable for a in r.attachments)

    def __call__(self, facts: Facts, st: State) -> Raw:
        as_of = st.as_of
        since = as_of - self.delta if self.delta is not None else None
        found = _records(facts, self.keys, self.kinds)
        not_current: Record | None = None
        outside: Record | None = None
        for r in found:
            if r.when is not None and r.when > as_of:
                continue
            if not self.current(r):
                not_current = not_current or r
                continue
            if _in_window(r.when, since, as_of):
                return (MET, None, (self.met, r))
            outside = outside or r
        context, evidence = self.missing(outside, not_current)
        if self.attestation is None:
            return (UNKNOWN, None, (f"{context}.", evidence))
        return attested(facts, self.attestation, context, evidence)

    def met(self, r: Record) -> Explanation:
        shown_attachments = "; ".join(
            " ".join(p for p in (a.title, f"({a.content_type})" if a.content_type else "") if p)
            or (a.url or "inline content")
            for a in r.attachments
            if a.usable
        )
        attached = f", attached: {shown_attachments}" if self.needs_attachment else ""
        return f"{self.label}: {shown(r)}, {self.scope}{attached}.", (r,)

    def missing(
        self, outside: Record | None, not_current: Record | None
    ) -> tuple[str, tuple[Evidence, ...]]:
        what = f"No current {self.label}{f' ({self.codes})' if self.codes else ''} {self.scope}"
        if outside is not None:
            return f"{what}; the latest is {shown(outside)}", (outside,)
        if not_current is not None:
            why = (
                f"status {not_current.status or 'missing'}"
                if not_current.status not in CURRENT[not_current.resource_type]
                else "no attached content"
            )
            return f"{what}; {shown(not_current)} has {why}", (not_current,)
        return what, ()


@compiler("clinical_record")
def clinical_record(cid: str, c: ClinicalRecordCheck, ctx: CompileContext) -> CheckFn:
    pairs = parse_codes(c.codes, LOINC, ctx.policy.systems)
    keys = code_keys(c.codes, LOINC, ctx.policy.systems)
    judge = _Records(
        c.label,
        keys,
        frozenset(c.resources),
        c.window_days,
        c.attestation,
        shown_codes(pairs),
        needs_attachment=False,
    )
    return judge.__call__


@compiler("document")
def document(cid: str, c: DocumentCheck, ctx: CompileContext) -> CheckFn:
    kind = "DocumentReference"
    keys = code_keys(c.codes, LOINC, ctx.policy.systems) if c.codes else (kind,)
    codes = shown_codes(parse_codes(c.codes, LOINC, ctx.policy.systems)) if c.codes else ""
    judge = _Records(
        c.label, keys, frozenset({kind}), c.window_days, c.attestation, codes, needs_attachment=True
    )
    return judge.__call__
