"""The history kinds (age, has_medication, has_claims, fhirpath), judged at their boundaries."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from priorauth.core.checks import COMPILERS, CompileContext, State
from priorauth.core.evaluator import CompiledPolicy
from priorauth.core.facts import HCPCS, NDC, ClaimLine, ClaimsHistory, Facts, Medication
from priorauth.core.model import Check
from priorauth.core.result import explain
from priorauth.errors import PolicyInvalid
from priorauth.policies import parse_policy
from tests.core.factories import AS_OF, facts
from tests.policies.test_policy_files import SHIPPED

_CHECK: TypeAdapter[Any] = TypeAdapter(Check)
_CTX = CompileContext(parse_policy(SHIPPED), {}, frozenset())


def run(check: dict[str, Any], f: Facts, as_of: date = AS_OF) -> tuple[str, str, tuple[Any, ...]]:
    """One check compiled on its own: (status, reason, evidence) on `as_of`."""
    model = _CHECK.validate_python(check)
    fn = COMPILERS[model.kind]("Z", model, _CTX)
    status, _, detail = fn(f, State(as_of))
    reason, evidence = explain(detail)
    return status, reason, evidence


def served(f: Facts, *days: date | None) -> Facts:
    """The facts with one claim item per date of service."""
    item = f.items[0]
    return dataclasses.replace(
        f,
        items=tuple(
            dataclasses.replace(item, sequence=n + 1, serviced=d) for n, d in enumerate(days)
        ),
    )


# --- age ----------------------------------------------------------------------

BORN = date(2008, 5, 4)  # 18 on AS_OF (2026-05-04)


@pytest.mark.parametrize(
    ("born", "bounds", "expected"),
    [
        (BORN, {"min_years": 18}, "met"),  # the 18th birthday is the review date
        (BORN + timedelta(days=1), {"min_years": 18}, "not_met"),  # the birthday is tomorrow
        (BORN - timedelta(days=1), {"min_years": 18}, "met"),
        (date(1961, 5, 4), {"max_years": 65}, "met"),  # 65 today: the max is inclusive
        (date(1961, 5, 5), {"max_years": 65}, "met"),  # 64, 65 tomorrow
        (date(1960, 5, 5), {"max_years": 65}, "met"),  # 65, turns 66 tomorrow
        (date(1960, 5, 4), {"max_years": 65}, "not_met"),  # 66 today
        (BORN, {"min_years": 18, "max_years": 18}, "met"),
        (BORN + timedelta(days=1), {"min_years": 12, "max_years": 17}, "met"),
        (BORN, {"min_years": 12, "max_years": 17}, "not_met"),
        (None, {"min_years": 18}, "unknown"),
    ],
)
def test_age_at_the_review_date(born: date | None, bounds: dict[str, int], expected: str) -> None:
    f = facts(patient={"birth_date": born})
    status, reason, _ = run({"kind": "age", **bounds}, f)
    assert status == expected, reason
    if born is not None:
        assert "on the review date, 2026-05-04" in reason


@pytest.mark.parametrize(
    ("at", "dates", "expected", "used"),
    [
        # 18 on the date of service, 17 on the review date
        ("service", (date(2026, 6, 1),), "met", "the date of service, 2026-06-01"),
        ("review", (date(2026, 6, 1),), "not_met", "the review date, 2026-05-04"),
        # the birthday exactly on the date of service; the day before
        ("service", (date(2026, 5, 5),), "met", "the date of service, 2026-05-05"),
        ("service", (date(2026, 5, 4),), "not_met", "the date of service, 2026-05-04"),
        # several items: the earliest date of service
        ("service", (date(2026, 7, 1), None, date(2026, 5, 4)), "not_met", "2026-05-04"),
        # no date of service: the review date, and the reason says so
        ("service", (None,), "not_met", "the review date (the claim gives no date of service)"),
    ],
)
def test_age_at_the_date_of_service(
    at: str, dates: tuple[date | None, ...], expected: str, used: str
) -> None:
    f = served(facts(patient={"birth_date": date(2008, 5, 5)}), *dates)
    status, reason, evidence = run({"kind": "age", "min_years": 18, "at": at}, f)
    assert status == expected
    assert used in reason
    assert evidence[1].value == (18 if expected == "met" else 17)


def test_age_leap_day_birthday_counts_from_march_first() -> None:
    f = facts(patient={"birth_date": date(2008, 2, 29)})
    assert run({"kind": "age", "min_years": 18}, f, date(2026, 2, 28))[0] == "not_met"
    assert run({"kind": "age", "min_years": 18}, f, date(2026, 3, 1))[0] == "met"


@pytest.mark.parametrize(
    ("check", "message"),
    [
        ({"kind": "age"}, "give min_years, max_years or both"),
        ({"kind": "age", "min_years": 20, "max_years": 18}, "min_years is above max_years"),
        ({"kind": "age", "min_years": 18, "at": "birth"}, "'review' or 'service'"),
    ],
)
def test_age_needs_a_bound(check: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _CHECK.validate_python(check)


def test_min_age_still_works() -> None:
    assert run({"kind": "min_age", "years": 18}, facts(patient={"birth_date": BORN}))[0] == "met"
    f = facts(patient={"birth_date": BORN + timedelta(days=1)})
    assert run({"kind": "min_age", "years": 18}, f)[0] == "not_met"


# --- has_medication -------------------------------------------------------------

FVIII = "http://www.nlm.nih.gov/research/umls/rxnorm"


def med(
    name: str = "antihemophilic factor, recombinant",
    *,
    start: int | None = None,
    end: int | None = None,
    active: bool = False,
    status: str = "completed",
    codes: tuple[tuple[str, str], ...] = (),
    ref: str | None = None,
) -> Medication:
    """A medication used from `start` to `end` days before AS_OF (None: not stated)."""
    return Medication(
        ref or f"MedicationStatement/m-{start}-{end}-{status}",
        name,
        active,
        codes,
        None if start is None else AS_OF - timedelta(days=start),
        None if end is None else AS_OF - timedelta(days=end),
        status,
    )


HAS_MED = {
    "kind": "has_medication",
    "label": "prophylactic clotting factor",
    "names": ["antihemophilic"],
}


@pytest.mark.parametrize(
    ("meds", "params", "answer", "expected"),
    [
        # duration: exactly the minimum, a day short, ongoing to the review date
        ((med(start=400, end=35),), {"min_duration_days": 365}, None, "met"),
        ((med(start=399, end=35),), {"min_duration_days": 365}, None, "unknown"),
        ((med(start=365, active=True, status="active"),), {"min_duration_days": 365}, None, "met"),
        (
            (med(start=364, active=True, status="active"),),
            {"min_duration_days": 365},
            None,
            "unknown",
        ),
        # first start to last end across records (refills)
        (
            (med(start=400, end=300), med(start=100, end=35)),
            {"min_duration_days": 365},
            None,
            "met",
        ),
        # a use that runs past the review date counts up to it only
        ((med(start=200, end=-200),), {"min_duration_days": 365}, None, "unknown"),
        # too short: the attestation decides
        ((med(start=100, end=35),), {"min_duration_days": 365, "attestation": "q"}, True, "met"),
        (
            (med(start=100, end=35),),
            {"min_duration_days": 365, "attestation": "q"},
            False,
            "not_met",
        ),
        (
            (med(start=100, end=35),),
            {"min_duration_days": 365, "attestation": "q"},
            None,
            "unknown",
        ),
        # lookback edge: ends exactly on the first day of the window; the day before
        ((med(start=500, end=365),), {"lookback_days": 365}, None, "met"),
        ((med(start=500, end=366),), {"lookback_days": 365}, None, "not_met"),
        # lookback clips the duration to the window
        ((med(start=800, end=0),), {"lookback_days": 365, "min_duration_days": 365}, None, "met"),
        (
            (med(start=800, end=1),),
            {"lookback_days": 365, "min_duration_days": 365},
            None,
            "unknown",
        ),
        # undated: enough without dates asked; unknown when dates matter
        ((med(),), {}, None, "met"),
        ((med(),), {"min_duration_days": 30}, None, "unknown"),
        ((med(),), {"min_duration_days": 30, "attestation": "q"}, True, "met"),
        # a use that starts after the review date is no history
        ((med(start=-5, end=-100),), {"min_duration_days": 30}, None, "not_met"),
        ((med(start=-5, end=-100),), {}, None, "not_met"),
        ((med(start=-5, end=-100), med()), {}, None, "met"),
        ((med(start=0, end=0),), {}, None, "met"),  # on the review date itself
        # not taken / in error: no history
        ((med(status="entered-in-error", start=400, end=0),), {}, None, "not_met"),
        ((med(status="not-taken", start=400, end=0),), {}, None, "not_met"),
        # none matches: other medications listed -> not_met; nothing listed -> unknown
        ((med("emicizumab", start=400, end=0),), {}, None, "not_met"),
        ((), {}, None, "unknown"),
        ((), {"attestation": "q"}, True, "met"),
        ((), {"attestation": "q"}, False, "not_met"),
        ((med("emicizumab", start=400, end=0),), {"attestation": "q"}, None, "unknown"),
    ],
)
def test_has_medication(
    meds: tuple[Medication, ...], params: dict[str, Any], answer: bool | None, expected: str
) -> None:
    f = facts(medications=meds, answers={"q": answer})
    status, reason, _ = run({**HAS_MED, **params}, f)
    assert status == expected, reason
    assert "antihemophilic" not in reason and "emicizumab" not in reason  # the label speaks


def test_has_medication_by_code_and_ndc() -> None:
    coded = med("brand x", start=400, end=0, codes=((FVIII, "1234"),))
    ndc = med(
        "brand y", start=400, end=0, codes=(("http://hl7.org/fhir/sid/ndc", "00053-0150-15"),)
    )
    check = {"kind": "has_medication", "label": "clotting factor", "codes": ["rxnorm|1234"]}
    assert run(check, facts(medications=(coded,)))[0] == "met"
    assert (
        run({**check, "codes": ["1234"]}, facts(medications=(coded,)))[0] == "met"
    )  # bare: RxNorm
    assert run({**check, "codes": ["ndc|0053-0150-15"]}, facts(medications=(ndc,)))[0] == "met"
    assert run({**check, "codes": ["ndc|0053-0150-16"]}, facts(medications=(ndc,)))[0] == "not_met"
    assert run({**check, "codes": [f"{FVIII}|1234"]}, facts(medications=(coded,)))[0] == "met"


def test_has_medication_sentence_and_evidence() -> None:
    f = facts(medications=(med(start=400, end=35, ref="MedicationStatement/a"),))
    status, reason, evidence = run({**HAS_MED, "min_duration_days": 365}, f)
    assert status == "met"
    assert reason == (
        "Prophylactic clotting factor is documented from 2025-03-30 to 2026-03-30 "
        "(365 days, at least 365 required)."
    )
    assert evidence[0].ref == "MedicationStatement/a"
    assert (evidence[-1].label, evidence[-1].value) == ("documented use", 365)


def test_has_medication_needs_names_or_codes() -> None:
    with pytest.raises(ValidationError, match="give names, codes or both"):
        _CHECK.validate_python({"kind": "has_medication", "label": "x"})


# --- has_claims -------------------------------------------------------------------

HAS_CLAIMS = {"kind": "has_claims", "label": "clotting factor", "codes": ["hcpcs|J7185"]}


def claims_of(*lines: tuple[str, int | None], system: str = HCPCS, extra: int = 1) -> ClaimsHistory:
    """A history with one claim per (code, days before AS_OF) and `extra` unrelated claims."""
    found = tuple(
        ClaimLine(
            f"ExplanationOfBenefit/e{i}",
            ((system, code),),
            None if d is None else AS_OF - timedelta(days=d),
        )
        for i, (code, d) in enumerate(lines)
    )
    return ClaimsHistory("M1", found, len(found) + extra)


@pytest.mark.parametrize(
    ("history", "params", "answer", "expected"),
    [
        (claims_of(("J7185", 30)), {}, None, "met"),
        (claims_of(("J7186", 30)), {}, None, "not_met"),
        # lookback edge: exactly on the first day of the window; the day before; after the review
        (claims_of(("J7185", 365)), {"lookback_days": 365}, None, "met"),
        (claims_of(("J7185", 366)), {"lookback_days": 365}, None, "not_met"),
        (claims_of(("J7185", -1)), {}, None, "not_met"),
        (claims_of(("J7185", None)), {}, None, "met"),  # undated counts without a lookback
        (claims_of(("J7185", None)), {"lookback_days": 365}, None, "not_met"),
        # min_count
        (claims_of(("J7185", 30), ("J7185", 60)), {"min_count": 2}, None, "met"),
        (claims_of(("J7185", 30)), {"min_count": 2}, None, "not_met"),
        # min_span_days: first to last claim, exactly at the minimum and a day short
        (claims_of(("J7185", 200), ("J7185", 20)), {"min_span_days": 180}, None, "met"),
        (claims_of(("J7185", 199), ("J7185", 20)), {"min_span_days": 180}, None, "not_met"),
        # no claims history available -> unknown, or the attestation
        (None, {}, None, "unknown"),
        (claims_of(extra=0), {}, None, "unknown"),
        (None, {"attestation": "q"}, True, "met"),
        (None, {"attestation": "q"}, False, "not_met"),
        (None, {"attestation": "q"}, None, "unknown"),
        # history without enough claims: the attestation decides when there is one
        (claims_of(("J7186", 30)), {"attestation": "q"}, True, "met"),
        (claims_of(("J7186", 30)), {"attestation": "q"}, None, "unknown"),
    ],
)
def test_has_claims(
    history: ClaimsHistory | None, params: dict[str, Any], answer: bool | None, expected: str
) -> None:
    f = facts(claims=history, answers={"q": answer})
    status, reason, _ = run({**HAS_CLAIMS, **params}, f)
    assert status == expected, reason
    assert "J7185" not in reason.split("(")[0]


def test_has_claims_counts_claims_not_lines_and_reads_ndcs() -> None:
    two_lines = ClaimsHistory(
        "M1",
        (
            ClaimLine("ExplanationOfBenefit/a", ((HCPCS, "J7185"),), AS_OF),
            ClaimLine("ExplanationOfBenefit/a", ((HCPCS, "J7185"),), AS_OF),
        ),
        1,
    )
    assert run({**HAS_CLAIMS, "min_count": 2}, facts(claims=two_lines))[0] == "not_met"
    ndc = claims_of(("00053015015", 10), system=NDC)
    assert run({**HAS_CLAIMS, "codes": ["ndc|0053-0150-15"]}, facts(claims=ndc))[0] == "met"


def test_has_claims_sentence() -> None:
    f = facts(claims=claims_of(("J7185", 200), ("J7185", 20)))
    _, reason, evidence = run({**HAS_CLAIMS, "min_count": 2, "min_span_days": 180}, f)
    assert reason == (
        "Claims history shows 2 claim(s) for clotting factor, 2025-10-16 to 2026-04-14 "
        "(180 days) (at least 2 claim(s) over at least 180 days)."
    )
    assert [e.ref for e in evidence] == ["ExplanationOfBenefit/e0", "ExplanationOfBenefit/e1"]


# --- the kinds in a policy file ------------------------------------------------------

EXTRA = """  - id: Z
    text: History under test.
    combine: all
    children:
      - id: Z.a
        text: Age 18 to 65 on the date of service.
        evidence: documentation
        check: {kind: age, min_years: 18, max_years: 65, at: service}
      - id: Z.b
        text: Prophylactic clotting factor for at least 12 months.
        evidence: documentation
        check: {kind: has_medication, label: prophylactic clotting factor, names: [antihemophilic],
                min_duration_days: 365, attestation: on-prophylaxis}
      - id: Z.c
        text: Claims for clotting factor in the past year.
        evidence: claims
        check: {kind: has_claims, label: clotting factor, codes: ["hcpcs|J7185"],
                lookback_days: 365}
"""


@pytest.mark.parametrize("inline", [True, False])
def test_the_kinds_judge_alike_inside_a_compiled_policy(inline: bool) -> None:
    text = SHIPPED.replace("\nexclusions:\n", "\n" + EXTRA + "\nexclusions:\n", 1)
    policy = CompiledPolicy(parse_policy(text), inline=inline)
    f = facts(
        medications=(med(start=400, end=0),),
        claims=claims_of(("J7185", 30)),
        answers={"on-prophylaxis": None},
    )
    found = policy.evaluate(f).findings
    assert {i: found[i].status for i in ("Z", "Z.a", "Z.b", "Z.c")} == dict.fromkeys(
        ("Z", "Z.a", "Z.b", "Z.c"), "met"
    )
    assert "the review date (the claim gives no date of service)" in found["Z.a"].reason
    f = facts(medications=(med(start=100, end=0),), answers={"on-prophylaxis": None})
    found = policy.evaluate(f).findings
    assert (found["Z.b"].status, found["Z.c"].status) == ("unknown", "unknown")
    assert "the prescriber has not answered 'on-prophylaxis'" in found["Z.b"].reason


@pytest.mark.parametrize("code", ["rxnrom|1234", "ndc|", "hcpcs| "])
def test_a_code_naming_no_known_system_is_refused(code: str) -> None:
    policy = SHIPPED.replace("\nexclusions:\n", "\n" + EXTRA + "\nexclusions:\n", 1).replace(
        '"hcpcs|J7185"', f'"{code}"'
    )
    with pytest.raises(PolicyInvalid, match=r"code system|is not SYSTEM|no code after"):
        CompiledPolicy(parse_policy(policy))
