"""Helpers the lab and statement checks share: result lists, windows, units, attestations."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date

from priorauth.core.codes import code_key, parse_codes, shown_codes
from priorauth.core.facts import LOINC, SNOMED, Attestation, Facts, Observation
from priorauth.core.model import Qualitative, Units
from priorauth.core.result import (
    MET,
    NOT_MET,
    UNKNOWN,
    Detail,
    Evidence,
    Explanation,
    Raw,
    explain,
)

EPS = 1e-9


# (criterion op, result comparator) -> (answer, how the bound must compare with the limit).
# E.g. ("le", "<"): a result "<v" passes "≤ L" when v ≤ L; otherwise it cannot tell.
_BOUNDS: dict[tuple[str, str], tuple[bool, str]] = {
    ("le", "<"): (True, "le"), ("le", "<="): (True, "le"),
    ("le", ">"): (False, "ge"), ("le", ">="): (False, "gt"),
    ("lt", "<"): (True, "le"), ("lt", "<="): (True, "lt"),
    ("lt", ">"): (False, "ge"), ("lt", ">="): (False, "ge"),
    ("ge", ">"): (True, "ge"), ("ge", ">="): (True, "ge"),
    ("ge", "<"): (False, "le"), ("ge", "<="): (False, "lt"),
    ("gt", ">"): (True, "ge"), ("gt", ">="): (True, "gt"),
    ("gt", "<"): (False, "le"), ("gt", "<="): (False, "le"),
}  # fmt: skip


def _cmp(op: str, value: float, limit: float) -> bool:
    if op == "le":
        return value <= limit + EPS
    if op == "lt":
        return value < limit - EPS
    if op == "ge":
        return value >= limit - EPS
    return value > limit + EPS


# Per op, the comparison of a plain measurement (no comparator) with the limit.
TESTS: dict[str, Callable[[float, float], bool]] = {
    "le": lambda v, limit: v <= limit + EPS,
    "lt": lambda v, limit: v < limit - EPS,
    "ge": lambda v, limit: v >= limit - EPS,
    "gt": lambda v, limit: v > limit + EPS,
}


def passes(op: str, value: float, limit: float, comparator: str | None = None) -> bool | None:
    """Whether a result satisfies `op limit` ("le", "lt", "ge", "gt").

    With a comparator the value is only a bound ("<0.6" means somewhere below
    0.6): the answer is True or False when the bound settles it, else None.
    """
    if comparator is None:
        return _cmp(op, value, limit)
    rule = _BOUNDS.get((op, comparator))
    if rule is None:
        return None
    answer, test = rule
    return answer if _cmp(test, value, limit) else None


def lab_codes(codes: list[str], aliases: Mapping[str, str]) -> tuple[tuple[str, ...], str]:
    """A lab check's code list as (the keys results are indexed under, how sentences name it).

    Done once at compile time: `loinc|3187-2` and a bare `3187-2` both become the key "3187-2".
    """
    pairs = parse_codes(codes, LOINC, aliases)
    return tuple(dict.fromkeys(code_key(s, c) for s, c in pairs)), shown_codes(pairs)


def results_for(codes: tuple[str, ...]) -> Callable[[Facts], tuple[Observation, ...]]:
    """A reader of every counted result carrying one of `codes`, most recent first."""
    if len(codes) == 1:
        only = codes[0]

        def one(facts: Facts) -> tuple[Observation, ...]:
            return facts.observations.get(only, ())

        return one

    def merged(facts: Facts) -> tuple[Observation, ...]:
        found = [obs for c in codes if (obs := facts.observations.get(c))]
        if not found:
            return ()
        if len(found) == 1 and len(found[0]) == 1:
            return found[0]
        seen: dict[str, Observation] = {}
        for obs in found:
            for o in obs:
                seen.setdefault(o.ref, o)
        return tuple(sorted(seen.values(), key=_recency))

    return merged


def _recency(o: Observation) -> tuple[int, int]:
    # Most recent first; undated last.
    return (0, -o.when.toordinal()) if o.when else (1, 0)


def within(obs: tuple[Observation, ...], since: date, as_of: date) -> list[Observation]:
    return [o for o in obs if o.when is not None and since <= o.when <= as_of]


def latest_within(obs: tuple[Observation, ...], since: date, as_of: date) -> Observation | None:
    """The most recent dated result in [since, as_of] (results are most recent first)."""
    for o in obs:
        w = o.when
        if w is None:
            return None  # undated results come last
        if w <= as_of:
            return o if w >= since else None
    return None


def up_to(obs: tuple[Observation, ...], as_of: date) -> list[Observation]:
    """Results of any date not after the review date (undated ones count: no window applies)."""
    return [o for o in obs if o.when is None or o.when <= as_of]


def latest_up_to(obs: tuple[Observation, ...], as_of: date) -> Observation | None:
    """The first result of `up_to`: the most recent one not after the review date."""
    for o in obs:
        if o.when is None or o.when <= as_of:
            return o
    return None


def convert(o: Observation, units: Units) -> float | None:
    if o.value is None:
        return None
    f = units.factors.get(o.unit or "")
    return None if f is None else o.value * f


def when(o: Observation) -> str:
    return o.when.isoformat() if o.when else "undated"


def show(o: Observation) -> str:
    """A result as a reviewer reads it: '0.8 % on 2019-10-08'."""
    if o.value is not None:
        v = f"{o.value:g}"
        return f"{v} {o.unit} on {when(o)}" if o.unit else f"{v} on {when(o)}"
    if o.coded:
        return f"{'/'.join(sorted(c for _, c in o.coded))} on {when(o)}"
    return f"no value on {when(o)}"


class Classifier:
    """Negative / positive reading of qualitative results, from the policy's code lists."""

    __slots__ = ("neg_codes", "neg_interp", "pos_codes", "pos_interp")

    def __init__(self, q: Qualitative) -> None:
        self.neg_codes = frozenset((SNOMED, c) for c in q.negative_codes)
        self.pos_codes = frozenset((SNOMED, c) for c in q.positive_codes)
        self.neg_interp = frozenset(q.negative_interpretations)
        self.pos_interp = frozenset(q.positive_interpretations)

    def __call__(self, o: Observation) -> str | None:
        """'negative', 'positive', or None when the result says neither (or both)."""
        coded, interp = o.coded, o.interpretation
        if not coded and not interp:
            return None
        neg = not (coded.isdisjoint(self.neg_codes) and interp.isdisjoint(self.neg_interp))
        pos = not (coded.isdisjoint(self.pos_codes) and interp.isdisjoint(self.pos_interp))
        if neg == pos:
            return None
        return "negative" if neg else "positive"


def attested(facts: Facts, link_id: str, context: str, evidence: tuple[Evidence, ...] = ()) -> Raw:
    """Judge a yes/no attestation where `true` meets the criterion."""
    a = facts.attestations.get(link_id)
    if a is None:
        return (UNKNOWN, None, (unanswered, context, link_id, evidence))
    value = a.value
    if type(value) is not bool:
        return (UNKNOWN, None, (_not_yes_no, context, link_id, evidence, a))
    return (MET if value else NOT_MET, None, (_answered, context, link_id, evidence, a))


# The explanations of `attested`, written when read.
def unanswered(context: str, link_id: str, evidence: tuple[Evidence, ...]) -> Explanation:
    return f"{_lead(context)}he prescriber has not answered '{link_id}'.", evidence


def _not_yes_no(
    context: str, link_id: str, evidence: tuple[Evidence, ...], a: Attestation
) -> Explanation:
    return f"{_lead(context)}he answer to '{link_id}' is not yes/no.", (*evidence, a)


def _answered(
    context: str, link_id: str, evidence: tuple[Evidence, ...], a: Attestation
) -> Explanation:
    said = "yes" if a.value else "no"
    return f"{_lead(context)}he prescriber answered {said} to '{link_id}'.", (*evidence, a)


def _lead(context: str) -> str:
    return f"{context}; t" if context else "T"


def then(detail: Detail, edit: Callable[[str], str]) -> Callable[[], Explanation]:
    """An explanation whose reason `edit` rewrites."""

    def explained() -> Explanation:
        reason, evidence = explain(detail)
        return edit(reason), evidence

    return explained


def attestation_value(facts: Facts, link_id: str) -> Attestation | None:
    return facts.attestations.get(link_id)
