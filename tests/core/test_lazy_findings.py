"""Findings built on first read: same explanation in any read order, groups combined right."""

from __future__ import annotations

from typing import Any

import pytest

from priorauth.core.evaluator import CompiledPolicy
from priorauth.core.facts import Facts
from priorauth.core.result import MET, NOT_MET, UNKNOWN, Determination, Finding
from tests.core.factories import facts, obs

VARIANTS: dict[str, dict[str, Any]] = {
    "approve": {},
    "deny (labs, exclusion)": {
        "replace": {"1920-8": [obs("1920-8", 150, "U/L", uln=48)], "3185-6": None},
        "answers": {"no-uncontrolled-hiv": False},
    },
    "pend (one-group unknown)": {
        "answers": dict.fromkeys(
            [
                "fix-exposure-days",
                "life-threatening-hemorrhage",
                "repeated-spontaneous-bleeding",
                "on-demand-fix-spontaneous",
            ]
        ),
        "replace": {"777-3": None, "29463-7": None},
    },
}


def _shown(f: Finding) -> tuple[object, ...]:
    refs = [getattr(e, "ref", None) or getattr(e, "label", None) for e in f.evidence]
    return (f.id, f.status, f.reason, refs, f.value)


def _all(d: Determination) -> dict[str, Finding]:
    return {**d.findings, **d.exclusions}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_read_order_does_not_change_any_explanation(ip0535: CompiledPolicy, variant: str) -> None:
    f: Facts = facts(**VARIANTS[variant])
    first, second = ip0535.evaluate(f), ip0535.evaluate(f)
    # First: the denial reasons, then exclusions (NC.1 mirrors a criterion not read yet),
    # then the criteria backwards. Second: everything in the policy's order.
    early_reasons = [(u.id, u.reason) for u in first.reasons]
    backwards = [_shown(first.exclusions[i]) for i in first.exclusions]
    backwards += [_shown(first.findings[i]) for i in reversed(list(first.findings))]
    forwards = [_shown(x) for x in _all(second).values()]
    assert sorted(backwards, key=str) == sorted(forwards, key=str)
    assert early_reasons == [(u.id, u.reason) for u in second.reasons]
    assert first.missing == second.missing


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_status_carries_a_reason(ip0535: CompiledPolicy, variant: str) -> None:
    d = ip0535.evaluate(facts(**VARIANTS[variant]))
    everything = _all(d)
    assert set(everything) == set(ip0535.criteria)
    for cid, finding in everything.items():
        assert finding.id == cid
        assert finding.status in (MET, NOT_MET, UNKNOWN)
        assert finding.reason.strip(), cid
        again = d.findings[cid] if cid in d.findings else d.exclusions[cid]
        assert again is finding  # built once, then kept


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_groups_combine_their_childrens_statuses(ip0535: CompiledPolicy, variant: str) -> None:
    everything = _all(ip0535.evaluate(facts(**VARIANTS[variant])))
    groups = [c for c in ip0535.criteria.values() if c.children]
    assert any(c.combine == "one" for c in groups) and any(c.combine == "all" for c in groups)
    for c in groups:
        children = {everything[ch.id].status for ch in c.children}
        if c.combine == "all":
            expected = NOT_MET if NOT_MET in children else UNKNOWN if UNKNOWN in children else MET
        else:
            expected = MET if MET in children else UNKNOWN if UNKNOWN in children else NOT_MET
        assert everything[c.id].status == expected, c.id


def test_the_recommendation_follows_the_statuses_read(ip0535: CompiledPolicy) -> None:
    for variant, expected in zip(VARIANTS, ["approve", "deny", "pend"], strict=True):
        d = ip0535.evaluate(facts(**VARIANTS[variant]))
        assert d.recommendation == expected
        top = [d.findings[c.id].status for c in ip0535.policy.criteria]
        applies = [d.exclusions[c.id].status for c in ip0535.policy.exclusions]
        assert (NOT_MET in top or MET in applies) == (expected == "deny")


def test_findings_are_a_read_only_mapping_in_policy_order(ip0535: CompiledPolicy) -> None:
    d = ip0535.evaluate(facts())
    exclusions = [c.id for c in ip0535.policy.exclusions]
    assert list(d.findings) == [i for i in ip0535.criteria if i not in exclusions]
    assert list(d.exclusions) == exclusions
    assert len(d.findings) + len(d.exclusions) == len(ip0535.criteria)
    assert "NC.1" not in d.findings and "NC.1" in d.exclusions
    assert d.findings.get("Z.9") is None
    with pytest.raises(KeyError):
        d.findings["NC.1"]
    with pytest.raises(TypeError):
        d.findings["A"] = d.findings["B"]  # type: ignore[index]
