"""Checks against the payer's claims history and the medication history, and mirrored exclusions."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import date, timedelta

from priorauth.core.checks import CheckFn, CompileContext, State, compiler
from priorauth.core.checks.common import attested
from priorauth.core.codes import codes_of, ndc11, parse_code
from priorauth.core.facts import (
    HCPCS,
    NDC,
    RXNORM,
    ClaimLine,
    Coding,
    Facts,
    Medication,
)
from priorauth.core.model import (
    ExclusionByCriterionCheck,
    HasClaimsCheck,
    HasMedicationCheck,
    NoPriorClaimsCheck,
)
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

# Statuses that say the medication was not (or not yet) taken: no history.
_NOT_TAKEN = frozenset({"entered-in-error", "not-taken", "cancelled", "draft"})


def coding_keys(
    codes: Iterable[str], default: str, aliases: Mapping[str, str] | None = None
) -> frozenset[Coding]:
    """The (system URL, code) pairs of `SYSTEM|CODE` entries; a bare code is in `default`.

    NDCs are kept as 11 digits, so every printed form of one package matches.
    """
    out: set[Coding] = set()
    for entry in codes:
        system, code = parse_code(entry, default, aliases)
        if not code.strip():
            raise ValueError(f"{entry!r} is not SYSTEM|CODE")
        out.add(_key(system, code.strip()))
    return frozenset(out)


def _key(system: str, code: str) -> Coding:
    if system == NDC:
        return (NDC, ndc11(code) or code)
    return (system, code)


def _scope(lookback: int | None) -> str:
    return f" within {lookback} days" if lookback is not None else ""


@compiler("no_prior_claims")
def no_prior_claims(cid: str, c: NoPriorClaimsCheck, ctx: CompileContext) -> CheckFn:
    aliases = ctx.policy.systems
    hcpcs = frozenset(codes_of(c.hcpcs, HCPCS, aliases))
    ndcs = frozenset(n for n in (ndc11(x) for x in codes_of(c.ndc, NDC, aliases)) if n) | (
        ctx.product_ndcs if c.include_product_ndcs else frozenset()
    )
    attestation = c.attestation
    clean_is_enough = not c.attestation_required_when_clean or attestation is None
    label = c.label or "claims for the listed codes"

    def hit(line: ClaimLine) -> str | None:
        for system, code in line.codes:
            if system == HCPCS and code in hcpcs:
                return code
            if system == NDC and ndc11(code) in ndcs:
                return code
        return None

    def check(facts: Facts, st: State) -> Raw:
        h = facts.claims
        if h is not None and h.available:
            found = [(line, code) for line in h.lines if (code := hit(line))]
            if found:
                return (
                    NOT_MET,
                    None,
                    lambda: (
                        f"Claims history shows {label} "
                        f"({', '.join(sorted({code for _, code in found}))}).",
                        tuple(line for line, _ in found),
                    ),
                )
            context = f"Claims history ({h.claim_count} claims) shows no {label}"
            if clean_is_enough:
                return (MET, None, (f"{context}.", ()))
        else:
            context = "No claims history is available for the member"
        if attestation is None:
            return (UNKNOWN, None, (f"{context}.", ()))
        return attested(facts, attestation, context)

    return check


def _use(m: Medication, as_of: date) -> tuple[date, date] | None:
    """The documented use of a medication, cut at the review date; None when undated.

    An active record with no end is ongoing: its use runs to the review date. A use that
    begins after the review date comes back with its start after the review date, and
    the caller leaves it out: it is not history yet.
    """
    start = m.start or m.end
    if start is None:
        return None
    end = m.end or (as_of if m.active else start)
    return start, min(max(end, start), as_of)


@compiler("has_medication")
def has_medication(cid: str, c: HasMedicationCheck, ctx: CompileContext) -> CheckFn:
    names = (
        re.compile(r"\b(" + "|".join(re.escape(n.lower()) for n in c.names) + r")")
        if c.names
        else None
    )
    wanted = coding_keys(c.codes, RXNORM, ctx.policy.systems)
    label = c.label
    head = label[:1].upper() + label[1:]  # the label starting a sentence
    lookback = c.lookback_days
    minimum = c.min_duration_days
    attestation = c.attestation
    scope = _scope(lookback)
    needs_dates = lookback is not None or minimum is not None

    def matches(m: Medication) -> bool:
        if m.status in _NOT_TAKEN:
            return False
        if names is not None and names.search(m.names):
            return True
        return any(_key(s, k) in wanted for s, k in m.codes)

    def undecided(facts: Facts, context: str, evidence: tuple[Evidence, ...]) -> Raw:
        if attestation is None:
            return (UNKNOWN, None, (f"{context}.", evidence))
        return attested(facts, attestation, context, evidence)

    def check(facts: Facts, st: State) -> Raw:
        as_of = st.as_of
        since = as_of - timedelta(days=lookback) if lookback is not None else date.min
        found = [m for m in facts.medications if matches(m)]
        if not needs_dates:
            # Any use not known to begin after the review date is history enough.
            begun = tuple(m for m in found if (m.start or m.end or as_of) <= as_of)
            if begun:
                return (MET, None, (on_record, begun))
        used: list[tuple[Medication, date, date]] = []
        undated: list[Medication] = []
        for m in found:
            span = _use(m, as_of)
            if span is None:
                undated.append(m)
            elif span[0] <= as_of and span[1] >= since:
                used.append((m, max(span[0], since), span[1]))
        if used:
            first = min(s for _, s, _ in used)
            last = max(e for _, _, e in used)
            days = (last - first).days
            evidence: tuple[Evidence, ...] = (
                *(m for m, _, _ in used),
                Derived("documented use", days, "days", tuple(m.ref for m, _, _ in used)),
            )
            if minimum is None or days >= minimum:
                return (MET, float(days), (documented, first, last, days, evidence))
            return undecided(
                facts,
                f"{head} is documented for {days} days{scope} "
                f"({first.isoformat()} to {last.isoformat()}), less than {minimum}",
                evidence,
            )
        if undated:
            return undecided(facts, f"{head} is on record without dates of use", tuple(undated))
        context = (
            f"{head} is on record, but not{scope or ' before the review date'}"
            if found
            else f"No {label} on record"
        )
        if attestation is not None:
            return attested(facts, attestation, context, tuple(found))
        listed = len(facts.medications)
        if listed:
            return (
                NOT_MET,
                None,
                (f"{context}; the request lists {listed} other medication(s).", tuple(found)),
            )
        return (UNKNOWN, None, (f"{context}; the request lists no medication history.", ()))

    def on_record(found: tuple[Medication, ...]) -> Explanation:
        return f"{head} is on record ({', '.join(m.ref for m in found)}).", found

    def documented(
        first: date, last: date, days: int, evidence: tuple[Evidence, ...]
    ) -> Explanation:
        need = f", at least {minimum} required" if minimum is not None else ""
        return (
            f"{head} is documented{scope} from {first.isoformat()} to {last.isoformat()} "
            f"({days} days{need}).",
            evidence,
        )

    return check


@compiler("has_claims")
def has_claims(cid: str, c: HasClaimsCheck, ctx: CompileContext) -> CheckFn:
    wanted = coding_keys(c.codes, HCPCS, ctx.policy.systems)
    label = c.label
    lookback = c.lookback_days
    least = c.min_count
    span_needed = c.min_span_days
    attestation = c.attestation
    scope = _scope(lookback)
    rule = f"at least {least} claim(s)" + (
        f" over at least {span_needed} days" if span_needed is not None else ""
    )

    def hit(line: ClaimLine) -> bool:
        return any(_key(s, k) in wanted for s, k in line.codes)

    def check(facts: Facts, st: State) -> Raw:
        h = facts.claims
        if h is None or not h.available:
            context = "No claims history is available for the member"
            if attestation is None:
                return (UNKNOWN, None, (f"{context}.", ()))
            return attested(facts, attestation, context)
        as_of = st.as_of
        since = as_of - timedelta(days=lookback) if lookback is not None else None
        lines: list[ClaimLine] = []
        for line in h.lines:
            w = line.when
            if w is not None and w > as_of:
                continue
            if since is not None and (w is None or w < since):
                continue
            if hit(line):
                lines.append(line)
        claims = len({line.ref for line in lines})
        dated = sorted(line.when for line in lines if line.when is not None)
        days = (dated[-1] - dated[0]).days if dated else 0
        ok = claims >= least and (span_needed is None or (bool(dated) and days >= span_needed))
        shown = f"{claims} claim(s) for {label}{scope}" + (
            f", {dated[0].isoformat()} to {dated[-1].isoformat()} ({days} days)"
            if len(dated) > 1
            else f", on {dated[0].isoformat()}"
            if dated
            else ""
        )
        evidence = tuple(lines)
        if ok:
            return (MET, float(claims), (f"Claims history shows {shown} ({rule}).", evidence))
        context = f"Claims history shows {shown}; the policy needs {rule}"
        if attestation is None:
            return (NOT_MET, float(claims), (f"{context}.", evidence))
        return attested(facts, attestation, context, evidence)

    return check


def _criterion(c: ExclusionByCriterionCheck) -> list[str]:
    return [c.criterion]


@compiler("excluded_when_not_met", depends=_criterion)
def excluded_when_not_met(cid: str, c: ExclusionByCriterionCheck, ctx: CompileContext) -> CheckFn:
    target = c.criterion

    def check(facts: Facts, st: State) -> Raw:
        f = st.findings[target]
        s = f[0]
        status: Status = MET if s == NOT_MET else NOT_MET if s == MET else UNKNOWN
        return (status, None, (mirrored, f))

    def mirrored(f: Raw) -> Explanation:
        reason, evidence = explain(f[2])
        return f"Mirrors {target}: {reason}", evidence

    return check
