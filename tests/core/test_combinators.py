"""The `none` and `at_least N` combinators: every child combination against a Kleene reference."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from priorauth.core.evaluator import CompiledPolicy, compile_policy
from priorauth.core.result import MET, NOT_MET, UNKNOWN, Status
from priorauth.errors import PolicyInvalid
from priorauth.policies import PolicyLibrary, parse_policy
from tests.core.factories import facts
from tests.policies.test_policy_files import SHIPPED

STATUSES: tuple[Status, ...] = (MET, NOT_MET, UNKNOWN)
# How an attestation answer makes a child's status: absent is unknown.
ANSWER = {MET: True, NOT_MET: False, UNKNOWN: None}


def reference(combine: str, n: int | None, children: Sequence[Status]) -> Status:
    """The definition, written independently of the generated code."""
    met, unknown = children.count(MET), children.count(UNKNOWN)
    if combine == "none":
        return NOT_MET if met else UNKNOWN if unknown else MET
    assert n is not None
    return MET if met >= n else NOT_MET if met + unknown < n else UNKNOWN


def policy_text(combine: str, n: int | None, width: int = 3, extra: str = "") -> str:
    """The shipped policy with one more top criterion Z: a group of `width` attestations."""
    head = f"  - id: Z\n    text: Combinator under test.\n    combine: {combine}\n"
    if n is not None:
        head += f"    at_least: {n}\n"
    head += extra + "    request: Z's answers.\n    children:\n"
    kids = "".join(
        f"      - id: Z.{chr(97 + i)}\n        text: Child {i}.\n        evidence: attestation\n"
        f"        check: {{kind: attestation, link_id: comb-{i}, expect: true}}\n"
        for i in range(width)
    )
    text = SHIPPED.replace("\nexclusions:\n", "\n" + head + kids + "\nexclusions:\n", 1)
    assert text != SHIPPED
    return text


_COMPILED: dict[tuple[str, int | None, int], CompiledPolicy] = {}


def compiled(combine: str, n: int | None, width: int = 3) -> CompiledPolicy:
    key = (combine, n, width)
    if key not in _COMPILED:
        _COMPILED[key] = compile_policy(parse_policy(policy_text(combine, n, width)))
    return _COMPILED[key]


def judge_z(policy: CompiledPolicy, children: Sequence[Status]) -> tuple[Status, str]:
    answers = {f"comb-{i}": ANSWER[s] for i, s in enumerate(children)}
    found = policy.evaluate(facts(answers=answers)).findings
    assert [found[f"Z.{chr(97 + i)}"].status for i in range(len(children))] == list(children)
    return found["Z"].status, found["Z"].reason


CASES = [
    (combine, n, kids)
    for combine, n in (("none", None), ("at_least", 1), ("at_least", 2), ("at_least", 3))
    for kids in itertools.product(STATUSES, repeat=3)
]


@pytest.mark.parametrize(("combine", "n", "kids"), CASES)
def test_every_combination_of_three_children(
    combine: str, n: int | None, kids: tuple[Status, ...]
) -> None:
    status, reason = judge_z(compiled(combine, n), kids)
    assert status == reference(combine, n, kids)
    met = [f"Z.{chr(97 + i)}" for i, s in enumerate(kids) if s == MET]
    word = "NONE of" if combine == "none" else f"AT LEAST {n} of"
    assert reason.startswith(f"{word} Z.a, Z.b, Z.c: {len(met)} of 3 met"), reason
    for cid in met:
        assert cid in reason
    for i, s in enumerate(kids):
        if s == UNKNOWN:
            assert f"Z.{chr(97 + i)}" in reason and "unknown" in reason


@given(
    kids=st.lists(st.sampled_from(STATUSES), min_size=1, max_size=5),
    data=st.data(),
)
def test_random_children_match_the_reference(kids: list[Status], data: st.DataObject) -> None:
    combine = data.draw(st.sampled_from(["none", "at_least"]))
    n = data.draw(st.integers(1, len(kids))) if combine == "at_least" else None
    status, _ = judge_z(compiled(combine, n, len(kids)), kids)
    assert status == reference(combine, n, kids)
    if status == MET:
        # unknown never silently becomes met: the definition holds with every unknown unmet
        assert reference(combine, n, [NOT_MET if s == UNKNOWN else s for s in kids]) == MET


@pytest.mark.parametrize(
    ("combine", "n", "extra", "message"),
    [
        ("at_least", None, "", "needs at_least: N"),
        ("at_least", 0, "", "at_least is 0, but must be 1 to 3"),
        ("at_least", 4, "", "at_least is 4, but must be 1 to 3"),
        ("at_least", -1, "", "must be 1 to 3"),
        ("at_least", None, "    at_least: 1.5\n", "integer"),
        ("at_least", None, '    at_least: "2"\n', "integer"),
        ("at_least", None, "    at_least: true\n", "integer"),
        ("none", 2, "", "without combine: at_least"),
        ("all", 1, "", "without combine: at_least"),
        ("some", None, "", "combine"),
    ],
)
def test_bad_at_least_is_refused(combine: str, n: int | None, extra: str, message: str) -> None:
    with pytest.raises(PolicyInvalid, match=message):
        parse_policy(policy_text(combine, n, extra=extra), "bad.yaml")


def test_a_policy_using_both_evaluates_end_to_end_through_the_library() -> None:
    text = policy_text("at_least", 2)
    # Nest a `none` group beside Z: "no history of" either of two events.
    text = text.replace(
        "\nexclusions:\n",
        "\n  - id: Y\n    text: No history of either event.\n    combine: none\n"
        "    request: Y's answers.\n    children:\n"
        "      - id: Y.a\n        text: Event a.\n        evidence: attestation\n"
        "        check: {kind: attestation, link_id: event-a, expect: true}\n"
        "      - id: Y.b\n        text: Event b.\n        evidence: attestation\n"
        "        check: {kind: attestation, link_id: event-b, expect: true}\n"
        "\nexclusions:\n",
        1,
    )
    lib = PolicyLibrary()
    lib.add(parse_policy(text, "combinators.yaml"))
    policy = lib.in_force("cigna-ip0535", date(2026, 5, 4))
    ok = {"comb-0": True, "comb-1": True, "comb-2": False, "event-a": False, "event-b": False}
    base = policy.evaluate(facts(answers=ok))
    assert (base.findings["Z"].status, base.findings["Y"].status) == (MET, MET)
    assert "Z" not in [u.id for u in base.reasons] and "Y" not in [u.id for u in base.reasons]

    history = policy.evaluate(facts(answers=ok | {"event-b": True}))
    assert history.findings["Y"].status == NOT_MET
    assert history.recommendation == "deny"
    assert [u.reason for u in history.reasons if u.id == "Y"] == [
        "NONE of Y.a, Y.b: 1 of 2 met (Y.b)."
    ]

    short = policy.evaluate(facts(answers=ok | {"comb-1": None}))
    assert short.findings["Z"].status == UNKNOWN
    assert short.recommendation == "pend"
    assert "Z's answers." in short.missing

    one = policy.evaluate(facts(answers=ok | {"comb-1": False}))
    assert one.findings["Z"].status == NOT_MET and one.recommendation == "deny"
