"""Reading claims history NDJSON (intake.claims), per data contract section 4."""

from __future__ import annotations

import json
from datetime import date

import pytest

from priorauth.core.facts import HCPCS, NDC
from priorauth.demo.samples import claims_ndjson
from priorauth.errors import InvalidClaims, InvalidRequest
from priorauth.intake.claims import read_claims, read_claims_file
from tests.conftest import shared_dir

EXAMPLE_MEMBERS = ("MC9F4989BF", "M3DD18AC2B", "MB722A3542", "MC8DB2D4ED")


def test_shared_claims_history() -> None:
    index = read_claims_file(shared_dir("examples", "hemgenix") / "claims.ndjson")
    assert len(index) == 4
    history = index.history_for("MC9F4989BF")
    assert history.available
    assert history.member_id == "MC9F4989BF"
    assert history.claim_count == 1
    (line,) = history.lines
    assert line.codes == ((HCPCS, "J7201"),)
    assert line.when == date(2025, 10, 14)
    assert line.ref == "ExplanationOfBenefit/c28faa2f-6242-5b75-817f-3b8abfed654f"
    for member in EXAMPLE_MEMBERS:
        assert index.history_for(member).claim_count == 1


@pytest.mark.parametrize("member", ["MUNKNOWN01", "", None])
def test_unknown_or_missing_member_has_no_history(member: str | None) -> None:
    index = read_claims(claims_ndjson("M1", (HCPCS, "J1411")).splitlines())
    history = index.history_for(member)
    assert not history.available
    assert history.claim_count == 0
    assert history.lines == ()


def test_claims_are_counted_per_member_with_one_line_per_item() -> None:
    text = claims_ndjson("M1", (HCPCS, "J7201"), (NDC, "0053-0180-18")) + claims_ndjson(
        "M2", (HCPCS, "J1414")
    )
    eob = json.loads(text.splitlines()[0])
    eob["item"].append(
        {"sequence": 2, "productOrService": {"coding": [{"system": HCPCS, "code": "J7195"}]}}
    )
    lines = [json.dumps(eob), *text.splitlines()[1:]]
    index = read_claims(lines)
    m1 = index.history_for("M1")
    assert m1.claim_count == 2
    assert [line.codes[0][1] for line in m1.lines] == ["J7201", "J7195", "0053-0180-18"]
    assert index.history_for("M2").lines[0].codes == ((HCPCS, "J1414"),)


def test_line_date_falls_back_to_billable_period_then_created() -> None:
    eob = json.loads(claims_ndjson("M1", (HCPCS, "J7201"), served=date(2025, 1, 2)))
    del eob["item"][0]["servicedDate"]
    with_period = json.dumps(eob)
    del eob["billablePeriod"]
    eob["created"] = "2025-03-04T10:00:00-05:00"
    with_created = json.dumps(eob)
    eob["item"][0]["servicedPeriod"] = {"start": "2025-05-06", "end": "2025-05-07"}
    with_serviced_period = json.dumps(eob)
    index = read_claims([with_period, with_created, with_serviced_period])
    assert [line.when for line in index.history_for("M1").lines] == [
        date(2025, 1, 2),
        date(2025, 3, 4),
        date(2025, 5, 6),
    ]


def test_blank_lines_and_bytes_are_accepted() -> None:
    text = claims_ndjson("M1", (HCPCS, "J7201"), (HCPCS, "J7202"))
    lines: list[str | bytes] = [b"", *(line.encode() for line in text.splitlines()), b"  \n", "\n"]
    assert read_claims(lines).history_for("M1").claim_count == 2


GOOD = claims_ndjson("M1", (HCPCS, "J7201")).strip()


@pytest.mark.parametrize(
    ("bad", "fragment"),
    [
        pytest.param("{not json", "not valid JSON", id="not-json"),
        pytest.param("[1, 2]", "not an ExplanationOfBenefit", id="array"),
        pytest.param('{"resourceType": "Claim"}', "not an ExplanationOfBenefit", id="claim"),
        pytest.param(
            GOOD.replace('"value":"M1"', '"value":""'), "identifier.value", id="empty-member"
        ),
        pytest.param(
            GOOD.replace('"patient":{', '"subject":{'), "identifier.value", id="no-patient"
        ),
        pytest.param(
            GOOD.replace('"servicedDate":"2025-10-14"', '"servicedDate":"14/10/2025"'),
            "servicedDate",
            id="bad-date",
        ),
        pytest.param(GOOD.replace('"item":[', '"item":[7,'), "item", id="bad-item"),
    ],
)
def test_bad_line_is_refused_with_its_line_number(bad: str, fragment: str) -> None:
    assert bad != GOOD
    with pytest.raises(InvalidClaims) as caught:
        read_claims([GOOD, "", bad, GOOD])
    assert caught.value.where is not None
    assert caught.value.where.startswith("line 3")
    assert fragment in str(caught.value)
    assert isinstance(caught.value, InvalidRequest)
