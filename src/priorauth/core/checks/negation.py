"""Criteria that state an absence ("no history of X"): another kind's result, inverted."""

from __future__ import annotations

from priorauth.core.checks import CheckFn, CompileContext, State, compiler
from priorauth.core.checks.labs import history_of_positive
from priorauth.core.facts import Facts
from priorauth.core.model import HistoryOfPositiveCheck, NoHistoryOfPositiveCheck
from priorauth.core.result import MET, NOT_MET, Raw


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

    def check(facts: Facts, st: State) -> Raw:
        status, value, why = found(facts, st)
        # Unknown stays unknown: an unanswered history question never becomes "no history".
        if status == MET:
            return (NOT_MET, value, why)
        if status == NOT_MET:
            return (MET, value, why)
        return (status, value, why)

    return check
