"""The recommendation rules (contract §6), the dose comparison and the approval window."""

from __future__ import annotations

from datetime import date

from priorauth.core.evaluator import CompiledPolicy
from tests.core.factories import AS_OF, facts, obs


def test_approve_when_all_met_and_the_product_matches(ip0535: CompiledPolicy) -> None:
    d = ip0535.evaluate(facts())
    assert d.recommendation == "approve"
    assert d.dose is not None
    assert (d.dose.vials, d.dose.ndc, d.dose.quantity) == (18, "0053-0180-18", 1)
    assert d.authorization == (AS_OF, date(2026, 8, 1))  # 90 days counting the decision date
    assert d.missing == [] and d.reasons == []
    assert d.medical_director_review  # every review goes to the Medical Director


def test_approve_when_no_ndc_asked(ip0535: CompiledPolicy) -> None:
    assert ip0535.evaluate(facts(ndc=None)).recommendation == "approve"


def test_approve_matches_ndc_in_11_digit_form(ip0535: CompiledPolicy) -> None:
    assert ip0535.evaluate(facts(ndc="00053-0180-18")).recommendation == "approve"


def test_approve_modified_when_the_product_differs(ip0535: CompiledPolicy) -> None:
    d = ip0535.evaluate(facts(ndc="0053-0170-17"))
    assert d.recommendation == "approve-modified"
    assert d.dose is not None and d.dose.ndc == "0053-0180-18"
    assert d.requested.ndc == "0053-0170-17"
    assert d.authorization is not None


def test_approve_modified_when_quantity_is_not_one(ip0535: CompiledPolicy) -> None:
    assert ip0535.evaluate(facts(quantity=2)).recommendation == "approve-modified"


def test_deny_beats_pend(ip0535: CompiledPolicy) -> None:
    f = facts(
        replace={"1920-8": [obs("1920-8", 150, "U/L", uln=48)], "777-3": None},
        answers={"no-uncontrolled-hiv": None},
    )
    d = ip0535.evaluate(f)
    assert d.recommendation == "deny"
    assert [r.id for r in d.reasons] == ["I.ii"]
    assert d.authorization is None
    # what is missing is still listed for the reviewer
    assert any("777-3" in m for m in d.missing)


def test_pend_lists_missing_documentation_in_policy_order(ip0535: CompiledPolicy) -> None:
    f = facts(replace={"777-3": None}, answers={"no-uncontrolled-hiv": None})
    d = ip0535.evaluate(f)
    assert d.recommendation == "pend"
    assert len(d.missing) == 2
    assert "no-uncontrolled-hiv" in d.missing[0]  # H comes before K
    assert "777-3" in d.missing[1]
    assert d.dose is not None and d.authorization is None


def test_pend_for_a_one_group_names_the_group_request(ip0535: CompiledPolicy) -> None:
    none = dict.fromkeys(
        [
            "fix-exposure-days",
            "life-threatening-hemorrhage",
            "repeated-spontaneous-bleeding",
            "on-demand-fix-spontaneous",
        ]
    )
    d = ip0535.evaluate(facts(answers=none))
    assert d.recommendation == "pend"
    assert d.missing == [ip0535.criteria["E"].request]


def test_unknown_never_becomes_met(ip0535: CompiledPolicy) -> None:
    """Remove each piece of evidence in turn: the outcome may pend or deny, never approve."""
    for code in [
        "3187-2",
        "3185-6",
        "5196-1",
        "11011-4",
        "1742-6",
        "1920-8",
        "1975-2",
        "6768-6",
        "777-3",
        "29463-7",
    ]:
        assert ip0535.evaluate(facts(replace={code: None})).recommendation == "pend", code
    for link in [
        "no-prior-gene-therapy",
        "no-current-hepatitis-antiviral",
        "no-uncontrolled-hiv",
        "no-advanced-liver-disease",
        "history-of-fix-inhibitors",
    ]:
        assert ip0535.evaluate(facts(answers={link: None})).recommendation == "pend", link


def test_review_date_override_moves_the_windows(ip0535: CompiledPolicy) -> None:
    f = facts()
    assert ip0535.evaluate(f, as_of=date(2026, 5, 25)).findings["K"].status == "met"
    later = ip0535.evaluate(f, as_of=date(2026, 5, 26))  # labs dated 2026-04-25: 31 days
    assert later.findings["K"].status == "unknown"
    assert later.as_of == date(2026, 5, 26)


def test_expedited_is_carried(ip0535: CompiledPolicy) -> None:
    import dataclasses

    d = ip0535.evaluate(dataclasses.replace(facts(), expedited=True))
    assert d.expedited


def test_every_contract_id_is_judged(ip0535: CompiledPolicy) -> None:
    d = ip0535.evaluate(facts())
    ids = set(d.findings) | set(d.exclusions)
    expected = {
        "DX",
        "A",
        "B",
        "C",
        "D",
        "E",
        "E.i",
        "E.ii",
        "E.ii.a",
        "E.ii.b",
        "E.iii",
        "E.iii.a",
        "E.iii.b",
        "F",
        "F.i",
        "F.ii",
        "G",
        "G.i",
        "G.ii",
        "H",
        "I",
        "I.i",
        "I.ii",
        "I.iii",
        "I.iv",
        "J",
        "K",
        "L",
        "L.i",
        "L.ii",
        "M",
        "N",
        "O",
        "NC.1",
        "NC.2",
    }
    assert ids == expected
    assert list(d.findings)[:5] == ["DX", "A", "B", "C", "D"]  # the policy's own order
