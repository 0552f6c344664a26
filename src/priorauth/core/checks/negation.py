"""Criteria that state an absence ("no history of X"): another kind's finding, inverted."""

from __future__ import annotations

from priorauth.core.checks import CheckFn, CompileContext, State, compiler
from priorauth.core.checks.labs import history_of_positive
from priorauth.core.facts import Facts
from priorauth.core.model import HistoryOfPositiveCheck, NoHistoryOfPositiveCheck
from priorauth.core.result import MET, NOT_MET, Finding


@compiler("no_history_of_positive")
def no_history_of_positive(cid: str, c: NoHistoryOfPositiveCheck, ctx: CompileContext) -> CheckFn:
    found = history_of_positive(
        cid,
        HistoryOfPositiveCheck(
            kind="history_of_positive",
            codes=c.codes,
            units=c.units,
            cutoff=c.cutoff,
            attestation=c.attestation,
        ),
        ctx,
    )

    def check(facts: Facts, st: State) -> Finding:
        f = found(facts, st)
        # Unknown stays unknown: an unanswered history question never becomes "no history".
        if f.status == MET:
            return Finding(cid, NOT_MET, lambda: f.reason, f.evidence)
        if f.status == NOT_MET:
            return Finding(cid, MET, lambda: f.reason, f.evidence)
        return f

    return check
