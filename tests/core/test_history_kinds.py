"""The history kinds (age, has_medication, has_claims, fhirpath), judged at their boundaries."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from priorauth.core.checks import COMPILERS, CompileContext, State
from priorauth.core.facts import Facts
from priorauth.core.model import Check
from priorauth.core.result import explain
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
